"""The scrubber: re-verify everything a node stores, at low priority, while it runs.

A running node starts ``python -m blokauto.node.scrub DATA`` now and then (at idle CPU and I/O
priority, in its own process, so it never holds the node's interpreter lock). It checks, without
re-executing anything: SQLite's own structure of both databases, every block (hash, link, roots,
ids, attestations), the state tree against the state entries and the header's state root, every
index row against its check hash, and every tx-index row against the block log. It prints one
JSON document; the node turns any finding into an unhealthy status and refuses to serve the
affected data. ``blokauto node scrub --data DATA`` runs the same checks by hand.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import msgspec

from ..core.registry import Registry
from ..store.blocks import BlockLog
from ..store.head import HeadMarker
from ..store.sqlite import connect
from .integrity import Finding, block_findings, state_findings

STATE_KINDS = frozenset({"state", "state-root", "state-tree", "state-entry", "index-row", "tx-index", "state-db"})


@dataclass
class ScrubReport:
    height: int = -1
    state_height: int = -1
    blocks: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def state_damaged(self) -> bool:
        return any(f.kind in STATE_KINDS for f in self.findings)

    @property
    def damaged_heights(self) -> set[int]:
        return {f.height for f in self.findings if f.kind not in STATE_KINDS and f.height is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "height": self.height, "state_height": self.state_height, "blocks": self.blocks,
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ScrubReport":
        return cls(d["height"], d["state_height"], d["blocks"],
                   [Finding(f["height"], f["kind"], f["message"]) for f in d["findings"]])


def known_node_keys(data_dir: Path, log: BlockLog) -> set[str]:
    """Every node key the consortium ever had: genesis, then each recorded consensus change."""
    genesis = log.genesis()
    nodes = set(genesis.node_keys()) if genesis else set()
    with closing(connect(data_dir / "chain.db", durable=True, readonly=True)) as c:
        try:
            rows = c.execute("SELECT value FROM consensus_changes").fetchall()
        except sqlite3.OperationalError:  # no consensus change recorded yet
            rows = []
    for (value,) in rows:
        nodes |= {n["did"] for n in msgspec.json.decode(bytes(value))["nodes"]}
    return nodes


def _sqlite_findings(path: Path) -> list[Finding]:
    try:
        with closing(connect(path, durable=False, readonly=True)) as c:
            rows = [r[0] for r in c.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        return [Finding(None, "state-db" if path.name == "state.db" else "block",
                        f"{path.name} cannot be read by SQLite ({exc})")]
    if rows == ["ok"]:
        return []
    kind = "state-db" if path.name == "state.db" else "block"
    return [Finding(None, kind, f"SQLite finds {path.name} damaged: {'; '.join(rows[:5])}")]


def own_node_key(data_dir: Path, genesis: Any) -> str | None:
    """The did of a solo node's own node key (it attests every block it commits), if DATA holds one;
    None for a networked node, whose blocks may lack its attestation (an observer, a key added later)."""
    from ..keystore import KeyStore
    from .netconfig import NETWORK_FILE

    if genesis is None or (Path(data_dir) / NETWORK_FILE).exists() or not (Path(data_dir) / "keys").is_dir():
        return None
    nodes = genesis.node_keys()
    return next((e.did for e in KeyStore(Path(data_dir) / "keys").entries() if e.kind == "node" and e.did in nodes),
                None)


def scrub(data_dir: Path, registry: Registry, *, progress: Callable[[int, int], None] | None = None,
          max_findings: int = 200) -> ScrubReport:
    data_dir = Path(data_dir)
    report = ScrubReport()
    found = report.findings
    for name in ("chain.db", "state.db"):
        if (data_dir / name).exists():
            found += _sqlite_findings(data_dir / name)
    try:
        log = BlockLog(data_dir / "chain.db", readonly=True)
        report.height = log.height()
    except (sqlite3.DatabaseError, FileNotFoundError) as exc:
        found.append(Finding(None, "block", f"chain.db cannot be read ({exc})"))
        return report
    try:
        for key in log.unknown_meta():
            found.append(Finding(None, "block", f"chain.db's meta table holds {key!r}, which this software never writes"))
        if (data_dir / "state.db").exists():
            try:
                _scrub_state(data_dir, log, registry, report, max_findings)
            except sqlite3.DatabaseError as exc:
                found.append(Finding(report.state_height if report.state_height >= 0 else None, "state-db",
                                     f"state.db cannot be read to the end ({exc})"))
        try:
            nodes = known_node_keys(data_dir, log)
            own = own_node_key(data_dir, log.genesis())
            for f in block_findings(log, 0, report.height, lambda _h: nodes, own_node=own,
                                    progress=(lambda h: progress(h + 1, report.height + 1)) if progress else None):
                if len(found) < max_findings:
                    found.append(f)
        except sqlite3.DatabaseError as exc:
            found.append(Finding(None, "block", f"chain.db cannot be read to the end ({exc})"))
        report.blocks = report.height + 1
        found += _head_marker_findings(data_dir, log)
    finally:
        log.close()
    return report


def _head_marker_findings(data_dir: Path, log: BlockLog) -> list[Finding]:
    """head.json must name a block of the log by its hash. It is read before the log's height: a
    running node writes it right after each commit, so a marker ahead of the log is blocks lost."""
    marker = HeadMarker(data_dir)
    head = marker.read()
    if marker.unreadable:
        return [Finding(None, "head", marker.unreadable)]
    if head is None:
        return []
    height = log.height()
    if head.height > height:
        return [Finding(head.height, "missing-block", f"head.json records block {head.height} as committed, beyond "
                                                      f"the last block {height} of chain.db: blocks were lost from "
                                                      f"the block log")]
    stored = log.header(head.height)
    if stored is None or stored.hash().hex() != head.hash:
        return [Finding(None, "head", f"head.json records hash {head.hash} for block {head.height}, which is not "
                                      f"the stored block's hash")]
    return []


def _scrub_state(data_dir: Path, log: BlockLog, registry: Registry, report: ScrubReport, max_findings: int) -> None:
    with closing(connect(data_dir / "state.db", durable=False, readonly=True)) as conn:
        conn.execute("BEGIN")  # one consistent picture of state.db
        try:
            row = conn.execute("SELECT v FROM meta WHERE k='height'").fetchone()
            report.state_height = -1 if row is None else int(row[0])
            header = log.header(report.state_height) if report.state_height >= 0 else None
            for f in state_findings(conn, header, list(registry.indexes), log):
                if len(report.findings) < max_findings:
                    report.findings.append(f)
        finally:
            conn.execute("COMMIT")


def _lower_priority() -> None:
    import psutil

    os.nice(19)
    try:
        psutil.Process().ionice(psutil.IOPRIO_CLASS_IDLE)
    except (AttributeError, psutil.Error, OSError):  # not every platform has I/O priorities
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blokauto.node.scrub", description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--registry", default="blokauto.modules:default_registry")
    args = parser.parse_args(argv)
    _lower_priority()
    from .verifier import _load_registry

    report = scrub(args.data, _load_registry(args.registry))
    sys.stdout.write(msgspec.json.encode(report.to_dict()).decode() + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
