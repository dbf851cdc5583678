"""JSON-LD for credentials: the two shipped contexts, a loader that fetches nothing, strict
canonicalization (URDNA2015 / RDFC-1.0 through pyld) and the builder of inline domain contexts.

Strict means that everything in the JSON is in the signed graph, or the document is refused:
JSON-LD silently drops a key the context does not define, a relative ``type`` or ``id``, and a
few other things, and what is dropped is not signed. pyld has no "safe mode", so expansion
reports dropped keys to a handler that refuses, and the expanded form is walked for the rest.
The work is bounded too, since pyld's URDNA2015 has none and a few kilobytes can take it
minutes: no blank node identifiers (``"id": "_:b0"``: a 7-node clique takes 5 s, 8 nodes a
minute), no ``@list``, at most ``MAX_VALUES`` values per property of one object, and each blank
node hashed "n-degree" at most ``MAX_DEEP_ITERATIONS`` times.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from importlib import resources
from typing import Any, Iterable

from pyld import ContextResolver, jsonld
from pyld.canon import URDNA2015

from ._errors import CredentialInvalid

CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
ED25519_2020_V1 = "https://w3id.org/security/suites/ed25519-2020/v1"

#: The shipped copies and their SHA-256, so an edited file stops the import rather than a signature.
_CONTEXT_FILES = {
    CREDENTIALS_V1: ("credentials-v1.jsonld", "00d7dd6d3ad8b920e3e550dd3a3d9090bffcac84cdbf943da6924b3e0a5c8bb8"),
    ED25519_2020_V1: ("ed25519-signature-2020-v1.jsonld",
                      "b9e1ab971fd8bf2c7553e0c4a9438e0b9450afde1ea1ca5b2492368b9f549588"),
}


def _load_contexts() -> dict[str, dict[str, Any]]:
    out = {}
    for url, (name, digest) in _CONTEXT_FILES.items():
        raw = resources.files(__package__).joinpath("contexts").joinpath(name).read_bytes()
        if hashlib.sha256(raw).hexdigest() != digest:
            raise RuntimeError(f"blokauto/credentials/contexts/{name} differs from the published {url}; reinstall")
        out[url] = json.loads(raw)
    return out


CONTEXTS: dict[str, dict[str, Any]] = _load_contexts()


class UnknownContext(jsonld.JsonLdError):
    """A context URL other than the two shipped ones; raised inside pyld, found again by ``canonicalize``."""

    def __init__(self, url: str) -> None:
        super().__init__(f"refusing to load {url}", "jsonld.LoadDocumentError", {"url": url},
                         code="loading document failed")
        self.url = url


def load_document(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader: the shipped contexts, and nothing else (no network, no file)."""
    document = CONTEXTS.get(url)
    if document is None:
        raise UnknownContext(url)
    # "static": the resolved context may be cached across calls (in our cache, see below)
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": copy.deepcopy(document), "tag": "static"}


# Resolved contexts are cached here, not in pyld's process-wide cache: that one is keyed by URL
# alone, whatever loader resolved it, so another pyld user's loader could poison ours.
# Inline contexts are cached too (by their text), so the cache is emptied when it grows past a bound.
_resolved: dict[str, Any] = {}
_RESOLVED_MAX = 64
_lock = threading.Lock()


def canonicalize(document: dict[str, Any]) -> bytes:
    """The URDNA2015 canonical N-Quads of ``document``, refusing anything left unsigned.

    RDFC-1.0 gives the same bytes for every credential ``issue`` and ``verify`` accept: the two
    differ only in how they escape control characters, which those refuse."""
    with _lock:
        if len(_resolved) > _RESOLVED_MAX:
            _resolved.clear()
        options = {"documentLoader": load_document, "base": None, "processingMode": "json-ld-1.1"}
        try:
            expanded = jsonld.JsonLdProcessor(on_property_dropped=_dropped).expand(
                document, {**options, "contextResolver": ContextResolver(_resolved, load_document)})
            _check_expanded(expanded, {})
            dataset = jsonld.JsonLdProcessor().to_rdf(
                expanded, {**options, "contextResolver": ContextResolver(_resolved, load_document),
                           "produceGeneralizedRdf": False})
        except jsonld.JsonLdError as e:
            raise _explain(e) from None
    return _BoundedURDNA2015().main(dataset, {"format": "application/n-quads"}).encode("utf-8")


