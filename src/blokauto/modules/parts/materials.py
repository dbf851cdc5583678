"""Material lots, mine to pack: registration, due-diligence attestations, custody, and the steps
that make lots from lots (split, merge, transform, recover) with mass balance at every step.

Rules (each handler's docstring says its own):

- **Custody.** A lot is held by its custodian (the registering or making organisation, then whoever
  received it); only the custodian ships, splits, merges, transforms or consumes it, and not while
  it is in transit.
- **Mass balance.** A lot's mass is consumed, never exceeded: a split or a batch takes at most what
  is left; a merge makes exactly what its portions weigh; a transformation's outputs weigh at most
  its inputs times the declared yield (``yield_ppm``, parts per million).
- **Conformance.** Where the consortium sets ``attestation_required:<material>`` to 1, a lot of that
  material is consumed (into a batch, a merge or a transformation) only if what vouches for it now
  is conformant and unexpired: its latest own attestation, or else, read live, what vouches now for
  each lot it was split or merged from (a later finding against a source reaches every piece). A transformation's outputs are new materials and
  inherit none (the consortium names which materials need their own).
- **Origins.** Every lot carries the origin lots of each raw material in it, with shares by mass
  balance (``origins.mix``); a recycler's recovered lot is a recycled origin.
"""

from __future__ import annotations

from typing import Iterable

import msgspec

from ...core.module import Context
from ...core.state import Overlay, StateReader
from . import errors, logistics
from .messages import AttestLot, LotMade, LotPortion, MergeLots, RegisterLot, SplitLot, TransformLots
from .origins import MAX_ORIGINS, PPM, mix
from .spec import ATTESTATION_MAX_MS, ATTESTATION_REQUIRED, LOT_USES, module
from .state import LOTS, Attestation, LotInput, MaterialLot, Origin
from .util import org_of, speaks_for

MAKERS = {"supplier", "manufacturer"}


def lot_origins(lot: MaterialLot) -> list[Origin]:
    """A lot's origins; a mined lot registered before origins were recorded is its own origin."""
    return lot.origins or [Origin(lot.material, lot.id, lot.mine, lot.country, PPM)]


def standing_attestations(lot: MaterialLot) -> list[Attestation]:
    """What vouches for a lot now: its latest own attestation, or else those it inherited."""
    if lot.attestations:
        return [lot.attestations[-1]]
    return list(lot.inherited)


#: Most lots a conformance check walks back through splits and merges (a refusal beyond).
MAX_STANDING_LOTS = 1000


def live_standing(state: StateReader, lot: MaterialLot) -> tuple[list[Attestation], list[str]]:
    """What vouches for ``lot`` now, read live: its latest own attestation; else, for a lot split or
    merged from others, what vouches for each of them now (so a finding against a source after the
    split reaches every piece); else nothing. Returns (attestations, lots standing on none)."""
    atts: dict[Attestation, None] = {}
    bare: dict[str, None] = {}
    stack, visited = [lot], {lot.id}
    seen = 0
    while stack:
        x = stack.pop()
        seen += 1
        if seen > MAX_STANDING_LOTS:
            raise errors.TooManyOrigins(what=f"The audit trail of lot {lot.id!r}", count=seen,
                                        kind="distinct split and merged lots behind it", limit=MAX_STANDING_LOTS)
        if x.attestations:
            a = x.attestations[-1]
            atts.setdefault(a if x is lot else msgspec.structs.replace(a, lot=x.id))
        elif x.process in ("split", "merge") and x.made_from:
            for i in reversed(x.made_from):
                if i.lot not in visited and (src := LOTS.get(state, i.lot)) is not None:
                    visited.add(i.lot)
                    stack.append(src)
        else:
            bare.setdefault(x.id)
    return list(atts), list(bare)


