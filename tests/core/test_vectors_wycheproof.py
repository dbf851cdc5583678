"""Every Wycheproof Ed25519 verification case through blokauto's one verification rule.

``data/vectors/wycheproof/ed25519_test.json`` (C2SP/wycheproof, Apache-2.0; see SOURCES.md):
valid signatures, malleated S, non-canonical R and S, small-order R, truncated and padded
signatures. ``crypto.verify_signature`` must return True exactly for the "valid" cases.

"acceptable" cases (the file has none today; the count test below shows the split) are ones a
correct implementation may accept or refuse. blokauto refuses them: the design's rule is one
strict verification rule on every node and in every verifier, and a signature that some
conforming implementations reject is exactly what would make two nodes disagree. So an
"acceptable" case must verify False whatever its flags, unless a flag is listed in
``ACCEPTABLE_ACCEPTED`` with the reason we chose to accept it (none is).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from blokauto.core.crypto import verify_signature

from conftest import DATA

VECTORS = DATA / "vectors" / "wycheproof" / "ed25519_test.json"
DOC = json.loads(VECTORS.read_text())

#: Flags whose "acceptable" cases we would accept (flag -> why). Empty: we refuse them all.
ACCEPTABLE_ACCEPTED: dict[str, str] = {}


def _cases() -> list[tuple[int, str, bytes, bytes, bytes, str, tuple[str, ...], str]]:
    out = []
    for group in DOC["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for t in group["tests"]:
            out.append((t["tcId"], t["result"], pk, bytes.fromhex(t["sig"]), bytes.fromhex(t["msg"]),
                        t["comment"], tuple(t["flags"]), group["source"]["name"]))
    return out


CASES = _cases()


def _expected(result: str, flags: tuple[str, ...]) -> bool:
    if result == "valid":
        return True
    if result == "invalid":
        return False
    assert result == "acceptable", result
    return any(f in ACCEPTABLE_ACCEPTED for f in flags)


def test_all_151_cases_are_present():
    assert DOC["algorithm"] == "EDDSA"
    assert DOC["numberOfTests"] == 151
    assert len(CASES) == 151
    assert len({c[0] for c in CASES}) == 151  # tcIds are unique, so each is its own test
    results = Counter(c[1] for c in CASES)
    assert results == {"valid": 88, "invalid": 63}, results


@pytest.mark.parametrize("tc_id, result, pk, sig, msg, comment, flags, source", CASES,
                         ids=[f"tc{c[0]}-{c[1]}-{'+'.join(c[6])}" for c in CASES])
def test_wycheproof_ed25519(tc_id, result, pk, sig, msg, comment, flags, source):
    got = verify_signature(pk, sig, msg)
    assert got is _expected(result, flags), f"tcId {tc_id} ({result}, {', '.join(flags)}): {comment or 'no comment'}"
