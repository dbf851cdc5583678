"""Attestations a node lacks, fetched from its peers' HTTP APIs.

The ATTEST stream keeps an hour. A node that forms older blocks from the ORDER stream (it was down
longer, or started from an empty folder) finds only its own attestation for them; its peers' are
in their block logs, and each peer serves them with ``GET /v1/checkpoints/{h}``.

Every couple of seconds, the fetcher looks for committed heights that have had fewer than the
quorum of attestations for two rounds in a row (fresh blocks gather theirs from the stream first),
asks the peers named in ``network.json`` (``peers``) for their checkpoints of those heights, and
hands every attestation it does not hold yet to the engine as if it came from the stream. The
engine checks each like any other: the key must be a node key of the consortium and the signature
must verify over the header hash, which is computed here from the header the peer sent; one for
another header than this node's counts as a conflicting attestation.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Callable

import httpx
import msgspec

from ..core.block import Checkpoint
from ..core.encoding import canonical
from ..store.sqlite import connect
from .netconfig import load_network

log = logging.getLogger("blokauto.peers")


class PeerAttestations:
    INTERVAL_S = 2.0
    BATCH = 200  # heights asked for per round (a round with a full batch is followed at once by the next)

    def __init__(self, data_dir: Path, *, peers: list[str], head: Callable[[], int], quorum: Callable[[], int],
                 deliver: Callable[[bytes], None], timeout_s: float) -> None:
        self.data_dir = data_dir
        self.default_peers = peers
        self.head = head
        self.quorum = quorum
        self.deliver = deliver  # an attestation's canonical bytes, for the engine to judge
        self.timeout_s = timeout_s
        self.fetched = 0
        self._stop = threading.Event()
        self._lacking: set[int] = set()  # heights short of a quorum in the previous round
        self._thread = threading.Thread(target=self._run, name="peer-attestations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout_s + 5)

    def peers(self) -> list[str]:
        """The peers in network.json now (``network up`` may have moved a node to another port)."""
        try:
            settings = load_network(self.data_dir)
        except ValueError:
            return self.default_peers
        return settings.peers if settings is not None else self.default_peers

    def _run(self) -> None:
        with closing(connect(self.data_dir / "chain.db", durable=True, readonly=True)) as db, \
                httpx.Client(timeout=self.timeout_s) as http:
            while not self._stop.is_set():
                full = False
                try:
                    full = self._round(db, http)
                except sqlite3.Error as exc:  # the block log is busy or being replaced: next round
                    log.warning("looking for heights that lack attestations: %s", exc)
                if not full:
                    self._stop.wait(self.INTERVAL_S)

    def _round(self, db: sqlite3.Connection, http: httpx.Client) -> bool:
        peers = self.peers()
        quorum = self.quorum()
        if not peers or quorum <= 1:
            return False
        rows = db.execute(
            "SELECT b.height, count(a.node) FROM blocks b LEFT JOIN attestations a ON a.height = b.height "
            "WHERE b.height <= ? GROUP BY b.height HAVING count(a.node) < ? ORDER BY b.height DESC LIMIT ?",
            (self.head(), quorum, 4 * self.BATCH)).fetchall()
        lacking = {h for h, _ in rows}
        due = sorted(lacking & self._lacking, reverse=True)[: self.BATCH]  # short of a quorum for two rounds
        self._lacking = lacking
        for height in due:
            if self._stop.is_set():
                return False
            held = {n for (n,) in db.execute("SELECT node FROM attestations WHERE height=?", (height,))}
            for peer in peers:
                got = self._fetch(http, peer, height, held)
                held |= got
                if len(held) >= quorum:
                    break
        return len(due) == self.BATCH

    def _fetch(self, http: httpx.Client, peer: str, height: int, held: set[str]) -> set[str]:
        """Hand over the attestations of ``height`` that ``peer`` holds and this node does not."""
        from .jetstream_ordering import Attestation

        try:
            r = http.get(f"{peer.rstrip('/')}/v1/checkpoints/{height}")
        except httpx.HTTPError as exc:
            log.info("peer %s did not answer for block %d: %s", peer, height, exc)
            return set()
        if r.status_code != 200:
            return set()
        try:
            cp = msgspec.json.decode(r.content, type=Checkpoint)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("peer %s answered block %d with something that is not a checkpoint: %s", peer, height, exc)
            return set()
        if cp.header.height != height:
            log.warning("peer %s answered block %d with the checkpoint of block %d", peer, height, cp.header.height)
            return set()
        header_hash = cp.header.hash().hex()  # what the signatures must cover, computed here
        new = set()
        for a in cp.attestations:
            if a.node in held:
                continue
            self.deliver(canonical(Attestation(height, header_hash, cp.header.state_root, a.node, a.sig)))
            self.fetched += 1
            new.add(a.node)
        return new
