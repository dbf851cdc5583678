"""Vehicle lifecycle rules. Signers and sender roles were checked by the framework already.

Every accepted message appends one entry to the vehicle's history (stored in full in the
derived ``history`` table) and advances the running hash kept in the vehicle record, so a
report can prove that no entry was dropped, changed, reordered or added.
"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

from ...core.crypto import TAG_HISTORY, public_key_from_did, tagged_hash
from ...core.encoding import canonical, to_builtins
from ...core.errors import InvalidKey
from ...core.module import ANYONE, Context, EitherParty, KeyParty, OrgParty, Party
from ...core.state import Overlay, StateReader
from . import errors
from .messages import (
    AddDeviceKey,
    AssignWmi,
    DeviceKeyChanged,
    BrandTitle,
    ChangeRegistration,
    Deregister,
    HistoryAppended,
    OdometerFlagged,
    RecordAccident,
    RecordInspection,
    RecordLien,
    RecordOdometer,
    RecordRepair,
    RecordService,
    RegisterVehicle,
    ReleaseLien,
    RevokeDeviceKey,
    RotateDeviceKey,
    ReplaceCluster,
    TitleTransferred,
    TransferTitle,
    VehicleBranded,
    VehicleDeregistered,
    VehicleRegistered,
    WmiAssigned,
)
from .odometer import birth_anchor, is_rollback, plausible, tighter, to_km
from .spec import (BIRTHS, BY_HOLDER, HISTORY, HOLDERS, ODOMETER_JUMP_SLACK_KM, ODOMETER_MAX_KMH, Organisations,
                   TitleWatchers, module)
from .state import ORG_PREFIX, VEHICLES, WMIS, Birth, Entry, History, Lien, Odometer, RevokedKey, Vehicle
from .vin import validate_vin, validate_wmi

#: Who may apply each title brand.
BRAND_ROLES: dict[str, frozenset[str]] = {
    "salvage": frozenset({"insurer", "regulator"}),
    "total_loss": frozenset({"insurer", "regulator"}),
    "flood": frozenset({"insurer", "regulator", "inspector"}),
    "fire": frozenset({"insurer", "regulator", "inspector"}),
    "hail": frozenset({"insurer", "regulator", "inspector"}),
    "junk": frozenset({"recycler", "regulator"}),
    "rebuilt": frozenset({"inspector", "regulator"}),
    "lemon": frozenset({"manufacturer", "regulator"}),
    "stolen": frozenset({"police"}),
    "recovered": frozenset({"police"}),
}

#: Organisations whose keys may record odometer readings (besides the vehicle's own device keys).
READING_ROLES = frozenset({"workshop", "inspector", "dealer", "regulator", "insurer", "manufacturer", "mobility",
                           "fleet", "police"})

#: Holders in the trade: a title passing to them does not count as an owner.
TRADE_ROLES = frozenset({"manufacturer", "dealer"})

# ---------------------------------------------------------------- helpers


def _vehicle(state: StateReader, vin: str, *, writable: bool = True) -> Vehicle:
    if not vin.isalnum():  # no registered VIN has other characters (and "/" could not be a key)
        raise errors.UnknownVehicle(vin=vin)
    v = VEHICLES.get(state, vin)
    if v is None:
        raise errors.UnknownVehicle(vin=vin)
    if writable and v.status == "scrapped":
        raise errors.VehicleScrapped(vin=vin, certificate=v.certificate)
    return v


def _orgs(ctx: Context) -> Organisations:
    return ctx.need(Organisations)


def holder_party(state: StateReader, ctx: Context, holder: str, label: str) -> Party:
    """Who signs for a title holder: that key, or any active key of that organisation."""
    if holder.startswith(ORG_PREFIX):
        org = holder[len(ORG_PREFIX):]
        if _orgs(ctx).org_roles(state, org) is None:
            raise errors.InvalidHolder(holder=holder)
        return OrgParty(org, "", label)
    if holder.startswith("did:key:"):
        try:
            public_key_from_did(holder)
        except InvalidKey:
            raise errors.InvalidHolder(holder=holder) from None
        return KeyParty(holder, label)
    raise errors.InvalidHolder(holder=holder)


def append(state: Overlay, ctx: Context, v: Vehicle, kind: str, data: dict[str, Any], flag: str = "",
           **changes: Any) -> Vehicle:
    """Record one history entry and the vehicle's new state."""
    seq = v.history.count + 1
    entry = Entry(seq=seq, type=kind, height=ctx.height, time=ctx.time, tx=ctx.tx_id.hex(), by=ctx.sender,
                  org=ctx.member.org if ctx.member is not None else "", data=data)
    raw = canonical(entry)
    head = tagged_hash(TAG_HISTORY, bytes.fromhex(v.history.head) + raw).hex()
    updated = msgspec.structs.replace(v, history=History(seq, head), **changes)
    VEHICLES.put(state, updated, v.vin)
    ctx.index_put(HISTORY, vin=v.vin, seq=seq, height=ctx.height, time=ctx.time, type=kind, entry=raw)
    ctx.emit(HistoryAppended(vin=v.vin, seq=seq, entry=kind, flag=flag))
    return updated