def check_conformant(state: StateReader, ctx: Context, lot: MaterialLot, use: str) -> None:
    """Refuse consuming ``lot`` if its material needs an attestation it does not have now."""
    if not ctx.param(ATTESTATION_REQUIRED.name, lot.material):
        return
    rule = f"attestation_required:{lot.material} is 1"
    standing, bare = live_standing(state, lot)
    if bare:
        reason = ("it has no attestation" if bare == [lot.id] else
                  f"it was split or merged from lot {bare[0]!r}, which has no attestation, and has none of its own")
        raise errors.LotNotConformant(lot=lot.id, use=use, reason=reason, rule=rule, auditor="none")
    for a in standing:
        via = f" (inherited from lot {a.lot!r})" if a.lot else ""
        if a.result != "conformant":
            raise errors.LotNotConformant(lot=lot.id, use=use, rule=rule, auditor=a.auditor,
                                          reason=f"its {a.standard} attestation{via} is non-conformant (report {a.report})")
        if a.valid_until <= ctx.time:
            raise errors.LotNotConformant(lot=lot.id, use=use, rule=rule, auditor=a.auditor,
                                          reason=f"its {a.standard} attestation{via} expired at {a.valid_until} "
                                                 f"(block time {ctx.time})")


def _held_lot(state: StateReader, ctx: Context, lot_id: str, action: str) -> MaterialLot:
    lot = LOTS.get(state, lot_id)
    if lot is None:
        raise errors.UnknownLot(lot=lot_id)
    if lot.transit_to:
        raise errors.LotInTransit(lot=lot_id, to=lot.transit_to)
    if not speaks_for(ctx, lot.holder):
        raise errors.NotCustodian(item=f"lot {lot_id}", custodian=lot.holder, action=action)
    return lot


def consume_lot(state: Overlay, ctx: Context, lot_id: str, mass_g: int, *, consumer: str, use: str) -> MaterialLot:
    """Take ``mass_g`` from a lot the sender holds, for ``consumer`` (a batch id or ``lot/<id>``)."""
    lot = _held_lot(state, ctx, lot_id, "consume")
    check_conformant(state, ctx, lot, use)
    remaining = lot.mass_g - lot.consumed_g
    if mass_g > remaining:
        raise errors.MaterialOverconsumed(lot=lot_id, remaining=remaining, material=lot.material, wanted=mass_g)
    LOTS.put(state, msgspec.structs.replace(lot, consumed_g=lot.consumed_g + mass_g, used=ctx.time), lot_id)
    ctx.index_put(LOT_USES, lot=lot_id, batch=consumer, mass_g=mass_g, height=ctx.height)
    return lot


def _new_lot(state: StateReader, lot_id: str) -> None:
    if LOTS.has(state, lot_id):
        raise errors.LotExists(lot=lot_id)


def _store(state: Overlay, ctx: Context, lot: MaterialLot, location: str) -> None:
    for kind, count in (("origins (material and origin lot pairs)", len(lot.origins)),
                        ("inherited attestations", len(lot.inherited))):
        if count > MAX_ORIGINS:
            raise errors.TooManyOrigins(what=f"Lot {lot.id!r}", count=count, kind=kind, limit=MAX_ORIGINS)
    org = "org:" + org_of(ctx)
    LOTS.put(state, msgspec.structs.replace(lot, custodian=org,
                                            handoff=logistics.made(ctx, logistics.lot_item(lot.id), org, location)),
             lot.id)
    ctx.emit(LotMade(lot=lot.id, material=lot.material, mass_g=lot.mass_g, process=lot.process))


def _unique(ids: Iterable[str], what: str) -> None:
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise errors.AssemblyRule(reason=f"a lot is listed twice in the {what}")


# ---------------------------------------------------------------- registering and attesting


@module.message(RegisterLot, roles={"supplier"})
def register_lot(state: Overlay, ctx: Context, msg: RegisterLot) -> None:
    """A raw-material lot enters the ledger with its mine and country, in the sender's custody; it is
    its own origin."""
    _new_lot(state, msg.lot)
    _store(state, ctx, MaterialLot(msg.lot, msg.material, msg.mass_g, 0, msg.mine, msg.country, org_of(ctx),
                                   origins=[Origin(msg.material, msg.lot, msg.mine, msg.country, PPM)]), msg.location)


