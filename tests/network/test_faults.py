"""Faults in a running consortium network: 3 NATS JetStream servers and 4 organisations' nodes,
all real processes on 127.0.0.1, each stopped by its PID.

The fault scenarios run under a steady load of signed transactions posted over HTTP to several
nodes (``helpers.network.Load``), recording every id acknowledged. After the fault the load
stops and every node must come back in step (same height, head and state root), every
acknowledged transaction must be in exactly one block with a receipt on every node, and the
clients must have seen nothing worse than a retryable 503 ``unavailable``.

The security cases check what the NATS side refuses: strangers, other organisations'
attestation subjects, stream management, and attestations from keys that are not node keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from blokauto.core.block import attestation_bytes
from blokauto.core.crypto import KeyPair
from blokauto.core.encoding import canonical
from blokauto.modules.governance.messages import AddMember
from blokauto.node.netconfig import Subjects
from blokauto.node.network import alive, stop_pid
from blokauto.node.jetstream_ordering import Attestation

from conftest import JSON_POST, build_tx, now_ms
from helpers.network import (ROLE_OF, K, Load, Net, attestation_stream_messages, check_nothing_acknowledged_lost,
                             decode_attestation, log_tail, net_get, net_http, net_post, status, wait_in_step, wait_until)

pytestmark = pytest.mark.e2e  # starts real NATS servers and node processes

LOAD_BEFORE = 150  # acknowledged transactions before a fault is injected
LOAD_DURING = 100  # ... and after it, while it lasts
PAUSE_S = 8  # how long a node stays stopped: well past its NATS client's ping window (3 x 2 s)


@pytest.fixture(scope="module")
def quiet_net(tmp_path_factory) -> Iterator[Net]:
    """One network without load for the security cases."""
    n = Net.up(tmp_path_factory.mktemp("quiet") / "net")
    try:
        yield n
    finally:
        n.close()


def start_load(net: Net, prefix: str, targets: list[str]) -> Load:
    load = Load([net.node(o).url for o in targets], net.state.chain, prefix).start()
    wait_until(lambda: load.acked_count() >= LOAD_BEFORE, 60, f"{LOAD_BEFORE} acknowledged transactions before the fault",
               detail=load.summary)
    return load


def more_acks(load: Load, count: int, timeout: float, what: str) -> None:
    start = load.acked_count()
    wait_until(lambda: load.acked_count() >= start + count, timeout, f"{count} more acknowledged transactions {what}",
               detail=load.summary)


@contextmanager
def precondition() -> Iterator[None]:
    """In a test expected to fail with TimeoutError, a set-up step that times out is an error, not the bug."""
    try:
        yield
    except TimeoutError as exc:
        raise AssertionError(f"the scenario could not be set up: {exc}") from exc


def wait_height(node: Any, above: int, timeout: float, what: str) -> dict[str, Any]:
    """Node ``node``'s status once its height is above ``above``."""
    return wait_until(lambda: (lambda st: st if st["height"] > above else None)(status(node)), timeout,
                      f"node {node.org} to commit past height {above} {what}",
                      detail=lambda: f"height {status(node)['height']}")


# ---------------------------------------------------------------- ordering faults under load


def test_killing_the_jetstream_leader_loses_no_acknowledged_transaction(net: Net):
    load = start_load(net, "leader", list(ROLE_OF))
    try:
        leader = net.leader()
        os.kill(leader.pid, signal.SIGKILL)
        wait_until(lambda: not alive(leader.pid), 10, f"NATS server {leader.name} to die")

        # the two remaining servers elect a new leader, and clients keep being acknowledged
        new = net.leader(timeout=30)
        assert new.name != leader.name
        more_acks(load, LOAD_DURING, 60, f"with {leader.name} dead")

        net.restart_server(leader)
        net.wait_replicas_current(60)  # the restarted server caught up with the stream
        more_acks(load, LOAD_DURING, 60, f"after {leader.name} restarted")
    finally:
        load.halt()
    result = check_nothing_acknowledged_lost(net, load)
    assert result["failed"] > 0 and result["ok"] > 0  # both kinds of receipt were exercised


