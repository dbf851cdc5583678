"""Vehicle history reports (``blokauto-report/1``): the summary rules and offline verification.

A report carries a readable summary and timeline, and the evidence behind them: every history
entry as its canonical bytes, the vehicle record with its state proof, and a checkpoint (header
plus node attestations). The verifier trusts only the consortium's genesis document:

1. the report names this chain and genesis;
2. the checkpoint is signed by a quorum of the consortium's node keys;
3. the vehicle record is proven under the checkpoint's state root;
4. the history hash recomputed from the entries equals the one in the proven record, so no entry
   was dropped, altered, reordered or added;
5. the summary and timeline are exactly what the entries and the record say;
6. optionally, the checkpoint is fresh (not older than ``max_age_ms``, not below ``min_height``).

The same rules exist as a small JavaScript module for browsers (``web/verifier.js``); both are
checked against the same corpus of genuine and tampered reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from ..core import crypto, smt
from ..core.block import Checkpoint, Header, NodeSignature
from ._anchor import TrustAnchor
from ._keys import (OPEN_CAMPAIGNS_KEY, PART_PREFIX, bom_key, campaign_key, claim_key, part_key, remedy_key,
                    vehicle_claims_key, vehicle_key)
from ._proofs import VerificationError, verify_checkpoint, verify_state

FORMAT = REPORT_FORMAT = "blokauto-report/1"
READING_TYPES = ("odometer", "service", "inspection", "repair", "cluster_replaced")
WARNING_BRANDS = ("salvage", "total_loss", "junk", "flood", "fire", "hail", "lemon", "rebuilt", "stolen")


# ---------------------------------------------------------------- recalls
# The verifier's own implementation of the recall rules, over the proven evidence as plain JSON.
# It is independent of the recalls module on purpose: the node builds a report's open recalls with
# the module's rules (through its door) and checks the report with these before serving it, and
# the browser verifier has a third copy, so a bug in one is caught by the others.


def _covers_part(scope: dict[str, Any], pn: str, batch: str, serial: str) -> bool:
    if pn in scope["part_numbers"]:
        return True
    if batch and any(b["part_number"] == pn and b["batch"] == batch for b in scope["batches"]):
        return True
    return bool(serial) and any(r["part_number"] == pn and r["first"] <= serial <= r["last"] for r in scope["serial_ranges"])


def _covers_vehicle(scope: dict[str, Any], vin: str, manufacturer: str, build_date: str) -> bool:
    if scope["manufacturer"] and manufacturer != scope["manufacturer"]:
        return False
    dates = scope["build_dates"]
    if dates is not None and not dates["first"] <= build_date <= dates["last"]:
        return False
    return not scope["vin_ranges"] or any(r["first"] <= vin <= r["last"] for r in scope["vin_ranges"])


def _carried(bom: dict[str, Any], parts: dict[str, dict[str, Any]], height: int) -> list[tuple[str, str, str]]:
    """(part number, batch, serial) of what the vehicle carried at ``height``, nested parts included:
    an assembly still on board holds what it holds now, a removed one what it held when it came out."""
    refs = [(i["ref"], i["kind"], i["part_number"], None) for i in bom["items"] if i["height"] <= height]
    refs += [(r["ref"], r["kind"], r["part_number"], r["nested"]) for r in bom["removed"]
             if r["installed"] <= height < r["removed"]]
    out: list[tuple[str, str, str]] = []
    for ref, kind, pn, inside in refs:
        if kind == "batch":
            out.append((pn, ref.partition(":")[2], ""))
            continue
        stack = [ref]
        while stack:
            p = parts.get(stack.pop())
            if p is None:
                continue
            out.append((p["part_number"], p["batch"], p["serial"]))
            if inside is None:
                stack += [c for c in p["components"] if c in parts]
        if inside is not None:
            out += [(p["part_number"], p["batch"], p["serial"]) for p in (parts.get(c) for c in inside) if p is not None]
    return out


def open_recalls(record: dict[str, Any], ev: dict[str, Any]) -> list[dict[str, Any]]:
    """The open campaigns that covered the vehicle when they opened, and whether each is remedied.
    ``ev`` is the report's (already proven) recall evidence."""
    open_ids = msgspec.json.decode(ev["open"]["raw"]) if ev["open"]["raw"] else []
    bom = msgspec.json.decode(ev["bom"]["raw"]) if ev["bom"]["raw"] else {"items": [], "removed": []}
    parts = {p["id"]: p for p in (msgspec.json.decode(x["raw"]) for x in ev["parts"] if x["raw"])}
    out = []
    for cid, c_ev, r_ev in zip(open_ids, ev["campaigns"], ev["remedies"]):
        c = msgspec.json.decode(c_ev["raw"])
        scope = c["scope"]
        if record["registered"] > c["opened"] or \
                not _covers_vehicle(scope, record["vin"], record["manufacturer"], record["birth"]["build_date"]):
            continue
        has_parts = bool(scope["part_numbers"] or scope["batches"] or scope["serial_ranges"])
        if has_parts and not any(_covers_part(scope, *item) for item in _carried(bom, parts, c["opened"])):
            continue
        out.append({"campaign": cid, "number": c["number"], "component": c["component"], "summary": c["summary"],
                    "remedy": c["remedy"], "do_not_drive": c["do_not_drive"], "remedied": r_ev["raw"] is not None})
    return out