@module.message(AttestLot, roles={"auditor"})
def attest_lot(state: Overlay, ctx: Context, msg: AttestLot) -> None:
    """An auditor attests (or refuses to attest) a lot's responsible sourcing, valid until
    ``valid_until`` (after the block, at most ``attestation_max_ms`` on). The latest attestation of a
    lot stands."""
    lot = LOTS.get(state, msg.lot)
    if lot is None:
        raise errors.UnknownLot(lot=msg.lot)
    longest = ctx.param(ATTESTATION_MAX_MS.name)
    if not ctx.time < msg.valid_until <= ctx.time + longest:
        raise errors.AssemblyRule(reason=f"valid_until must be after the block's time {ctx.time} and at most "
                                         f"{longest} ms later (attestation_max_ms), not {msg.valid_until}")
    att = Attestation(org_of(ctx), msg.standard, msg.result, msg.report, ctx.height, msg.valid_until)
    LOTS.put(state, msgspec.structs.replace(lot, attestations=lot.attestations + [att]), msg.lot)


# ---------------------------------------------------------------- lots from lots


def _inherited(lots: Iterable[MaterialLot]) -> list[Attestation]:
    """The attestations lots made from ``lots`` stand on when made (each once, tagged with the lot it
    was made for): a record for readers; conformance is judged live (``live_standing``)."""
    atts: dict[Attestation, None] = {}
    for lot in lots:
        for a in standing_attestations(lot):
            atts.setdefault(a if a.lot else msgspec.structs.replace(a, lot=lot.id))
    return list(atts)


@module.message(SplitLot, roles=MAKERS)
def split_lot(state: Overlay, ctx: Context, msg: SplitLot) -> None:
    """Split portions of a held lot into new lots of its material: at most what is left of it; each
    carries its origins and its standing attestation (a split is not consumption: the lot's
    conformance is checked when a part of it is consumed)."""
    lot = _held_lot(state, ctx, msg.lot, "split")
    _unique([p.lot for p in msg.into] + [msg.lot], "split")
    total = sum(p.mass_g for p in msg.into)
    remaining = lot.mass_g - lot.consumed_g
    if total > remaining:
        raise errors.MassBalance(what=f"Splitting lot {msg.lot!r}",
                                 reason=f"the new lots weigh {total} g, the lot has {remaining} g left")
    for p in msg.into:
        _new_lot(state, p.lot)
    LOTS.put(state, msgspec.structs.replace(lot, consumed_g=lot.consumed_g + total, used=ctx.time), lot.id)
    inherited = _inherited([lot])
    for p in msg.into:
        ctx.index_put(LOT_USES, lot=lot.id, batch=logistics.lot_item(p.lot), mass_g=p.mass_g, height=ctx.height)
        _store(state, ctx, MaterialLot(p.lot, lot.material, p.mass_g, 0, lot.mine, lot.country, org_of(ctx),
                                       origins=lot_origins(lot), made_from=[LotInput(lot.id, p.mass_g)],
                                       process="split", step=lot.step, inherited=inherited), msg.location)


def _consume_portions(state: Overlay, ctx: Context, portions: list[LotPortion], consumer: str,
                      use: str) -> list[tuple[LotPortion, MaterialLot]]:
    _unique([p.lot for p in portions], "inputs")
    return [(p, consume_lot(state, ctx, p.lot, p.mass_g, consumer=logistics.lot_item(consumer), use=use))
            for p in portions]


@module.message(MergeLots, roles=MAKERS)
def merge_lots(state: Overlay, ctx: Context, msg: MergeLots) -> None:
    """Merge portions of held lots of one material into a new lot weighing exactly what they weigh;
    each portion is consumed (conformance checked), the new lot's origins are their mass-weighted
    mix and its attestations their standing ones."""
    _new_lot(state, msg.into)
    if msg.into in {p.lot for p in msg.lots}:
        raise errors.AssemblyRule(reason="the merged lot must be a new lot, not one of its inputs")
    used = _consume_portions(state, ctx, list(msg.lots), msg.into, f"merged into lot {msg.into}")
    materials = sorted({lot.material for _, lot in used})
    if len(materials) != 1:
        raise errors.WrongMaterial(reason=f"a merge takes lots of one material, not {', '.join(materials)}; "
                                          "a process that combines materials is a transformation (parts.transform_lots)")
    origins = mix((p.mass_g, lot_origins(lot)) for p, lot in used)
    inherited = _inherited(lot for _, lot in used)
    _store(state, ctx, MaterialLot(msg.into, materials[0], sum(p.mass_g for p, _ in used), 0, "", "", org_of(ctx),
                                   origins=origins, made_from=[LotInput(p.lot, p.mass_g) for p, _ in used],
                                   process="merge", step=max(lot.step for _, lot in used), inherited=inherited),
           msg.location)


