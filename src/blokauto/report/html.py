"""The self-verifying HTML page of a report: one file, no network, verifies itself on load."""

from __future__ import annotations

import html
import re
from importlib import resources
from typing import Any

import msgspec

from ..core.block import Genesis
from ..core.encoding import to_builtins


def _embed(value: Any) -> str:
    """JSON that stays inert inside <script type="application/json">: "<", ">" and "&" are
    written as \\u escapes (so neither "</script" nor "<!--" can end or hide the block), and so
    are the line separators."""
    text = msgspec.json.encode(value).decode()
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def web_asset(name: str) -> str:
    return resources.files("blokauto.web").joinpath(name).read_text(encoding="utf-8")


#: The browser verifier and, first, the state keys it reads (generated; see ``blokauto.docgen``).
VERIFIER_SCRIPTS = ("state_keys.js", "verifier.js")


def verifier_script() -> str:
    """The browser verifier as one script to inline in a page."""
    return "\n".join(web_asset(name) for name in VERIFIER_SCRIPTS)


_SLOTS = re.compile(r"__REPORT_JSON__|__ANCHOR_JSON__|/\*__VERIFIER__\*/")


def render_html(report: dict[str, Any], genesis: Genesis) -> str:
    """One pass over the template, so nothing inserted is ever scanned for slots again."""
    fill = {"__REPORT_JSON__": _embed(report), "__ANCHOR_JSON__": _embed(to_builtins(genesis)),
            "/*__VERIFIER__*/": verifier_script()}
    return _SLOTS.sub(lambda m: fill[m.group(0)], web_asset("report.html"))


def render_error_page(err: Any) -> str:
    """A refusal as a small page a person can read (the same code and sentence the API gives)."""
    message, code = html.escape(err.message), html.escape(err.code)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>blokauto: " + code + "</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}"
            "code{background:#eee;padding:0 .3em}</style></head><body>"
            "<h1>No report</h1><p id=\"message\">" + message + "</p>"
            "<p>Error code <code id=\"code\">" + code + "</code>. <a href=\"/\">Back to the start page</a>.</p>"
            "</body></html>")