def test_a_node_killed_and_restarted_catches_up_from_the_stream(net: Net):
    victim = net.node("meister-werkstatt")
    others = [n for n in net.nodes if n is not victim]
    load = start_load(net, "killnode", [n.org for n in others])
    try:
        before = status(victim)["height"]
        assert before > 0
        net.kill_node(victim)
        more_acks(load, 2 * LOAD_DURING, 60, f"with node {victim.org} dead")
        # the three others keep committing, and their checkpoints reach the quorum (3 of 4) without it
        st = wait_height(others[0], before + 3, 30, f"with node {victim.org} dead")
        assert st["quorum"] == 3
        cp = httpx.get(f"{others[0].url}/v1/checkpoints/{st['height']}", timeout=30).json()
        assert len(cp["attestations"]) >= 3
        assert {a["node"] for a in cp["attestations"]} <= {K(f"{n.org}-node").did for n in others}
        net.restart_node(victim)
        more_acks(load, LOAD_DURING, 60, f"after node {victim.org} restarted")
    finally:
        load.halt()
    result = check_nothing_acknowledged_lost(net, load)
    assert result["height"] > st["height"]


def test_a_paused_node_resumes_and_catches_up(net: Net):
    victim = net.node("allied-insurance")
    others = [n for n in net.nodes if n is not victim]
    load = start_load(net, "pause", [n.org for n in others])
    try:
        paused_at = status(others[0])["height"]
        net.pause(victim)
        stopped = time.monotonic()
        try:
            more_acks(load, 2 * LOAD_DURING, 60, f"with node {victim.org} stopped")
            wait_height(others[0], paused_at + 3, 30, f"with node {victim.org} stopped")
            time.sleep(max(0.0, stopped + PAUSE_S - time.monotonic()))
        finally:
            net.resume(victim)
        more_acks(load, LOAD_DURING, 60, f"after node {victim.org} resumed")
    finally:
        load.halt()
    check_nothing_acknowledged_lost(net, load)


def test_restarting_all_nats_servers_loses_nothing(net: Net):
    load = start_load(net, "allnats", list(ROLE_OF))
    try:
        servers = list(net.state.servers)
        for s in servers:
            os.kill(s.pid, signal.SIGTERM)
        for s in servers:
            wait_until(lambda: not alive(s.pid), 30, f"NATS server {s.name} to stop on SIGTERM")
        time.sleep(2)
        for s in servers:
            net.restart_server(s)
        net.wait_replicas_current(60)
        more_acks(load, 2 * LOAD_DURING, 90, "after every NATS server restarted")
    finally:
        load.halt()
    check_nothing_acknowledged_lost(net, load, timeout=150)


# ---------------------------------------------------------------- who may publish what


async def _connect_errors(servers: list[str], **kw: Any) -> tuple[BaseException | None, list[str]]:
    import nats

    seen: list[str] = []

    async def on_error(exc: Exception) -> None:
        seen.append(f"{type(exc).__name__}: {exc}")

    try:
        nc = await nats.connect(servers=servers, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0,
                                error_cb=on_error, **kw)
    except Exception as exc:  # noqa: BLE001 - the refusal is what is tested
        return exc, seen
    await nc.close()
    return None, seen


def test_a_publisher_without_credentials_is_refused(quiet_net: Net):
    from blokauto.node.credentials import new_user_seed

    net = quiet_net
    own = net.org_options("kba")
    tls = own["tls"]  # the right CA: these connections fail on credentials, not on TLS
    stranger = net.base / "stranger.nk"
    stranger.write_bytes(new_user_seed())
    cases = {"no credentials": {},
             "a password user": {"user": "kba", "password": "not-the-password"},
             "an nkey the servers do not know": {"nkeys_seed": str(stranger)}}
    for what, kw in cases.items():
        for url in net.state.server_urls:  # every server refuses, not just the first one tried
            exc, seen = asyncio.run(_connect_errors([url], tls=tls, **kw))
            assert exc is not None, f"{what}: {url} accepted the connection"
            assert "authorization violation" in str(exc).lower() + " ".join(seen).lower(), f"{what}: {url}: {exc!r} {seen}"
    # and the right credentials connect (so the refusals above are about the credentials)
    exc, seen = asyncio.run(_connect_errors(**own))
    assert exc is None, (exc, seen)


