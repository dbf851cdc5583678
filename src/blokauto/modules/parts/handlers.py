"""Parts provenance rules. Each serialized part keeps a hash-chained history, like a vehicle.

Custody is a single chain: only the custodian ships a part, only the named receiver takes it,
and an installed part's custodian is the vehicle itself (``vin:<VIN>``) until it is removed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.crypto import TAG_HISTORY, public_key_from_did, tagged_hash
from ...core.encoding import canonical, to_builtins
from ...core.errors import InvalidKey
from ...core.module import ANYONE, MEMBER, Context, KeyParty
from ...core.state import Overlay, StateReader
from . import errors
from .messages import (
    Assemble,
    ConditionBreach,
    CustodyChanged,
    Install,
    InstallItem,
    IssuePassport,
    LogConditions,
    MintBatch,
    MintParts,
    PartInstalled,
    PartMinted,
    PartRemoved,
    PassportIssued,
    Receive,
    RecoverMaterial,
    RegisterLogger,
    RegisterPartType,
    Remove,
    Ship,
)
from . import logistics
from .materials import consume_lot, recovered_lot, ship_or_receive_lot
from .origins import MAX_ORIGINS
from .provenance import origins_of
from .spec import INSTALLATIONS, PART_HISTORY, Organisations, RecallGate, Vehicles, module
from .state import (
    BATCHES,
    BOMS,
    LOGGERS,
    PART_TYPES,
    PARTS,
    PASSPORTS,
    Batch,
    Bom,
    BomItem,
    History,
    Part,
    PartType,
    Passport,
    RecycledShare,
    RemovedItem,
)
from .util import org_of as _org, speaks_for as _speaks_for

MAKERS = {"supplier", "manufacturer"}
INSTALLERS = {"manufacturer", "workshop"}


# ---------------------------------------------------------------- helpers


def _split(ref: str) -> tuple[str, str]:
    pn, sep, rest = ref.partition(":")
    if not sep or not pn or not rest or "/" in ref:
        raise errors.UnknownPart(part=ref)
    return pn, rest


def _type(state: StateReader, part_number: str) -> PartType:
    t = PART_TYPES.get(state, part_number)
    if t is None:
        raise errors.UnknownPartType(part_number=part_number)
    return t


def _part(state: StateReader, ref: str) -> Part:
    _split(ref)
    p = PARTS.get(state, ref)
    if p is None:
        raise errors.UnknownPart(part=ref)
    return p


def _check_holder(holder: str) -> None:
    if holder.startswith("org:") and len(holder) > 4 and "/" not in holder:
        return
    if holder.startswith("did:key:"):
        try:
            public_key_from_did(holder)
            return
        except InvalidKey:
            pass
    raise errors.AssemblyRule(reason=f"{holder!r} is not a custodian: use org:<id> or a did:key")


def part_history_append(state: Overlay, ctx: Context, p: Part, kind: str, data: dict[str, Any], **changes: Any) -> Part:
    seq = p.history.count + 1
    entry = {"seq": seq, "type": kind, "height": ctx.height, "time": ctx.time, "tx": ctx.tx_id.hex(),
             "by": ctx.sender, "org": ctx.member.org if ctx.member is not None else "", "data": data}
    raw = canonical(entry)
    head = tagged_hash(TAG_HISTORY, bytes.fromhex(p.history.head) + raw).hex()
    updated = msgspec.structs.replace(p, history=History(seq, head), **changes)
    PARTS.put(state, updated, p.id)
    ctx.index_put(PART_HISTORY, part=p.id, seq=seq, height=ctx.height, time=ctx.time, type=kind, entry=raw)
    return updated


def _adjust_installed(state: Overlay, part_number: str, delta: int, batch: str = "") -> None:
    """Units installed in vehicles right now, per part number and per batch (nested parts count)."""
    t = _type(state, part_number)
    PART_TYPES.put(state, msgspec.structs.replace(t, installed=t.installed + delta), part_number)
    if batch:
        b = BATCHES.get(state, f"{part_number}:{batch}")
        if b is not None:
            BATCHES.put(state, msgspec.structs.replace(b, installed=b.installed + delta), b.id)


# ---------------------------------------------------------------- catalogue, materials, minting


@module.message(RegisterPartType, roles=MAKERS)
def register_type(state: Overlay, ctx: Context, msg: RegisterPartType) -> None:
    """Register a part number; the sender's organisation becomes its only minter."""
    existing = PART_TYPES.get(state, msg.part_number)
    if existing is not None:
        raise errors.PartNumberTaken(part_number=msg.part_number, supplier=existing.supplier)
    PART_TYPES.put(state, PartType(msg.part_number, _org(ctx), msg.name, msg.category, msg.serialized, msg.assembly,
                                   msg.limits, ctx.height, mass_g=msg.mass_g), msg.part_number)


