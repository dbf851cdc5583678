"""The plain-JSON rules a credential meets before any JSON-LD processing: bounded size and depth,
and only values every canonicalizer writes the same way.

Canonicalizing is the expensive step (pyld is pure Python), so these checks walk the document
once, iteratively, and stop at the first byte over the bound. The value rules come from
measured disagreements between implementations, not from taste (see the package docstring)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ._errors import CredentialInvalid

#: The largest credential accepted, as JSON text (a battery passport is ~5 KB).
MAX_BYTES = 128 * 1024
#: The deepest nesting of objects and arrays accepted (the document itself is depth 1).
MAX_DEPTH = 32
#: Integers beyond I-JSON's range (RFC 7493) are read as doubles by some implementations.
MAX_SAFE_INTEGER = 2**53 - 1

# C0 controls and DEL except LF and CR: the N-Quads escaping of these differs between pyld,
# jsonld.js/rdf-canonize 3 and didkit (URDNA2015 era) and rdf-canonize 5 (RDFC-1.0).
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
# JCS sorts object keys by UTF-16 code units; didkit 0.3.3 sorts keys past U+FFFF differently.
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")


def parse(data: str | bytes) -> dict[str, Any]:
    """A credential from JSON text: bounded before it is read; duplicate keys and NaN refused, then ``check``."""
    if len(data) > MAX_BYTES or (isinstance(data, str) and len(data.encode("utf-8", "surrogatepass")) > MAX_BYTES):
        raise CredentialInvalid(reason=f"it is larger than {MAX_BYTES} bytes; shorten it or move bulk data "
                                       f"off the credential and sign its hash")
    try:
        document = json.loads(data, object_pairs_hook=_object, parse_constant=_constant)
    except RecursionError:
        raise CredentialInvalid(reason=f"it is nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise CredentialInvalid(reason=f"it is not JSON text ({e})") from None
    if not isinstance(document, dict):
        raise CredentialInvalid(reason="it is not a JSON object")
    check(document)
    return document


def check(document: Any) -> None:
    """Refuse a document over the bounds or holding a value canonicalizers disagree on."""
    if not isinstance(document, dict):
        raise CredentialInvalid(reason=f"it is a {type(document).__name__}, not a JSON object")
    budget = MAX_BYTES
    stack: list[tuple[Any, int, str, bool]] = [(document, 1, "$", False)]  # value, depth, path, inside @context
    while stack:
        value, depth, path, in_context = stack.pop()
        if isinstance(value, dict):
            _depth(depth, path)
            budget -= 2
            for key, item in value.items():
                if not isinstance(key, str):
                    raise CredentialInvalid(reason=f"{path[:200]} has a key {key!r:.40} that is not a string")
                budget -= _string(key, f"{path} key", budget, key=True)
                if key.startswith("@") and not in_context and not (key == "@context" and depth == 1):
                    raise CredentialInvalid(
                        reason=f"{path[:200]} uses the JSON-LD keyword {key[:40]!r}; a credential uses JSON-LD "
                               f"keywords only in its top-level @context (write id and type, and declare terms in the context)")
                stack.append((item, depth + 1, f"{path}.{key}", in_context or key == "@context"))
        elif isinstance(value, list):
            _depth(depth, path)
            budget -= 2
            stack.extend((item, depth + 1, f"{path}[{i}]", in_context) for i, item in enumerate(value))
        elif isinstance(value, str):
            budget -= _string(value, path, budget)
        elif value is None or isinstance(value, bool):
            budget -= 6
        elif isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise CredentialInvalid(reason=f"{path[:200]} is an integer beyond ±(2**53 - 1), which other "
                                               f"implementations read as a double; write it as a string")
            budget -= len(str(value)) + 1
        elif isinstance(value, float) and in_context and math.isfinite(value):
            budget -= len(repr(value)) + 1  # "@version": 1.1 (a context is not signed data)
        elif isinstance(value, float):
            raise CredentialInvalid(reason=f"{path[:200]} is a number with a fraction or exponent ({value!r}); numbers "
                                           f"in a credential are integers (write a quantity in a smaller unit, or "
                                           f"as a string)")
        else:
            raise CredentialInvalid(reason=f"{path[:200]} is a {type(value).__name__}, which JSON cannot hold")
        if budget < 0:
            raise CredentialInvalid(reason=f"it is larger than {MAX_BYTES} bytes; shorten it or move bulk data "
                                           f"off the credential and sign its hash")


def _depth(depth: int, path: str) -> None:
    if depth > MAX_DEPTH:
        raise CredentialInvalid(reason=f"it is nested deeper than {MAX_DEPTH} levels (at {path[:200]})")


def _string(text: str, path: str, budget: int, key: bool = False) -> int:
    """The UTF-8 size of ``text``, after checking it is one every canonicalizer writes the same way."""
    if len(text) > budget:
        return len(text)  # the caller's budget check refuses it without reading it
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise CredentialInvalid(reason=f"{path[:200]} holds a lone UTF-16 surrogate, which is not Unicode "
                                       f"text") from None
    bad = _CONTROL.search(text)
    if bad:
        raise CredentialInvalid(
            reason=f"{path[:200]} holds the control character U+{ord(bad.group()):04X}; JSON-LD canonicalizers escape "
                   f"control characters other than line feed and carriage return differently, so remove it")
    if key and _ASTRAL.search(text):
        raise CredentialInvalid(reason=f"{path[:200]} {text[:40]!r} holds a character beyond U+FFFF; implementations "
                                       f"order such keys differently when canonicalizing JSON, so rename it")
    return size + 3  # quotes, and a comma or colon


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CredentialInvalid(reason=f"the key {key[:40]!r} appears twice in one object; readers would "
                                           f"disagree on which value holds")
        out[key] = value
    return out


def _constant(text: str) -> None:
    raise CredentialInvalid(reason=f"it holds {text}, which is not JSON")