def test_an_organisation_cannot_publish_another_organisations_attestations_or_create_streams(quiet_net: Net):
    import nats
    import nats.errors
    from nats.js.api import StreamConfig

    net = quiet_net
    subjects = Subjects(net.state.chain)
    a, b = net.settings("bavaria-motors"), net.settings("allied-insurance")
    marker = b'{"forged-by":"bavaria-motors"}'
    before = net.order_stream_info().state

    async def as_org_a() -> dict[str, Any]:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc).lower())

        out: dict[str, Any] = {"errors": errors}
        nc = await nats.connect(**net.org_options(a.org), error_cb=on_error, connect_timeout=2)
        js = nc.jetstream(timeout=1.5)
        try:
            # control: its own attestation subject takes a message
            out["own"] = await js.publish(subjects.attest(a.org), marker, stream=subjects.attest_stream)
            # another organisation's attestation subject, plainly and through JetStream
            await nc.publish(subjects.attest(b.org), marker)
            await nc.flush()
            try:
                out["theirs"] = await js.publish(subjects.attest(b.org), marker, stream=subjects.attest_stream,
                                                 headers={"Nats-Msg-Id": f"att-{b.org}-1000000"})
            except nats.errors.TimeoutError as exc:
                out["theirs"] = exc
            for name, call in [("create", lambda: js.add_stream(StreamConfig(name="MALLORY", subjects=["mallory.>"]))),
                               ("capture", lambda: js.add_stream(StreamConfig(name="MALLORY2",
                                                                              subjects=[subjects.prefix + ".x.>"]))),
                               ("update", lambda: js.update_stream(StreamConfig(name=subjects.order_stream,
                                                                                subjects=[subjects.order_all],
                                                                                num_replicas=1))),
                               ("purge", lambda: js.purge_stream(subjects.order_stream)),
                               ("delete", lambda: js.delete_stream(subjects.attest_stream))]:
                try:
                    out[name] = await call()
                except nats.errors.TimeoutError as exc:
                    out[name] = exc
            await asyncio.sleep(0.5)  # let every -ERR reach the error callback
        finally:
            await nc.close()
        return out

    out = asyncio.run(as_org_a())
    assert out["own"].stream == subjects.attest_stream
    for name in ("theirs", "create", "capture", "update", "purge", "delete"):
        assert isinstance(out[name], nats.errors.TimeoutError), f"{name} was answered: {out[name]!r}"
    violations = [e for e in out["errors"] if "permissions violation for publish" in e]
    for subject in (subjects.attest(b.org), "$js.api.stream.create.mallory", "$js.api.stream.create.mallory2",
                    f"$js.api.stream.update.{subjects.order_stream}", f"$js.api.stream.purge.{subjects.order_stream}",
                    f"$js.api.stream.delete.{subjects.attest_stream}"):
        assert any(subject.lower() in v for v in violations), f"no permissions violation for {subject}: {out['errors']}"

    # what the operator sees: nothing forged on B's subject, no new stream, the streams unchanged
    assert marker not in attestation_stream_messages(net, subjects.attest(b.org))
    assert marker in attestation_stream_messages(net, subjects.attest(a.org))

    async def streams(nc: Any, js: Any) -> list[str]:
        return [s.config.name for s in await js.streams_info()]

    assert sorted(net.admin(streams)) == sorted([subjects.order_stream, subjects.attest_stream])
    after = net.order_stream_info()
    assert after.state.messages == before.messages and after.config.num_replicas == 3
    for n in net.nodes:  # the junk on A's own subject is refused by every node; nothing else changed
        wait_until(lambda: status(n)["refused_attestations"] >= 1, 10, f"node {n.org} to refuse the junk attestation")
        assert status(n)["healthy"]