def _own_type(state: StateReader, ctx: Context, part_number: str) -> PartType:
    t = _type(state, part_number)
    if t.supplier != _org(ctx):
        raise errors.NotTheSupplier(part_number=part_number, supplier=t.supplier)
    return t


@module.message(MintBatch, roles=MAKERS)
def mint_batch(state: Overlay, ctx: Context, msg: MintBatch) -> None:
    """A batch, and the material it consumed from each lot (never more than a lot holds)."""
    _own_type(state, ctx, msg.part_number)
    bid = f"{msg.part_number}:{msg.batch}"
    if BATCHES.has(state, bid):
        raise errors.BatchExists(batch=msg.batch, part_number=msg.part_number)
    if PARTS.has(state, bid):
        raise errors.IdTaken(ref=bid, other="serialized part", what="batch name")
    wanted: dict[str, int] = {}  # a lot listed twice consumes both masses
    for use in msg.materials:
        if use.mass_g == 0:  # naming a lot it took nothing from would borrow the lot's audit
            raise errors.MassBalance(what=f"Batch {bid}", reason=f"it lists lot {use.lot!r} with 0 g; list only what "
                                                                   "it consumed")
        wanted[use.lot] = wanted.get(use.lot, 0) + use.mass_g
    for lot_id, mass_g in wanted.items():
        consume_lot(state, ctx, lot_id, mass_g, consumer=bid, use=f"consumed into batch {bid}")
    org = "org:" + _org(ctx)
    BATCHES.put(state, Batch(bid, msg.part_number, msg.batch, _org(ctx), msg.quantity, msg.produced, msg.plant, org,
                             msg.quantity, 0, list(msg.materials), logistics.made(ctx, bid, org, msg.location)), bid)
    ctx.emit(PartMinted(part_number=msg.part_number, count=msg.quantity, batch=msg.batch))


@module.message(MintParts, roles=MAKERS)
def mint(state: Overlay, ctx: Context, msg: MintParts) -> None:
    """Serialized parts, each a digital twin in the supplier's custody."""
    t = _own_type(state, ctx, msg.part_number)
    if not t.serialized:
        raise errors.WrongKind(part_number=msg.part_number, kind="made in batches",
                               reason="mint it with parts.mint_batch")
    if msg.batch is not None and not BATCHES.has(state, f"{msg.part_number}:{msg.batch}"):
        raise errors.UnknownBatch(batch=msg.batch, part_number=msg.part_number)
    if len(set(msg.serials)) != len(msg.serials):
        raise errors.PartExists(part="(a serial listed twice)")
    org = "org:" + _org(ctx)
    for serial in msg.serials:
        pid = f"{msg.part_number}:{serial}"
        if PARTS.has(state, pid):
            raise errors.PartExists(part=pid)
        if BATCHES.has(state, pid):
            raise errors.IdTaken(ref=pid, other="batch", what="serial")
        p = Part(pid, msg.part_number, serial, _org(ctx), msg.produced, msg.plant, org, batch=msg.batch or "",
                 handoff=logistics.made(ctx, pid, org, msg.location))
        part_history_append(state, ctx, p, "minted", {"produced": msg.produced, "plant": msg.plant,
                                                      "batch": msg.batch or "", "custodian": org})
    ctx.emit(PartMinted(part_number=msg.part_number, count=len(msg.serials), batch=msg.batch or ""))


