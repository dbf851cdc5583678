"""What one request, and one client, may take from a node: bodies and items are bounded before
anything is decoded, waits hold no thread, a client cannot hold every slot, and submissions must
be declared JSON."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest

from blokauto.api.app import MAX_BATCH_BYTES
from blokauto.api.limits import MAX_CLIENT_REQUESTS
from blokauto.modules.governance.messages import AddMember

from conftest import JSON_POST, K, signed_get, signed_post


def add(live: Any, label: str) -> bytes:
    key = K(label)
    return live.tx(K("oem-admin"), AddMember(member=key.did, roles=["manufacturer"]), key)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml",
                                          "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("path", ["/v1/txs", "/v1/txs/batch"])
def test_a_submission_not_declared_json_is_refused_and_changes_nothing(live_node, content_type, path):
    raw = add(live_node, f"ctype-{path}-{content_type}")
    body = raw if path == "/v1/txs" else b"[" + raw + b"]"
    headers = {} if content_type is None else {"content-type": content_type}
    r = signed_post(live_node.url + path, content=body, headers=headers, timeout=10)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert "application/json" in r.json()["error"]["message"]
    r = signed_post(live_node.url + "/v1/txs", content=raw, headers=JSON_POST, timeout=10)
    assert r.status_code == 202  # it was not taken before


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def test_a_batch_body_over_its_limit_is_refused_as_it_arrives(live_node):
    import os

    before = rss(os.getpid())
    body = b"[" + b",".join([b"1"] * ((MAX_BATCH_BYTES + 2**20) // 2)) + b"]"
    r = signed_post(live_node.url + "/v1/txs/batch", content=body, headers=JSON_POST, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    del body
    assert rss(os.getpid()) - before < 200 * 2**20  # nothing was decoded into millions of objects


def test_a_batch_of_millions_of_tiny_items_is_refused_before_decoding(live_node):
    body = b"[" + b",".join([b"1"] * 4_000_000) + b"]"  # 8 MB: under the byte limit
    assert len(body) < MAX_BATCH_BYTES
    r = signed_post(live_node.url + "/v1/txs/batch", content=body, headers=JSON_POST, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_complex"
    assert "split" in r.json()["error"]["message"]


def test_a_single_transaction_body_over_the_largest_chain_limit_is_refused(live_node):
    r = signed_post(live_node.url + "/v1/txs", content=b" " * (2**20 + 10), headers=JSON_POST, timeout=30)
    assert r.status_code == 413


@pytest.mark.parametrize("depth", [200, 1_000, 5_000])
def test_a_deeply_nested_query_parameter_is_refused_not_a_500(live_node, depth):
    scope = "[" * depth + "]" * depth
    r = signed_get(live_node.url + "/v1/q/recalls/preview", params={"scope": scope}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_query"


def test_a_huge_query_parameter_is_refused(live_node):
    r = signed_get(live_node.url + "/v1/q/recalls/preview", params={"scope": "{" + " " * 20_000 + "}"}, timeout=30)
    assert r.status_code == 400 and "longer than" in r.json()["error"]["message"]


def test_waiting_for_a_height_far_ahead_is_answered_at_once(live_node):
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: signed_get(live_node.url + "/v1/state/gov/org/oem",
                                                    params={"min_height": 999_999_999}, timeout=30), range(16)))
    for r in answers:
        assert r.status_code == 404 and r.json()["error"]["code"] == "height_not_reached"
        assert "999999999" in r.json()["error"]["message"]


def hold_the_flusher(live: Any) -> tuple[threading.Event, Any]:
    """The state flusher waits until released: state.db stays behind the newest block."""
    store = live.node.committer.state
    release = threading.Event()
    write_layer = store._write_layer

    def held(layer: Any) -> None:
        release.wait(60)
        write_layer(layer)

    store._write_layer = held
    return release, lambda: (release.set(), store.__dict__.pop("_write_layer", None))


def test_waits_for_the_state_hold_no_thread_and_do_not_stall_other_reads(live_node):
    release, restore = hold_the_flusher(live_node)
    try:
        r = signed_post(live_node.url + "/v1/txs", params={"wait": 20}, content=add(live_node, "behind"),
                       headers=JSON_POST, timeout=30)
        height = r.json()["height"]
        waiting = ThreadPoolExecutor(40)
        futures = [waiting.submit(signed_get, live_node.url + "/v1/state/gov/org/oem",
                                  params={"min_height": height}, timeout=30) for _ in range(40)]
        # 40 readers wait for the flush; everyone else is still answered while they do
        for path in ("/v1/blocks/latest", f"/v1/txs/{r.json()['id']}", "/v1/q/governance/organisations",
                     "/v1/status"):
            assert signed_get(live_node.url + path, timeout=30).status_code == 200
        assert not any(f.done() for f in futures)
        release.set()
        assert all(f.result().json()["height"] >= height for f in futures)
        waiting.shutdown()
    finally:
        restore()


def test_one_client_cannot_take_every_slot_of_a_node(live_node):
    release, restore = hold_the_flusher(live_node)
    try:
        r = signed_post(live_node.url + "/v1/txs", params={"wait": 20}, content=add(live_node, "hog"),
                       headers=JSON_POST, timeout=30)
        height = r.json()["height"]
        pool = ThreadPoolExecutor(MAX_CLIENT_REQUESTS)
        held = [pool.submit(signed_get, live_node.url + "/v1/state/gov/org/oem", params={"min_height": height},
                            timeout=30) for _ in range(MAX_CLIENT_REQUESTS)]
        live = live_node.node
        limits_seen = lambda: sum(1 for _ in held if not _.done())  # noqa: E731
        assert limits_seen() == MAX_CLIENT_REQUESTS
        import time as _t

        deadline = _t.monotonic() + 20
        over = None
        while _t.monotonic() < deadline:  # until every held request reached the node
            over = httpx.get(live_node.url + "/v1/status", timeout=30)
            if over.status_code == 429:
                break
            _t.sleep(0.05)
        assert over is not None and over.status_code == 429, over.text if over is not None else None
        assert over.json()["error"]["code"] == "too_many_requests" and over.headers["retry-after"] == "1"
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
        assert other.get(live_node.url + "/v1/status").status_code == 200  # another client is served
        other.close()
        release.set()
        assert all(f.result().status_code == 200 for f in held)
        pool.shutdown()
        assert live.status()["healthy"] is True
    finally:
        restore()
