"""The credentials the tests issue: a battery passport with its domain context, and the keys."""

from __future__ import annotations

import copy
from typing import Any

from blokauto.core.crypto import KeyPair
from blokauto.credentials import CREDENTIALS_V1, ED25519_2020_V1, domain_context

MAKER = KeyPair.from_label("credentials/maker")
OTHER = KeyPair.from_label("credentials/other")
CREATED = "2026-03-01T12:00:00Z"

VOCAB = "https://blokauto.dev/vocab/battery#"
BATTERY = domain_context(
    VOCAB,
    ["chemistry", "capacityWh", "cells", "serial", "voltageMv", "manufacturer", "recycled", "note", "parts",
     "label", "count", "flag"],
    types=["BatteryPassportCredential"],
    json_terms=["ledgerProof", "history", "blob"])


def passport(**subject: Any) -> dict[str, Any]:
    """A battery passport before issuing (our ``issue`` fills issuer, issuanceDate and the proof context)."""
    body = {"id": "urn:blokauto:battery:B-0001", "chemistry": "NMC811", "capacityWh": 75_000,
            "manufacturer": "Akku Werke GmbH – Zwickau", "recycled": False,
            "cells": [{"serial": "C-0001", "voltageMv": 3_700}, {"serial": "C-0002", "voltageMv": 3_702}],
            "ledgerProof": {"height": 1204, "root": "ab" * 32, "path": ["cd" * 32, "ef" * 32]}}
    body.update(subject)
    return {"@context": [CREDENTIALS_V1, BATTERY], "type": ["VerifiableCredential", "BatteryPassportCredential"],
            "credentialSubject": body}


def for_didkit(credential: dict[str, Any], key: KeyPair = MAKER) -> dict[str, Any]:
    """The same credential with what our ``issue`` fills in written out, as DIDKit needs it."""
    out = copy.deepcopy(credential)
    contexts = out["@context"]
    if ED25519_2020_V1 not in contexts:
        out["@context"] = [contexts[0], ED25519_2020_V1, *contexts[1:]]
    out.setdefault("issuer", key.did)
    out.setdefault("issuanceDate", CREATED)
    return out