@module.message(Assemble, roles=MAKERS)
def assemble(state: Overlay, ctx: Context, msg: Assemble) -> None:
    """Components go into an assembly; all must be in the sender's custody and not installed."""
    org = "org:" + _org(ctx)
    a = _part(state, msg.assembly)
    if not _type(state, a.part_number).assembly:
        raise errors.WrongKind(part_number=a.part_number, kind="not an assembly", reason="it cannot hold components")
    if a.custodian != org or a.status != "in_stock":
        raise errors.NotCustodian(item=a.id, custodian=a.custodian, action="assemble")
    if len(set(msg.components)) != len(msg.components) or msg.assembly in msg.components:
        raise errors.AssemblyRule(reason="a component is listed twice, or is the assembly itself")
    for ref in msg.components:
        c = _part(state, ref)
        if c.custodian != org or c.status != "in_stock":
            raise errors.NotCustodian(item=c.id, custodian=c.custodian, action="assemble")
        part_history_append(state, ctx, c, "assembled", {"into": a.id}, status="installed", location="part:" + a.id,
                            custodian="part:" + a.id)
    part_history_append(state, ctx, a, "components_added", {"components": list(msg.components)},
                        components=a.components + list(msg.components))


# ---------------------------------------------------------------- custody


def _not_to_itself(item: str, custodian: str, to: str) -> None:
    if to == custodian:
        raise errors.AssemblyRule(reason=f"{item} is held by {custodian}: a shipment goes to another custodian")


def _ship_or_receive(state: Overlay, ctx: Context, ref: str, *, ship_to: str | None, location: str, at: int) -> None:
    if PARTS.has(state, ref):
        p = _part(state, ref)
        if ship_to is not None:
            if not _speaks_for(ctx, p.custodian) or p.status not in ("in_stock", "removed"):
                raise errors.NotCustodian(item=ref, custodian=p.custodian, action="ship")
            _not_to_itself(ref, p.custodian, ship_to)
            h = logistics.shipped(ctx, ref, "part", p.part_number, p.supplier, p.custodian, ship_to, location, at,
                                  p.handoff, 1)
            part_history_append(state, ctx, p, "shipped", {"from": p.custodian, "to": ship_to, "location": h.location,
                                                           "at": h.since},
                                status="in_transit", transit_to=ship_to, handoff=h)
            ctx.emit(CustodyChanged(item=ref, custodian=p.custodian, status="in_transit"))
        else:
            if p.status != "in_transit" or not _speaks_for(ctx, p.transit_to):
                raise errors.NotInTransit(item=ref, receiver=ctx.sender, status=p.status)
            h = logistics.received(ctx, ref, "part", p.part_number, p.supplier, p.custodian, p.transit_to, location, at,
                                   p.handoff)
            part_history_append(state, ctx, p, "received", {"from": p.custodian, "by": p.transit_to,
                                                            "location": location, "at": h.since},
                                status="in_stock", custodian=p.transit_to, transit_to="", handoff=h)
            ctx.emit(CustodyChanged(item=ref, custodian=p.transit_to, status="in_stock"))
        return
    b = BATCHES.get(state, ref)
    if b is None:
        raise errors.UnknownPart(part=ref)
    if ship_to is not None:
        if not _speaks_for(ctx, b.custodian) or b.custodian.startswith("transit:"):
            raise errors.NotCustodian(item=ref, custodian=b.custodian, action="ship")
        _not_to_itself(ref, b.custodian, ship_to)
        h = logistics.shipped(ctx, ref, "batch", b.part_number, b.supplier, b.custodian, ship_to, location, at,
                              b.handoff, b.in_stock)
        BATCHES.put(state, msgspec.structs.replace(b, custodian="transit:" + ship_to, shipped_by=b.custodian, handoff=h),
                    ref)
        ctx.emit(CustodyChanged(item=ref, custodian=b.custodian, status="in_transit"))
    else:
        to = b.custodian.removeprefix("transit:")
        if not b.custodian.startswith("transit:") or not _speaks_for(ctx, to):
            raise errors.NotInTransit(item=ref, receiver=ctx.sender, status=b.custodian)
        h = logistics.received(ctx, ref, "batch", b.part_number, b.supplier, b.shipped_by or "org:" + b.supplier, to,
                               location, at, b.handoff)
        BATCHES.put(state, msgspec.structs.replace(b, custodian=to, shipped_by="", handoff=h), ref)
        ctx.emit(CustodyChanged(item=ref, custodian=to, status="in_stock"))