#: The most values one property of one object may have: pyld adds each to a set by comparing it
#: with every other (1,000 values: 0.3 s; 12,000: 55 s).
MAX_VALUES = 1000
#: How often one blank node may be hashed "n-degree" (rdf-canonize's maxDeepIterations, set as it
#: recommends): unnamed objects alike in content need permutations of each other to be told apart,
#: factorial work (30 alike objects under 30 alike parents did not finish in ten minutes).
MAX_DEEP_ITERATIONS = 1


class _BoundedURDNA2015(URDNA2015):
    def __init__(self) -> None:
        super().__init__()
        self.deep_iterations: dict[str, int] = {}

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        count = self.deep_iterations[id_] = self.deep_iterations.get(id_, 0) + 1
        if count > MAX_DEEP_ITERATIONS:
            raise CredentialInvalid(reason="it holds nested objects without an id that are alike in content under "
                                           "objects that are also alike, which takes canonicalization factorial "
                                           "time; give the nested objects ids or make them differ")
        return super().hash_n_degree_quads(id_, issuer)


class _Dropped(jsonld.JsonLdError):
    def __init__(self, what: str) -> None:
        super().__init__(what, "jsonld.SyntaxError")
        self.what = what


def _dropped(expanded_property: str | None) -> None:
    raise _Dropped(f"a key the context does not define (it would expand to {expanded_property!r} and be left "
                   f"unsigned); add the term to the domain context or remove the key")


def _explain(error: jsonld.JsonLdError) -> CredentialInvalid:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, UnknownContext):
            return CredentialInvalid(reason=f"its @context names {cause.url!r}; only {CREDENTIALS_V1} and "
                                            f"{ED25519_2020_V1} may be named by URL (nothing is fetched), "
                                            f"put domain terms in an inline context object")
        if isinstance(cause, _Dropped):
            return CredentialInvalid(reason=f"it holds {cause.what}")
        cause = cause.__cause__ or cause.__context__
    return CredentialInvalid(reason=f"it is not valid JSON-LD: {_innermost(error)}")


def _innermost(error: jsonld.JsonLdError) -> str:
    """pyld's own words for what it refused, from the innermost error of the chain."""
    while isinstance(error.__cause__, jsonld.JsonLdError):
        error = error.__cause__
    message = str(error.args[0]) if error.args else type(error).__name__
    return message.rstrip(".")[:300] + (f" ({error.code})" if error.code else "")


# Absolute IRI with no character that N-Quads would have to escape: an IRI holding '>' or a
# space could otherwise forge a second quad in the canonical form.
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20<>\"{}|\\^`\x7f]*$")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


def _check_expanded(value: Any, counts: dict[tuple[Any, str], int]) -> None:
    """Everything in the expanded form reaches the RDF graph once (IRIs absolute, no blank node ids,
    no value repeated in a set), in a shape pyld canonicalizes in bounded time (no ``@list``, at
    most ``MAX_VALUES`` values per property)."""
    if isinstance(value, list):
        for item in value:
            _check_expanded(item, counts)
        return
    if not isinstance(value, dict):
        return
    if "@value" in value:
        datatype = value.get("@type")
        if datatype is not None and datatype != "@json":
            _iri(datatype, "a value's datatype")
        if "@language" in value and not _LANGUAGE.match(str(value["@language"])):
            raise CredentialInvalid(reason=f"it holds the language tag {value['@language']!r}, which is not BCP 47")
        if "@direction" in value:
            raise CredentialInvalid(reason="it holds a @direction, which JSON-LD leaves out of the signed graph")
        return
    if "@list" in value:
        raise CredentialInvalid(reason="it holds an ordered list (@container @list): canonicalizing a list of "
                                       "repeated values takes time cubic in its length (400 zeros: 111 s); "
                                       "put ordered data in a @json term")
    node = value.get("@id", id(value))  # objects with one id merge into one node
    for key, item in value.items():
        if key == "@id":
            _iri(item, "an id")
        elif key == "@type":
            for t in item if isinstance(item, list) else [item]:
                _iri(t, "a type")
        elif key.startswith("@") and key not in ("@graph", "@included", "@reverse"):
            continue
        else:
            if not key.startswith("@"):
                _iri(key, "a property")
            _check_expanded(item if key != "@reverse" else list(item.values()), counts)
        if key != "@id" and isinstance(item, list):
            _no_repeats(item, key)
            count = counts[node, key] = counts.get((node, key), 0) + len(item)
            if count > MAX_VALUES:
                raise CredentialInvalid(reason=f"one of its objects has {count} values for {key[:80]!r}; at most "
                                               f"{MAX_VALUES} are accepted (canonicalizing a set takes time "
                                               f"quadratic in its size): put large data in a @json term")


