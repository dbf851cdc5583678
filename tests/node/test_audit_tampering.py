"""Tampering with a stopped node's data folder is caught by ``blokauto audit``.

A small chain is built once with ``blokauto demo``; each case copies the folder, changes one
thing directly with sqlite3 (or edits genesis.json), runs the real ``blokauto audit`` on the
copy and expects exit code 1 with a finding that names the right kind and height. The expected
heights are read from the block log itself, not assumed from the demo's script.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import msgspec
import pytest

from blokauto.core import crypto
from blokauto.core.block import Header
from blokauto.core.encoding import canonical
from blokauto.keystore import KeyStore

from conftest import run_cli

pytestmark = pytest.mark.e2e  # starts real node processes

unpack = msgspec.msgpack.Decoder(list[bytes]).decode
pack = msgspec.msgpack.encode


@pytest.fixture(scope="module")
def demo_chain(tmp_path_factory, copy_demo) -> Path:
    data = tmp_path_factory.mktemp("audit") / "demo"
    out = copy_demo(data)
    assert "audit: OK" in out, out
    return data


@pytest.fixture
def copy(demo_chain, tmp_path) -> Path:
    return shutil.copytree(demo_chain, tmp_path / "copy")


def sql(path: Path, statement: str, *args: Any) -> int:
    with closing(sqlite3.connect(path, isolation_level=None)) as c:
        n = c.execute(statement, args).rowcount
    assert n >= 1, f"{statement} changed nothing"
    return n


def rows(path: Path, statement: str, *args: Any) -> list[tuple]:
    with closing(sqlite3.connect(path)) as c:
        return c.execute(statement, args).fetchall()


def audit(data: Path) -> tuple[int, dict[str, Any]]:
    r = run_cli("audit", "--data", str(data), "--json")
    assert r.returncode in (0, 1), r.stdout + r.stderr  # a finding, never a crash
    return r.returncode, json.loads(r.stdout)


# ---------------------------------------------------------------- facts read from the block log


def blocks(data: Path) -> list[dict[str, Any]]:
    out = []
    query = "SELECT height, header, txs, ids, receipts FROM blocks ORDER BY height"
    for h, header, txs, ids, receipts in rows(data / "chain.db", query):
        out.append({"height": h, "header": msgspec.json.decode(header), "txs": unpack(txs),
                    "ids": [ids[i:i + 32] for i in range(0, len(ids), 32)],
                    "receipts": [msgspec.json.decode(r) for r in unpack(receipts)]})
    return out


def event_height(data: Path, kind: str, **match: Any) -> int:
    """Height of the last block with an event of ``kind`` whose fields include ``match``."""
    hits = [b["height"] for b in blocks(data) for r in b["receipts"] for e in r["events"]
            if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]
    assert hits, (kind, match)
    return hits[-1]


def busiest_block(data: Path) -> dict[str, Any]:
    """A block in the middle of the chain holding a successful transaction."""
    bs = [b for b in blocks(data) if b["height"] > 0 and any(r["ok"] for r in b["receipts"])]
    return bs[len(bs) // 2]


def did(data: Path, key_name: str) -> str:
    return KeyStore(data / "keys").entry(key_name).did


def head(data: Path) -> int:
    return rows(data / "chain.db", "SELECT max(height) FROM blocks")[0][0]


def flip_hex_char(text: bytes, at: int) -> bytes:
    c = chr(text[at])
    assert c in "0123456789abcdef", text[at - 10:at + 10]
    return text[:at] + ("1" if c == "0" else "0").encode() + text[at + 1:]


# ---------------------------------------------------------------- the cases: (tamper(copy) -> expected findings)

Case = Callable[[Path], list[tuple[str, int | None]]]
CASES: list[Case] = []


def case(fn: Case) -> Case:
    CASES.append(fn)
    return fn


@case
def state_entry_value_changed(d):
    key = b"gov/org/city-motors"
    value = msgspec.json.decode(rows(d / "state.db", "SELECT v FROM state WHERE k=?", key)[0][0])
    value["roles"] = ["dealer", "regulator"]
    sql(d / "state.db", "UPDATE state SET v=? WHERE k=?", canonical(value), key)
    return [("state-entry", event_height(d, "governance.organisation_admitted", org="city-motors"))]


@case
def state_entry_deleted(d):
    claims = did(d, "allied-claims")
    sql(d / "state.db", "DELETE FROM state WHERE k=?", f"gov/member/{claims}".encode())
    return [("state-entry", event_height(d, "governance.member_revoked", member=claims))]


@case
def state_entry_invented(d):
    sql(d / "state.db", "INSERT INTO state VALUES (?, ?)", b"gov/org/shadow-bank", b'{"id":"shadow-bank"}')
    return [("state-entry", head(d))]


@case
def state_tree_node_changed(d):
    (node,) = rows(d / "state.db", "SELECT node FROM smt WHERE path=''")[0]
    node = bytearray(node)
    node[5] ^= 0x01  # inside the first child's hash: still a well-formed node
    sql(d / "state.db", "UPDATE smt SET node=? WHERE path=''", bytes(node))
    return [("state-tree", head(d))]


@case
def state_tree_node_deleted(d):
    path = rows(d / "state.db", "SELECT path FROM smt WHERE path != '' ORDER BY path LIMIT 1")[0][0]
    sql(d / "state.db", "DELETE FROM smt WHERE path=?", path)
    return [("state-tree", head(d))]


@case
def state_root_in_meta_changed(d):
    sql(d / "state.db", "UPDATE meta SET v=? WHERE k='root'", b"\x00" * 32)
    return [("state-root", head(d))]


@case
def tx_index_row_changed(d):
    b = busiest_block(d)
    sql(d / "state.db", "UPDATE tx_index SET idx=idx+1 WHERE id=?", b["ids"][0])
    return [("tx-index", b["height"])]


@case
def tx_index_row_deleted(d):
    b = busiest_block(d)
    sql(d / "state.db", "DELETE FROM tx_index WHERE id=?", b["ids"][0])
    return [("tx-index", b["height"])]


@case
def module_index_row_changed(d):
    admin = did(d, "city-motors-admin")
    sql(d / "state.db", "UPDATE ix_governance_members SET roles='admin,dealer,regulator' WHERE did=?", admin)
    return [("index-row", event_height(d, "governance.organisation_admitted", org="city-motors"))]


@case
def module_index_row_deleted(d):
    admin = did(d, "city-motors-admin")
    sql(d / "state.db", "DELETE FROM ix_governance_members WHERE did=?", admin)
    return [("index-row", event_height(d, "governance.organisation_admitted", org="city-motors"))]


@case
def block_hash_replaced(d):
    h = busiest_block(d)["height"]
    sql(d / "chain.db", "UPDATE blocks SET hash=? WHERE height=?", b"\x11" * 32, h)
    return [("header", h)]


@case
def block_header_edited(d):
    b = busiest_block(d)
    header = dict(b["header"], time=b["header"]["time"] - 1)
    sql(d / "chain.db", "UPDATE blocks SET header=? WHERE height=?", canonical(header), b["height"])
    return [("header", b["height"])]


@case
def block_header_edited_and_rehashed(d):
    # a careful forger recomputes the stored hash: the next block's link and the attestation still give it away
    b = busiest_block(d)
    header = msgspec.convert(dict(b["header"], time=b["header"]["time"] - 1), Header)
    sql(d / "chain.db", "UPDATE blocks SET header=?, hash=? WHERE height=?", canonical(header), header.hash(),
        b["height"])
    return [("link", b["height"] + 1), ("attestation", b["height"])]


@case
def tx_bytes_changed_inside_a_block(d):
    b = busiest_block(d)
    txs = list(b["txs"])
    nonce_at = txs[0].index(b'"nonce":"') + len(b'"nonce":"') + 3
    txs[0] = flip_hex_char(txs[0], nonce_at)
    msgspec.json.decode(txs[0])  # still valid JSON
    sql(d / "chain.db", "UPDATE blocks SET txs=? WHERE height=?", pack(txs), b["height"])
    return [("tx-root", b["height"])]


@case
def tx_id_column_changed(d):
    b = busiest_block(d)
    ids = list(b["ids"])
    ids[0] = bytes(32)
    sql(d / "chain.db", "UPDATE blocks SET ids=? WHERE height=?", b"".join(ids), b["height"])
    return [("tx-id", b["height"])]


@case
def receipt_changed(d):
    b = busiest_block(d)
    (blob,) = rows(d / "chain.db", "SELECT receipts FROM blocks WHERE height=?", b["height"])[0]
    receipts = unpack(blob)
    i = next(i for i, r in enumerate(b["receipts"]) if r["ok"])
    assert b'"ok":true' in receipts[i]
    receipts[i] = receipts[i].replace(b'"ok":true', b'"ok":false')
    sql(d / "chain.db", "UPDATE blocks SET receipts=? WHERE height=?", pack(receipts), b["height"])
    return [("receipt-root", b["height"]), ("receipt", b["height"])]


@case
def attestation_signature_flipped(d):
    h = busiest_block(d)["height"]
    (sig,) = rows(d / "chain.db", "SELECT sig FROM attestations WHERE height=?", h)[0]
    sql(d / "chain.db", "UPDATE attestations SET sig=? WHERE height=?", flip_hex_char(sig.encode(), 0).decode(), h)
    return [("attestation", h)]


@case
def attestation_by_a_key_that_is_not_a_node(d):
    h = busiest_block(d)["height"]
    rogue = crypto.KeyPair.from_label("rogue")
    header = msgspec.convert(blocks(d)[h]["header"], Header)
    from blokauto.core.block import attest

    att = attest(header, rogue)
    sql(d / "chain.db", "UPDATE attestations SET node=?, sig=? WHERE height=?", att.node, att.sig, h)
    return [("attestation", h)]


@case
def header_time_before_its_predecessors_and_a_later_receipt_changed(d):
    """The audit reports the impossible time at its height and goes on to the end of the chain."""
    bs = blocks(d)
    b = busiest_block(d)
    h = b["height"]
    header = dict(b["header"], time=bs[h - 1]["header"]["time"] - 60_000)
    sql(d / "chain.db", "UPDATE blocks SET header=? WHERE height=?", canonical(header), h)
    last = bs[-1]
    receipts = [canonical(dict(r, code="x")) if i == 0 else canonical(r) for i, r in enumerate(last["receipts"])]
    sql(d / "chain.db", "UPDATE blocks SET receipts=? WHERE height=?", pack(receipts), last["height"])
    return [("time", h), ("header", h), ("link", h + 1), ("receipt-root", last["height"])]


@case
def block_deleted(d):
    h = busiest_block(d)["height"]
    sql(d / "chain.db", "DELETE FROM blocks WHERE height=?", h)
    return [("missing-block", h), ("re-execution", h)]


@case
def last_block_deleted(d):
    h = head(d)
    sql(d / "chain.db", "DELETE FROM blocks WHERE height=?", h)
    return [("missing-block", h)]  # state.db and head.json know block h was committed


@case
def genesis_json_edited(d):
    g = json.loads((d / "genesis.json").read_text())
    g["organisations"][0]["name"] = "Someone Else"
    (d / "genesis.json").write_text(json.dumps(g))
    return [("genesis", None)]


@pytest.mark.parametrize("tamper", CASES, ids=[c.__name__ for c in CASES])
def test_audit_names_the_tampered_height_and_kind(copy, tamper):
    expected = tamper(copy)
    code, report = audit(copy)
    assert code == 1 and report["ok"] is False, report
    findings = report["findings"]
    for kind, height in expected:
        where = "chain" if height is None else f"height {height}"
        assert any(f.startswith(f"[{kind}] {where}:") for f in findings), (kind, height, findings)


def test_untampered_copy_passes(copy):
    code, report = audit(copy)
    assert code == 0 and report["ok"] is True and report["findings"] == []
    assert report["height"] == head(copy) and report["state_height"] == report["height"]
    assert report["txs"] == sum(len(b["txs"]) for b in blocks(copy))


def test_human_output_names_the_finding(copy):
    h = busiest_block(copy)["height"]
    sql(copy / "chain.db", "UPDATE blocks SET hash=? WHERE height=?", b"\x22" * 32, h)
    r = run_cli("audit", "--data", str(copy), env={"COLUMNS": "200"})
    assert r.returncode == 1
    assert f"[header] height {h}:" in r.stdout and "problem(s)" in r.stdout


def test_missing_chain_db_is_a_finding(copy):
    for p in copy.glob("chain.db*"):
        p.unlink()
    code, report = audit(copy)
    assert code == 1 and any(f.startswith("[missing]") for f in report["findings"])