@module.message(Ship, roles=ANYONE)
def ship(state: Overlay, ctx: Context, msg: Ship) -> None:
    """The custodian sends parts, batches or lots to a receiver (an active organisation, or a did:key);
    they are in transit until received."""
    _check_holder(msg.to)
    if msg.to.startswith("org:") and not ctx.need(Organisations).organisation_active(state, msg.to[4:]):
        raise errors.AssemblyRule(reason=f"{msg.to} is no active organisation of the consortium: nobody could receive "
                                         "the shipment")
    if not msg.items and not msg.lots:
        raise errors.AssemblyRule(reason="a shipment names at least one item or lot")
    for ref in msg.items:
        _ship_or_receive(state, ctx, ref, ship_to=msg.to, location=msg.location, at=msg.at)
    for lot_id in msg.lots:
        ship_or_receive_lot(state, ctx, lot_id, ship_to=msg.to, location=msg.location, at=msg.at)


@module.message(Receive, roles=ANYONE)
def receive(state: Overlay, ctx: Context, msg: Receive) -> None:
    """The receiver named in the shipment takes custody."""
    if not msg.items and not msg.lots:
        raise errors.AssemblyRule(reason="a receipt names at least one item or lot")
    for ref in msg.items:
        _ship_or_receive(state, ctx, ref, ship_to=None, location=msg.location, at=msg.at)
    for lot_id in msg.lots:
        ship_or_receive_lot(state, ctx, lot_id, ship_to=None, location=msg.location, at=msg.at)


@module.message(RegisterLogger, roles=MEMBER, new_keys=lambda m: [m.logger],
                cosigners=lambda s, ctx, m: [KeyParty(m.logger, "the logger device")])
def register_logger(state: Overlay, ctx: Context, msg: RegisterLogger) -> None:
    """A condition-logger device of the sender's organisation."""
    owner = LOGGERS.get(state, msg.logger)
    if owner is not None:
        raise errors.AssemblyRule(reason=f"logger {msg.logger} is already registered by {owner!r}")
    LOGGERS.put(state, _org(ctx), msg.logger)


@module.message(LogConditions, roles=ANYONE)
def log_conditions(state: Overlay, ctx: Context, msg: LogConditions) -> None:
    """Temperature, shock and humidity readings; those beyond the part type's limits are flagged."""
    p = _part(state, msg.part)
    logger_org = LOGGERS.get(state, ctx.sender)
    holders = {p.custodian, p.transit_to}
    if logger_org is None or "org:" + logger_org not in holders:
        raise errors.NotALogger(signer=ctx.sender, part=p.id)
    lim = _type(state, p.part_number).limits
    breaches: list[str] = []
    for i, r in enumerate(msg.readings):
        if lim.max_temp_dc and r.temp_dc > lim.max_temp_dc or lim.min_temp_dc and r.temp_dc < lim.min_temp_dc:
            breaches.append(f"temperature at reading {i}")
        if lim.max_shock_mg and r.shock_mg > lim.max_shock_mg:
            breaches.append(f"shock at reading {i}")
        if lim.max_humidity_pct and r.humidity_pct > lim.max_humidity_pct:
            breaches.append(f"humidity at reading {i}")
    temps = [r.temp_dc for r in msg.readings]
    data = {"readings": len(msg.readings), "from": msg.readings[0].time, "to": msg.readings[-1].time,
            "min_temp_dc": min(temps), "max_temp_dc": max(temps),
            "max_shock_mg": max(r.shock_mg for r in msg.readings),
            "max_humidity_pct": max(r.humidity_pct for r in msg.readings), "breaches": breaches}
    part_history_append(state, ctx, p, "conditions", data, breaches=p.breaches + len(breaches))
    if breaches:
        ctx.emit(ConditionBreach(part=p.id, reading=len(breaches), limit=breaches[0]))


