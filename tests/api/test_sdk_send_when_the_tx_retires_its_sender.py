"""``Client.send`` gives the receipt of a transaction that retires its own sender's key (a key
rotation, a member revoking itself), even when the block is committed before the receipt is read:
the node then refuses the retired key (revoked_caller), so the client reads as a co-signer or as its
own key. Found when ``blokauto demo`` failed under load at its key-rotation step."""

from __future__ import annotations

import time
from typing import Any

from blokauto.client import Client
from blokauto.core.crypto import KeyPair
from blokauto.modules.governance.messages import AddMember, RevokeMember, RotateKey

from conftest import K


def committed_before_read(client: Client, live_node: Any) -> None:
    """Make ``client.submit`` return only once its transaction is committed (a slow client)."""
    submit = client.submit

    def slow_submit(tx: Any, **kw: Any) -> str:
        txid = submit(tx, **kw)
        deadline = time.monotonic() + 30
        while (at := live_node.node.committer.locate(bytes.fromhex(txid))) is None \
                or live_node.node.flushed_height < at[0]:  # committed, and what it changed is what reads see
            assert time.monotonic() < deadline, "the transaction was never committed"
            time.sleep(0.01)
        return txid

    client.submit = slow_submit  # type: ignore[method-assign]


def test_a_rotation_committed_before_its_receipt_is_read_is_read_by_the_new_key(live_node: Any) -> None:
    old, new = KeyPair.from_label("rotating-old"), KeyPair.from_label("rotating-new")
    with Client(live_node.url, trust=live_node.genesis) as c:
        assert c.send(AddMember(member=old.did, roles=["manufacturer"]), K("oem-admin"), old).ok
        committed_before_read(c, live_node)
        info = c.send(RotateKey(new_key=new.did), old, new)
    assert info.ok and info.events[0]["type"] == "governance.key_rotated"


def test_an_admin_revoking_its_own_key_through_a_gateway_gets_the_receipt(live_node: Any) -> None:
    admin = KeyPair.from_label("self-revoking-admin")
    with Client(live_node.url, trust=live_node.genesis) as c:
        assert c.send(AddMember(member=admin.did, roles=["admin"]), K("oem-admin"), admin).ok
    with Client(live_node.url, key=K("reg-node"), trust=live_node.genesis) as gateway:
        committed_before_read(gateway, live_node)
        info = gateway.send(RevokeMember(member=admin.did, reason="leaving"), admin)
    assert info.ok
