"""The reference docs are generated from the code; this fails when they drift."""

from pathlib import Path

import pytest

from blokauto.docgen import generate

REFERENCE = Path(__file__).parent.parent / "docs" / "reference"


@pytest.mark.parametrize("name", sorted(generate()))
def test_reference_doc_matches_the_code(name: str) -> None:
    committed = (REFERENCE / name).read_text() if (REFERENCE / name).exists() else ""
    assert committed == generate()[name], (
        f"docs/reference/{name} is stale; run: python -m blokauto.docgen docs/reference")