def history_head(entries: Iterable[bytes]) -> tuple[int, str]:
    """Recompute (count, head) from raw entries in order (what a report verifier does)."""
    head = bytes(32)
    n = 0
    for raw in entries:
        head = tagged_hash(TAG_HISTORY, head + raw)
        n += 1
    return n, head.hex()


def _data(msg: msgspec.Struct, **extra: Any) -> dict[str, Any]:
    d = to_builtins(msg)
    d.pop("vin", None)
    d.pop("type", None)
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def _reading(ctx: Context, v: Vehicle, value: int, unit: str) -> tuple[Odometer, str, int]:
    """Judge an odometer reading: returns the new odometer state, a flag ("" if none) and km.

    In order, the first that applies (cluster offset applied; rules in ``odometer.py``):
    a value beyond the cluster's mechanical limit is ``exceeds_mechanical_limits``; one below the
    highest trusted reading is a ``suspected_rollback`` (the odometer becomes ``not_actual``);
    with the plausibility rule on (``odometer_max_kmh`` > 0), one that the time since the anchor
    (the trusted reading, or the birth, that bounds it hardest) cannot explain, plus
    ``odometer_jump_slack_km``, is an ``implausible_jump``. Every reading is kept; a flagged one
    is not trusted: it never becomes the highest reading or the anchor, so it cannot make later
    honest readings look like rollbacks or jumps.
    """
    o = v.odometer
    shown_km = to_km(value, unit)
    km = shown_km + o.offset_km
    flag = ""
    status = o.status
    rollbacks = o.rollbacks
    max_kmh = ctx.param(ODOMETER_MAX_KMH.name)
    anchor = None
    if max_kmh:  # a vehicle registered before the rule was on has no anchor yet: its birth is one
        anchor = birth_anchor(v.birth.build_date, ctx.time) if o.anchor is msgspec.UNSET else o.anchor
    if shown_km > o.limit_km:
        flag = "exceeds_mechanical_limits"
        status = "exceeds_mechanical_limits" if status == "actual" else status
    elif is_rollback(value, unit, o.offset_km, o.max_km, whole_units=anchor is not None):
        flag = "suspected_rollback"
        rollbacks += 1
        status = "not_actual"
    elif anchor is not None and not plausible(km, ctx.time, anchor, max_kmh, ctx.param(ODOMETER_JUMP_SLACK_KM.name)):
        flag = "implausible_jump"
    if flag:
        ctx.emit(OdometerFlagged(vin=v.vin, flag=flag, value_km=max(km, 0), max_km=o.max_km))
    trusted = not flag
    new = Odometer(km=max(km, 0), max_km=max(o.max_km, km) if trusted else o.max_km,
                   offset_km=o.offset_km, limit_km=o.limit_km, status=status, readings=o.readings + 1,
                   rollbacks=rollbacks, anchor=o.anchor, implausible=o.implausible)
    if anchor is not None:
        if trusted:
            new = msgspec.structs.replace(new, anchor=tighter(anchor, max(km, 0), ctx.time, max_kmh))
        if flag == "implausible_jump":
            new = msgspec.structs.replace(new, implausible=(0 if o.implausible is msgspec.UNSET else o.implausible) + 1)
    return new, flag, km


