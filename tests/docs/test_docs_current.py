"""The reference docs are generated from the code; this fails when they drift."""

import re
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


# ---------------------------------------------------------------- examples that work against a node that signs

#: Routes a node answers without a signature (docs/privacy.md): everything else needs one.
PUBLIC_ROUTES = ("/v1/status", "/v1/genesis", "/v1/params", "/v1/messages", "/v1/queries", "/v1/checkpoints/",
                 "/v1/consensus/changes", "/schema")
#: CLI commands that read a node's non-public routes: each signs with --as NAME.
SIGNED_READS = re.compile(r"^blokauto (query (?!--list)|state |events |tx get |tx submit |consent list |report share )")


def _code_blocks(doc: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", doc.read_text(), re.S)


def _commands(block: str) -> list[str]:
    """The commands of a shell block, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip().startswith("blokauto ")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_curl_examples_read_only_public_routes(doc: Path) -> None:
    """curl cannot sign a request (RFC 9421): a curl example of any other route would be refused."""
    for block in _code_blocks(doc, "sh"):
        for url in re.findall(r"curl\b[^\n]*?https?://[^/\s'\"]+(/[^\s'\"?]*)", block):
            assert url.startswith(PUBLIC_ROUTES), f"{doc.name}: curl {url} needs a signature: use --as or signed_http"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cli_reads_of_a_node_name_the_key_they_sign_with(doc: Path) -> None:
    for block in _code_blocks(doc, "sh"):
        for command in _commands(block):
            if SIGNED_READS.match(command):
                assert " --as " in f"{command} ", f"{doc.name}: `{command}` is refused unsigned: add --as NAME"
            if re.match(r"blokauto report (?!share )", command) and "--data" not in command:
                assert "--as " in command or "--share " in command, f"{doc.name}: `{command}` needs --as or --share"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_python_examples_sign_what_they_read(doc: Path) -> None:
    """A Client without a key signs only what it sends (with the sender's key): its reads need key= or as_key."""
    for block in _code_blocks(doc, "python"):
        assert not re.search(r"httpx\.(get|post)\(", block), f"{doc.name}: httpx.get is unsigned: use signed_http"
        for call, name in re.findall(r"with (Client\((?:[^()]|\([^()]*\))*\)) as (\w+)", block):
            if "key=" in call:
                continue
            for method in ("query", "state", "events", "receipt", "block"):
                assert f"{name}.{method}(" not in block, (
                    f"{doc.name}: {name}.{method}() of a Client without key= is refused: pass key= or use as_key")
