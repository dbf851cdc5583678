"""Fixtures work: in-memory chain, in-process node, and a real node process."""

import httpx

from blokauto.modules.governance.messages import AddMember

from conftest import K, signed_client


def test_member_added_in_memory(chain):
    r = chain.run(K("oem-admin"), AddMember(member=K("w").did, roles=["manufacturer"]), K("w"))
    assert r.ok, r


def test_member_added_through_live_node(live_node):
    with signed_client(live_node.url, trust=live_node.genesis) as c:
        info = c.send(AddMember(member=K("w").did, roles=["manufacturer"]), K("oem-admin"), K("w"))
        assert info.ok and info.height == 1


def test_node_process_serves_status(node_process):
    p = node_process.start()
    assert httpx.get(p.url + "/v1/status").json()["height"] == 0