def _brand(state: Overlay, ctx: Context, v: Vehicle, brand: str, reason: str) -> Vehicle:
    brands = list(v.brands)
    status = v.status
    if brand == "stolen":
        if v.status == "stolen":
            raise errors.BrandRule(brand=brand, vin=v.vin, reason="it is already reported stolen")
        status = "stolen"
    elif brand == "recovered":
        if v.status != "stolen":
            raise errors.BrandRule(brand=brand, vin=v.vin, reason="it is not reported stolen")
        status = "active"
        brands = [b for b in brands if b != "stolen"]
    elif brand == "rebuilt" and "salvage" not in brands:
        raise errors.BrandRule(brand=brand, vin=v.vin, reason="only a salvage vehicle can be rebuilt")
    elif brand in brands:
        raise errors.BrandRule(brand=brand, vin=v.vin, reason="the title already carries it")
    if brand not in brands:
        brands.append(brand)
    ctx.emit(VehicleBranded(vin=v.vin, brand=brand))
    return append(state, ctx, v, "brand", {"brand": brand, "reason": reason}, brands=brands, status=status)


def _sender_roles(ctx: Context) -> frozenset[str]:
    return ctx.member.roles if ctx.member is not None else frozenset()


# ---------------------------------------------------------------- manufacturer codes and birth


@module.message(AssignWmi, roles={"regulator"})
def assign_wmi(state: Overlay, ctx: Context, msg: AssignWmi) -> None:
    """Bind a manufacturer code to a manufacturer organisation."""
    wmi = validate_wmi(msg.wmi)
    roles = _orgs(ctx).org_roles(state, msg.org)
    if roles is None or "manufacturer" not in roles:
        raise errors.NotAManufacturer(org=msg.org)
    owner = WMIS.get(state, wmi)
    if owner is not None:
        raise errors.WmiTaken(wmi=wmi, org=owner)
    WMIS.put(state, msg.org, wmi)
    ctx.emit(WmiAssigned(wmi=wmi, org=msg.org))


@module.message(RegisterVehicle, roles={"manufacturer"}, new_keys=lambda m: list(m.device_keys))
def register(state: Overlay, ctx: Context, msg: RegisterVehicle) -> None:
    """A vehicle is born: its manufacturer holds the title."""
    assert ctx.member is not None
    vin = validate_vin(msg.vin)
    owner = WMIS.get(state, vin[:3])
    if owner != ctx.member.org:
        raise errors.WmiNotYours(vin=vin, wmi=vin[:3], owner=repr(owner) if owner else "no organisation")
    existing = VEHICLES.get(state, vin)
    if existing is not None:
        raise errors.VehicleExists(vin=vin, height=existing.registered)
    if not 1886 <= msg.model_year <= 2200:
        raise errors.InvalidField(field="model_year", reason=f"must be a plausible year, not {msg.model_year}")
    if len(set(msg.device_keys)) != len(msg.device_keys):
        raise errors.InvalidField(field="device_keys", reason="lists a key twice")
    if msg.odometer_limit_km < 9_999:
        raise errors.InvalidField(field="odometer_limit_km", reason="must be at least 9999")
    birth = Birth(**{f: getattr(msg, f) for f in Birth.__struct_fields__})  # the message carries the birth record
    holder = ORG_PREFIX + ctx.member.org
    ctx.index_put(HOLDERS, vin=vin, since=ctx.height, holder=holder)
    ctx.index_put(BIRTHS, vin=vin, manufacturer=ctx.member.org, build_date=msg.build_date, height=ctx.height)
    odometer = Odometer(limit_km=msg.odometer_limit_km)
    if ctx.param(ODOMETER_MAX_KMH.name):  # the first reading is judged against the birth (0 km)
        odometer = msgspec.structs.replace(odometer, anchor=birth_anchor(msg.build_date, ctx.time))
    v = Vehicle(vin=vin, manufacturer=ctx.member.org, birth=birth, registered=ctx.height, holder=holder,
                holder_since=ctx.time, owners=0, usage="private", country=msg.country,
                device_keys=list(msg.device_keys), odometer=odometer)
    ctx.index_put(BY_HOLDER, holder=holder, vin=vin, since=ctx.time)
    ctx.emit(VehicleRegistered(vin=vin, manufacturer=ctx.member.org))
    append(state, ctx, v, "birth", _data(msg, manufacturer=ctx.member.org))


