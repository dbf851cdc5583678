"""The consortium's consensus changes, each with a state proof at the height it happened.

A verifier anchored at genesis knows the founding node keys and quorum. When governance changes
them (``gov/consensus``: a node key added or removed, the quorum set), checkpoints after that
height are signed by keys the verifier does not know. To follow, it needs, for each change, the
new consensus record with a proof against the header of the block that changed it, and that
block's checkpoint, which the keys in force before the change signed. With those,
``verify.follow_consensus`` advances the anchor one change at a time.

State proofs exist only for the newest state, so a node records the proof when it commits (or
re-executes) a block that changes the record, in its own table of ``chain.db``; a snapshot of
``chain.db`` carries it to a joining node. ``GET /v1/consensus/changes?after=H`` serves them.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import msgspec

from ..core import smt
from ..core.encoding import to_builtins
from ..modules.governance import keys as governance_keys
from ..store.sqlite import connect

CONSENSUS_KEY = governance_keys.CONSENSUS.encode()
_SCHEMA = ("CREATE TABLE IF NOT EXISTS consensus_changes "
           "(height INTEGER PRIMARY KEY, value BLOB NOT NULL, proof BLOB NOT NULL)")


def record_change(chain_db: Path, height: int, state: Any) -> None:
    """Record ``gov/consensus`` with its proof in ``state``, the newest state, just after block ``height``."""
    value = state.get(CONSENSUS_KEY)
    if value is None:
        return
    proof = smt.prove(state.get_node, smt.key_hash(CONSENSUS_KEY))
    with closing(connect(chain_db, durable=True)) as c:
        c.execute(_SCHEMA)
        c.execute("INSERT OR REPLACE INTO consensus_changes VALUES (?, ?, ?)",
                  (height, bytes(value), msgspec.json.encode(proof)))


def changes_after(chain_db: Path, after: int) -> list[tuple[int, bytes, smt.StateProof]]:
    with closing(connect(chain_db, durable=True)) as c:
        c.execute(_SCHEMA)
        rows = c.execute("SELECT height, value, proof FROM consensus_changes WHERE height > ? ORDER BY height",
                         (after,)).fetchall()
    return [(h, bytes(v), msgspec.json.decode(p, type=smt.StateProof)) for h, v, p in rows]


def consensus_changes(checkpoint_of: Callable[[int], Any], chain_db: Path, after: int) -> dict[str, Any]:
    """The API's answer: every change above ``after``, with the record's bytes, its proof and the
    checkpoint of the block that made it (``checkpoint_of(height)``: the node's, None if absent)."""
    out = []
    for height, value, proof in changes_after(chain_db, after):
        checkpoint = checkpoint_of(height)
        if checkpoint is None:
            continue
        if not _proves(checkpoint.header.state_root, value, proof):  # never serve what does not verify
            raise RuntimeError(f"the recorded consensus change at block {height} does not match its header; "
                               f"run `blokauto audit`")
        out.append({"height": height, "raw": value.decode(), "proof": to_builtins(proof),
                    "checkpoint": to_builtins(checkpoint)})
    return {"after": after, "changes": out}


def _proves(state_root: str, value: bytes, proof: smt.StateProof) -> bool:
    try:
        smt.verify_proof(bytes.fromhex(state_root), CONSENSUS_KEY, value, proof)
    except smt.StateProofError:
        return False
    return True
