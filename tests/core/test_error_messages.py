"""Every refusal reads as a sentence: a client given less detail than its template needs shows the
node's own sentence, and an unknown query names itself instead of an unfilled template. (Each
template rendering with the detail it declares: tests/core/test_error_model.py.)"""

from __future__ import annotations

import pytest

import blokauto.docgen  # noqa: F401 (imports every module that defines errors)
from blokauto.api.errors import http_status
from blokauto.client._errors import remote_error
from blokauto.core.errors import all_error_classes
from blokauto.modules import default_registry

from conftest import run_cli

default_registry()  # imports every module, so each one's errors are among the cases (not only those imported before)


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.code)
def test_an_error_without_its_detail_falls_back_to_the_nodes_sentence(cls):
    if not cls.fields:
        pytest.skip("its sentence needs no detail")
    err = remote_error(cls.code, "The node's own sentence.", {}, http_status(cls))
    assert type(err) is cls and err.message == "The node's own sentence."


def test_an_unknown_query_names_itself(live_node):
    r = run_cli("query", "vehicles", "nosuch", "--node", live_node.url)
    assert r.returncode == 2  # a usage error: the CLI knows the queries
    assert "{" not in r.stderr and "vehicles nosuch" in r.stderr and "query --list" in r.stderr, r.stderr
    body = live_node.http.get("/v1/q/vehicles/nosuch", timeout=10).json()["error"]
    assert body["code"] == "unknown_query" and "vehicles.nosuch" in body["message"] and "/v1/queries" in body["message"]