# ---------------------------------------------------------------- title and liens


def _transfer_parties(state: StateReader, ctx: Context, msg: TransferTitle) -> list[Party]:
    v = _vehicle(state, msg.vin, writable=False)
    parties = [holder_party(state, ctx, v.holder, "the title holder"),
               holder_party(state, ctx, msg.to, "the new holder")]
    parties += [OrgParty(lien.lender, "lender", f"the lender of lien {lien.id}") for lien in v.liens]
    return parties


@module.message(TransferTitle, roles=ANYONE, cosigners=_transfer_parties)
def transfer_title(state: Overlay, ctx: Context, msg: TransferTitle) -> None:
    """Sell or hand over the title (a dealer may send it; the holder must still sign)."""
    v = _vehicle(state, msg.vin)
    if v.status == "stolen":
        raise errors.VehicleStolen(vin=v.vin)
    if msg.to == v.holder:
        raise errors.SameHolder(holder=msg.to, vin=v.vin)
    owners = v.owners
    if msg.to.startswith(ORG_PREFIX):
        roles = _orgs(ctx).org_roles(state, msg.to[len(ORG_PREFIX):]) or frozenset()
        is_owner = not (roles & TRADE_ROLES)
    else:
        is_owner = True
    owners += 1 if is_owner else 0
    usage = msg.usage or v.usage
    try:
        watcher = ctx.need(TitleWatchers)
    except LookupError:  # no module of this chain watches titles
        watcher = None
    if watcher is not None:
        watcher.title_passed(state, ctx, v.vin, v.holder, v.holder_since)
    ctx.index_delete(BY_HOLDER, holder=v.holder, vin=v.vin)
    ctx.index_put(BY_HOLDER, holder=msg.to, vin=v.vin, since=ctx.time)
    ctx.index_put(HOLDERS, vin=v.vin, since=ctx.height, holder=msg.to)
    ctx.emit(TitleTransferred(vin=v.vin, holder=msg.to))
    append(state, ctx, v, "title_transfer",
           {"from": v.holder, "to": msg.to, "usage": usage, "owner": is_owner, "owner_number": owners if is_owner else 0},
           holder=msg.to, holder_since=ctx.time, owners=owners, usage=usage)


def _lien_parties(state: StateReader, ctx: Context, msg: RecordLien) -> list[Party]:
    v = _vehicle(state, msg.vin, writable=False)
    return [holder_party(state, ctx, v.holder, "the title holder")]


@module.message(RecordLien, roles={"lender"}, cosigners=_lien_parties)
def record_lien(state: Overlay, ctx: Context, msg: RecordLien) -> None:
    """A lender's security interest in the vehicle; later sales need the lender's signature."""
    assert ctx.member is not None
    v = _vehicle(state, msg.vin)
    lien = Lien(id=v.next_lien, lender=ctx.member.org, amount=msg.amount, currency=msg.currency, since=ctx.height)
    append(state, ctx, v, "lien_recorded",
           {"lien": lien.id, "lender": lien.lender, "amount": msg.amount, "currency": msg.currency},
           liens=v.liens + [lien], next_lien=v.next_lien + 1)


@module.message(ReleaseLien, roles={"lender"})
def release_lien(state: Overlay, ctx: Context, msg: ReleaseLien) -> None:
    """The lender releases its lien (loan repaid)."""
    assert ctx.member is not None
    v = _vehicle(state, msg.vin)
    lien = next((x for x in v.liens if x.id == msg.lien), None)
    if lien is None:
        raise errors.UnknownLien(vin=v.vin, lien=msg.lien)
    if lien.lender != ctx.member.org:
        raise errors.LienNotYours(vin=v.vin, lien=msg.lien, lender=lien.lender)
    append(state, ctx, v, "lien_released", {"lien": lien.id, "lender": lien.lender},
           liens=[x for x in v.liens if x.id != msg.lien])