def summarize(record: dict[str, Any], entries: list[dict[str, Any]],
              recalls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The report summary: a pure function of the proven record, the entries and the open recalls."""
    recalls = recalls or []
    odo = record["odometer"]
    usages: list[str] = []
    accidents, series, rollbacks, beyond, implausible = [], [], [], [], []
    services = inspections = 0
    last_service: dict[str, Any] | None = None
    last_inspection: dict[str, Any] | None = None
    software: dict[str, dict[str, Any]] = {}  # ECU -> what it runs, in the order ECUs first appear
    for e in entries:
        d = e["data"]
        kind = e["type"]
        if kind == "ecus_fitted":
            for x in d["ecus"]:
                software[x["ecu"]] = {"ecu": x["ecu"], "hardware_id": x["hardware_id"], "path": x["path"],
                                      "image": x.get("image", ""), "release_counter": x.get("release_counter", 0),
                                      "seq": e["seq"], "time": e["time"]}
        if kind == "software_installed":
            for x in d["installed"]:
                before = software.get(x["ecu"], {"ecu": x["ecu"], "hardware_id": ""})
                software[x["ecu"]] = {**before, "path": x["path"], "image": x["image"],
                                      "release_counter": x["release_counter"], "seq": e["seq"], "time": e["time"]}
        usage = d.get("usage") if kind in ("title_transfer", "registration") else ("private" if kind == "birth" else None)
        if usage and usage not in usages:
            usages.append(usage)
        if kind == "accident":
            accidents.append({"seq": e["seq"], "date": d["date"], "severity": d["severity"],
                              "impact_areas": d["impact_areas"], "airbags_deployed": d.get("airbags_deployed", False),
                              "structural_damage": d.get("structural_damage", False),
                              "total_loss": d.get("total_loss", False)})
        if kind in READING_TYPES:
            km = d.get("km") if kind != "cluster_replaced" else None
            flag = d.get("flag", "")
            if km is not None:
                series.append({"seq": e["seq"], "time": e["time"], "km": km, "flag": flag})
            if flag == "suspected_rollback":
                rollbacks.append({"seq": e["seq"], "time": e["time"], "km": km, "by": e["by"], "org": e["org"]})
            elif flag == "exceeds_mechanical_limits":
                beyond.append({"seq": e["seq"], "time": e["time"], "km": km, "by": e["by"], "org": e["org"]})
            elif flag == "implausible_jump":
                implausible.append({"seq": e["seq"], "time": e["time"], "km": km, "by": e["by"], "org": e["org"]})
        if kind == "service":
            services += 1
            last_service = {"seq": e["seq"], "time": e["time"], "km": d.get("km", 0)}
        if kind == "inspection":
            inspections += 1
            last_inspection = {"seq": e["seq"], "time": e["time"], "result": d["result"]}
    brands = list(record["brands"])
    warnings = []
    if odo["status"] != "actual" or rollbacks:
        warnings.append("odometer_" + ("rollback" if rollbacks else odo["status"]))
    if implausible:
        warnings.append("odometer_implausible_jump")
    warnings += [b for b in WARNING_BRANDS if b in brands]
    if record["status"] == "stolen" and "stolen" not in warnings:
        warnings.append("stolen")
    if record["status"] == "scrapped":
        warnings.append("scrapped")
    if record.get("liens"):
        warnings.append("lien")
    if any(not r["remedied"] for r in recalls):
        warnings.append("open_recall")
    if any(not r["remedied"] and r["do_not_drive"] for r in recalls):
        warnings.append("do_not_drive")
    odometer = {"status": odo["status"], "last_km": odo["km"], "max_km": odo["max_km"], "readings": len(series),
                "series": series, "suspected_rollbacks": rollbacks, "beyond_limits": beyond}
    if implausible:  # only where there are any: reports of chains without the rule keep their exact form
        odometer["implausible_jumps"] = implausible
    out = {
        "vin": record["vin"],
        "vehicle": dict(record["birth"]),
        "manufacturer": record["manufacturer"],
        "country": record["country"],
        "status": record["status"],
        "certificate": record.get("certificate", ""),
        "title_brands": brands,
        "holder_kind": "organisation" if record["holder"].startswith("org:") else "person",
        "owners": record["owners"],
        "usage_types": usages,
        "liens": len(record.get("liens", [])),
        "accidents": accidents,
        "odometer": odometer,
        "services": {"count": services, "last": last_service},
        "inspections": {"count": inspections, "last": last_inspection},
        "entries": len(entries),
        "open_recalls": recalls,
        "warnings": warnings,
    }
    if software:  # only where ECUs are on record: reports of vehicles without keep their exact form
        out["software"] = list(software.values())
    return out


@dataclass(frozen=True)
class ReportProof:
    """What a successful verification proved."""

    vin: str
    entries: int
    height: int
    time: int
    attestations: int
    quorum: int
    chain: str
    warnings: list[str]

    def describe(self) -> str:
        w = ", ".join(self.warnings) if self.warnings else "none"
        return (f"VIN {self.vin}: all {self.entries} history entries are genuine and complete as of block {self.height} "
                f"(time {self.time} ms), attested by {self.attestations} of the consortium's node keys (quorum "
                f"{self.quorum}) of chain {self.chain!r}; the summary matches the entries. Warnings: {w}.")


def _js_number(x: Any) -> Any:
    """A number as a browser's JSON.parse sees it: 2.0 is 2 (but true stays true, not 1)."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, list):
        return [_js_number(v) for v in x]
    if isinstance(x, dict):
        return {k: _js_number(v) for k, v in x.items()}
    return x


def _same(a: Any, b: Any) -> bool:
    """Equal as the browser verifier compares them (canonical JSON of the parsed values)."""
    try:
        return (msgspec.json.encode(_js_number(a), order="sorted")
                == msgspec.json.encode(_js_number(b), order="sorted"))
    except (TypeError, msgspec.EncodeError):
        return False


def _utf8(text: str) -> bytes:
    """UTF-8 as a browser's TextEncoder writes it: a lone surrogate becomes U+FFFD."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def _proven_value(header: Header, item: Any, key: str, what: str) -> Any:
    """Check one proven state value of the evidence; returns it decoded (None when proven absent)."""
    _exact_keys(item, {"key", "raw", "proof"}, what)
    if item["key"] != key:
        raise VerificationError(f"the report is malformed: the {what} is for {item['key']!r}, not {key!r}")
    raw = item["raw"]
    verify_state(header, _utf8(key), None if raw is None else _utf8(raw), msgspec.convert(item["proof"], smt.StateProof))
    return None if raw is None else msgspec.json.decode(_utf8(raw))


def _verify_recall_evidence(header: Header, vin: str, ev: Any) -> None:
    """Every recall fact the summary uses is proven, and none is missing."""
    _exact_keys(ev, {"open", "campaigns", "bom", "parts", "remedies"}, "recall evidence")
    open_ids = _proven_value(header, ev["open"], OPEN_CAMPAIGNS_KEY, "open campaign list") or []
    if len(ev["campaigns"]) != len(open_ids) or len(ev["remedies"]) != len(open_ids):
        raise VerificationError("the recall evidence does not cover every open campaign")
    named: set[str] = set()
    for cid, c_ev, r_ev in zip(open_ids, ev["campaigns"], ev["remedies"]):
        c = _proven_value(header, c_ev, campaign_key(cid), f"campaign {cid}")
        if c is None:
            raise VerificationError(f"the report is malformed: open campaign {cid} is proven absent")
        sc = c["scope"]
        named |= set(sc["part_numbers"]) | {b["part_number"] for b in sc["batches"]} | \
            {r["part_number"] for r in sc["serial_ranges"]}
        _proven_value(header, r_ev, remedy_key(cid, vin), f"remedy of campaign {cid}")
    bom = _proven_value(header, ev["bom"], bom_key(vin), "bill of parts")
    given = {}
    for p_ev in ev["parts"]:
        part_id = p_ev.get("key", "").removeprefix(PART_PREFIX) if isinstance(p_ev, dict) else ""
        given[part_id] = _proven_value(header, p_ev, part_key(part_id), f"part {part_id}")
    need = ([i["ref"] for i in bom["items"] if i["kind"] == "part"] + [r["ref"] for r in bom["removed"] if r["kind"] == "part"]
            + [x for r in bom["removed"] for x in r["nested"] if x.partition(":")[0] in named] if bom else [])
    seen: set[str] = set()
    while need:  # every serialized part on the bill, and every component a campaign names, is proven
        ref = need.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if ref not in given:
            raise VerificationError(f"the recall evidence lacks part {ref} of the vehicle")
        p = given[ref]
        if p is not None:
            need += [x for x in p["components"] if x.partition(":")[0] in named]


def claim_view(claim: dict[str, Any]) -> dict[str, Any]:
    """What a report shows of one proven insurance claim (its holder let the report show them)."""
    return {"claim": claim["id"], "policy": claim["policy"], "insurer": claim["insurer"], "source": claim["source"],
            "incident": claim["incident"], "status": claim["status"], "flags": claim["flags"],
            "reason": claim["reason"], "approved": claim["approved"], "payout": claim["payout"],
            "currency": claim["currency"]}


def _verify_claim_evidence(header: Header, vin: str, since: int, ev: Any) -> list[dict[str, Any]]:
    """Every claim of the current holding (which began at ``since``, as the proven record says) is
    proven: the proven list of their ids, then each record."""
    _exact_keys(ev, {"list", "claims"}, "claim evidence")
    ids = _proven_value(header, ev["list"], vehicle_claims_key(vin, since), "claim list") or []
    if not isinstance(ev["claims"], list) or len(ev["claims"]) != len(ids):
        raise VerificationError("the claim evidence does not cover every claim on the vehicle")
    out = []
    for cid, item in zip(ids, ev["claims"]):
        c = _proven_value(header, item, claim_key(cid), f"claim {cid}")
        if c is None or c.get("vin") != vin:
            raise VerificationError(f"the report is malformed: claim {cid} is not proven for {vin}")
        out.append(claim_view(c))
    return out


def _exact_keys(obj: Any, allowed: set[str], what: str, optional: frozenset[str] | set[str] = frozenset()) -> None:
    if not isinstance(obj, dict) or not allowed <= set(obj) <= allowed | optional:
        raise VerificationError(f"the report is malformed: the {what} has fields "
                                f"{sorted(obj) if isinstance(obj, dict) else type(obj).__name__}, expected {sorted(allowed)}")


def _diff(a: Any, b: Any, path: str = "summary") -> str:
    """The first path where ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if not _same(a.get(k, "<missing>"), b.get(k, "<missing>")):
                return _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
        return path
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if not _same(x, y):
                return _diff(x, y, f"{path}[{i}]")
        return f"{path} (length {len(a)} vs {len(b)})"
    return f"{path} ({a!r} vs {b!r})"


def verify_report(report: dict[str, Any], anchor: TrustAnchor, *, now_ms: int | None = None,
                  max_age_ms: int | None = None, min_height: int | None = None) -> ReportProof:
    """Check a report against the trust anchor; raises ``VerificationError`` naming what failed."""
    try:
        if report.get("format") != FORMAT:
            raise VerificationError(f"not a {FORMAT} report")
        trust = report["trust"]
        if trust["chain"] != anchor.chain or trust["genesis_hash"] != anchor.genesis_hash.hex():
            raise VerificationError("the report is for another chain or genesis than the trust anchor")
        verify_checkpoint(_report_checkpoint(report), anchor)
    except (KeyError, TypeError, AttributeError, ValueError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise VerificationError(f"the report is malformed: {exc!r}") from None
    proof = verify_report_evidence(report)
    if min_height is not None and proof.height < min_height:
        raise VerificationError(f"the report is stale: its checkpoint is block {proof.height}, "
                                f"a newer checkpoint (block {min_height}) is known")
    if max_age_ms is not None and now_ms is not None and now_ms - proof.time > max_age_ms:
        raise VerificationError(f"the report is stale: its checkpoint is {(now_ms - proof.time) // 86_400_000} days "
                                f"old, older than the {max_age_ms // 86_400_000} days accepted")
    return ReportProof(proof.vin, proof.entries, proof.height, proof.time, proof.attestations, anchor.quorum,
                       anchor.chain, proof.warnings)


def _report_checkpoint(report: dict[str, Any]) -> Checkpoint:
    ev = report["evidence"]
    _exact_keys(ev, {"entries", "vehicle", "checkpoint", "recalls"}, "evidence", {"claims"})
    _exact_keys(ev["checkpoint"], {"header_raw", "attestations"}, "checkpoint")
    header_raw = _utf8(ev["checkpoint"]["header_raw"])
    header = msgspec.json.decode(header_raw, type=Header)
    atts_raw = ev["checkpoint"]["attestations"]
    if not isinstance(atts_raw, list):
        raise VerificationError("the attestations are not a list")
    for att in atts_raw:
        _exact_keys(att, {"node", "sig"}, "attestation")
    try:
        atts = msgspec.convert(atts_raw, list[NodeSignature])
    except msgspec.ValidationError as exc:
        raise VerificationError(f"an attestation is malformed: {exc}") from None
    if msgspec.json.encode(header, order="sorted") != header_raw:
        raise VerificationError("the checkpoint header is not in canonical form")
    return Checkpoint(header, atts)


def verify_report_evidence(report: dict[str, Any]) -> ReportProof:
    """Everything ``verify_report`` checks except who signed the checkpoint: the vehicle record is
    proven against the checkpoint header's state root, the entries hash to the record's history
    head, and the timeline, recalls and summary are what the proven data say. A node runs this
    on a report before it serves it (it knows its own headers); a verifier runs ``verify_report``."""
    try:
        checkpoint = _report_checkpoint(report)
        header, atts = checkpoint.header, checkpoint.attestations
        ev = report["evidence"]
        _exact_keys(ev["vehicle"], {"key", "raw", "proof"}, "vehicle evidence")
        record_raw = _utf8(ev["vehicle"]["raw"])
        key = ev["vehicle"]["key"]
        proof = msgspec.convert(ev["vehicle"]["proof"], smt.StateProof)
        verify_state(header, _utf8(key), record_raw, proof)
        record = msgspec.json.decode(record_raw)
        if key != vehicle_key(report["vin"]) or record.get("vin") != report["vin"]:
            raise VerificationError("the proven vehicle record is not the report's VIN")
        raws = [_utf8(e) for e in ev["entries"]]
        head = bytes(32)
        for raw in raws:
            head = crypto.tagged_hash(crypto.TAG_HISTORY, head + raw)
        history = record["history"]
        if len(raws) != history["count"] or head.hex() != history["head"]:
            raise VerificationError(
                f"the history is incomplete or altered: the entries hash to {head.hex()[:16]}… over {len(raws)} "
                f"entries, the proven record commits to {history['head'][:16]}… over {history['count']}")
        entries = [msgspec.json.decode(r) for r in raws]
        for i, e in enumerate(entries):
            if e.get("seq") != i + 1:
                raise VerificationError(f"entry {i + 1} carries sequence number {e.get('seq')}")
        if not _same(report.get("as_of"), {"height": header.height, "time": header.time}):
            raise VerificationError(f"the report claims to be as of {report.get('as_of')}, but its checkpoint is block "
                                    f"{header.height} at time {header.time}")
        timeline = report.get("timeline")
        if not _same(timeline, entries):
            bad = next((i for i, (a, b) in enumerate(zip(timeline or [], entries)) if not _same(a, b)), None)
            raise VerificationError(f"the timeline differs from the proven entries (at entry {bad + 1 if bad is not None else 'count'})")
        _verify_recall_evidence(header, report["vin"], ev["recalls"])
        if "claims" in ev:
            claims = _verify_claim_evidence(header, report["vin"], record["holder_since"], ev["claims"])
            if not _same(report.get("insurance_claims"), claims):
                raise VerificationError(f"the insurance claims are not what the proven records say: "
                                        f"{_diff(report.get('insurance_claims'), claims, 'insurance_claims')}")
        elif "insurance_claims" in report:
            raise VerificationError("the report shows insurance claims without the evidence that proves them")
        expected = summarize(record, entries, open_recalls(record, ev["recalls"]))
        if not _same(report.get("summary"), expected):
            raise VerificationError(f"the summary is not what the entries say: {_diff(report.get('summary'), expected)}")
    except (KeyError, TypeError, AttributeError, ValueError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise VerificationError(f"the report is malformed: {exc!r}") from None
    return ReportProof(report["vin"], len(entries), header.height, header.time, len(atts), 0, header.chain,
                       expected["warnings"])