# ---------------------------------------------------------------- installation


def _vehicles(ctx: Context) -> Vehicles:
    return ctx.need(Vehicles)


def _nested(state: StateReader, p: Part) -> list[Part]:
    """All parts inside an assembly, at any depth."""
    out: list[Part] = []
    stack = list(p.components)
    while stack:
        c = PARTS.get(state, stack.pop())
        if c is not None:
            out.append(c)
            stack.extend(c.components)
    return out


def _install_part(state: Overlay, ctx: Context, vin: str, item: InstallItem, bom: list[BomItem]) -> None:
    org = "org:" + _org(ctx)
    pn, serial = _split(item.part)
    if PART_TYPES.get(state, pn) is None or not PARTS.has(state, item.part):
        raise errors.SuspectedCounterfeit(part=item.part, target=vin, by=ctx.sender)
    if item.qty != 1:
        raise errors.AssemblyRule(reason=f"{item.part} is one serialized part: leave qty at 1, not {item.qty}")
    p = _part(state, item.part)
    if p.status == "installed":
        raise errors.InstalledElsewhere(part=p.id, location=p.location)
    if p.custodian != org or p.status not in ("in_stock", "removed"):
        raise errors.NotCustodian(item=p.id, custodian=p.custodian, action="install")
    nested = _nested(state, p)
    gate = ctx.need(RecallGate)
    for c in [p] + nested:  # a pack of recalled cells is as recalled as the cells
        blocked = gate.blocking_campaign(state, ctx.need, c.part_number, c.batch, c.serial, vin)
        if blocked is not None:
            raise errors.RecalledPart(item=p.id if c is p else f"{c.id} in {p.id}", campaign=blocked[0],
                                      number=blocked[1])
    part_history_append(state, ctx, p, "installed", {"vin": vin, "position": item.position},
                        status="installed", location="vin:" + vin, custodian="vin:" + vin)
    bom.append(BomItem(p.id, pn, "part", 1, item.position, ctx.height))
    for c in [p] + nested:
        _adjust_installed(state, c.part_number, 1, c.batch)
        ctx.index_put(INSTALLATIONS, ref=c.id, vin=vin, installed=ctx.height, part_number=c.part_number, batch=c.batch,
                      serial=c.serial, qty=1, via="" if c is p else p.id, removed=0)


def _install_batch(state: Overlay, ctx: Context, vin: str, item: InstallItem, bom: list[BomItem]) -> None:
    org = "org:" + _org(ctx)
    pn, batch = _split(item.batch)
    b = BATCHES.get(state, item.batch)
    t = PART_TYPES.get(state, pn)
    if t is None or b is None:
        raise errors.SuspectedCounterfeit(part=item.batch, target=vin, by=ctx.sender)
    if t.serialized:
        raise errors.WrongKind(part_number=pn, kind="serialized",
                               reason=f"install its parts by serial, not units of batch {batch!r}")
    if b.custodian != org:
        raise errors.NotCustodian(item=b.id, custodian=b.custodian, action="install")
    if b.in_stock < item.qty:
        raise errors.NotEnoughUnits(batch=b.id, available=b.in_stock, wanted=item.qty)
    blocked = ctx.need(RecallGate).blocking_campaign(state, ctx.need, pn, batch, "", vin)
    if blocked is not None:
        raise errors.RecalledPart(item=b.id, campaign=blocked[0], number=blocked[1])
    BATCHES.put(state, msgspec.structs.replace(b, in_stock=b.in_stock - item.qty), b.id)
    _adjust_installed(state, pn, item.qty, batch)
    bom.append(BomItem(b.id, pn, "batch", item.qty, item.position, ctx.height))
    ctx.index_put(INSTALLATIONS, ref=b.id, vin=vin, installed=ctx.height, part_number=pn, batch=batch, serial="",
                  qty=item.qty, via="", removed=0)


