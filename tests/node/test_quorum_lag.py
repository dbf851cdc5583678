"""The quorum lag ``/metrics`` reports (``blokauto_quorum_lag_blocks``): the newest height that holds
a quorum of attestations, read from the block log (``BlockLog.highest_attested``)."""

from __future__ import annotations

import pytest

from blokauto.core.block import NodeSignature
from blokauto.store.blocks import BlockLog

from conftest import K

NODES = [K(f"node-{i}").did for i in range(4)]

#: (attestations per height from 1 on, quorum, heights searched above, the newest height with a quorum)
CASES = [
    ("every block attested by all", [4] * 10, 3, 0, 10),
    ("the newest blocks lack attestations", [4] * 10 + [2, 2, 1], 3, 0, 10),
    ("a gap: an older block lacks them, newer ones have them", [4, 1, 4, 4], 3, 0, 4),
    ("a solo node's own attestation is its quorum", [1] * 5, 1, 0, 5),
    ("none within the heights searched", [4] * 5 + [1] * 5, 3, 6, 6),
    ("no attestation at all", [], 3, 0, 0),
]


@pytest.mark.parametrize("what,counts,quorum,above,expected", CASES, ids=[c[0] for c in CASES])
def test_the_newest_height_with_a_quorum(tmp_path, what, counts, quorum, above, expected):
    log = BlockLog(tmp_path / "chain.db")
    try:
        for height, n in enumerate(counts, start=1):
            for node in NODES[:n]:
                log.add_attestation(height, NodeSignature(node, "00" * 64))
        assert log.highest_attested(quorum, above) == expected
    finally:
        log.close()
