"""A raw state value is read by whoever reads the module query answering from it, so the console can
prove what a party sees: a part, batch or lot by its parties, a remedy by its campaign's maker and
opener, the open campaigns by any known key (found by the console's parts and recalls pages, where a
supplier could read its part but not prove it). Regulators and police read every key, as before."""

from __future__ import annotations

from typing import Any

import pytest

from blokauto.keystore import KeyStore

from conftest import signed

pytest_plugins = ["helpers.reports"]

VIN = "WZZ3E5C22NM400117"
REMEDY = f"recall/remedy/{1:016d}/{VIN}"
ROWS = [
    ("parts/p/VP-83:VP83-0001", "voltcell-admin", 200, ""),          # its supplier
    ("parts/p/VP-83:VP83-0001", "bavaria-motors-admin", 200, ""),    # a custodian
    ("parts/p/VP-83:VP83-0001", "stopwell-brakes-admin", 403, "not_a_party"),
    ("parts/p/VP-83:VP83-0001", "kba-admin", 200, ""),               # a regulator
    ("parts/b/VP-83:P1", "voltcell-admin", 200, ""),
    ("parts/b/VP-83:P1", "meister-werkstatt-admin", 403, "not_a_party"),
    ("parts/lot/CO-KAM-0042", "fairmine-audit-admin", 200, ""),      # its auditor
    ("parts/lot/CO-KAM-0042", "stopwell-brakes-admin", 403, "not_a_party"),
    (REMEDY, "bavaria-motors-admin", 200, ""),                       # the campaign's maker
    (REMEDY, "meister-werkstatt-admin", 403, "not_a_party"),
    ("recall/open", "stopwell-brakes-admin", 200, ""),
    ("recall/open", "ben", 200, ""),                                 # a vehicle holder is a known key too
]


@pytest.mark.parametrize("key,reader,status,code", ROWS)
def test_a_state_value_is_read_by_the_readers_of_its_query(world: Any, key: str, reader: str, status: int,
                                                           code: str) -> None:
    with signed(world.node.url, KeyStore(world.data / "keys").load(reader)) as http:
        r = http.get(f"/v1/state/{key}")
    assert r.status_code == status, (key, reader, r.text[:300])
    if code:
        assert r.json()["error"]["code"] == code
    else:
        assert r.json()["value"] is not None
