"""One changed value in any table of a stopped node's databases is never served as genuine.

A demo chain is built once and its answers recorded (every block, checkpoint, transaction, state
value, report and the module queries over its vehicles, parts and campaigns). Each case copies
the folder, changes one value of one row of one table, and starts a node on it. Then:

- the node refuses to start (the newest blocks and the state root are checked at start), or
- every answer is either exactly the recorded one or a refusal with ``integrity_failure``; and
- the change is found: refused at start, refused by a read, repaired at start (a damaged
  ``state.db`` is set aside and rebuilt), found by the scrubber, or reported by ``audit``.

One documented exception: listings read from derived index tables that no state record commits
to (a holder's vehicles, a lot's uses, a campaign's affected vehicles, proposals by status) check
each row they return, but cannot see a row that was moved away or removed, and a transaction whose
tx-index row was moved away reads as unknown (404); such a change must then be found by the
scrubber (which checks every row of every table against the block log).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from blokauto.node.audit import audit
from blokauto.node.faults import NodeFault
from blokauto.store.damage import DamagedData

from conftest import Served, node_key_of, signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def probes(url: str, data: Path) -> list[str]:
    """Every read that serves something of the chain."""
    with closing(sqlite3.connect(data / "state.db")) as c:
        keys = [bytes(k).decode() for (k,) in c.execute("SELECT CAST(k AS BLOB) FROM state ORDER BY k")]
    with closing(sqlite3.connect(data / "chain.db")) as c:
        height = c.execute("SELECT max(height) FROM blocks").fetchone()[0]
        ids = [bytes(i[j:j + 32]).hex() for (i,) in c.execute("SELECT ids FROM blocks") for j in range(0, len(i), 32)]
    vins = [k.split("/")[-1] for k in keys if k.startswith("veh/v/")]
    parts = [k[len("parts/p/"):] for k in keys if k.startswith("parts/p/")]
    lots = [k[len("parts/lot/"):] for k in keys if k.startswith("parts/lot/")]
    campaigns = [str(int(k[len("recall/c/"):])) for k in keys if k.startswith("recall/c/")]
    with signed(url, node_key_of(data)) as http:
        holders = sorted({json.loads(http.get("/v1/q/vehicles/vehicle", params={"vin": v}).text)["result"]
                          .get("holder", "") for v in vins} - {""})
    out = [f"/v1/blocks/{h}?full=true" for h in range(height + 1)]
    out += [f"/v1/checkpoints/{h}" for h in range(height + 1)]
    out += [f"/v1/txs/{i}" for i in ids]
    out += [f"/v1/state/{k}" for k in keys]
    for v in vins:
        out += [f"/v1/reports/{v}", f"/v1/q/vehicles/history?vin={v}", f"/v1/q/parts/bom?vin={v}",
                f"/v1/q/parts/materials_of?vin={v}", f"/v1/q/recalls/of_vehicle?vin={v}"]
    out += [f"/v1/q/vehicles/vehicles_of?holder={h}" for h in holders]
    out += [f"/v1/q/parts/trace?id={p}" for p in parts] + [f"/v1/q/parts/lot?id={lot}" for lot in lots]
    out += [f"/v1/q/recalls/campaign?id={c}" for c in campaigns] + [f"/v1/q/recalls/affected?campaign={c}" for c in campaigns]
    out += ["/v1/q/governance/organisations", "/v1/q/governance/proposals", "/v1/q/recalls/open"]
    return out


VOLATILE = ("generated_at",)
#: Listings from derived index tables that no state record commits to (see the module docstring).
DERIVED_LISTINGS = ("/v1/q/vehicles/vehicles_of", "/v1/q/parts/lot", "/v1/q/parts/materials_of", "/v1/q/parts/trace",
                    "/v1/q/recalls/affected", "/v1/q/recalls/campaign", "/v1/q/recalls/of_vehicle",
                    "/v1/q/governance/proposals", "/v1/q/governance/organisations")


def answer(http: httpx.Client, path: str) -> tuple[int, Any]:
    r = http.get(path)
    body = r.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return r.status_code, body


@pytest.fixture(scope="module")
def demo(tmp_path_factory, copy_demo) -> tuple[Path, list[str], dict[str, tuple[int, Any]]]:
    data = tmp_path_factory.mktemp("tamper") / "demo"
    copy_demo(data)
    served = Served(data)
    try:
        paths = probes(served.url, data)
        with signed(served.url, served.key, timeout=30) as http:
            golden = {p: answer(http, p) for p in paths}
    finally:
        served.stop()
    assert all(code == 200 for code, _ in golden.values()), [p for p, (c, _) in golden.items() if c != 200]
    return data, paths, golden


# ---------------------------------------------------------------- the changes


def changed_values(value: Any) -> Iterator[Any]:
    """Values that differ from ``value`` in one small place, nearest first (later ones for when a
    changed key collides with another row's)."""
    if isinstance(value, int):
        yield from (value + 1, value + 1_000_000, value - 1_000_003)
    elif isinstance(value, str):
        if not value:
            yield "x"
            return
        for i in (len(value) // 2, len(value) - 1, 0):
            for ch in "12zy":
                if value[i] != ch:
                    yield value[:i] + ch + value[i + 1:]
        yield value + "0"
    else:
        if not value:
            yield b"\x00"
            return
        for i in (len(value) // 2, len(value) - 1, 0):
            for bit in (0x01, 0x80, 0x10):
                data = bytearray(value)
                data[i] ^= bit
                yield bytes(data)


def _update_first_free(c: sqlite3.Connection, sql: str, value: Any, key: tuple) -> None:
    """Run ``sql`` with the first changed value that collides with no other row."""
    for candidate in changed_values(value):
        try:
            c.execute(sql, (candidate, *key))
            return
        except sqlite3.IntegrityError:
            continue
    raise AssertionError(f"every changed value of {value!r:.60} collides with another row")


def table_columns(db: Path) -> Iterator[tuple[str, str, str]]:
    """(file, table, column) for every column of every table that holds a row."""
    with closing(sqlite3.connect(db)) as c:
        for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall():
            if not c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                continue
            for col in c.execute(f"PRAGMA table_info({table})").fetchall():
                yield db.name, table, col[1]


def cases(data: Path) -> list[tuple[str, str, str]]:
    return list(table_columns(data / "chain.db")) + list(table_columns(data / "state.db"))


def change(db: Path, table: str, column: str) -> str:
    """Change ``column`` in one row of ``table`` (a row in the middle); returns a description."""
    with closing(sqlite3.connect(db, isolation_level=None)) as c:
        rows = c.execute(f"SELECT rowid, {column} FROM {table}").fetchall() if _has_rowid(c, table) else None
        if rows is not None:
            rowid, value = rows[len(rows) // 2]
            _update_first_free(c, f"UPDATE {table} SET {column}=? WHERE rowid=?", value, (rowid,))
            return f"{table}.{column} of rowid {rowid}"
        pk = [r[1] for r in sorted(c.execute(f"PRAGMA table_info({table})").fetchall(), key=lambda r: r[5]) if r[5]]
        all_rows = c.execute(f"SELECT {', '.join(pk)}, {column} FROM {table} ORDER BY {', '.join(pk)}").fetchall()
        row = all_rows[len(all_rows) // 2]
        where = " AND ".join(f"{k}=?" for k in pk)
        _update_first_free(c, f"UPDATE {table} SET {column}=? WHERE {where}", row[-1], tuple(row[:-1]))
        return f"{table}.{column} of row {row[:-1]!r:.80}"


def _has_rowid(c: sqlite3.Connection, table: str) -> bool:
    sql = c.execute("SELECT sql FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
    return "WITHOUT ROWID" not in sql.upper()


@pytest.fixture(scope="module")
def all_cases(demo) -> list[tuple[str, str, str]]:
    return cases(demo[0])


def test_every_table_and_column_is_covered(all_cases):
    tables = {(f, t) for f, t, _ in all_cases}
    for expected in [("chain.db", "blocks"), ("chain.db", "attestations"), ("chain.db", "meta"), ("state.db", "state"),
                     ("state.db", "smt"), ("state.db", "tx_index"), ("state.db", "meta"),
                     ("state.db", "ix_vehicles_history"), ("state.db", "ix_parts_installations")]:
        assert expected in tables
    assert len(all_cases) > 40


#: The cases are shared out among this many tests (case n in part n % PARTS), which the parallel run
#: may give to different workers (``SPREAD`` in conftest.py): together they judge every case.
PARTS = 4


@pytest.mark.timeout(900)  # one node restart per changed value: 548 s for all 193 in one test (CI)
@pytest.mark.parametrize("part", range(PARTS), ids=[f"part{i + 1}of{PARTS}" for i in range(PARTS)])
def test_one_changed_value_anywhere_is_never_served_as_genuine(demo, all_cases, tmp_path, part):
    data, paths, golden = demo
    report: list[str] = []
    for n, (file, table, column) in enumerate(all_cases):
        if n % PARTS != part:
            continue
        copy = tmp_path / f"case{n}"
        shutil.copytree(data, copy)
        what = change(copy / file, table, column)
        label = f"{file}: {what}"
        verdict = judge(copy, paths, golden, label)
        report.append(f"{label}: {verdict}")
        shutil.rmtree(copy)
    print("\n".join(report))


def judge(copy: Path, paths: list[str], golden: dict[str, tuple[int, Any]], label: str) -> str:
    try:
        served = Served(copy)
    except (NodeFault, DamagedData, ValueError) as exc:
        return f"refused at start ({type(exc).__name__})"
    try:
        refused = 0
        listings_differ: list[str] = []
        with signed(served.url, served.key, timeout=30) as http:
            for p in paths:
                code, body = answer(http, p)
                if code == 503 and body["error"]["code"] == "integrity_failure":
                    refused += 1
                    continue
                if (code, body) != golden[p] and (p.startswith(DERIVED_LISTINGS)
                                                  or (p.startswith("/v1/txs/") and code == 404)):
                    listings_differ.append(p)
                    continue
                assert (code, body) == golden[p], f"{label}: {p} served something other than what was committed"
            st = http.get("/v1/status").json()
        if listings_differ:  # a row moved out of a listing: the scrubber must find it
            scrub = served.node.scrubber.run_once()
            assert scrub is not None and not scrub.ok, f"{label}: {listings_differ} changed and the scrubber saw nothing"
            return f"a derived listing changed ({len(listings_differ)}); found by the scrubber ({scrub.findings[0].kind})"
        if refused:
            assert st["healthy"] is False and st["integrity"]["damage"], label
            return f"refused by {refused} reads"
        if served.node.rebuilt_state:
            return "state.db set aside and rebuilt at start"
        scrub = served.node.scrubber.run_once()
        assert scrub is not None
        if not scrub.ok:
            return f"found by the scrubber ({scrub.findings[0].kind})"
    finally:
        served.stop()
    found = audit(copy, workers=1)
    assert not found.ok, f"{label}: served unchanged, but neither the scrubber nor audit notices the change"
    return f"reported by audit ({found.findings[0].kind})"
