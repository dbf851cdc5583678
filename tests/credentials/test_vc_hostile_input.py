"""Hostile and malformed documents: each is refused with ``credential_invalid`` and a reason that
names what is wrong, before any expensive work where the danger is the work itself (documents
that would take pyld's URDNA2015 minutes or more: these tests would hit the suite's timeout
rather than pass if a bound were lost)."""

from __future__ import annotations

import copy
import json
import socket
from typing import Any

import pytest
from pyld import jsonld
from pyld.documentloader.frozen import BUNDLED_CONTEXTS

from blokauto.credentials import (CREDENTIALS_V1, ED25519_2020_V1, MAX_BYTES, MAX_DEPTH, MAX_VALUES,
                                  CredentialInvalid, canonicalize, domain_context, issue, load_document, verify)
from blokauto.credentials._jsonld import CONTEXTS, _CONTEXT_FILES, UnknownContext

from vc_world import CREATED, MAKER, passport


@pytest.fixture(scope="module")
def issued() -> dict:
    return issue(passport(), MAKER, created=CREATED)


def _with(issued: dict, **subject: Any) -> dict:
    vc = copy.deepcopy(issued)
    vc["credentialSubject"].update(subject)
    return vc


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# A context an attacker ships inline: it aliases JSON-LD keywords and declares an ordered list,
# which our own domain contexts never do, to reach what the plain-JSON checks cannot see.
ATTACKER_CONTEXT = {"ref": "@id", "p": {"@id": "https://evil.example/p", "@type": "@id"},
                    "seq": {"@id": "https://evil.example/seq", "@container": "@list"},
                    "a": "https://evil.example/a", "b": "https://evil.example/b",
                    "val": "@value", "lng": "@language", "dir": "@direction"}


def _attacker(subject: dict) -> dict:
    return {"@context": [CREDENTIALS_V1, ED25519_2020_V1, ATTACKER_CONTEXT], "type": ["VerifiableCredential"],
            "issuer": MAKER.did, "issuanceDate": CREATED, "credentialSubject": subject,
            "proof": {"type": "Ed25519Signature2020", "created": CREATED, "proofPurpose": "assertionMethod",
                      "verificationMethod": f"{MAKER.did}#{MAKER.did[8:]}", "proofValue": "z" + "1" * 64}}


def _clique(n: int) -> list[dict]:
    return [{"ref": f"_:n{i}", "p": [f"_:n{j}" for j in range(n) if j != i]} for i in range(n)]


def _alike_tree(width: int, depth: int) -> Any:
    return {"b": 0} if depth == 0 else {"a": [_alike_tree(width, depth - 1) for _ in range(width)]}