@module.message(Install, roles=INSTALLERS)
def install(state: Overlay, ctx: Context, msg: Install) -> None:
    """Install parts or batch units held by the installer; a never-minted serial is refused as a
    suspected counterfeit, a part installed elsewhere or under an open recall is refused too."""
    maker, _ = _vehicles(ctx).require_vehicle(state, msg.vin)
    assert ctx.member is not None
    if "workshop" not in ctx.member.roles and maker != ctx.member.org:  # a manufacturer, at build
        raise errors.NotYourVehicle(org=ctx.member.org, vin=msg.vin, maker=maker)
    bom = BOMS.get(state, msg.vin) or Bom(msg.vin)
    items = list(bom.items)
    for item in msg.items:
        if bool(item.part) == bool(item.batch):
            raise errors.AssemblyRule(reason="each item names either a part or a batch")
        if any(x.ref == (item.part or item.batch) for x in items):
            raise errors.AssemblyRule(reason=f"{item.part or item.batch} is already on this vehicle's bill; add units with a new batch line after removing the old one")
        if item.part:
            _install_part(state, ctx, msg.vin, item, items)
        else:
            _install_batch(state, ctx, msg.vin, item, items)
        ctx.emit(PartInstalled(vin=msg.vin, ref=item.part or item.batch, qty=item.qty))
    BOMS.put(state, Bom(msg.vin, items, bom.removed), msg.vin)
    _vehicles(ctx).record_event(state, ctx, msg.vin, "parts_installed", {"items": [to_builtins(i) for i in msg.items]})


@module.message(Remove, roles={"workshop", "recycler"})
def remove(state: Overlay, ctx: Context, msg: Remove) -> None:
    """Remove parts (a recycler also from a deregistered vehicle); they re-enter the sender's custody."""
    assert ctx.member is not None
    _, status = _vehicles(ctx).require_vehicle(state, msg.vin, allow_scrapped="recycler" in ctx.member.roles)
    if "workshop" not in ctx.member.roles and status != "scrapped":  # a recycler, at end of life
        raise errors.NotDeregistered(vin=msg.vin)
    bom = BOMS.get(state, msg.vin) or Bom(msg.vin)
    items = list(bom.items)
    removed = list(bom.removed)
    org = "org:" + _org(ctx)
    for item in msg.items:
        ref = item.part or item.batch
        line = next((x for x in items if x.ref == ref), None)
        if line is None or bool(item.part) == bool(item.batch) or line.qty < item.qty \
                or line.kind != ("part" if item.part else "batch"):
            raise errors.NotInstalled(item=f"{ref} (as a {'part' if item.part else 'batch'})", target=msg.vin)
        inside: list[str] = []
        if item.part:
            p = _part(state, ref)
            part_history_append(state, ctx, p, "removed", {"vin": msg.vin}, status="removed", location="",
                                custodian=org)
            nested = _nested(state, p)
            inside = [c.id for c in nested]
            for c in [p] + nested:
                _adjust_installed(state, c.part_number, -1, c.batch)
                ctx.index_put(INSTALLATIONS, ref=c.id, vin=msg.vin, installed=line.height, part_number=c.part_number,
                              batch=c.batch, serial=c.serial, qty=1, via="" if c is p else p.id, removed=ctx.height)
            items.remove(line)
        else:
            b = BATCHES.get(state, ref)
            assert b is not None
            _adjust_installed(state, line.part_number, -item.qty, b.batch)
            left = line.qty - item.qty
            items.remove(line)
            ctx.index_put(INSTALLATIONS, ref=ref, vin=msg.vin, installed=line.height, part_number=line.part_number,
                          batch=b.batch, serial="", qty=line.qty, via="", removed=ctx.height)
            if left:
                items.append(BomItem(ref, line.part_number, "batch", left, line.position, ctx.height))
                ctx.index_put(INSTALLATIONS, ref=ref, vin=msg.vin, installed=ctx.height, part_number=line.part_number,
                              batch=b.batch, serial="", qty=left, via="", removed=0)
        removed.append(RemovedItem(ref, line.part_number, line.kind, item.qty, line.height, ctx.height, inside))
        ctx.emit(PartRemoved(vin=msg.vin, ref=ref, qty=item.qty))
    BOMS.put(state, Bom(msg.vin, items, removed), msg.vin)
    _vehicles(ctx).record_event(state, ctx, msg.vin, "parts_removed", {"items": [to_builtins(i) for i in msg.items]},
                                after_scrapping=True)


