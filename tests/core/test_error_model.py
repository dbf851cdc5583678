"""One error model: every refusal declares its detail, every construction site in ``src/`` passes
exactly that detail (checked statically, so a misspelt field is found before it ships), a
construction that does not is a programming error, and the HTTP status of each is decided in
``api/`` alone."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

import blokauto
from blokauto.core.errors import (BlokautoError, DomainError, NotFound, RequestError, all_error_classes, error_class,
                                  render)

SRC = Path(blokauto.__file__).parent
MODULES = sorted(".".join(("blokauto", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
                 for p in SRC.rglob("*.py") if p.name != "__main__.py")
for _name in MODULES:  # every class that defines an error registers when its module is imported
    importlib.import_module(_name)

from blokauto.api.errors import HTTP_STATUS, http_status  # noqa: E402
from blokauto.api.openapi import ERROR_STATUSES  # noqa: E402
from blokauto.client._errors import ApiError, remote_error  # noqa: E402


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


#: Every error class built from its detail (all registered codes, and subclasses that reword one).
CHECKED = sorted({c for c in _subclasses(BlokautoError) if c.__init__ is BlokautoError.__init__
                  and not c.__module__.startswith("test")}, key=lambda c: (c.code, c.__qualname__))


def _id(cls: type) -> str:
    return f"{cls.code}:{cls.__name__}"


# ---------------------------------------------------------------- declared detail


@pytest.mark.parametrize("cls", CHECKED, ids=_id)
def test_every_template_renders_with_its_declared_fields(cls):
    detail = {name: f"<{name}>" for name in (*cls.fields, *cls.optional)}
    message = cls(**detail).message
    assert "{" not in message.replace("{{", "") and "Refused with code" not in message, message
    for name in cls.fields:
        assert f"<{name}>" in message
    assert message[0].isupper() or message[0] in "<'\"{" or message.startswith(("did:", "$")), message


@pytest.mark.parametrize("cls", CHECKED, ids=_id)
def test_a_missing_or_unknown_field_is_a_programming_error(cls):
    if cls.fields:
        with pytest.raises(TypeError, match="missing"):
            cls(**{name: 1 for name in cls.fields[1:]})
    with pytest.raises(TypeError, match="unknown misspelt"):
        cls(**{name: 1 for name in cls.fields}, misspelt=1)


def test_a_misspelt_field_names_what_the_class_takes():
    from blokauto.modules.vehicles.errors import VehicleStolen

    with pytest.raises(TypeError) as info:
        VehicleStolen(vim="WVWZZZ1JZXW000001")
    assert str(info.value) == "VehicleStolen(missing vin; unknown vim): it takes vin"


def test_a_template_naming_a_field_by_position_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="name each field"):
        class _Positional(DomainError):  # noqa: F841
            template = "Refused: {}."


def test_optional_detail_is_declared_beside_the_template():
    with pytest.raises(TypeError, match="remove them from optional"):
        class _Twice(NotFound):  # noqa: F841
            template = "{what} {key!r} was not found."
            optional = ("key",)
    err = RequestError(reason="x.", errors=[{"key": "limit"}])
    assert err.detail == {"reason": "x.", "errors": [{"key": "limit"}]}


def test_a_recorded_error_keeps_its_detail_as_recorded():
    """A receipt written by an older version, or a node answering with detail this version does not
    expect, is rebuilt as recorded (never refused), with the node's own sentence when it cannot fill
    the template."""
    cls = error_class("vehicle_stolen")
    err = cls.recorded({"vin": "V1", "since": 7})
    assert err.detail == {"vin": "V1", "since": 7} and "V1" in err.message
    assert render("vehicle_stolen", {"vehicle": "V1"}) == "Refused with code vehicle_stolen."
    remote = remote_error("vehicle_stolen", "The node's own sentence.", {"vehicle": "V1"}, 422)
    assert isinstance(remote, cls) and remote.message == "The node's own sentence." and remote.http_status == 422
    unknown = remote_error("from_a_newer_node", "Its sentence.", {"a": 1}, 409)
    assert isinstance(unknown, ApiError) and (unknown.code, unknown.message, unknown.http_status) == (
        "from_a_newer_node", "Its sentence.", 409)


# ---------------------------------------------------------------- construction sites, statically


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """What a callee expression names in a module's namespace (None when it cannot tell statically)."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "error_class"
            and node.args and isinstance(node.args[0], ast.Constant)):
        return error_class(node.args[0].value)
    return None


