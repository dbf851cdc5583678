"""Reference documentation generated from the code (so it cannot drift): error codes, messages,
chain parameters and queries, and the browser verifier's state keys (``web/state_keys.js``).
``python -m blokauto.docgen docs/reference`` rewrites the files; a test fails when the committed
files differ from what the code declares."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from .core.errors import BlokautoError, all_error_classes
from .core.module import ANYONE, MEMBER
from .core.registry import Registry
from .modules import default_registry

# Modules whose errors are defined outside core must be imported for their classes to register.
from .api import app as _api  # noqa: F401
from .api.errors import http_status
from .node import reader as _reader  # noqa: F401
from . import share_tokens as _share  # noqa: F401
from .credentials import _errors as _credentials  # noqa: F401
from .vault import _errors as _vault  # noqa: F401


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def errors_md() -> str:
    out = ["# Error codes", "",
           "Every refusal carries a stable `code`, a sentence a person can act on, and a `detail` object with the",
           "data that caused it. Over HTTP: `{\"error\": {\"code\", \"message\", \"detail\"}}` with the status below.",
           "A transaction that fails during execution is still recorded, with a failure receipt holding the code",
           "and detail. `detail` lists the fields each carries (`?`: optional); see [../errors.md](../errors.md)",
           "for the exception tree. Generated from the code by `python -m blokauto.docgen docs/reference`.", "",
           "| code | HTTP | family | detail | message template |", "|---|---|---|---|---|"]
    for cls in all_error_classes():
        family = next((b.__name__ for b in cls.__mro__[1:] if b is not BlokautoError and issubclass(b, BlokautoError)
                       and b.__module__.endswith("core.errors")), "BlokautoError")
        detail = ", ".join([f"`{f}`" for f in cls.fields] + [f"`{f}`?" for f in cls.optional]) or "-"
        out.append(f"| `{cls.code}` | {http_status(cls)} | {family} | {detail} | {_cell(cls.template)} |")
    return "\n".join(out) + "\n"


def _roles(spec) -> str:
    if spec.roles == ANYONE:
        return "any key"
    if spec.roles == MEMBER:
        return "any member key"
    return ", ".join(sorted(spec.roles))


def _fields(struct: type) -> str:
    """The fields of a message or query, required ones first (a struct's inherited fields, such as
    paging or a registration's birth record, come first in its own order)."""
    required, optional = [], []
    for f in msgspec.structs.fields(struct):
        if f.name == "type":
            continue
        if f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT:
            optional.append(f"`{f.name}`?")
        else:
            required.append(f"`{f.name}`")
    return ", ".join(required + optional)


def messages_md(registry: Registry) -> str:
    out = ["# Messages", "",
           "Every transaction carries one message. `sender role` is checked by the framework before the",
           "handler runs; co-signers are parties the message itself names (a buyer, a lender, a new key).",
           "Fields with `?` are optional. The JSON schema of each is served at `GET /v1/messages`.",
           "Generated from the module declarations.", ""]
    for name, module in registry.modules.items():
        out += [f"## {name}", "", module.doc, "", "| type | sender role | co-signers | fields | what it does |",
                "|---|---|---|---|---|"]
        for t, spec in module.messages.items():
            cos = "declared" if spec.cosigners is not None else "-"
            out.append(f"| `{t}` | {_roles(spec)} | {cos} | {_fields(spec.struct)} | {_cell(spec.doc)} |")
        out.append("")
    return "\n".join(out)


def params_md(registry: Registry) -> str:
    out = ["# Chain parameters", "",
           "Integers, bounded, changed only by a governance vote (`set_parameter`); a change takes effect from",
           "the next block. Generated from the declarations.", "",
           "| name | default | min | max | meaning |", "|---|---|---|---|---|"]
    for p in registry.params.values():
        name = f"{p.name}:<{p.keyed}>" if p.keyed else p.name
        out.append(f"| `{name}` | {p.default} | {p.min} | {p.max} | {_cell(p.doc)} |")
    return "\n".join(out) + "\n"


def queries_md(registry: Registry) -> str:
    out = ["# Queries", "", "`GET /v1/q/{module}/{query}?param=value` (SDK: `client.query(module, query, **params)`,",
           "CLI: `blokauto query MODULE QUERY key=value`). Generated from the declarations.", "",
           "| query | parameters | what it answers |", "|---|---|---|"]
    for (m, n), spec in registry.queries.items():
        params = _fields(spec.params) if spec.params else "-"
        out.append(f"| `{m}/{n}` | {params} | {_cell(spec.doc)} |")
    return "\n".join(out) + "\n"


STATE_KEYS_JS = Path(__file__).parent / "web" / "state_keys.js"


def state_keys_js() -> str:
    """``web/state_keys.js``: the state-key prefixes the browser verifier checks proofs for, as the
    modules declare them (``blokauto.verify._keys.STATE_KEYS``)."""
    from .verify._keys import STATE_KEYS

    body = ",\n".join(f"    {name}: {json.dumps(value)}" for name, value in STATE_KEYS.items())
    return ("/* Generated by `python -m blokauto.docgen` from the state-key prefixes the modules declare\n"
            " * (blokauto.verify._keys.STATE_KEYS): do not edit. verifier.js reads them; load this file first. */\n"
            "(function (root) {\n"
            "  \"use strict\";\n"
            "  const keys = Object.freeze({\n" + body + ",\n  });\n"
            "  root.BlokautoStateKeys = keys;\n"
            "  if (typeof module !== \"undefined\" && module.exports) module.exports = keys;\n"
            "})(typeof window !== \"undefined\" ? window : globalThis);\n")


def generate() -> dict[str, str]:
    registry = default_registry()
    return {"errors.md": errors_md(), "messages.md": messages_md(registry), "parameters.md": params_md(registry),
            "queries.md": queries_md(registry)}


def main(argv: list[str]) -> None:
    target = Path(argv[0] if argv else "docs/reference")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (target / name).write_text(text)
        print(f"wrote {target / name}")
    STATE_KEYS_JS.write_text(state_keys_js())
    print(f"wrote {STATE_KEYS_JS}")


if __name__ == "__main__":
    main(sys.argv[1:])
