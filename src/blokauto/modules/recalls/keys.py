"""The recalls module's state-key prefixes, declared once: its state maps, the verifiers (Python
and, generated, the browser's) and the report read them here."""

CAMPAIGN = "recall/c/"  # by campaign id
NUMBER = "recall/number/"  # campaign number -> id
BY_PART_NUMBER = "recall/pn/"  # part number -> open campaigns naming it
BY_HARDWARE = "recall/hw/"  # hardware id -> open campaigns whose software fix is for it
REMEDY = "recall/remedy/"  # by (campaign id, VIN)
OPEN = "recall/open"  # the open campaigns' ids, in the order they opened
NEXT = "recall/next"