def test_attestations_from_unknown_keys_are_refused(quiet_net: Net):
    import nats

    net = quiet_net
    subjects = Subjects(net.state.chain)
    a = net.settings("kba")
    # a block to attest, committed by every node
    with net_http(timeout=60) as http:
        member = K("attest-test-member")
        raw = build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                       chain=net.state.chain, expires=now_ms() + 600_000)
        r = http.post(net.nodes[0].url + "/v1/txs", headers=JSON_POST, params={"wait": 30}, content=raw)
        assert r.status_code == 200 and r.json()["receipt"]["ok"], r.text
    height = r.json()["height"]
    st = wait_in_step(net, timeout=60, min_height=height)
    before = {n.org: status(n)["refused_attestations"] for n in net.nodes}
    block = net_get(f"{net.nodes[0].url}/v1/blocks/{height}", timeout=30).json()
    genuine = {x["node"] for x in block["attestations"]}
    assert len(genuine) >= st["quorum"]

    stranger = KeyPair.generate()
    header_hash = bytes.fromhex(block["hash"])
    forged = Attestation(height, block["hash"], block["header"]["state_root"], stranger.did,
                         stranger.sign(attestation_bytes(header_hash)).hex())
    # the same, but claiming to be kba's node key (a signature that does not verify)
    impostor = Attestation(height, block["hash"], block["header"]["state_root"], K("kba-node").did,
                           stranger.sign(attestation_bytes(header_hash)).hex())
    assert K("kba-node").did in genuine

    async def publish() -> None:
        nc = await nats.connect(**net.org_options(a.org), connect_timeout=2)
        try:
            js = nc.jetstream(timeout=5)
            for att in (forged, impostor):
                await js.publish(subjects.attest(a.org), canonical(att), stream=subjects.attest_stream)
        finally:
            await nc.close()

    asyncio.run(publish())
    for n in net.nodes:
        wait_until(lambda: status(n)["refused_attestations"] >= before[n.org] + 2, 15,
                   f"node {n.org} to refuse both forged attestations",
                   detail=lambda: f"refused {status(n)['refused_attestations']}, before {before[n.org]}")
        assert status(n)["healthy"], status(n)
        for h in (height, "latest"):
            cp = httpx.get(f"{n.url}/v1/checkpoints/{h}", timeout=30).json()
            signers = [x["node"] for x in cp["attestations"]]
            assert stranger.did not in signers, f"node {n.org} serves the stranger's attestation at {h}"
            sigs = {x["sig"] for x in cp["attestations"]}
            assert impostor.sig not in sigs, f"node {n.org} serves the impostor's signature at {h}"
    # the forged messages are on the stream (kba may publish there); the nodes are what refuses them
    on_stream = [decode_attestation(m) for m in attestation_stream_messages(net, subjects.attest(a.org))]
    assert forged in on_stream and impostor in on_stream
    log = log_tail(net.nodes[1], 50_000)
    assert f"by {stranger.did}, which is not a node key of the consortium" in log, log[-2000:]
    assert "whose signature does not verify" in log, log[-2000:]