def _local_names(tree: ast.AST) -> set[str]:
    """Names a function binds itself (a parameter or variable called ``cls`` is not the module's)."""
    out: set[str] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            out |= {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    return out


def construction_sites() -> list[tuple[str, int, type, ast.Call]]:
    sites = []
    for name in MODULES:
        module = importlib.import_module(name)
        path = Path(module.__file__)
        tree = ast.parse(path.read_text(), str(path))
        shadowed = _local_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id in shadowed:
                continue
            target = _resolve(node.func, vars(module))
            if isinstance(target, type) and issubclass(target, BlokautoError) and target in CHECKED:
                sites.append((f"{path.relative_to(SRC.parent)}:{node.lineno}", node.lineno, target, node))
    return sites


SITES = construction_sites()


def test_the_static_check_sees_the_construction_sites():
    assert len(SITES) > 150, len(SITES)
    seen = {cls.__name__ for _, _, cls, _ in SITES}
    assert {"VehicleStolen", "UnknownTx", "RequestTooLarge", "DataIntegrity", "UnknownVehicleReport"} <= seen


def test_every_construction_site_passes_exactly_the_declared_detail():
    problems = []
    for where, _, cls, call in SITES:
        given = [kw.arg for kw in call.keywords if kw.arg is not None]
        spread = any(kw.arg is None for kw in call.keywords)  # **detail: checked when it runs
        missing = [] if spread else [f for f in cls.fields if f not in given]
        unknown = [k for k in given if k not in cls.fields and k not in cls.optional]
        if call.args or missing or unknown:
            problems.append(f"{where}: {cls.__name__}(" + ", ".join(
                filter(None, [call.args and "positional arguments", missing and f"missing {missing}",
                              unknown and f"unknown {unknown}"])) + f"); it takes {list(cls.fields)}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- HTTP lives in api/


def test_core_and_modules_know_nothing_of_http():
    for path in [*(SRC / "core").rglob("*.py"), *(SRC / "modules").rglob("*.py")]:
        assert not re.search(r"http_status|status_code|litestar|httpx", path.read_text()), path


def test_the_http_table_names_only_codes_that_exist_and_statuses_the_api_documents():
    assert set(HTTP_STATUS) <= {c.code for c in all_error_classes()} | {"error"}
    assert set(HTTP_STATUS.values()) <= set(ERROR_STATUSES)
    for cls in CHECKED:
        assert http_status(cls) in ERROR_STATUSES, cls


# The status each code answered with before the mapping moved out of core (every code then defined),
# so a move of the table cannot change what clients see on the wire.
WIRE = {
    400: "bad_request malformed_tx unknown_message wrong_chain tx_expired expiry_too_far duplicate_signer "
         "invalid_identifier_format invalid_key invalid_query bad_event_id bad_tx_id unknown_parameter "
         "repeated_parameter",
    401: "bad_signature missing_signature unexpected_signer",
    403: "unauthorised unknown_signer revoked_key role_not_allowed missing_cosigner",
    404: "not_found unknown_tx unknown_vin unknown_query height_not_reached",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict replayed_tx",
    413: "tx_too_large request_too_large batch_too_large batch_too_complex",
    415: "unsupported_media_type",
    422: "domain_rule handler_error value_out_of_range invalid_parameter invalid_vin vehicle_stolen unknown_part_type",
    429: "too_many_requests too_many_connections",
    503: "unavailable integrity_failure",
}


@pytest.mark.parametrize("status,code", [(s, c) for s, codes in WIRE.items() for c in codes.split()])
def test_each_code_answers_with_the_status_it_always_had(status, code):
    assert http_status(error_class(code)) == status


def test_every_domain_error_of_every_module_is_422():
    for cls in CHECKED:
        if issubclass(cls, DomainError):
            assert http_status(cls) == 422, cls


# ---------------------------------------------------------------- node faults under one base


def test_every_node_fault_has_one_base():
    from blokauto.node.backup import BackupError
    from blokauto.node.faults import (Divergence, HeadMarkerDamaged, IntegrityFault, LogBehindCommitted, NodeFault,
                                      StreamGap)
    from blokauto.node.jetstream import OrderStreamReplaced
    from blokauto.node.journal import JournalDamaged

    for fault in (Divergence, LogBehindCommitted, HeadMarkerDamaged, JournalDamaged, IntegrityFault, StreamGap,
                  OrderStreamReplaced, BackupError):
        assert issubclass(fault, NodeFault) and not issubclass(fault, BlokautoError), fault


def test_one_divergence_says_which_check_found_it():
    from blokauto.core.block import Header
    from blokauto.node.faults import Divergence

    stored = Header(chain="c", height=7, time=1, prev="00" * 32, tx_count=0, tx_root="11" * 32,
                    receipt_root="22" * 32, state_root="aa" * 32)
    replayed = Divergence(7, stored, msgspec.structs.replace(stored, state_root="bb" * 32))
    assert "does not re-execute to its stored header (state_root: stored " + "aa" * 32 in str(replayed)
    assert (replayed.stored.state_root, replayed.computed.state_root, replayed.nodes) == ("aa" * 32, "bb" * 32, [])

    class Attested:  # what a node of the consortium attested at that height
        state_root = "cc" * 32

    quorum = Divergence(7, stored, Attested(), ["n2", "n1"])
    assert str(quorum).startswith(f"block 7: this node's state root is {'aa' * 32} but 2 nodes of the consortium "
                                  f"(n1, n2) attested state root {'cc' * 32}; this node stopped executing.")
    assert (quorum.height, quorum.nodes) == (7, ["n1", "n2"])


def test_a_code_is_defined_once():
    with pytest.raises(TypeError, match="error code 'vehicle_stolen' used by blokauto.modules.vehicles.errors"):
        class VehicleStolen(DomainError):  # noqa: F841 (the same name elsewhere: a second definition, not a reload)
            code = "vehicle_stolen"
            template = "Stolen: {vin}."
