"""Properties over random subjects (unicode text, integers to ±(2**53-1), booleans, nested objects,
sets, opaque JSON values): both implementations sign the same bytes and accept each other's
credentials, and changing any single value anywhere in the subject breaks the proof for both.

(A set cannot tell ``[false, false, true]`` from ``[true, false]``: a value repeated in a set is
refused, which is how a single change to ``[false, true]`` is always seen.)"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blokauto.credentials import CREDENTIALS_V1, CredentialInvalid, issue, verify

from didkit_peer import didkit  # noqa: F401  (fixture)
from vc_world import BATTERY, CREATED, MAKER, for_didkit

SAFE = 2**53 - 1
# Any Unicode scalar value but controls (line breaks aside): see the value rules in _document.py.
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\r"), max_size=24)
# ... and keys within the BMP, not starting with "@" (JSON-LD keywords stay in the top-level @context)
KEY = st.text(st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0xFFFF), max_size=8).filter(
    lambda k: not k.startswith("@"))
SCALAR = TEXT | st.integers(-SAFE, SAFE) | st.booleans()
JSON = st.recursive(SCALAR | st.none(), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEY, inner, max_size=4), max_leaves=12)
PLAIN = ["chemistry", "capacityWh", "manufacturer", "recycled", "note", "label", "count", "flag", "voltageMv"]
NESTED = ["cells", "parts"]
OPAQUE = ["ledgerProof", "history", "blob"]


@st.composite
def subjects(draw: st.DrawFn) -> dict[str, Any]:
    serials = itertools.count()

    def part(depth: int) -> dict[str, Any]:
        # a serial of its own: alike unnamed objects nested in alike ones are refused (see _jsonld.py)
        obj = {"serial": f"S-{next(serials)}"}
        for term in draw(st.lists(st.sampled_from(PLAIN), max_size=3, unique=True)):
            obj[term] = draw(SCALAR)
        if depth and draw(st.booleans()):
            obj[draw(st.sampled_from(NESTED))] = [part(depth - 1) for _ in range(draw(st.integers(1, 3)))]
        return obj

    subject: dict[str, Any] = {"id": f"urn:blokauto:battery:{draw(st.integers(0, 10**6))}"}
    for term in draw(st.lists(st.sampled_from(PLAIN + NESTED + OPAQUE), min_size=1, max_size=6, unique=True)):
        if term in OPAQUE:
            subject[term] = draw(JSON)
        elif term in NESTED:
            subject[term] = [part(2) for _ in range(draw(st.integers(1, 3)))]
        else:
            subject[term] = draw(SCALAR | st.lists(SCALAR, min_size=1, max_size=4, unique_by=repr))
    return subject


def credential(subject: dict[str, Any]) -> dict[str, Any]:
    return {"@context": [CREDENTIALS_V1, BATTERY], "type": ["VerifiableCredential", "BatteryPassportCredential"],
            "credentialSubject": subject}


def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every string, integer and boolean in ``value``."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))]
    return [] if value is None else [path]


def changed(value: Any) -> Any:
    """A different value of the same JSON type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 1 if value == SAFE else value + 1
    return value + "~"


PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(subject=subjects())
def test_random_subjects_sign_alike_and_verify_in_both(didkit, subject):
    ours = issue(credential(subject), MAKER, created=CREATED)
    assert didkit.verify(ours) == []
    assert verify(ours).subject == subject
    theirs = didkit.issue(for_didkit(credential(subject)), MAKER, created=CREATED)
    assert verify(theirs).subject == subject
    assert theirs["proof"]["proofValue"] == ours["proof"]["proofValue"]


@PROPERTIES
@given(subject=subjects(), data=st.data())
def test_any_single_value_changed_fails_in_both(didkit, subject, data):
    vc = issue(credential(subject), MAKER, created=CREATED)
    path = data.draw(st.sampled_from(leaves(vc["credentialSubject"])), label="path")
    tampered = copy.deepcopy(vc)
    node = tampered["credentialSubject"]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = changed(node[path[-1]])
    try:
        verify(tampered)
    except CredentialInvalid as refused:  # [a, b] -> [b, b] repeats a value in a set, refused as such
        assert "proofValue is not" in refused.message or "it repeats" in refused.message, refused.message
    else:
        raise AssertionError(f"changing {path} went unnoticed")
    assert didkit.verify(tampered), f"didkit did not notice {path} changed"
