"""The energy module's state-key prefixes, declared once."""

ZONE = "en/zone/"  # zone id -> its grid operator, currency, interval length, gate closure, reading window
TERMS = "en/terms/"  # (zone, first interval start) -> capacities and prices from that interval on
METER = "en/meter/"  # meter id -> its operator, zone, device key, account owner, power limit, status
METER_KEY = "en/mkey/"  # device key -> the meter it signs for (a key signs for one meter)
METER_ORDERS = "en/mord/"  # (meter, interval start) -> Wh the meter's open bids and asks add up to
BOOK = "en/book/"  # (zone, interval start) -> the interval's order book: counts, clearing, settlement
ORDER = "en/order/"  # (zone, interval start, seq) -> one bid or ask
READING = "en/reading/"  # (meter, interval start) -> the meter's signed reading of that interval
POSITION = "en/pos/"  # (zone, interval start, meter) -> how the meter's trades of the interval settled
