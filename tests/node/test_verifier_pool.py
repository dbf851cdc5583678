"""The verifier workers hand back each transaction decoded (as msgpack): what the node executes
must be exactly what the JSON it journals and commits decodes to, for every kind of message."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import CHAIN, K, build_tx, now_ms

from blokauto.core.errors import BlokautoError
from blokauto.core.tx import CheckedTx
from blokauto.modules import default_registry
from blokauto.modules.governance.messages import AddMember, Propose, Vote
from blokauto.modules.governance.state import AdmitOrganisation, SetParameter
from blokauto.node.verifier import VerifierPool
from helpers.parts import B, P, assemble, install, lot, mint, mint_batch, part_type, receive, remove, ship
from helpers.vehicles import register_msg, vin_for


def messages() -> list[Any]:
    vin = vin_for("WZZ")
    return [
        AddMember(member=K("someone").did, roles=["manufacturer"]),
        Propose(action=SetParameter(name="max_block_txs", value=500)),
        Propose(action=AdmitOrganisation(id="new", name="New Co", roles=["dealer"], admins=[K("n").did])),
        Vote(proposal=1, approve=True),
        register_msg(vin),
        part_type("ECU-1", serialized=True),
        mint("ECU-1", "S1", "S2"),
        mint_batch("BOLT-1", "b1", 1000, ("cobalt-lot", 10)),
        lot("cobalt-lot", 5000),
        ship("acme", "ECU-1/S1"),
        receive("ECU-1/S1"),
        install(vin, P("ECU-1/S1", "front"), B("BOLT-1/b1", 4)),
        remove(vin, "ECU-1/S1"),
        assemble("ECU-1/S1", "ECU-1/S2"),
    ]


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(CHAIN, default_registry(), workers=1)
    yield p
    p.close()


def test_what_the_workers_hand_back_is_what_the_committed_json_decodes_to(pool: VerifierPool) -> None:
    codec = default_registry().codec
    raws = [build_tx(K("oem-admin"), m, expires=now_ms() + 60_000) for m in messages()]
    results = pool.check(raws, now_ms=now_ms(), max_bytes=1 << 20, max_ttl_ms=None).result(30)
    assert len(results) == len(raws)
    for raw, got in zip(raws, results):
        assert isinstance(got, CheckedTx), got
        assert got.raw == raw
        assert got.tx == codec.decode(raw)
        assert type(got.tx.body.msg) is type(codec.decode(raw).body.msg)


def test_a_refused_transaction_comes_back_as_its_error_beside_good_ones(pool: VerifierPool) -> None:
    good = build_tx(K("oem-admin"), messages()[0], expires=now_ms() + 60_000)
    results = pool.check([b'{"not": "a tx"}', good], now_ms=now_ms(), max_bytes=1 << 20,
                         max_ttl_ms=None).result(30)
    assert isinstance(results[0], BlokautoError) and results[0].code == "malformed_tx"
    assert isinstance(results[1], CheckedTx) and results[1].raw == good