# ---------------------------------------------------------------- recycling and passports


@module.message(RecoverMaterial, roles={"recycler"})
def recover_material(state: Overlay, ctx: Context, msg: RecoverMaterial) -> None:
    """A recycler recovers material from parts in its custody, harvested or received (removed, or in
    stock again after a receipt; not installed, not in transit), at most the mass their part types
    declare (with what is inside them): they are scrapped, and the new lot's origin is recycled."""
    org = "org:" + _org(ctx)
    if len(set(msg.parts)) != len(msg.parts):
        raise errors.AssemblyRule(reason="a part is listed twice")
    parts = [_part(state, ref) for ref in msg.parts]
    for p in parts:
        if p.status not in ("removed", "in_stock") or p.custodian != org:
            raise errors.NotRecoverable(part=p.id, status=p.status, custodian=p.custodian)
    declared = sum(_type(state, c.part_number).mass_g for p in parts for c in [p] + _nested(state, p))
    if msg.mass_g > declared:
        raise errors.MassBalance(what=f"Recovering lot {msg.lot!r}",
                                 reason=f"{msg.mass_g} g cannot come from parts whose types declare {declared} g "
                                        f"(a part type's supplier declares its mass_g; undeclared counts 0 g)")
    recovered_lot(state, ctx, msg.lot, msg.material, msg.mass_g, msg.country, list(msg.parts), msg.location)
    for p in parts:
        part_history_append(state, ctx, p, "recycled", {"lot": msg.lot, "material": msg.material}, status="scrapped")


@module.message(IssuePassport, roles=MAKERS)
def issue_passport(state: Overlay, ctx: Context, msg: IssuePassport) -> None:
    """The pack's maker (its part number's supplier) issues its battery passport, or a new version
    of it: the declared fields, and the material origins, recycled content and the attestations of
    the origin lots and of the lots its cells consumed, as the ledger computes them at this block."""
    p = _part(state, msg.pack)
    t = _type(state, p.part_number)
    if t.category.lower() != "battery":
        raise errors.NotABatteryPack(part=p.id, category=t.category)
    if t.supplier != _org(ctx):
        raise errors.NotTheMaker(part=p.id, maker=t.supplier)
    prov = origins_of(state, p.id)
    if len(prov.origins) > MAX_ORIGINS:  # as a lot: a passport stays a document a credential can carry
        raise errors.TooManyOrigins(what=f"The passport of {p.id}", count=len(prov.origins),
                                    kind="origins (material and origin lot pairs)", limit=MAX_ORIGINS)
    recycled: dict[str, int] = {}
    for o in prov.origins:
        recycled[o.material] = recycled.get(o.material, 0) + (o.ppm if o.recycled else 0)
    audited = {**prov.roots, **prov.lots}  # the mines' lots and the lots its cells consumed (a refinery's)
    attestations = [msgspec.structs.replace(a, lot=lot_id) for lot_id, lot in sorted(audited.items())
                    for a in lot.attestations]
    old = PASSPORTS.get(state, p.id)
    version = old.version + 1 if old is not None else 1
    PASSPORTS.put(state, Passport(
        p.id, t.supplier, ctx.sender, p.part_number, p.serial, p.produced, p.plant, msg.category, msg.chemistry,
        msg.capacity_wh, msg.nominal_voltage_mv, msg.mass_g, msg.carbon_footprint_g_per_kwh, msg.carbon_footprint_report,
        msg.due_diligence_report, prov.origins, [RecycledShare(m, v) for m, v in sorted(recycled.items())], attestations,
        ctx.height, ctx.time, version), p.id)
    part_history_append(state, ctx, p, "passport_issued", {"version": version})
    ctx.emit(PassportIssued(pack=p.id, version=version))