@module.message(ChangeRegistration, roles={"regulator"})
def change_registration(state: Overlay, ctx: Context, msg: ChangeRegistration) -> None:
    """New usage type (private, fleet, rental, taxi, ride-share) or country of registration."""
    v = _vehicle(state, msg.vin)
    if msg.usage is None and msg.country is None:
        raise errors.InvalidField(field="usage or country", reason="must be given")
    append(state, ctx, v, "registration",
           _data(msg, from_country=v.country if msg.country else None, from_usage=v.usage if msg.usage else None),
           usage=msg.usage or v.usage, country=msg.country or v.country)


# ---------------------------------------------------------------- brands


@module.message(BrandTitle, roles=frozenset().union(*BRAND_ROLES.values()))
def brand_title(state: Overlay, ctx: Context, msg: BrandTitle) -> None:
    """Salvage, junk, rebuilt, flood, fire, hail, lemon, total loss, stolen, recovered."""
    allowed = BRAND_ROLES[msg.brand]
    roles = _sender_roles(ctx)
    if not roles & allowed:
        raise errors.BrandNotAllowed(role=" or ".join(sorted(roles - {"admin"})) or "member", brand=msg.brand,
                                     allowed=", ".join(sorted(allowed)))
    v = _vehicle(state, msg.vin)
    if msg.brand == "lemon" and "regulator" not in roles and ctx.member is not None and ctx.member.org != v.manufacturer:
        raise errors.BrandRule(brand=msg.brand, vin=v.vin, reason=f"only its manufacturer ({v.manufacturer}) or a "
                                                                  f"regulator buys a vehicle back as a lemon")
    _brand(state, ctx, v, msg.brand, msg.reason)


# ---------------------------------------------------------------- odometer, service, inspection


@module.message(RecordOdometer, roles=ANYONE)
def record_odometer(state: Overlay, ctx: Context, msg: RecordOdometer) -> None:
    """A reading by an authorised organisation, or signed by one of the vehicle's device keys.
    A value below the highest so far is kept, flagged as a suspected rollback."""
    v = _vehicle(state, msg.vin)
    if _sender_roles(ctx) & READING_ROLES:
        source = "organisation"
    elif ctx.sender in v.device_keys:
        source = "device"
    else:
        refuse_retired_key(v, ctx.sender)
        raise errors.NotADeviceOfVehicle(signer=ctx.sender, vin=v.vin)
    odo, flag, km = _reading(ctx, v, msg.value, msg.unit)
    append(state, ctx, v, "odometer", _data(msg, km=km, source=source, flag=flag or None), flag, odometer=odo)


@module.message(ReplaceCluster, roles={"workshop"})
def replace_cluster(state: Overlay, ctx: Context, msg: ReplaceCluster) -> None:
    """The new cluster starts at ``new_value``; later readings are compared with the offset."""
    v = _vehicle(state, msg.vin)
    odo, flag, old_km = _reading(ctx, v, msg.old_value, msg.unit)
    new_km = to_km(msg.new_value, msg.unit)
    # An old value beyond the mechanical limit is not trusted: the offset starts from the highest
    # reading on record instead, so it cannot inflate every later reading.
    trusted = odo.max_km if flag in ("exceeds_mechanical_limits", "implausible_jump") else max(old_km, odo.max_km)
    offset = trusted - new_km
    odo = msgspec.structs.replace(odo, offset_km=offset, km=new_km + offset)
    append(state, ctx, v, "cluster_replaced", _data(msg, offset_km=offset, flag=flag or None), flag, odometer=odo)


@module.message(RecordService, roles={"workshop", "dealer"})
def record_service(state: Overlay, ctx: Context, msg: RecordService) -> None:
    """Service record (its odometer value counts as a reading)."""
    v = _vehicle(state, msg.vin)
    odo, flag, km = _reading(ctx, v, msg.odometer, msg.unit)
    append(state, ctx, v, "service", _data(msg, km=km, flag=flag or None), flag, odometer=odo, services=v.services + 1)