def test_a_well_formed_transaction_with_a_forged_signature_is_left_out_by_every_node(quiet_net: Net):
    """An organisation publishes, straight to the ordering stream (which it may), a well-formed
    transaction whose sender's signature was made by another key. Every node leaves it out and
    counts it; the genuine transaction with the same id is still accepted afterwards."""
    from blokauto.core.tx import check_stateless, signing_bytes
    from blokauto.modules import default_registry
    from blokauto.node.jetstream import content_id

    net = quiet_net
    subjects = Subjects(net.state.chain)
    with precondition():
        st = wait_in_step(net, timeout=60)
    before = {n.org: status(n)["dropped_messages"] for n in net.nodes}
    member = K("forged-signature-member")
    genuine = build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                       chain=net.state.chain, expires=now_ms() + 600_000)
    txid = check_stateless(genuine, default_registry().codec, chain=net.state.chain, max_bytes=65_536).id
    doc = json.loads(genuine)
    mallory = KeyPair.generate()
    assert doc["sigs"][0]["signer"] == K("kba-admin").did
    doc["sigs"][0]["sig"] = mallory.sign(signing_bytes(txid)).hex()  # kba-admin's name, mallory's signature
    forged = canonical(doc)
    assert forged != genuine and len(forged) == len(genuine)
    (ack,) = _publish_as(net, "bavaria-motors", subjects.tx, subjects.order_stream, [(forged, content_id(forged))])
    assert ack.duplicate is None and ack.stream == subjects.order_stream
    for n in net.nodes:
        wait_until(lambda: status(n)["dropped_messages"] == before[n.org] + 1, 15,
                   f"node {n.org} to leave the forged transaction out and count it",
                   detail=lambda: f"dropped {status(n)['dropped_messages']}, before {before[n.org]}")
    agreed = wait_in_step(net, timeout=60)
    assert agreed["height"] == st["height"], "a block was formed although its only transaction was forged"
    for n in net.nodes:
        r = net_get(f"{n.url}/v1/txs/{txid.hex()}", timeout=30)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_tx", (n.org, r.text)
        assert status(n)["healthy"]
    # the forged copy did not burn the id: the genuine transaction goes through, and the chain agrees
    r = net_post(net.node("allied-insurance").url + "/v1/txs", headers=JSON_POST, params={"wait": 30}, content=genuine, timeout=60)
    assert r.status_code == 200 and r.json()["receipt"]["ok"] and r.json()["id"] == txid.hex(), r.text
    after = wait_in_step(net, timeout=60, min_height=st["height"] + 1)
    for n in net.nodes:
        assert status(n)["dropped_messages"] == before[n.org] + 1
        got = net_get(f"{n.url}/v1/txs/{txid.hex()}", timeout=30).json()
        assert got["tx"]["sigs"] == json.loads(genuine)["sigs"] and got["height"] <= after["height"]


def test_an_organisation_cannot_delete_or_read_another_organisations_consumers(quiet_net: Net):
    """Least privilege on consumers: an organisation creates only unnamed ephemeral consumers (what
    nats-py's ordered consumer needs) and cannot delete, inspect or create named or durable ones."""
    import nats
    import nats.errors

    net = quiet_net
    subjects = Subjects(net.state.chain)
    stream = subjects.order_stream

    async def consumers(nc: Any, js: Any) -> list[str]:
        return [c.name for c in await js.consumers_info(stream)]

    with precondition():
        names = wait_until(lambda: (lambda c: c if len(c) >= len(net.nodes) else None)(net.admin(consumers)), 20,
                           "every node's consumer of the ordering stream")
    victim = names[0]

    async def as_org() -> dict[str, Any]:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc).lower())

        out: dict[str, Any] = {"errors": errors}
        nc = await nats.connect(**net.org_options("bavaria-motors"), error_cb=on_error, connect_timeout=2)
        js = nc.jetstream(timeout=1.5)
        try:
            for name, call in [("delete", lambda: js.delete_consumer(stream, victim)),
                               ("info", lambda: js.consumer_info(stream, victim)),
                               ("durable", lambda: js.add_consumer(stream, durable_name="mallory")),
                               ("named", lambda: js.add_consumer(stream, name="mallory"))]:
                try:
                    out[name] = await call()
                except nats.errors.TimeoutError as exc:
                    out[name] = exc
            await asyncio.sleep(0.5)  # let every -ERR reach the error callback
        finally:
            await nc.close()
        return out

    out = asyncio.run(as_org())
    for name in ("delete", "info", "durable", "named"):
        assert isinstance(out[name], nats.errors.TimeoutError), f"{name} was answered: {out[name]!r}"
    violations = [e for e in out["errors"] if "permissions violation for publish" in e]
    for subject in (f"$js.api.consumer.delete.{stream}.{victim}", f"$js.api.consumer.info.{stream}.{victim}",
                    f"$js.api.consumer.durable.create.{stream}.mallory", f"$js.api.consumer.create.{stream}.mallory"):
        assert any(subject.lower() in v for v in violations), f"no permissions violation for {subject}: {out['errors']}"
    assert victim in net.admin(consumers)
    assert all(status(n)["healthy"] for n in net.nodes)


