"""Every refusal reads as a sentence: each error's template renders with the detail it names, a
client given less detail than its template needs shows the node's own sentence, and an unknown
query names itself instead of an unfilled template."""

from __future__ import annotations

import pytest

import blokauto.api.app  # noqa: F401 (registers the API's errors)
import blokauto.docgen  # noqa: F401 (imports every module that defines errors)
from blokauto.client import _error
from blokauto.core.errors import all_error_classes, template_fields

from conftest import run_cli


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.code)
def test_every_template_renders_with_the_fields_it_names(cls):
    detail = {name: f"<{name}>" for name in template_fields(cls)}
    message = cls(**detail).message
    assert "{" not in message and "}" not in message, message
    for name in detail:
        assert f"<{name}>" in message
    assert message[0].isupper() or message[0] in "<'\"{" or message.startswith(("did:", "$")), message


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.code)
def test_an_error_without_its_detail_falls_back_to_the_nodes_sentence(cls):
    if not template_fields(cls):
        pytest.skip("its sentence needs no detail")
    err = _error(cls.code, "The node's own sentence.", {}, cls.http_status)
    assert err.message == "The node's own sentence."


def test_an_unknown_query_names_itself(live_node):
    r = run_cli("query", "vehicles", "nosuch", "--node", live_node.url)
    assert r.returncode == 2  # a usage error: the CLI knows the queries
    assert "{" not in r.stderr and "vehicles nosuch" in r.stderr and "query --list" in r.stderr, r.stderr
    import httpx

    body = httpx.get(f"{live_node.url}/v1/q/vehicles/nosuch", timeout=10).json()["error"]
    assert body["code"] == "unknown_query" and "vehicles.nosuch" in body["message"] and "/v1/queries" in body["message"]
