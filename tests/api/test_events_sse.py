"""The server-sent event stream: committed events in order, ids ``height:tx:event``, resumable with
Last-Event-ID (nothing missed, nothing twice) and replayable from a height.

The expected sequence is always rebuilt independently from the committed blocks' receipts
(``GET /v1/blocks/{h}?full=true``)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from blokauto.modules.governance import state as gov_state
from blokauto.modules.governance.messages import AddMember, Propose

from conftest import JSON_POST, K, parse_sse, signed, signed_client, signed_get, signed_post

Ev = tuple[str, str, dict[str, Any]]  # (id, event type, data)


# ---------------------------------------------------------------- helpers


def commit(live: Any, raw: bytes) -> dict[str, Any]:
    r = signed_post(live.url + "/v1/txs", headers=JSON_POST, params={"wait": 20}, content=raw, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def add(live: Any, label: str, roles: tuple[str, ...] = ("manufacturer",)) -> bytes:
    return live.tx(K("oem-admin"), AddMember(member=K(label).did, roles=list(roles)), K(label))


def commit_batch(live: Any, raws: list[bytes]) -> list[dict[str, Any]]:
    r = signed_post(live.url + "/v1/txs/batch", headers=JSON_POST, content=b"[" + b",".join(raws) + b"]", timeout=30)
    assert r.json()["accepted"] == len(raws), r.text
    return [signed_get(f"{live.url}/v1/txs/{x['id']}", params={"wait": 20}, timeout=30).json()
            for x in r.json()["results"]]


def propose(live: Any, value: int) -> dict[str, Any]:
    """A proposal: one transaction with two events (proposal_opened, vote_cast)."""
    ev = commit(live, live.tx(K("ins-admin"), Propose(action=gov_state.SetParameter(name="max_block_txs", value=value))))
    assert [e["type"] for e in ev["receipt"]["events"]] == ["governance.proposal_opened", "governance.vote_cast"]
    return ev


def history(live: Any, label: str) -> None:
    """Blocks of every shape: one event, two events in one tx, a failed tx (no events) and a
    block of several transactions."""
    commit(live, add(live, f"{label}-a"))
    propose(live, 4000)
    failed = commit(live, add(live, f"{label}-wrong", ("insurer",)))
    assert failed["receipt"]["ok"] is False and failed["receipt"]["events"] == []
    commit_batch(live, [add(live, f"{label}-b{i}") for i in range(3)])


def head(live: Any) -> int:
    return httpx.get(live.url + "/v1/status", timeout=10).json()["height"]


def expected_events(live: Any, from_height: int = 0) -> list[Ev]:
    out: list[Ev] = []
    for h in range(from_height, head(live) + 1):
        b = signed_get(f"{live.url}/v1/blocks/{h}", params={"full": "true"}, timeout=10).json()
        for i, receipt in enumerate(b["receipts"]):
            for j, ev in enumerate(receipt["events"]):
                data = {"height": h, "time": b["header"]["time"], "tx": b["tx_ids"][i], **ev}
                out.append((f"{h}:{i}:{j}", ev["type"], data))
    return out


class Stream:
    """A raw SSE connection; ``take(n)`` reads exactly n events (fails on a 30 s silence)."""

    def __init__(self, live: Any, *, last_event_id: str | None = None, from_height: int | None = None) -> None:
        self.http = signed(timeout=httpx.Timeout(30, connect=10))
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        params = {"from_height": from_height} if from_height is not None else None
        self.cm = self.http.stream("GET", live.url + "/v1/events", headers=headers, params=params)
        self.r = self.cm.__enter__()
        self.events = parse_sse(self.r.iter_lines())

    def take(self, n: int) -> list[Ev]:
        return [next(self.events) for _ in range(n)]

    def close(self) -> None:
        self.cm.__exit__(None, None, None)
        self.http.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_ids(events: list[Ev]) -> None:
    keys = [tuple(int(x) for x in eid.split(":")) for eid, _, _ in events]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), keys
    for (eid, etype, data), (h, _, _) in zip(events, keys):
        assert data["type"] == etype and data["height"] == h


# ---------------------------------------------------------------- tests


def test_committed_events_arrive_live_in_order_with_ids(live_node):
    with Stream(live_node) as s:
        assert s.r.status_code == 200
        assert s.r.headers["content-type"].startswith("text/event-stream")
        start = head(live_node)
        history(live_node, "live")  # committed while the stream is open
        expected = expected_events(live_node, start + 1)
        assert len(expected) == 1 + 2 + 3
        got = s.take(len(expected))
    assert got == expected
    check_ids(got)
    ids = [eid for eid, _, _ in got]
    batch_height = got[-1][2]["height"]
    assert ids[-3:] == [f"{batch_height}:{i}:0" for i in range(3)]  # one block of three transactions
    assert [eid.split(":")[2] for eid in ids[1:3]] == ["0", "1"]  # two events of one transaction


def test_stream_starts_at_the_head_by_default(live_node):
    history(live_node, "old")
    with Stream(live_node) as s:
        new = commit(live_node, add(live_node, "after-connect"))
        (eid, etype, data), = s.take(1)
    assert eid == f"{new['height']}:0:0" and etype == "governance.member_added"
    assert data["member"] == K("after-connect").did and data["tx"] == new["id"]


@pytest.mark.parametrize("cut", [1, 2, 4, 6], ids=["after-single", "between-events-of-one-tx",
                                                   "between-txs-of-one-block", "end-of-block"])
def test_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(live_node, cut):
    history(live_node, "before")
    with Stream(live_node, from_height=1) as s:
        first = s.take(cut)
    last_id = first[-1][0]
    # while the client is away, more is committed
    history(live_node, "away")
    commit(live_node, add(live_node, "away-last"))
    expected = expected_events(live_node, 1)
    with Stream(live_node, last_event_id=last_id) as s:
        rest = s.take(len(expected) - cut)
        marker = commit(live_node, add(live_node, "marker"))
        (next_id, _, next_data), = s.take(1)  # the very next event is the new one: nothing was sent twice
    assert first + rest == expected
    check_ids(first + rest)
    assert next_id == f"{marker['height']}:0:0" and next_data["tx"] == marker["id"]


def test_sdk_resumes_from_last_event_id(live_node):
    history(live_node, "one")
    with signed_client(live_node.url, trust=live_node.genesis) as c:
        seen = []
        for ev in c.events(from_height=0, reconnect=False, idle_timeout=30):
            seen.append(ev)
            if len(seen) == 2:  # stop between the two events of the proposal
                break
        assert seen[-1].id.endswith(":0") and seen[-1].type == "governance.proposal_opened"
        history(live_node, "two")
        expected = expected_events(live_node, 0)
        for ev in c.events(last_event_id=seen[-1].id, reconnect=False, idle_timeout=30):
            seen.append(ev)
            if len(seen) == len(expected):
                break
    assert [(e.id, e.type, e.data) for e in seen] == expected
    assert [e.height for e in seen] == [d["height"] for _, _, d in expected]


@pytest.mark.parametrize("from_height", [0, 2, 3])
def test_from_height_replays_history_then_follows(live_node, from_height):
    history(live_node, "h1")
    history(live_node, "h2")
    expected = expected_events(live_node, from_height)
    assert expected and all(d["height"] >= from_height for _, _, d in expected)
    with Stream(live_node, from_height=from_height) as s:
        got = s.take(len(expected))
        new = commit(live_node, add(live_node, "follow"))
        (eid, _, data), = s.take(1)
    assert got == expected
    check_ids(got)
    assert eid == f"{new['height']}:0:0" and data["tx"] == new["id"]


def test_from_height_beyond_the_head_waits_for_that_height(live_node):
    h = head(live_node)
    with Stream(live_node, from_height=h + 2) as s:
        commit(live_node, add(live_node, "skipped"))  # height h+1: before the requested start
        second = commit(live_node, add(live_node, "wanted"))
        (eid, _, data), = s.take(1)
    assert second["height"] == h + 2
    assert eid == f"{h + 2}:0:0" and data["member"] == K("wanted").did


def test_two_clients_see_the_same_sequence(live_node):
    with Stream(live_node) as a, Stream(live_node) as b:
        start = head(live_node)
        history(live_node, "shared")
        n = len(expected_events(live_node, start + 1))
        assert a.take(n) == b.take(n)


@pytest.mark.parametrize("bad", ["yesterday", "1:2", "a:b:c", "1:2:3:4:5", "-1:0:0", "99999999999999999999:0:0", ""])
def test_malformed_last_event_id_is_refused(live_node, bad):
    with signed(timeout=10) as http, http.stream("GET", live_node.url + "/v1/events",
                                                       headers={"last-event-id": bad}) as r:
        assert r.status_code == 400
        r.read()
        err = msgspec.json.decode(r.content)["error"]
    assert err["code"] == "bad_event_id" and bad in err["message"] and err["detail"] == {"value": bad}


def test_events_without_follow_end_cleanly_once_caught_up(live_node):
    """`blokauto events --no-follow` prints what was committed and exits 0 (no timeout traceback)."""
    from conftest import run_cli

    raw = live_node.tx(K("oem-admin"), AddMember(member=K("quiet").did, roles=["manufacturer"]), K("quiet"))
    assert signed_post(f"{live_node.url}/v1/txs?wait=10", headers=JSON_POST, content=raw).status_code == 200
    r = run_cli("events", "--node", live_node.url, "--data", str(live_node.data), "--as", "node", "--from-height", "0",
                "--no-follow", timeout=60)  # signed with the node's key, which reads every event
    assert r.returncode == 0, r.stderr
    assert "governance.member_added" in r.stdout and "Traceback" not in r.stderr
