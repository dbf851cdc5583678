"""Energy refusals. Each leaves zones, meters, books, accounts and readings as they were.

    DomainError
    ├── zones      ZoneExists, UnknownZone, NotZoneOperator, InvalidTerms, TermsTooLate, InvalidInterval,
    │              GateClosed, TooFarAhead
    ├── meters     MeterExists, UnknownMeter, NotMeterOperator, MeterRevoked, MeterKeyInUse, MeterKeyIsOwner,
    │              NotMeterKey, NotMeterOwner, InvalidMeterOwner, ImplausibleReading, ReadingExists,
    │              ReadingTooEarly, ReadingTooLate
    ├── orders     BookFull, OrderBeyondPower, UnknownOrder, NotOrderOwner, OrderCancelled
    └── intervals  NoOrders, GateNotClosed, AlreadyCleared, IntervalNotOver, SettlementTooEarly, AlreadySettled

A bid its owner's account cannot hold is refused by payments (``insufficient_funds``); a message
from a revoked member key by the framework (``revoked_key``).
"""

from ...core.errors import DomainError, NotFound


class ZoneExists(DomainError):
    code = "zone_exists"
    template = "Zone {zone!r} was opened by {operator} at block {height}; its operator sets its terms (energy.set_terms)."


class UnknownZone(NotFound):
    code = "unknown_zone"
    template = "There is no zone {zone!r} on the ledger; a grid operator opens it (energy.open_zone)."


class NotZoneOperator(DomainError):
    code = "not_zone_operator"
    template = "Zone {zone!r} is operated by {operator!r}; only its keys set its terms."


class InvalidTerms(DomainError):
    code = "invalid_terms"
    template = "The zone's terms are not consistent: {reason}."


class TermsTooLate(DomainError):
    code = "terms_too_late"
    template = ("Terms for interval {start} of zone {zone!r} had to be set by {deadline} ({notice_ms} ms before its "
                "gate closes, so participants can cancel); the block time is {time}. Set them from a later interval.")


class InvalidInterval(DomainError):
    code = "invalid_interval"
    template = ("{start} is not the start of an interval of zone {zone!r}: intervals start at multiples of "
                "{interval_ms} ms of block time (the next one starts at {next}).")


class GateClosed(DomainError):
    code = "gate_closed"
    template = ("The gate of interval {start} in zone {zone!r} closed at {closed} (block time {time}); orders and "
                "cancellations are taken until {gate_closure_ms} ms before an interval starts.")


class TooFarAhead(DomainError):
    code = "too_far_ahead"
    template = "Interval {start} is more than {horizon_ms} ms after the block time {time}; order nearer intervals."


class MeterExists(DomainError):
    code = "meter_exists"
    template = "Meter {meter!r} is already registered (by {operator}); meter ids are unique on the ledger."


class UnknownMeter(NotFound):
    code = "unknown_meter"
    template = "There is no meter {meter!r} on the ledger; its operator registers it (energy.register_meter)."


class NotMeterOperator(DomainError):
    code = "not_meter_operator"
    template = "Meter {meter!r} is operated by {operator!r}; only its keys change it."


class MeterRevoked(DomainError):
    code = "meter_revoked"
    template = "Meter {meter!r} was taken out of service at block {height} ({reason}); it trades and reads no more."


class MeterKeyInUse(DomainError):
    code = "meter_key_in_use"
    template = "The key {key} already signs for meter {meter!r}; give each meter a key of its own."


class MeterKeyIsOwner(DomainError):
    code = "meter_key_is_owner"
    template = ("The device key of meter {meter!r} would be {key}, a key of its owner (or of the organisation that "
                "owns it); a meter signs its readings with a key of its own, never one its owner orders with.")


class NotMeterKey(DomainError):
    code = "not_meter_key"
    template = ("The reading of meter {meter!r} is signed by {sender}, not by the meter's device key {key}; only "
                "the meter signs its readings.")


class NotMeterOwner(DomainError):
    code = "not_meter_owner"
    template = "Meter {meter!r} trades for {owner}; {sender} does not act for that account."


class InvalidMeterOwner(DomainError):
    code = "invalid_meter_owner"
    template = "{owner} cannot own a meter's trades: {reason} (an owner is a did:key, or org:<an active organisation>)."


class ImplausibleReading(DomainError):
    code = "implausible_reading"
    template = ("Meter {meter!r} reports {wh} Wh in and out in one interval; at its most power ({max_power_w} W) it "
                "can move at most {limit} Wh in {interval_ms} ms.")


class ReadingExists(DomainError):
    code = "reading_exists"
    template = "Meter {meter!r} already read interval {start} (block {height}); a reading is never replaced."


class ReadingTooEarly(DomainError):
    code = "reading_too_early"
    template = "Interval {start} ends at {end}; the block time is {time}. Read an interval after it ends."


class ReadingTooLate(DomainError):
    code = "reading_too_late"
    template = ("Interval {start} of zone {zone!r} {why}; its readings were taken until {until}. The meter's "
                "position settled without it.")


class BookFull(DomainError):
    code = "book_full"
    template = "Interval {start} of zone {zone!r} holds {orders} orders, the most one interval takes."


class OrderBeyondPower(DomainError):
    code = "order_beyond_power"
    template = ("Meter {meter!r} would {side} {wanted} Wh in interval {start} (its open orders there: {ordered} Wh); at "
                "its most power it moves at most {limit} Wh an interval.")


class NoOrders(NotFound):
    code = "no_orders"
    template = "Interval {start} of zone {zone!r} has no orders: there is nothing to clear or settle."


class UnknownOrder(NotFound):
    code = "unknown_order"
    template = "There is no order {seq} for interval {start} of zone {zone!r}."


class NotOrderOwner(DomainError):
    code = "not_order_owner"
    template = "Order {seq} was placed for {owner}; {sender} does not act for that account."


class OrderCancelled(DomainError):
    code = "order_cancelled"
    template = "Order {seq} of interval {start} in zone {zone!r} is already cancelled."


class GateNotClosed(DomainError):
    code = "gate_not_closed"
    template = ("The gate of interval {start} in zone {zone!r} closes at {closes}; the block time is {time}. An "
                "interval clears once its orders are final.")


class AlreadyCleared(DomainError):
    code = "already_cleared"
    template = "Interval {start} of zone {zone!r} was cleared at block {height} (price {price}, {matched_wh} Wh)."


class IntervalNotOver(DomainError):
    code = "interval_not_over"
    template = "Interval {start} of zone {zone!r} ends at {end}; the block time is {time}. Settle it after it ends."


class SettlementTooEarly(DomainError):
    code = "settlement_too_early"
    template = ("{missing} meter(s) with a position in interval {start} of zone {zone!r} have not read it yet "
                "(first: {meter!r}); it settles when they have, or from {until} without them.")


class AlreadySettled(DomainError):
    code = "already_settled"
    template = "Interval {start} of zone {zone!r} was settled at block {height}; an interval settles once."
