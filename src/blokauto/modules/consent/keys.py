"""The consent module's state-key prefixes, declared once: its state maps, the verifiers (Python
and, generated, the browser's) and the access-policy code read them here."""

GRANT = "consent/g/"  # by grant id
LIVE = "consent/live/"  # (VIN, organisation) -> ids of the grants that may still count
NEXT = "consent/next"