@module.message(RecordInspection, roles={"inspector"})
def record_inspection(state: Overlay, ctx: Context, msg: RecordInspection) -> None:
    """Periodic inspection result (its odometer value counts as a reading)."""
    v = _vehicle(state, msg.vin)
    odo, flag, km = _reading(ctx, v, msg.odometer, msg.unit)
    append(state, ctx, v, "inspection", _data(msg, km=km, flag=flag or None), flag, odometer=odo,
           inspections=v.inspections + 1)


# ---------------------------------------------------------------- accidents and repairs


@module.message(RecordAccident, roles={"insurer", "police", "workshop"})
def record_accident(state: Overlay, ctx: Context, msg: RecordAccident) -> None:
    """Damage with its severity; a total loss (insurer or regulator) applies the salvage brand."""
    v = _vehicle(state, msg.vin)
    if msg.total_loss and not _sender_roles(ctx) & BRAND_ROLES["total_loss"]:
        raise errors.BrandNotAllowed(role=" or ".join(sorted(_sender_roles(ctx) - {"admin"})), brand="total_loss",
                                     allowed=", ".join(sorted(BRAND_ROLES["total_loss"])))
    v = append(state, ctx, v, "accident", _data(msg), accidents=v.accidents + 1)
    if msg.total_loss:
        for brand in ("total_loss", "salvage"):
            if brand not in v.brands:
                v = _brand(state, ctx, v, brand, "declared a total loss")


@module.message(RecordRepair, roles={"workshop"})
def record_repair(state: Overlay, ctx: Context, msg: RecordRepair) -> None:
    """A repair, optionally of a recorded accident (its history sequence number)."""
    v = _vehicle(state, msg.vin)
    if msg.accident and not 1 <= msg.accident <= v.history.count:
        raise errors.InvalidField(field="accident", reason=f"must be the sequence number of a history entry of {v.vin}")
    odo, flag, km = _reading(ctx, v, msg.odometer, msg.unit)
    append(state, ctx, v, "repair", _data(msg, km=km, flag=flag or None), flag, odometer=odo)


# ---------------------------------------------------------------- end of life


def _deregister_parties(state: StateReader, ctx: Context, msg: Deregister) -> list[Party]:
    v = _vehicle(state, msg.vin)
    if v.status == "stolen":
        raise errors.VehicleStolen(vin=v.vin)
    parties = [holder_party(state, ctx, v.holder, "the title holder (surrendering the title)")]
    parties += [OrgParty(lien.lender, "lender", f"the lender of lien {lien.id}") for lien in v.liens]
    return parties


@module.message(Deregister, roles={"recycler"}, cosigners=_deregister_parties)
def deregister(state: Overlay, ctx: Context, msg: Deregister) -> None:
    """End of life: the holder surrenders the title (and lenders agree); the recycler records the
    certificate of destruction and the harvested parts. Only history remains."""
    v = _vehicle(state, msg.vin)
    if v.status == "stolen":
        raise errors.VehicleStolen(vin=v.vin)
    ctx.index_delete(BY_HOLDER, holder=v.holder, vin=v.vin)
    ctx.emit(VehicleDeregistered(vin=v.vin, certificate=msg.certificate))
    append(state, ctx, v, "deregistered", _data(msg), status="scrapped", certificate=msg.certificate)


# ---------------------------------------------------------------- device keys

#: Most device keys a vehicle has at once (as at registration).
MAX_DEVICE_KEYS = 8


def retired(v: Vehicle) -> list[RevokedKey]:
    return [] if v.retired_keys is msgspec.UNSET else list(v.retired_keys)


def refuse_retired_key(v: Vehicle, did: str) -> None:
    """Refuse, naming the revocation, a key that was one of ``v``'s device keys."""
    for r in retired(v):
        if r.did == did:
            raise errors.DeviceKeyRevoked(signer=did, vin=v.vin, height=r.height, reason=r.reason)


def _fresh_key(v: Vehicle, key: str) -> None:
    if key in v.device_keys or any(r.did == key for r in retired(v)):
        raise errors.DeviceKeyInUse(key=key, vin=v.vin)


