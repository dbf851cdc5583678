"""The parts module's state-key prefixes, declared once: its state maps, the verifiers (Python and,
generated, the browser's) and the report read them here."""

PART_TYPE = "parts/type/"
PART = "parts/p/"  # a serialized part's twin, by "<part_number>:<serial>"
BATCH = "parts/b/"
LOT = "parts/lot/"
LOGGER = "parts/logger/"
BOM = "parts/bom/"  # a vehicle's bill of installed parts, by VIN
PASSPORT = "parts/passport/"  # a battery pack's passport, by its part id