@module.message(TransformLots, roles=MAKERS)
def transform_lots(state: Overlay, ctx: Context, msg: TransformLots) -> None:
    """A process step consumes portions of held lots (conformance checked) and makes new lots: together
    they weigh at most the inputs times ``yield_ppm`` / 1,000,000, and each carries the inputs'
    mass-weighted origins, one step further from the mine."""
    outs = [o.lot for o in msg.outputs]
    _unique(outs, "outputs")
    if set(outs) & {p.lot for p in msg.inputs}:
        raise errors.AssemblyRule(reason="an output of a transformation must be a new lot, not one of its inputs")
    for lot_id in outs:
        _new_lot(state, lot_id)
    used = _consume_portions(state, ctx, list(msg.inputs), outs[0], f"transformed by {msg.process}")
    mass_in = sum(p.mass_g for p, _ in used)
    mass_out = sum(o.mass_g for o in msg.outputs)
    allowed = mass_in * msg.yield_ppm // PPM
    if mass_out > allowed:
        raise errors.MassBalance(what=f"Transformation {msg.process!r}",
                                 reason=f"its outputs weigh {mass_out} g; {mass_in} g of inputs at a yield of "
                                        f"{msg.yield_ppm} ppm make at most {allowed} g")
    origins = mix((p.mass_g, lot_origins(lot)) for p, lot in used)
    step = max(lot.step for _, lot in used) + 1
    made_from = [LotInput(p.lot, p.mass_g) for p, _ in used]
    for o in msg.outputs:
        _store(state, ctx, MaterialLot(o.lot, o.material, o.mass_g, 0, "", "", org_of(ctx), origins=origins,
                                       made_from=made_from, process=f"transform:{msg.process}", step=step),
               msg.location)


def recovered_lot(state: Overlay, ctx: Context, lot_id: str, material: str, mass_g: int, country: str,
                  parts: list[str], location: str) -> None:
    """The lot a recycler recovers from scrapped parts: a recycled origin of its material."""
    _new_lot(state, lot_id)
    _store(state, ctx, MaterialLot(lot_id, material, mass_g, 0, "", country, org_of(ctx),
                                   origins=[Origin(material, lot_id, "", country, PPM, recycled=True)],
                                   process="recovered", recovered_from=parts), location)


# ---------------------------------------------------------------- custody of lots


def ship_or_receive_lot(state: Overlay, ctx: Context, lot_id: str, *, ship_to: str | None, location: str,
                        at: int) -> None:
    item = logistics.lot_item(lot_id)
    lot = LOTS.get(state, lot_id)
    if lot is None:
        raise errors.UnknownLot(lot=lot_id)
    h = lot.handoff
    if ship_to is not None:
        if lot.transit_to:
            raise errors.LotInTransit(lot=lot_id, to=lot.transit_to)
        if not speaks_for(ctx, lot.holder):
            raise errors.NotCustodian(item=f"lot {lot_id}", custodian=lot.holder, action="ship")
        if ship_to in (lot.holder, ctx.sender):
            raise errors.AssemblyRule(reason=f"lot {lot_id} is held by {lot.holder}: a shipment goes to another "
                                             "custodian")
        if lot.consumed_g >= lot.mass_g:
            raise errors.MaterialOverconsumed(lot=lot_id, remaining=0, material=lot.material, wanted=1)
        h = logistics.shipped(ctx, item, "lot", lot.material, lot.producer, lot.holder, ship_to, location, at, h,
                              lot.mass_g - lot.consumed_g, not_before=lot.used)
        LOTS.put(state, msgspec.structs.replace(lot, custodian=lot.holder, transit_to=ship_to, handoff=h), lot_id)
        return
    if not lot.transit_to or not speaks_for(ctx, lot.transit_to):
        raise errors.NotInTransit(item=f"lot {lot_id}", receiver=ctx.sender,
                                  status=f"in transit to {lot.transit_to}" if lot.transit_to else f"held by {lot.holder}")
    h = logistics.received(ctx, item, "lot", lot.material, lot.producer, lot.holder, lot.transit_to, location, at, h)
    LOTS.put(state, msgspec.structs.replace(lot, custodian=lot.transit_to, transit_to="", handoff=h), lot_id)

