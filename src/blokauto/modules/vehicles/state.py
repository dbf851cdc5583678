"""Vehicle state: one record per VIN, with its running history hash, and the WMI registry.

Title holders are strings: a ``did:key`` (a person or any key-holder: owners are keys, never
names) or ``org:<id>`` (an organisation of the consortium, such as a dealer or a fleet).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.state import StateMap
from . import keys

Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\Z", description="YYYY-MM-DD")]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}\Z", description="ISO 3166-1 alpha-2")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z", description="ISO 4217")]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Usage = Literal["private", "fleet", "rental", "taxi", "ride_share"]
Powertrain = Literal["ice", "hev", "phev", "bev", "fcev"]
Unit = Literal["km", "mi"]
Brand = Literal["salvage", "junk", "rebuilt", "flood", "fire", "hail", "lemon", "total_loss", "stolen", "recovered"]
OdometerStatus = Literal["actual", "not_actual", "exceeds_mechanical_limits"]

ORG_PREFIX = "org:"
ZERO_HEAD = "00" * 32


class Birth(msgspec.Struct, frozen=True):
    make: Text
    model: Text
    model_year: Uint
    body: Text
    powertrain: Powertrain
    plant: Text
    build_date: Date
    battery_wh: Uint = 0  # usable battery capacity of an EV, watt-hours


class Lien(msgspec.Struct, frozen=True):
    id: Uint
    lender: str  # organisation id
    amount: Uint  # minor units of the currency
    currency: Currency
    since: Uint  # height


class OdometerAnchor(msgspec.Struct, frozen=True):
    """The trusted reading (or the birth: 0 km) that bounds later readings hardest: ``km`` at block
    time ``at`` (see ``odometer.py``)."""

    km: Uint
    at: Uint


class Odometer(msgspec.Struct, frozen=True):
    km: Uint = 0  # last reading, in km, cluster offset applied
    max_km: Uint = 0  # highest reading so far
    offset_km: int = 0  # added to what the current instrument cluster shows (after a replacement)
    limit_km: Uint = 999_999  # highest value the cluster can show (mechanical limit)
    status: OdometerStatus = "actual"
    readings: Uint = 0
    rollbacks: Uint = 0
    # Set only where the plausibility rule is on (odometer_max_kmh > 0), so records of chains that
    # never turned it on keep their exact bytes: the anchor every later reading is judged against
    # (stored at registration, or at the first trusted reading once the rule is on), and how many
    # readings were flagged implausible_jump.
    anchor: OdometerAnchor | msgspec.UnsetType = msgspec.UNSET
    implausible: Uint | msgspec.UnsetType = msgspec.UNSET


class RevokedKey(msgspec.Struct, frozen=True):
    """A device key taken out of service: from block ``height`` on, nothing it signs counts for the
    vehicle (``reason``: lost, compromised, ecu_replaced, rotated)."""

    did: str
    height: Uint
    reason: str


class History(msgspec.Struct, frozen=True):
    """Running hash over every history entry: head_n = H(tag || head_{n-1} || canonical(entry_n))."""

    count: Uint = 0
    head: str = ZERO_HEAD


class Vehicle(msgspec.Struct, frozen=True):
    vin: str
    manufacturer: str
    birth: Birth
    registered: Uint  # height
    holder: str
    holder_since: Uint  # block time, ms
    owners: Uint  # holders that were owners (not a manufacturer or dealer in trade)
    usage: Usage
    country: Country
    device_keys: list[str] = []
    liens: list[Lien] = []
    next_lien: Uint = 1
    brands: list[str] = []
    status: Literal["active", "stolen", "scrapped"] = "active"
    odometer: Odometer = Odometer()
    accidents: Uint = 0
    services: Uint = 0
    inspections: Uint = 0
    certificate: str = ""  # certificate of destruction, once scrapped
    history: History = History()
    # Device keys rotated out or revoked (set only once one is, so older records keep their bytes).
    retired_keys: list[RevokedKey] | msgspec.UnsetType = msgspec.UNSET


class Entry(msgspec.Struct, frozen=True):
    """One fact of a vehicle's life, as hashed into its history."""

    seq: Uint
    type: str
    height: Uint
    time: Uint
    tx: str
    by: str  # the key that sent the transaction
    org: str  # its organisation ("" for a key outside the consortium: an owner or a device)
    data: dict


VEHICLES = StateMap(keys.VEHICLE, Vehicle)
WMIS = StateMap(keys.WMI, str)  # manufacturer code -> organisation id
