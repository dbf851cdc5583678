"""What stops a node, or makes it unhealthy: its own data, or its view of the consortium, cannot be
trusted any more. A fault is not a refusal (``core.errors.BlokautoError``): no request caused it,
and no retry helps; its message says what an operator does.

    NodeFault                   base of every node fault; the message says what to do
    ├── Divergence              this node's state is not the one it must be: re-executing a stored block
    │                           gives another header, or a quorum attested another state root at a
    │                           height this node committed
    ├── LogBehindCommitted      chain.db ends before blocks this node committed
    ├── HeadMarkerDamaged       head.json names a block other than the intact one this node signed
    ├── JournalDamaged          acknowledged transactions in the intake journal are unreadable (node.journal)
    ├── IntegrityFault          stored data does not match what it was committed as (also a DamagedData)
    ├── StreamGap               the ordering stream skipped a sequence number
    ├── OrderStreamReplaced     the ordering stream was deleted and created again (node.jetstream)
    └── BackupError             a backup cannot be written, or a folder is not a backup that restores
                                (node.backup; refused before anything is written)

A request that would be answered from damaged data is refused with ``DataIntegrity``
(``integrity_failure``, a ``BlokautoError``), naming what and where; the node never serves it
as genuine. The CLI exits 4 on a node fault (1 on ``BackupError``: nothing is damaged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..core.block import Header
from ..core.errors import BlokautoError
from ..store.damage import DamagedData

RECOVERY_DOC = "docs/operations.md#when-the-node-finds-damaged-data"


class NodeFault(Exception):
    """Base of every fault that stops a node or makes it unhealthy."""


class Divergence(NodeFault):
    """This node's state is not the one it must be, so it stops rather than continue on a forked
    state: re-executing a stored block gave a different header (the database was changed or the
    code is not the code that wrote it), or ``nodes``, a quorum of the consortium, attested a
    different state root at a height this node committed.

    ``stored`` is the header this node committed at ``height``; ``computed`` what it was checked
    against: the header re-execution gave, or (with ``nodes``) the quorum's attestation.
    """

    def __init__(self, height: int, stored: Header, computed: Any, nodes: Sequence[str] = ()) -> None:
        self.height = height
        self.stored = stored
        self.computed = computed
        self.nodes = sorted(nodes)
        if self.nodes:
            message = (f"block {height}: this node's state root is {stored.state_root} but {len(self.nodes)} nodes of "
                       f"the consortium ({', '.join(self.nodes)}) attested state root {computed.state_root}; this node "
                       f"stopped executing. Its database or software differs from theirs: run `blokauto audit` and "
                       f"rejoin from a verified snapshot.")
        else:
            fields = [f for f in stored.__struct_fields__ if getattr(stored, f) != getattr(computed, f)]
            details = "; ".join(f"{f}: stored {getattr(stored, f)}, re-execution {getattr(computed, f)}" for f in fields)
            message = (f"block {height} does not re-execute to its stored header ({details}); the database was "
                       f"changed or this software differs from the one that wrote it. Run `blokauto audit`.")
        super().__init__(message)


class StreamGap(NodeFault):
    """The ordering stream skipped a sequence number; forming blocks past it could fork."""


class LogBehindCommitted(NodeFault):
    """``chain.db`` ends before blocks this node is known to have committed."""

    def __init__(self, log_height: int, committed: int, where: list[str]) -> None:
        self.log_height = log_height
        self.committed = committed
        super().__init__(
            f"chain.db ends at block {log_height}, but this node committed blocks up to {committed} "
            f"(recorded in {' and '.join(where)}): blocks {log_height + 1}-{committed} are missing from the block "
            f"log, which was damaged or replaced by an older copy. Nothing was changed; do not delete state.db or "
            f"head.json, they are the evidence of what was committed. Restore the data folder from a backup "
            f"(`blokauto node restore --from BACKUP --data NEW_FOLDER`) or, in a network, rejoin from another "
            f"organisation's node (`blokauto node snapshot`); see {RECOVERY_DOC}.")


class HeadMarkerDamaged(NodeFault):
    """``head.json`` records a hash at a height where the block log holds an intact block this node
    attested: the marker, not the log, was changed."""

    def __init__(self, path: Path, height: int, recorded: str) -> None:
        self.path, self.height = path, height
        super().__init__(
            f"{path} records hash {recorded} for block {height}, but the block log's block {height} is intact and "
            f"attested by this node's own key, which never signs two blocks at one height: {path.name} was changed, "
            f"not the block log. Nothing was changed. Check with `blokauto audit`; then move {path.name} aside "
            f"(`mv {path} {path}.damaged`): the node writes it again at its next start. See {RECOVERY_DOC}.")


class IntegrityFault(NodeFault, DamagedData):
    """Stored data does not match what the node committed; the node stops serving it."""


class DataIntegrity(BlokautoError):
    """The refusal of a read that would be answered from damaged data (not a fault: the request is refused)."""

    code = "integrity_failure"
    template = ("This node's copy of {what} at {where} does not match what it committed ({reason}), so it will not "
                "serve it. Read it from another node of the consortium; the node's operator should run `blokauto "
                "audit` and restore from a backup or a peer (" + RECOVERY_DOC + ").")

    @classmethod
    def of(cls, damage: DamagedData) -> "DataIntegrity":
        return cls(**damage.to_dict())