def _no_repeats(values: list[Any], key: str) -> None:
    """An array is a set in RDF: a repeated value (or a second object with the same id) is one
    statement, so how many times it appears would be unsigned."""
    seen = set()
    for value in values:
        if isinstance(value, dict) and "@id" in value:
            mark, shown = value["@id"], value["@id"]
        elif isinstance(value, dict) and "@value" in value:
            mark, shown = json.dumps(value, sort_keys=True), json.dumps(value["@value"], ensure_ascii=False)
        elif isinstance(value, str):  # in @type
            mark, shown = value, value
        else:
            continue  # an object without an id is a node of its own, however alike
        if mark in seen:
            raise CredentialInvalid(reason=f"it repeats {shown[:80]} in the array of {key[:80]!r}; an array is a "
                                           f"set, so the repeat would be unsigned: remove it, or put the array in "
                                           f"a @json term if order and repeats matter")
        seen.add(mark)


def _iri(value: Any, what: str) -> None:
    if not isinstance(value, str) or value.startswith("_:"):
        raise CredentialInvalid(reason=f"{what} is the blank node identifier {str(value)[:80]!r}; give objects "
                                       f"absolute IRIs or no id at all")
    if not _IRI.match(value):
        raise CredentialInvalid(reason=f"{what} is {value[:80]!r}, not an absolute IRI: JSON-LD would leave it "
                                       f"unsigned (define the term in the domain context or write a full IRI)")


def _scopes(context: Any) -> Iterable[dict[str, Any]]:
    """Every term-defining object in a context, including type- and property-scoped ones."""
    if isinstance(context, dict):
        yield context
        for definition in context.values():
            if isinstance(definition, dict) and "@context" in definition:
                yield from _scopes(definition["@context"])
    elif isinstance(context, list):
        for item in context:
            yield from _scopes(item)


#: Terms the standard contexts define (at top level or scoped to a type); a domain context may not
#: redefine them: the protected ones are an error, the scoped ones would shadow it inside a credential.
RESERVED_TERMS = frozenset(term for ctx in CONTEXTS.values() for scope in _scopes(ctx["@context"])
                           for term in scope if not term.startswith("@"))

_TERM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def domain_context(vocab: str, terms: Iterable[str] = (), *, types: Iterable[str] = (),
                   json_terms: Iterable[str] = ()) -> dict[str, Any]:
    """An inline ``@context`` object mapping each name to ``vocab + name``.

    ``terms`` are plain properties: a string, integer or boolean is a literal, an object a nested
    node, an array an unordered set (``[a, b]`` and ``[b, a]`` sign alike; ``[a, a]`` is refused).
    ``json_terms`` hold an opaque JSON value signed as its RFC 8785 canonical text
    (``@type: @json``): order, repeats and shape included, and cheap to canonicalize at any
    size; use them for ordered data, ledger proofs, Merkle paths (the value rules of the whole
    document hold inside too: no key starting with ``@``, no key beyond U+FFFF). ``types`` are
    the names used in ``type`` (``BatteryPassportCredential``).
    """
    if not _IRI.match(vocab) or not vocab.endswith(("#", "/")):
        raise ValueError(f"a vocabulary base is an absolute IRI ending in '#' or '/', not {vocab!r}")
    context: dict[str, Any] = {}
    for kind, names in (("term", terms), ("type", types), ("json", json_terms)):
        for name in names:
            if not _TERM.match(name):
                raise ValueError(f"{name!r} is not a term name (letters, digits and _; not starting with a digit)")
            if name in RESERVED_TERMS:
                raise ValueError(f"{name!r} is defined by the credentials or Ed25519Signature2020 context")
            if name in context:
                raise ValueError(f"{name!r} is named twice")
            context[name] = {"@id": vocab + name, "@type": "@json"} if kind == "json" else {"@id": vocab + name}
    return context
