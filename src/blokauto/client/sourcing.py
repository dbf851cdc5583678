"""Responsible sourcing from Python: material lots from mine to pack, handoffs with place and
time, the supply chain's slow legs, and battery passports.

    from blokauto.client.sourcing import Sourcing, Portion, Output

    src = Sourcing(client)                                   # a Client pinned to the trust anchor
    src.register_lot(mine_key, "ORE-1", "cobalt", 50_000_000, mine="Kamoto", country="CD", location="CDKWZ")
    src.attest_lot(auditor_key, "ORE-1", "RMAP", "conformant", report="FMA-1", valid_until=...)
    src.transform(mine_key, [Portion("ORE-1", 50_000_000)], [Output("CONC-1", "cobalt-hydroxide", 1_500_000)],
                  process="concentration", yield_ppm=40_000)
    src.ship(mine_key, "org:refiner", lots=["CONC-1"], location="TZDAR")
    origin = src.origin("VP-83:VP83-0001")                   # recomputed from proven state values
    passport = src.passport("VP-83:VP83-0001")               # proven against a checkpoint

Sending methods return the committed transaction's ``TxInfo`` (``info.raise_for_status()`` raises
the module's error class). ``origin`` does not trust the node's arithmetic: it reads every state
value the answer was computed from, each proven against a quorum checkpoint, and computes the
same origins with the module's own function (``modules.parts.provenance``); a key the caller may
not read (an upstream lot belongs to its own parties) is reported, and the proven route for a
downstream reader is the passport: one public value, proven.
"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

from ..core.crypto import KeyPair
from ..core.errors import BlokautoError, NotFound
from ..modules.parts import keys as parts_keys
from ..modules.parts.messages import (AttestLot, IssuePassport, LotOutput, LotPortion, MergeLots, Receive,
                                      RecoverMaterial, RegisterLot, Ship, SplitLot, TransformLots)
from ..modules.parts.doors import describe, origins_of
from ..verify import VerificationError
from ._client import Client
from ._results import TxInfo

__all__ = ["Output", "Portion", "ProvenOrigin", "Sourcing"]


def Portion(lot: str, mass_g: int) -> LotPortion:  # noqa: N802  (reads as the value it builds)
    """``mass_g`` grams of lot ``lot``."""
    return LotPortion(lot=lot, mass_g=mass_g)


def Output(lot: str, material: str, mass_g: int) -> LotOutput:  # noqa: N802
    """A new lot a transformation makes."""
    return LotOutput(lot=lot, material=material, mass_g=mass_g)


class ProvenOrigin(msgspec.Struct, frozen=True):
    """An origin answer and what was proven of it: ``proven`` lists the state keys read with a
    proof, ``unreadable`` those the caller may not read (with the node's refusal code); the answer is
    ``verified`` when every key was proven and the origins computed from them equal the node's."""

    answer: dict[str, Any]
    verified: bool
    proven: list[str]
    unreadable: dict[str, str]
    height: int


class _ProvenState:
    """A state reader whose every value is read from the node with its proof checked."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.proven: list[str] = []
        self.unreadable: dict[str, str] = {}
        self.height = -1

    def get(self, key: bytes) -> bytes | None:
        name = key.decode()
        try:
            sv = self.client.state(name)
        except BlokautoError as err:  # a refusal (a proof that fails raises VerificationError)
            self.unreadable[name] = err.code
            return None
        self.proven.append(name)
        self.height = max(self.height, sv.height)
        return None if sv.value is None else msgspec.json.encode(sv.value)


class Sourcing:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _send(self, by: KeyPair, msg: Any, wait: float) -> TxInfo:
        return self.client.send(msg, by, wait=wait)

    # ---------------------------------------------------------------- lots

    def register_lot(self, by: KeyPair, lot: str, material: str, mass_g: int, *, mine: str, country: str,
                     location: str = "", wait: float = 30.0) -> TxInfo:
        """A mined lot enters the ledger (a supplier): its own origin, in the sender's custody."""
        return self._send(by, RegisterLot(lot=lot, material=material, mass_g=mass_g, mine=mine, country=country,
                                          location=location), wait)

    def attest_lot(self, by: KeyPair, lot: str, standard: str, result: str, *, report: str, valid_until: int,
                   wait: float = 30.0) -> TxInfo:
        """An auditor's due-diligence attestation (``conformant`` or ``non_conformant``) until ``valid_until`` (ms)."""
        return self._send(by, AttestLot(lot=lot, standard=standard, result=result,  # type: ignore[arg-type]
                                        report=report, valid_until=valid_until), wait)

    def split(self, by: KeyPair, lot: str, into: Iterable[LotPortion], *, location: str = "",
              wait: float = 30.0) -> TxInfo:
        return self._send(by, SplitLot(lot=lot, into=list(into), location=location), wait)

    def merge(self, by: KeyPair, lots: Iterable[LotPortion], into: str, *, location: str = "",
              wait: float = 30.0) -> TxInfo:
        return self._send(by, MergeLots(lots=list(lots), into=into, location=location), wait)

    def transform(self, by: KeyPair, inputs: Iterable[LotPortion], outputs: Iterable[LotOutput], *, process: str,
                  yield_ppm: int, location: str = "", wait: float = 30.0) -> TxInfo:
        """A process step: outputs weigh at most the inputs × ``yield_ppm`` / 1,000,000."""
        return self._send(by, TransformLots(inputs=list(inputs), outputs=list(outputs), process=process,
                                            yield_ppm=yield_ppm, location=location), wait)

    def recover(self, by: KeyPair, parts: Iterable[str], lot: str, material: str, mass_g: int, *, country: str,
                location: str = "", wait: float = 30.0) -> TxInfo:
        """A recycler recovers material from harvested parts: a lot of recycled origin."""
        return self._send(by, RecoverMaterial(parts=list(parts), lot=lot, material=material, mass_g=mass_g,
                                              country=country, location=location), wait)

    # ---------------------------------------------------------------- handoffs

    def ship(self, by: KeyPair, to: str, *, items: Iterable[str] = (), lots: Iterable[str] = (), location: str = "",
             at: int = 0, wait: float = 30.0) -> TxInfo:
        """Hand parts, batches or lots to ``to`` (``org:<id>`` or a did:key) at ``location`` (UN/LOCODE or
        ``geo:lat,lon``), at ``at`` ms (0: the block's time)."""
        return self._send(by, Ship(to=to, items=list(items), lots=list(lots), location=location, at=at), wait)

    def receive(self, by: KeyPair, *, items: Iterable[str] = (), lots: Iterable[str] = (), location: str = "",
                at: int = 0, wait: float = 30.0) -> TxInfo:
        return self._send(by, Receive(items=list(items), lots=list(lots), location=location, at=at), wait)

    # ---------------------------------------------------------------- passports

    def issue_passport(self, by: KeyPair, pack: str, *, category: str, chemistry: str, capacity_wh: int,
                       nominal_voltage_mv: int, mass_g: int, carbon_footprint_g_per_kwh: int,
                       carbon_footprint_report: str, due_diligence_report: str, wait: float = 30.0) -> TxInfo:
        """The pack's maker issues (or reissues) its passport; origins and recycled content are computed."""
        return self._send(by, IssuePassport(
            pack=pack, category=category, chemistry=chemistry, capacity_wh=capacity_wh,  # type: ignore[arg-type]
            nominal_voltage_mv=nominal_voltage_mv, mass_g=mass_g, carbon_footprint_g_per_kwh=carbon_footprint_g_per_kwh,
            carbon_footprint_report=carbon_footprint_report, due_diligence_report=due_diligence_report), wait)

    def passport(self, pack: str) -> dict[str, Any]:
        """A pack's passport, proven against a quorum checkpoint (``LookupError`` if none was issued)."""
        sv = self.client.state(parts_keys.PASSPORT + pack)
        if sv.value is None:
            raise LookupError(f"no passport was issued for {pack} (proven absent at block {sv.height})")
        return {**sv.value, "proven_at": sv.height}

    def export_passport(self, pack: str, key: KeyPair, *, created: str | None = None) -> dict[str, Any]:
        """The pack's passport as a W3C Verifiable Credential signed by ``key``, the key that issued it
        on the ledger, carrying the ledger evidence (state proof, quorum checkpoint, consensus
        changes) so anyone can verify it offline (``blokauto.verify.passport``)."""
        from datetime import datetime, timezone

        from ..credentials import issue
        from ..verify import verify_state_evidence
        from ..verify.passport import passport_credential

        name = parts_keys.PASSPORT + pack
        ev = self.client._request("GET", f"/v1/state/{name}")
        if ev.get("key") != name:
            raise VerificationError(f"the node answered about {ev.get('key')!r}, not {name!r}")
        self.client._verified(int(ev["checkpoint"]["header"]["height"]), lambda a: verify_state_evidence(ev, a))
        if ev.get("raw") is None:
            raise LookupError(f"no passport was issued for {pack} (proven absent)")
        issuer = msgspec.json.decode(ev["raw"])["issuer"]
        if issuer != key.did:
            raise ValueError(f"the passport of {pack} was issued on the ledger by {issuer}; export it with that key "
                             f"(a credential's signer must be the passport's issuer)")
        changes = self.client._request("GET", "/v1/consensus/changes", params={"after": 0}).get("changes", [])
        when = created or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return issue(passport_credential(ev, changes, self.client.chain), key, created=when)

    # ---------------------------------------------------------------- reading

    def origin(self, item: str, *, prove: bool = True) -> ProvenOrigin:
        """Where the materials of a part, batch or lot came from. With ``prove``, every state value is
        read with its proof and the origins recomputed; ``verified`` says they match the node's answer."""
        answer = self.client.query("parts", "origin", id=item)
        if not prove:
            return ProvenOrigin(answer, False, [], {}, -1)
        reader = _ProvenState(self.client)
        try:
            mine = describe(origins_of(reader, item), item)
        except NotFound:
            if not reader.unreadable:
                raise VerificationError(f"the node answered origins of {item}, but its state proves no such item")
            mine = {}
        if not reader.unreadable:
            theirs = {k: v for k, v in answer.items() if k != "keys"}
            ours = {k: v for k, v in mine.items() if k != "keys"}
            if theirs != ours:
                raise VerificationError(f"the node's origins of {item} differ from those computed from proven state")
        return ProvenOrigin(answer, not reader.unreadable, reader.proven, reader.unreadable, reader.height)

    def _product(self, query: str, part_number: str, supplier: str, limit: int) -> dict[str, Any]:
        which = {k: v for k, v in (("part_number", part_number), ("supplier", supplier)) if v}
        return self.client.query("parts", query, limit=limit, **which)

    def route(self, item: str) -> dict[str, Any]:
        """Handoffs, stays with dwell times, legs with durations, and where the item is now."""
        return self.client.query("parts", "route", id=item)

    def legs(self, *, part_number: str = "", supplier: str = "", limit: int = 20) -> dict[str, Any]:
        """The slowest legs of a part number's items, or of everything a supplier makes."""
        return self._product("legs", part_number, supplier, limit)

    def lanes(self, *, part_number: str = "", supplier: str = "", limit: int = 20) -> dict[str, Any]:
        """Sender→receiver, place→place lanes with leg counts and mean/min/max durations, slowest first."""
        return self._product("lanes", part_number, supplier, limit)

    def in_transit(self, *, part_number: str = "", supplier: str = "", limit: int = 100) -> dict[str, Any]:
        """What is on the way now, longest first, with totals."""
        return self._product("in_transit", part_number, supplier, limit)
