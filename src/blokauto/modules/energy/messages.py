"""Energy messages and events. A grid operator opens zones and sets their terms; a meter operator
registers meters with device keys; a meter's owner bids and asks; the meter signs its readings;
anyone clears an interval after its gate closes and settles it after it ends."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Ident, MeterKind, Price, Terms, Wh

Did = Annotated[str, msgspec.Meta(min_length=8, max_length=120, pattern="^[^/]+$", description="a did:key")]
Owner = Annotated[str, msgspec.Meta(min_length=5, max_length=120, pattern="^[^/]+$",
                                    description="an account owner: a did:key, or org:<id>")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z", description="ISO 4217 currency code")]
Vin = Annotated[str, msgspec.Meta(max_length=40, description="the VIN of the vehicle a V2G charger serves")]
Start = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1, description="an interval's start (block-time ms)")]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000, description="energy in Wh")]
Reason = Annotated[str, msgspec.Meta(max_length=300)]


class OpenZone(Message, tag="energy.open_zone"):
    """A grid operator opens a zone: its currency and clock (interval length, gate closure, reading
    window) for good, and its first terms, from the first interval whose gate is still open."""

    zone: Ident
    currency: Currency
    interval_ms: Annotated[int, msgspec.Meta(ge=1_000, le=86_400_000)] = 900_000
    gate_closure_ms: Annotated[int, msgspec.Meta(ge=0, le=86_400_000)] = 300_000
    reading_window_ms: Annotated[int, msgspec.Meta(ge=0, le=7 * 86_400_000)] = 3_600_000
    terms: Terms = Terms(0, 0, 0, 0, 0, 0)


class SetTerms(Message, tag="energy.set_terms"):
    """The zone's operator sets its capacities and prices from an interval whose gate is still open."""

    zone: Ident
    start: Start
    terms: Terms


class RegisterMeter(Message, tag="energy.register_meter"):
    """A meter operator registers a meter in a zone: its device key, the account it trades for, its
    most power (readings above power x interval are refused) and, for a V2G charger, the vehicle."""

    meter: Ident
    zone: Ident
    kind: MeterKind
    key: Did
    owner: Owner
    max_power_w: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
    vin: Vin = ""


class RotateMeterKey(Message, tag="energy.rotate_meter_key"):
    """The meter's operator gives it a new device key; the old one signs nothing from this block on."""

    meter: Ident
    key: Did


class RevokeMeter(Message, tag="energy.revoke_meter"):
    """The meter's operator takes it out of service: no orders, no readings from this block on."""

    meter: Ident
    reason: Reason = ""


class PlaceOrder(Message, tag="energy.place_order"):
    """A meter's owner bids (buy) or asks (sell) for an interval before its gate closes; a bid holds
    its most cost (Wh x price / 1,000, rounded up) until the interval settles."""

    meter: Ident
    start: Start
    side: Literal["buy", "sell"]
    price: Price
    wh: Quantity


class CancelOrder(Message, tag="energy.cancel_order"):
    """The order's owner cancels it before the gate closes; a bid's money is released at once."""

    zone: Ident
    start: Start
    seq: Uint


class SubmitReading(Message, tag="energy.submit_reading"):
    """The meter (its device key) signs what it measured over an interval that has ended."""

    meter: Ident
    start: Start
    imported_wh: Wh
    exported_wh: Wh


class ClearInterval(Message, tag="energy.clear"):
    """Anyone clears an interval of a zone once its gate has closed: one uniform-price auction."""

    zone: Ident
    start: Start


class SettleInterval(Message, tag="energy.settle"):
    """Anyone settles an interval against the meters' readings once it has ended and every meter with a
    position has read, or its reading window has passed (clearing it first if nobody did)."""

    zone: Ident
    start: Start


class ZoneOpened(Event, tag="energy.zone_opened"):
    zone: str
    operator: str


class TermsSet(Event, tag="energy.terms_set"):
    zone: str
    start: Uint


class MeterRegistered(Event, tag="energy.meter_registered"):
    meter: str
    zone: str
    operator: str
    owner: str


class MeterChanged(Event, tag="energy.meter_changed"):
    meter: str
    operator: str
    owner: str
    change: str  # "key_rotated" | "revoked"


class OrderPlaced(Event, tag="energy.order_placed"):
    zone: str
    start: Uint
    seq: Uint
    owner: str
    side: str


class OrderCancelled(Event, tag="energy.order_cancelled"):
    zone: str
    start: Uint
    seq: Uint
    owner: str


class ReadingSubmitted(Event, tag="energy.reading_submitted"):
    meter: str
    start: Uint
    operator: str
    owner: str


class IntervalCleared(Event, tag="energy.cleared"):
    zone: str
    start: Uint
    price: Uint
    matched_wh: Uint


class IntervalSettled(Event, tag="energy.settled"):
    zone: str
    start: Uint
    positions: Uint
    missing_readings: Uint