def test_an_organisation_cannot_subscribe_to_another_organisations_inbox(quiet_net: Net):
    """Replies and consumer deliveries go to each organisation's own inbox prefix; another
    organisation may not subscribe there, nor to the shared default prefix, nor to everything."""
    import nats

    from blokauto.node.netconfig import inbox_prefix

    net = quiet_net
    with precondition():
        wait_in_step(net, timeout=60)
    spied = [f"{inbox_prefix('kba')}.>", "_INBOX.>", ">"]
    member = K("inbox-spy-member")
    raw = build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                   chain=net.state.chain, expires=now_ms() + 600_000)

    async def spy() -> tuple[list[str], list[str], int]:
        errors: list[str] = []
        got: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc).lower())

        async def on_msg(msg: Any) -> None:
            got.append(msg.subject)

        nc = await nats.connect(**net.org_options("bavaria-motors"), error_cb=on_error, connect_timeout=2)
        try:
            for subject in spied:
                await nc.subscribe(subject, cb=on_msg)
            await nc.flush()
            # traffic for kba: its node publishes (the acknowledgement comes to its inbox) and every
            # node's consumers deliver the new transaction and attestations to their inboxes
            r = await asyncio.to_thread(lambda: net_post(net.node("kba").url + "/v1/txs", headers=JSON_POST, params={"wait": 30},
                                                           content=raw, timeout=60))
            await asyncio.sleep(1.0)
        finally:
            await nc.close()
        return got, errors, r.status_code

    got, errors, code = asyncio.run(spy())
    assert code == 200
    assert not got, f"bavaria-motors received {len(got)} messages of others, e.g. {got[:3]}"
    for subject in spied:
        assert any("permissions violation for subscription" in e and subject.lower() in e for e in errors), \
            f"no permissions violation for a subscription to {subject}: {errors}"


