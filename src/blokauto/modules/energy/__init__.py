"""Energy: peer-to-peer trading of energy between prosumers, EV owners and the grid, settled on the
ledger against what meters measured.

Decisions (each handler's docstring lists its rules):

- **Zones and their grid operator.** An organisation with the ``grid`` role opens a zone: its
  currency (one payments carries), its interval (15 minutes unless it says otherwise; it divides a
  day), its gate closure (orders close that long before an interval starts) and its reading window.
  Its terms, set from an interval whose gate is still open, say how much energy the grid can bring
  into the zone and take out of it per interval (``import_wh``, ``export_wh``), at what prices the
  grid sells and buys, and the imbalance prices (``short_price``, ``long_price``).
- **Meters with keys.** A meter operator (``energy``, ``charging`` or ``grid``) registers home
  meters, charge points and vehicles' bidirectional chargers with the device key that signs their
  readings (integer Wh imported and exported per interval, at most what the meter's power allows),
  and the account they trade for. Rotation and revocation take effect from their block.
- **Orders.** A key acting for a meter's owner bids or asks for an interval of its zone (price in
  minor units per kWh, quantity in Wh) until gate closure, and may cancel until then. A bid holds its
  most cost (rounded up) from the owner's account through payments (``PaymentsDoor.hold``).
- **Clearing** (``clearing.py``, pure): at or after gate closure anyone clears an interval; one
  uniform-price double auction over its open orders and the grid's own offers (so the zone's import
  and export capacity bound what the grid trades). Price: the midpoint (rounded down) of the last
  bid and ask levels matched. The marginal levels share pro rata; the Wh left by rounding go one each
  by the order's transaction id: the result does not depend on the order orders arrived in.
- **Settlement** after the interval, once every meter with a position has read or its reading window
  has passed: buyers pay (rounded up) what they bought at the clearing price, sellers are paid
  (rounded down), through the zone operator's account (the market's counterparty); each meter's
  measured net export against its position settles at the imbalance prices; a position without a
  reading counts short by its whole size; a short charge an account cannot cover is recorded as
  ``unpaid``. Every bid's money beyond its price goes back.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .clearing import Marginal, Offer, Result, clear, fill, value
from .doors import EnergyDoor, EnergyRecords, Terms, book_key, position_key
from .spec import module

module.provide(EnergyDoor, EnergyRecords())

__all__ = ["EnergyDoor", "Marginal", "Offer", "Result", "Terms", "book_key", "clear", "fill", "module", "position_key",
           "value"]