HOSTILE: dict[str, tuple[Any, str]] = {
    # size and depth, as parsed documents and as JSON text
    "huge_subject_string": (lambda vc: _with(vc, note="x" * MAX_BYTES), f"larger than {MAX_BYTES} bytes"),
    "huge_json_text": (lambda vc: json.dumps(_with(vc, note="x" * MAX_BYTES)), f"larger than {MAX_BYTES} bytes"),
    "huge_many_small_values": (lambda vc: _with(vc, blob=[0] * MAX_BYTES), f"larger than {MAX_BYTES} bytes"),
    "deeply_nested_document": (lambda vc: _with(vc, blob=_nested(MAX_DEPTH)), f"deeper than {MAX_DEPTH}"),
    "deeply_nested_json_text": (lambda vc: '{"a":' * 10_000 + "1" + "}" * 10_000, f"deeper than {MAX_DEPTH}"),
    # JSON that readers disagree on
    "duplicate_key_in_text": (lambda vc: json.dumps(vc)[:-1] + ', "issuer": "did:key:z6MkOther"}', "appears twice"),
    "float": (lambda vc: _with(vc, capacityWh=75.5), "fraction"),
    "float_in_text": (lambda vc: json.dumps(vc).replace('"capacityWh": 75000', '"capacityWh": 75e3'), "fraction"),
    "nan_in_text": (lambda vc: json.dumps(vc).replace('"capacityWh": 75000', '"capacityWh": NaN'), "not JSON"),
    "integer_beyond_i_json": (lambda vc: _with(vc, capacityWh=2**53), "beyond ±(2**53 - 1)"),
    "lone_surrogate": (lambda vc: _with(vc, note="\ud800"), "lone UTF-16 surrogate"),
    "control_character": (lambda vc: _with(vc, note="a\x00b"), "control character U+0000"),
    "escape_character": (lambda vc: _with(vc, note="\x1b[31mred"), "control character U+001B"),
    "astral_object_key": (lambda vc: _with(vc, blob={"\U0001F697": 1}), "beyond U+FFFF"),
    "non_string_key": (lambda vc: _with(vc, blob={1: "x"}), "not a string"),
    "python_object": (lambda vc: _with(vc, note=b"bytes"), "which JSON cannot hold"),
    "not_an_object": (lambda vc: [vc], "not a JSON object"),
    "not_json_text": (lambda vc: "{'single': 'quotes'}", "not JSON text"),
    # JSON-LD that would leave something unsigned
    "keyword_in_subject": (lambda vc: _with(vc, **{"@id": "urn:x:other"}), "JSON-LD keyword '@id'"),
    "nested_context": (lambda vc: _with(vc, **{"@context": {"note": "https://evil.example/note"}}), "'@context'"),
    "undefined_key": (lambda vc: _with(vc, recalled=False), "context does not define"),
    "value_repeated_in_a_set": (lambda vc: _with(vc, note=["recycled", "recycled"]), 'repeats "recycled"'),
    "type_repeated": (lambda vc: {**vc, "type": [*vc["type"], "VerifiableCredential"]}, "repeats"),
    "object_repeated_by_id_in_a_set": (
        lambda vc: _with(vc, cells=[{"id": "urn:cell:1", "serial": "a"}, {"id": "urn:cell:1", "voltageMv": 1}]),
        "repeats urn:cell:1"),
    "relative_type": (lambda vc: {**vc, "type": ["VerifiableCredential", "Unknown"]}, "a type is 'Unknown'"),
    "relative_subject_id": (lambda vc: _with(vc, id="B-0001"), "an id is 'B-0001'"),
    "iri_that_would_forge_a_quad": (lambda vc: _with(vc, id='urn:x:1> <https://evil.example/p> "v'), "an id is"),
    "blank_node_id": (lambda vc: _with(vc, id="_:b0"), "blank node identifier"),
    "context_url_not_shipped": (lambda vc: {**vc, "@context": [*vc["@context"], "https://w3id.org/security/v2"]},
                                "only https://www.w3.org/2018/credentials/v1"),
    "context_url_scoped_inside_an_inline_context": (
        lambda vc: {**vc, "@context": [*vc["@context"][:2], {**vc["@context"][2],
                                                            "cells": {"@id": "https://evil.example/cells",
                                                                      "@context": "https://evil.example/ctx"}}]},
        "'https://evil.example/ctx'"),
    # documents that would take the canonicalizer minutes (pyld's URDNA2015 has no work limit)
    "blank_node_clique_through_an_aliased_id": (lambda vc: _attacker({"id": "urn:x:1", "p": _clique(9)}),
                                                "blank node identifier"),
    "ordered_list_of_repeated_values": (lambda vc: _attacker({"id": "urn:x:1", "seq": [0] * 400}), "ordered list"),
    "alike_objects_under_alike_objects": (lambda vc: _attacker(_alike_tree(30, 2)), "alike in content"),
    "set_over_the_value_bound": (lambda vc: _attacker({"id": "urn:x:1", "a": list(range(MAX_VALUES + 1))}),
                                 f"at most {MAX_VALUES}"),
    "one_node_split_to_pass_the_value_bound": (
        lambda vc: _attacker({"id": "urn:x:1", "p": "urn:x:2", "a": [{"ref": "urn:x:2", "b": list(range(600))},
                                                                    {"ref": "urn:x:2", "b": list(range(600, 1200))}]}),
        "1200 values"),
    "keyword_value_object": (lambda vc: _with(vc, note={"@value": "x", "@language": "en"}), "JSON-LD keyword"),
    "language_tag_that_would_forge_a_quad": (
        lambda vc: _attacker({"id": "urn:x:1", "a": {"val": "x", "lng": "en <https://evil.example/p> ."}}),
        "not BCP 47"),
    "text_direction": (lambda vc: _attacker({"id": "urn:x:1", "a": {"val": "x", "dir": "rtl"}}), "@direction"),
    # structure and proof
    "two_proofs": (lambda vc: {**vc, "proof": [vc["proof"], vc["proof"]]}, "2 proofs"),
    "no_credential_subject": (lambda vc: {k: v for k, v in vc.items() if k != "credentialSubject"},
                              "credentialSubject"),
    "two_subjects": (lambda vc: {**vc, "credentialSubject": [vc["credentialSubject"]] * 2}, "credentialSubject"),
    "not_a_verifiable_credential": (lambda vc: {**vc, "type": ["BatteryPassportCredential"]},
                                    "VerifiableCredential"),
    "context_not_starting_with_vc_v1": (lambda vc: {**vc, "@context": vc["@context"][1:]},
                                        "starting with https://www.w3.org/2018/credentials/v1"),
    "issuer_not_a_did_key": (lambda vc: {**vc, "issuer": "https://maker.example"}, "not a did:key"),
    "issuer_not_ed25519": (lambda vc: {**vc, "issuer": "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"},
                           "not an Ed25519 did:key"),
    "issuance_date_not_a_time": (lambda vc: {**vc, "issuanceDate": "yesterday"}, "issuanceDate"),
    "issuance_date_without_zone": (lambda vc: {**vc, "issuanceDate": "2026-03-01T12:00:00"}, "issuanceDate"),
    "proof_created_month_13": (lambda vc: {**vc, "proof": {**vc["proof"], "created": "2026-13-01T00:00:00Z"}},
                               "created"),
    "proof_value_not_base58": (lambda vc: {**vc, "proof": {**vc["proof"], "proofValue": "z0OIl"}}, "64 bytes"),
    "proof_value_base64": (lambda vc: {**vc, "proof": {**vc["proof"], "proofValue": "u" + "A" * 86}}, "64 bytes"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_document_is_refused(issued, case):
    build, reason = HOSTILE[case]
    with pytest.raises(CredentialInvalid) as refused:
        verify(build(issued))
    assert refused.value.code == "credential_invalid"
    assert reason in refused.value.message, refused.value.message


@pytest.mark.parametrize("case", ["huge_subject_string", "deeply_nested_document", "float", "control_character",
                                  "undefined_key", "relative_subject_id", "blank_node_id"])
def test_we_do_not_issue_what_we_would_refuse(case):
    build, reason = HOSTILE[case]
    unsigned = build(passport())
    with pytest.raises(CredentialInvalid, match="") as refused:
        issue(unsigned, MAKER, created=CREATED)
    assert reason in refused.value.message, refused.value.message


def test_nothing_is_fetched_for_an_unknown_context(issued, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for url in ("https://blokauto.invalid/ctx", "https://www.w3.org/ns/credentials/v2", "file:///etc/passwd"):
        vc = copy.deepcopy(issued)
        vc["@context"][2]["cells"] = {"@id": "https://evil.example/cells", "@context": url}
        with pytest.raises(CredentialInvalid, match="only https://www.w3.org/2018/credentials/v1"):
            verify(vc)
        with pytest.raises(UnknownContext):
            load_document(url)


def test_the_shipped_contexts_are_the_published_ones():
    """pyld ships its own copies (from the publishers); ours must be the same documents."""
    assert set(CONTEXTS) == set(_CONTEXT_FILES) == {CREDENTIALS_V1, ED25519_2020_V1}
    for url, document in CONTEXTS.items():
        assert document == json.loads(BUNDLED_CONTEXTS[url].read_text(encoding="utf-8")), url


def test_another_pyld_user_cannot_poison_our_contexts(issued):
    """pyld caches resolved contexts process-wide by URL, whatever loader fetched them: a careless
    loader elsewhere in the process would change what every default-configured caller canonicalizes."""
    evil = copy.deepcopy(CONTEXTS[CREDENTIALS_V1])
    evil["@context"]["VerifiableCredential"]["@context"]["credentialSubject"]["@id"] = "https://evil.example/subject"

    def evil_loader(url, options):
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": evil if url == CREDENTIALS_V1 else copy.deepcopy(CONTEXTS[url]), "tag": "static"}

    body = {k: v for k, v in issued.items() if k != "proof"}
    honest = canonicalize(body)
    try:
        jsonld.expand(body, {"documentLoader": evil_loader})  # fills pyld's shared cache
        poisoned = jsonld.normalize(body, {"documentLoader": load_document, "algorithm": "URDNA2015",
                                           "format": "application/n-quads"}).encode()
        assert b"https://evil.example/subject" in poisoned  # the danger is real...
        assert canonicalize(body) == honest  # ...and ours is not exposed to it
        verify(issued)
    finally:
        jsonld._resolved_context_cache.clear()


def test_domain_context_refuses_terms_it_cannot_define():
    cases = {"credentialSubject": "defined by the credentials", "proofValue": "defined by the credentials",
             "2fast": "not a term name", "a-b": "not a term name", "@id": "not a term name"}
    for name, reason in cases.items():
        with pytest.raises(ValueError, match=reason):
            domain_context("https://blokauto.dev/vocab#", [name])
    with pytest.raises(ValueError, match="named twice"):
        domain_context("https://blokauto.dev/vocab#", ["a"], json_terms=["a"])
    for vocab in ("blokauto.dev/vocab#", "https://blokauto.dev/vocab", "https://blokauto.dev/vo cab#"):
        with pytest.raises(ValueError, match="vocabulary base"):
            domain_context(vocab, ["a"])