def test_the_servers_take_only_tls_with_certificates_of_the_networks_ca(quiet_net: Net, tmp_path: Path):
    import socket
    import ssl

    from blokauto.node.credentials import CA_FILE, make_local_ca
    from blokauto.node.netconfig import tls_context

    net = quiet_net
    own = net.org_options("kba")
    for url in net.state.server_urls:
        assert url.startswith("tls://")
        host, port = url.removeprefix("tls://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:  # plain text
            info = sock.recv(4096)
            assert info.startswith(b"INFO ") and b'"tls_required":true' in info, info
            sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
            reply = b""
            try:
                while chunk := sock.recv(4096):
                    reply += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            assert b"PONG" not in reply, f"{url} answered a plain-text client: {reply!r}"
    # a client that trusts only the machine's CA store, or another CA, does not trust the servers
    make_local_ca(tmp_path / "other")
    for what, ctx in [("the system CA store", ssl.create_default_context()),
                      ("another CA", tls_context(tmp_path / "other" / CA_FILE))]:
        exc, seen = asyncio.run(_connect_errors(**{**own, "tls": ctx}))
        assert exc is not None, f"a client trusting {what} connected"
        assert "certificate verify failed" in (str(exc) + " ".join(seen)).lower(), (what, exc, seen)
    # the organisations hold nkey seeds (mode 0600), no passwords; the servers hold public keys only
    for n in net.nodes:
        s = net.settings(n.org)
        assert s.nkey_seed_file and not s.password and s.ca_file
        seed = Path(n.data) / s.nkey_seed_file
        assert seed.stat().st_mode & 0o077 == 0
        for conf in (net.base / "nats").glob("*.conf"):
            assert seed.read_bytes().strip().decode() not in conf.read_text()
    for conf in (net.base / "nats").glob("*.conf"):  # routes: mutual TLS
        cluster = conf.read_text().split("cluster {", 1)[1]
        assert "verify: true" in cluster and "ca_file" in cluster


# ---------------------------------------------------------------- message ids are stream-wide
#
# JetStream deduplicates by Nats-Msg-Id across a whole stream, whatever the subject. The nodes use
# predictable ids (a transaction's id, ``att-<node did>-<height>``, ``cut-<seq>``) and take a
# "duplicate" acknowledgement as success, so an organisation publishing only where it is allowed can
# take another node's ids first.


def _publish_as(net: Net, org: str, subject: str, stream: str, items: list[tuple[bytes, str]]) -> list[Any]:
    import nats

    s = net.settings(org)

    async def go() -> list[Any]:
        nc = await nats.connect(**net.org_options(org), connect_timeout=2)
        try:
            js = nc.jetstream(timeout=5)
            return [await js.publish(subject, data, stream=stream, headers={"Nats-Msg-Id": msg_id})
                    for data, msg_id in items]
        finally:
            await nc.close()

    return asyncio.run(go())


def test_an_organisation_cannot_suppress_other_nodes_attestations_by_taking_their_message_ids(quiet_net: Net):
    net = quiet_net
    subjects = Subjects(net.state.chain)
    with precondition():
        st = wait_in_step(net, timeout=60)
    nxt = st["height"] + 1
    victims = ["allied-insurance", "meister-werkstatt"]
    # bavaria-motors publishes only on its own attestation subject, which it may
    acks = _publish_as(net, "bavaria-motors", subjects.attest("bavaria-motors"), subjects.attest_stream,
                       [(b"{}", f"att-{K(f'{org}-node').did}-{nxt}") for org in victims])
    assert [a.duplicate for a in acks] == [None, None]
    member = K("squat-attestation-member")
    raw = build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                   chain=net.state.chain, expires=now_ms() + 600_000)
    r = net_post(net.nodes[0].url + "/v1/txs", headers=JSON_POST, content=raw, timeout=30)
    assert r.status_code == 202, r.text
    with precondition():
        for n in net.nodes:  # its block is block nxt (nothing else runs on this network)
            assert wait_height(n, nxt - 1, 30, "with the new transaction")["height"] == nxt
    # every node attested block nxt, and nothing else went wrong: each node holds all 4 attestations
    counts: dict[str, int] = {}

    def all_attested() -> bool:  # (a node serving fewer than the quorum waits 5 s first: ask all at once)
        with ThreadPoolExecutor(len(net.nodes)) as pool:
            counts.update(pool.map(lambda n: (n.org, len(net_get(f"{n.url}/v1/blocks/{nxt}", timeout=30)
                                                        .json()["attestations"])), net.nodes))
        return all(c == len(net.nodes) for c in counts.values())

    wait_until(all_attested, 8, f"every node to hold every node's attestation of block {nxt}", every=0.5,
               detail=lambda: str(counts))


def test_an_organisation_cannot_make_an_acknowledged_transaction_vanish_by_taking_its_message_id(quiet_net: Net):
    from blokauto.core.tx import check_stateless
    from blokauto.modules import default_registry

    net = quiet_net
    subjects = Subjects(net.state.chain)
    with precondition():
        wait_in_step(net, timeout=60)
    member = K("squat-tx-member")
    raw = build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                   chain=net.state.chain, expires=now_ms() + 600_000)
    txid = check_stateless(raw, default_registry().codec, chain=net.state.chain, max_bytes=65_536).id.hex()
    # bavaria-motors publishes junk under that id on the ordering subject, which it may
    (ack,) = _publish_as(net, "bavaria-motors", subjects.tx, subjects.order_stream, [(b"junk", txid)])
    assert ack.duplicate is None
    r = net_post(net.node("kba").url + "/v1/txs", headers=JSON_POST, content=raw, timeout=30)
    assert r.status_code == 202 and r.json()["id"] == txid, r.text
    # acknowledged, so it must be committed on every node
    wait_until(lambda: all(net_get(f"{n.url}/v1/txs/{txid}", timeout=30).status_code == 200 for n in net.nodes),
               10, f"acknowledged transaction {txid} to be committed on every node",
               detail=lambda: str([(status(n)["height"], status(n)["pending"], status(n)["dropped_messages"])
                                   for n in net.nodes]))


