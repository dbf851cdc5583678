"""A handler bug triggered by some input fails that transaction, identically on every node,
instead of stopping block production (a denial of service any key could otherwise cause)."""

import msgspec
import pytest

from blokauto.api.errors import http_status
from blokauto.core.chain import MemoryLedger
from blokauto.core.errors import InvalidKeyPart
from blokauto.core.module import ANYONE, Module
from blokauto.core.registry import Registry
from blokauto.core.state import StateMap
from blokauto.core.tx import Message
from blokauto.modules.governance import module as governance

from conftest import K, build_tx, consortium

buggy = Module("buggy", "A module with a handler that breaks on some input.")
NOTES = StateMap("buggy/note/", str)


class Divide(Message, tag="buggy.divide"):
    by: int
    key: str = "k"


@buggy.message(Divide, roles=ANYONE)
def divide(state, ctx, msg: Divide) -> None:
    NOTES.put(state, str(100 // msg.by), msg.key)  # ZeroDivisionError for by=0; "/" in key is refused


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger(Registry([governance, buggy]), consortium())


@pytest.mark.parametrize("msg,code", [
    (Divide(by=0), "handler_error"),
    (Divide(by=1, key="a/b"), "invalid_identifier_format"),
], ids=["zero_division", "slash_in_a_state_key"])
def test_a_handler_failure_is_a_receipt_not_a_halt(ledger: MemoryLedger, msg: Divide, code: str) -> None:
    root = ledger.head.state_root
    bad = ledger.add_block([ledger.check(build_tx(K("x"), msg))])
    assert (bad.receipts[0].ok, bad.receipts[0].code) == (False, code)
    assert bad.header.state_root == root
    good = ledger.add_block([ledger.check(build_tx(K("x"), Divide(by=4)))])
    assert good.receipts[0].ok and NOTES.get(ledger, "k") == "25"


def test_replaying_a_handler_failure_gives_the_same_receipt(ledger: MemoryLedger) -> None:
    raw = build_tx(K("x"), Divide(by=0))
    first = ledger.add_block([ledger.check(raw)])
    again = MemoryLedger(Registry([governance, buggy]), consortium())
    replayed = again.add_block([again.check(raw)], time=first.header.time)
    assert msgspec.json.encode(replayed.receipts) == msgspec.json.encode(first.receipts)
    assert replayed.header == first.header


def test_an_identifier_with_a_slash_is_a_stable_refusal() -> None:
    with pytest.raises(InvalidKeyPart) as info:
        NOTES.key("a/b")
    assert info.value.code == "invalid_identifier_format" and http_status(info.value) == 400
