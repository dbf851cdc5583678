"""The reference docs are generated from the code; this fails when they drift."""

from pathlib import Path

import pytest

from blokauto.docgen import generate

from conftest import ROOT

REFERENCE = ROOT / "docs" / "reference"


@pytest.mark.parametrize("name", sorted(generate()))
def test_reference_doc_matches_the_code(name: str) -> None:
    committed = (REFERENCE / name).read_text() if (REFERENCE / name).exists() else ""
    assert committed == generate()[name], (
        f"docs/reference/{name} is stale; run: python -m blokauto.docgen docs/reference")


DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def _slug(heading: str) -> str:
    import re

    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_between_the_docs_leads_somewhere(doc: Path) -> None:
    import re

    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
            assert anchor in slugs, f"{doc.name} links to {target}: no such heading in {file.name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_stand_on_their_own(doc: Path) -> None:
    assert "DESIGN.md" not in doc.read_text(), f"{doc.name} sends readers to a document this repository lacks"