# ---------------------------------------------------------------- a diverged node


def test_a_node_with_a_tampered_database_is_detected(net: Net):
    victim = net.node("meister-werkstatt")
    others = [n for n in net.nodes if n is not victim]
    # some history first, on every node
    load = start_load(net, "tamper", [n.org for n in others])
    load.halt()
    st = check_nothing_acknowledged_lost(net, load)
    start_height = st["height"]

    # stop the victim and revoke allied-insurance's admin key in its state.db only
    stop_pid(victim.pid)
    assert not alive(victim.pid)
    admin_did = K("allied-insurance-admin").did
    key = f"gov/member/{admin_did}".encode()
    with closing(sqlite3.connect(Path(victim.data) / "state.db", isolation_level=None)) as db:
        (value,) = db.execute("SELECT v FROM state WHERE k=?", (key,)).fetchone()
        member = json.loads(value)
        assert member["status"] == "active" and member["org"] == "allied-insurance"
        member["status"] = "revoked"
        assert db.execute("UPDATE state SET v=? WHERE k=?", (canonical(member), key)).rowcount == 1
    net.restart_node(victim)
    assert status(victim)["healthy"] and status(victim)["height"] == start_height  # not visible until read

    # allied-insurance's admin acts (through the others' nodes): every node reads the tampered record
    load = Load([n.url for n in others], net.state.chain, "tamper-after", admins=["allied-insurance"]).start()
    try:
        wait_until(lambda: load.acked_count() >= 40, 60, "transactions of the tampered key acknowledged",
                   detail=load.summary)

        def diverged() -> dict[str, Any] | None:
            s = status(victim)
            return s if not s["healthy"] else None

        bad = wait_until(diverged, 60, f"node {victim.org} to detect its divergence",
                         detail=lambda: json.dumps(status(victim)) + log_tail(victim, 1500))
    finally:
        load.halt()

    # the error names the height and both state roots
    error = bad["error"]
    h = int(error.split("block ", 1)[1].split(":", 1)[0])
    assert h > start_height
    ours = net_get(f"{victim.url}/v1/blocks/{h}", timeout=30).json()["header"]["state_root"]
    theirs = net_get(f"{others[0].url}/v1/blocks/{h}", timeout=30).json()["header"]["state_root"]
    assert ours != theirs
    assert f"this node's state root is {ours}" in error and f"attested state root {theirs}" in error, error
    assert all(K(f"{n.org}-node").did in error for n in others), error  # the three nodes that attested theirs
    # ... and it is the first block where the states differ
    prev = [net_get(f"{n.url}/v1/blocks/{h - 1}", timeout=30).json()["hash"] for n in (victim, *others)]
    assert len(set(prev)) == 1, f"block {h - 1} already differs: {prev}"
    assert "stopped executing" in log_tail(victim) or "Divergence" in log_tail(victim)
    # the tampered key's transactions are failed on the victim, successful everywhere else
    blk = net_get(f"{victim.url}/v1/blocks/{h}", params={"full": "true"}, timeout=30).json()
    good = net_get(f"{others[0].url}/v1/blocks/{h}", params={"full": "true"}, timeout=30).json()
    assert blk["tx_ids"] == good["tx_ids"]
    assert any(r["code"] == "revoked_key" for r in blk["receipts"]) and not any(
        r["code"] == "revoked_key" for r in good["receipts"])

    # the diverged node stops executing: it refuses new transactions with a retryable 503
    r = net_post(victim.url + "/v1/txs", headers=JSON_POST, content=load.acked[next(iter(load.acked))], timeout=30)
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text
    frozen = status(victim)["height"]

    # the three others are healthy, in step, and keep committing (quorum 3 without the victim)
    result = check_nothing_acknowledged_lost(net, load, others)
    assert result["height"] >= h and result["ok"] >= 40
    assert status(victim)["height"] == frozen
    for n in others:
        assert "state root" in log_tail(n, 50_000)  # they noticed the victim's conflicting attestation ...
        assert status(n)["healthy"]  # ... but one node is not a quorum