def _holder_or_maker(state: StateReader, ctx: Context, v: Vehicle) -> Party:
    return EitherParty((holder_party(state, ctx, v.holder, "the title holder"),
                        OrgParty(v.manufacturer, "", "the maker")))


def _add_key_parties(state: StateReader, ctx: Context, msg: AddDeviceKey) -> list[Party]:
    """The holder and the new key: a key that signs driving data, crashes and payments for the car is
    the holder's to admit (the maker may send it, not decide it)."""
    v = _vehicle(state, msg.vin, writable=False)
    return [holder_party(state, ctx, v.holder, "the title holder"), KeyParty(msg.key, "the new device key")]


def _rotate_parties(state: StateReader, ctx: Context, msg: RotateDeviceKey) -> list[Party]:
    v = _vehicle(state, msg.vin, writable=False)
    return [KeyParty(msg.old, "the old device key"), KeyParty(msg.new, "the new device key"),
            _holder_or_maker(state, ctx, v)]


@module.message(AddDeviceKey, roles=ANYONE, cosigners=_add_key_parties, new_keys=lambda m: [m.key])
def add_device_key(state: Overlay, ctx: Context, msg: AddDeviceKey) -> None:
    """A new ECU's key joins the vehicle's device keys (at most ``MAX_DEVICE_KEYS``); a key that was
    ever one of them cannot come back."""
    v = _vehicle(state, msg.vin)
    _fresh_key(v, msg.key)
    if len(v.device_keys) >= MAX_DEVICE_KEYS:
        raise errors.TooManyDeviceKeys(vin=v.vin, count=len(v.device_keys), limit=MAX_DEVICE_KEYS)
    ctx.emit(DeviceKeyChanged(vin=v.vin, change="added", key=msg.key))
    append(state, ctx, v, "device_key_added", {"key": msg.key}, device_keys=[*v.device_keys, msg.key])


@module.message(RotateDeviceKey, roles=ANYONE, cosigners=_rotate_parties, new_keys=lambda m: [m.new])
def rotate_device_key(state: Overlay, ctx: Context, msg: RotateDeviceKey) -> None:
    """The old key leaves (retired as ``rotated`` at this height) and the new one takes its place."""
    v = _vehicle(state, msg.vin)
    if msg.old not in v.device_keys:
        refuse_retired_key(v, msg.old)
        raise errors.NotCurrentDeviceKey(key=msg.old, vin=v.vin, current=", ".join(v.device_keys) or "none")
    _fresh_key(v, msg.new)
    keys = [msg.new if k == msg.old else k for k in v.device_keys]
    ctx.emit(DeviceKeyChanged(vin=v.vin, change="rotated", key=msg.old, new=msg.new))
    append(state, ctx, v, "device_key_rotated", {"old": msg.old, "new": msg.new}, device_keys=keys,
           retired_keys=[*retired(v), RevokedKey(msg.old, ctx.height, "rotated")])


@module.message(RevokeDeviceKey, roles=ANYONE)
def revoke_device_key(state: Overlay, ctx: Context, msg: RevokeDeviceKey) -> None:
    """The holder (a key, or any key of a holding organisation) or a key of the maker revokes a device
    key at once; also on a scrapped vehicle (a harvested ECU must not sign for it)."""
    v = _vehicle(state, msg.vin, writable=False)
    org = ctx.member.org if ctx.member is not None else None
    is_holder = ctx.sender == v.holder or (org is not None and v.holder == ORG_PREFIX + org)
    if not (is_holder or org == v.manufacturer):
        raise errors.NotHolderOrMaker(signer=ctx.sender, vin=v.vin, maker=v.manufacturer)
    if msg.key not in v.device_keys:
        refuse_retired_key(v, msg.key)
        raise errors.NotCurrentDeviceKey(key=msg.key, vin=v.vin, current=", ".join(v.device_keys) or "none")
    ctx.emit(DeviceKeyChanged(vin=v.vin, change="revoked", key=msg.key))
    append(state, ctx, v, "device_key_revoked", {"key": msg.key, "reason": msg.reason},
           device_keys=[k for k in v.device_keys if k != msg.key],
           retired_keys=[*retired(v), RevokedKey(msg.key, ctx.height, msg.reason)])
