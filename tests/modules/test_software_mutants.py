"""Tests written from a mutation run (mutmut 3) over the software module's rules
(``software/handlers.py``, ``software/metadata.py``) and the recalls code that closes software
recalls (``recalls/handlers.py``: ``remedy_by_software``, ``record_remedy``,
``confirm_software_remedy``, the ``software_fix`` parts of opening and closing): each test pins a
rule that some mutant broke without any other test failing.

- what an accepted transaction writes beyond what the other tests read: a rotated root's hash and
  expiry, a fitted ECU's block and time, the installs index numbered 1, 2, 3... per vehicle with its
  block and hardware id, the ``ecus_fitted`` history entry whole;
- boundaries: a metadata file of exactly ``MAX_METADATA_BYTES`` and one nested exactly ``MAX_DEPTH``
  levels are taken; a sha256 that is 64 characters but not hex is not;
- the exact detail of each refusal (``REFUSALS``): a receipt names the role, ECU, path, block or
  image that was wrong, and the ECU named twice rather than the first one named;
- recalls: a manifest remedies every campaign it fixes whatever the campaigns before it in the
  hardware index (one it does not fix, one already remedied, one that did not cover the vehicle);
  a vehicle registered in the block a campaign opened is covered; a serial range covers the serials
  in it; a manufacturer attests no workshop remedy, a dealer does; and the exact detail of the
  refusals of ``recalls.remedy`` and ``recalls.confirm_software_remedy``.

World: ``helpers.software``'s OtaWorld (oem's repositories, Alice's car fitted with brake-1 and gw-1
running release 1); for the serial-range rule, ``helpers.parts``' consortium.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import msgspec
import pytest
from tuf.api.metadata import Metadata, Root

from blokauto.core.crypto import KeyPair
from blokauto.modules.recalls.messages import CloseCampaign, ConfirmSoftwareRemedy, RecordRemedy
from blokauto.modules.recalls.state import CAMPAIGNS, DateRange, Scope, SerialRange, SoftwareFix, VinRange
from blokauto.modules.software import errors
from blokauto.modules.software.messages import (AnchorRelease, EcuSpec, FitEcus, RegisterRepository, ReportManifest,
                                                RotateRoot)
from blokauto.modules.software.metadata import MAX_DEPTH, MAX_METADATA_BYTES, check_root_shape, sha256
from blokauto.modules.software.spec import INSTALLS
from blokauto.modules.software.state import REPOSITORIES, VEHICLES
from blokauto.ota.repository import public_key

from conftest import K, build_tx
from helpers import parts as hp
from helpers.insurance import BOB_DEVICE, DEVICE, OEM, OTHER_VIN, SHOP, VIN, now, ok, send
from helpers.parts import campaign
from helpers.software import (BRAKE_HW, GATEWAY_HW, OtaWorld, image, image_keys, installed, new_root, ota_world,
                              release_text, role_keys, signed_text, target, tuf_time)
from helpers.vehicles import WMI, admin, history, register_msg, snapshot, vin_for

DAY = 86_400_000
SKEW = 5 * 60_000  # manifest_future_skew_ms by default
OEM2 = admin("oem2")
DEALER = admin("dealer")
KEYS2 = role_keys(1, "oem2")
BRAKE = {n: (f"brake/brake-{n}.bin", image("brake", n)) for n in (1, 2, 3, 4)}
GW = {n: (f"gateway/gw-{n}.bin", image("gw", n)) for n in (1, 2, 3)}
ALICES = Scope(vin_ranges=[VinRange(first=VIN, last=VIN)])
BOBS = Scope(vin_ranges=[VinRange(first=OTHER_VIN, last=OTHER_VIN)])
EVERY_CAR = Scope(build_dates=DateRange(first="2027-01-01", last="2027-12-31"))


# ---------------------------------------------------------------- building what is sent


def year(w: OtaWorld) -> Any:
    return tuf_time(now(w.chain) + 365 * DAY)


def oem2_root(w: OtaWorld, *, change: Callable[[Root], Any] | None = None, expires: int | None = None,
              thresholds: dict[str, int] | None = None) -> str:
    """A version-1 root for oem2 (which has no repository yet), signed by its root key."""
    root = new_root(KEYS2, expires=tuf_time(expires) if expires is not None else year(w), thresholds=thresholds)
    if change is not None:
        change(root)
    return signed_text(root, *KEYS2["root"])


def edited(text: str, change: Callable[[dict], Any]) -> str:
    d = json.loads(text)
    change(d)
    return json.dumps(d, separators=(",", ":"))


def nested(depth: int) -> Callable[[Root], None]:
    """A field of ``depth`` nested arrays in the root's signed part (signed with it): the file nests
    ``depth`` + 2 levels (the file's object and ``signed``)."""
    def change(root: Root) -> None:
        value: list = []
        for _ in range(depth - 1):
            value = [value]
        root.unrecognized_fields["x"] = value
    return change


def padded(w: OtaWorld, size: int) -> str:
    """oem2's root signed with a note that makes the file exactly ``size`` bytes (ASCII)."""
    bare = len(oem2_root(w, change=lambda root: root.unrecognized_fields.update(note="")))
    text = oem2_root(w, change=lambda root: root.unrecognized_fields.update(note="e" * (size - bare)))
    assert len(text.encode()) == size
    return text


def next_root(w: OtaWorld, *, version: int | None = None, expires: int | None = None) -> str:
    """The image repository's next root, signed by its root keys."""
    root = Metadata[Root].from_bytes(REPOSITORIES.get(w.chain.ledger, "oem", "image").root.encode()).signed
    root.version = version if version is not None else root.version + 1
    root.expires = tuf_time(expires) if expires is not None else year(w)
    return signed_text(root, *image_keys(w, "root"))


def manifest(*items: tuple[str, str, bytes | str], vin: str = VIN, t: Callable[[OtaWorld], int] | None = None
             ) -> Callable[[OtaWorld], ReportManifest]:
    """A manifest dated at the next block's time (``t``: another time)."""
    return lambda w: ReportManifest(vin=vin, t=now(w.chain) + 1 if t is None else t(w), installed=installed(*items))


def tx(w: OtaWorld, sender: KeyPair, msg: Any, at: int) -> bytes:
    return build_tx(sender, msg, expires=at + 600_000, nonce=f"{next(w.chain.nonces):032x}")


def released_v2(w: OtaWorld) -> None:
    w.release((*BRAKE[2], BRAKE_HW, 2, ""), (*GW[2], GATEWAY_HW, 2, ""))


def installed_v2(w: OtaWorld) -> None:
    released_v2(w)
    assert w.report(("brake-1", *BRAKE[2])).ok


def bundled(w: OtaWorld) -> None:
    """Release 2: bundle "b3" of brake v3 and gateway v3."""
    w.release((*BRAKE[3], BRAKE_HW, 3, "b3"), (*GW[3], GATEWAY_HW, 3, "b3"))


def short(data: bytes) -> str:
    return sha256(data)[:16]


# ---------------------------------------------------------------- what an accepted transaction writes


def test_a_rotation_anchors_the_new_roots_hash_and_expiry(tmp_path: Path) -> None:
    """The repository record follows the root it anchors (a vehicle checks the root's hash and
    expiry against it), not only its version."""
    w = ota_world(tmp_path)
    expires = (now(w.chain) + 200 * DAY) // 1000 * 1000
    text = next_root(w, expires=expires)
    ok(w.chain, OEM, RotateRoot(kind="image", root=text))
    repo = REPOSITORIES.get(w.chain.ledger, "oem", "image")
    assert (repo.root_version, repo.root_sha256, repo.root, repo.root_expires) == (
        2, sha256(text.encode()), text, expires)


def test_a_fitted_ecu_records_the_block_and_time_it_was_fitted(tmp_path: Path) -> None:
    w = ota_world(tmp_path)
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="adas-1", hardware_id="adas-v1")]))
    ecu = next(e for e in VEHICLES.get(w.chain.ledger, VIN).ecus if e.ecu == "adas-1")
    assert (ecu.height, ecu.time) == (w.chain.ledger.head.height, now(w.chain))


def _installs(w: OtaWorld, vin: str = VIN) -> list[tuple[int, str, int, str, str, int]]:
    rows = [r for r in w.chain.ledger.index[INSTALLS.name].values() if r["vin"] == vin]
    return sorted((r["n"], r["ecu"], r["height"], r["hardware_id"], r["path"], r["counter"]) for r in rows)


def test_the_installs_index_is_numbered_one_by_one_per_vehicle_with_block_and_hardware(tmp_path: Path) -> None:
    """Each fit and each changed ECU is the vehicle's next install (1, 2, 3, ...), at its block, for
    the ECU's hardware; ``installs`` on the inventory is the last number."""
    w = ota_world(tmp_path)
    fitted_at = w.chain.ledger.head.height
    assert _installs(w) == [(1, "brake-1", fitted_at, BRAKE_HW, BRAKE[1][0], 1),
                            (2, "gw-1", fitted_at, GATEWAY_HW, GW[1][0], 1)]
    released_v2(w)
    assert w.report(("brake-1", *BRAKE[2]), ("gw-1", *GW[2])).ok
    installed_at = w.chain.ledger.head.height
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="adas-1", hardware_id="adas-v1")]))
    refit_at = w.chain.ledger.head.height
    assert _installs(w)[2:] == [(3, "brake-1", installed_at, BRAKE_HW, BRAKE[2][0], 2),
                                (4, "gw-1", installed_at, GATEWAY_HW, GW[2][0], 2),
                                (5, "adas-1", refit_at, "adas-v1", "", 0)]
    assert VEHICLES.get(w.chain.ledger, VIN).installs == 5


def test_the_ecus_fitted_history_entry_names_each_ecus_image_and_counter(tmp_path: Path) -> None:
    w = ota_world(tmp_path)
    entry = [e for e in history(w.chain, VIN) if e["type"] == "ecus_fitted"][-1]
    assert entry["data"] == {"ecus": [
        {"ecu": "brake-1", "hardware_id": BRAKE_HW, "path": BRAKE[1][0], "image": sha256(BRAKE[1][1]),
         "release_counter": 1},
        {"ecu": "gw-1", "hardware_id": GATEWAY_HW, "path": GW[1][0], "image": sha256(GW[1][1]), "release_counter": 1}]}


# ---------------------------------------------------------------- boundaries


@pytest.mark.parametrize("extra,code", [(0, ""), (1, "metadata_too_large")])
def test_a_metadata_file_of_exactly_the_size_limit_is_taken(tmp_path: Path, extra: int, code: str) -> None:
    """``MAX_METADATA_BYTES`` bytes pass; one byte more (an ``é`` for an ``e``: the same characters)
    is ``metadata_too_large``, naming its size."""
    w = ota_world(tmp_path)
    text = padded(w, MAX_METADATA_BYTES)
    if extra:
        text = text.replace('"note":"e', '"note":"\u00e9', 1)
    r = send(w.chain, OEM2, RegisterRepository(kind="image", root=text))
    assert (r.ok, r.code) == (not code, code), r
    if code:
        assert r.detail == {"role": "root", "size": MAX_METADATA_BYTES + extra, "limit": MAX_METADATA_BYTES}


@pytest.mark.parametrize("depth,code", [(MAX_DEPTH, ""), (MAX_DEPTH + 1, "invalid_metadata")])
def test_a_metadata_file_nested_exactly_the_depth_limit_is_taken(tmp_path: Path, depth: int, code: str) -> None:
    w = ota_world(tmp_path)
    r = send(w.chain, OEM2, RegisterRepository(kind="image", root=oem2_root(w, change=nested(depth - 2))))
    assert (r.ok, r.code) == (not code, code), r
    if code:
        assert r.detail == {"role": "root", "reason": f"it nests {depth} levels of arrays and objects; TUF metadata "
                                                      f"needs at most {MAX_DEPTH}"}


def test_a_root_without_one_of_the_four_roles_is_refused_by_its_shape() -> None:
    """python-tuf's parser already refuses such a root; the ledger's own check of the shape refuses it
    too (the rule does not rest on the parser alone)."""
    root = new_root(KEYS2, expires=tuf_time(1_900_000_000_000))
    del root.roles["timestamp"]
    with pytest.raises(errors.InvalidMetadata) as err:
        check_root_shape(root)
    assert err.value.detail == {"role": "root", "reason": "it names no timestamp role"}


# ---------------------------------------------------------------- refusals, with their exact detail


@functools.cache
def _rsa_key() -> Any:
    """One RSA key (a scheme the ledger does not take), the same in a row's message and its detail."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())


def _thirty_six_keys(root: Root) -> None:
    for i in range(32):
        root.add_key(public_key(K(f"spare-{i}")), "snapshot")


def _expired_yesterday(w: OtaWorld) -> str:
    return oem2_root(w, expires=now(w.chain) - DAY)


def _decode_error(text: str) -> str:
    try:
        msgspec.json.decode(text.encode())
    except msgspec.DecodeError as exc:
        return str(exc)[:300]
    raise AssertionError("decodes")


def _a_float(d: dict) -> None:
    d["signed"]["x"] = 1.5  # JSON, but not canonical JSON: nothing to check a signature over


@dataclass(frozen=True)
class Detailed:
    name: str
    sender: KeyPair
    msg: Callable[[OtaWorld], Any]
    code: str
    detail: Callable[[OtaWorld, int], dict[str, Any]]  # (world, block time) -> the receipt's whole detail
    setup: Callable[[OtaWorld], Any] | None = None


def d(name: str, who: KeyPair, msg: Callable[[OtaWorld], Any], code: str,
      detail: Callable[[OtaWorld, int], dict[str, Any]], setup: Any = None) -> Any:
    return pytest.param(Detailed(name, who, msg, code, detail, setup), id=name)


def _anchored_at(w: OtaWorld) -> int:
    return REPOSITORIES.get(w.chain.ledger, "oem", "image").registered


REFUSALS = [
    # ------------------------------------------------ roots
    d("register_again_names_the_block_it_was_registered", OEM,
      lambda w: RegisterRepository(kind="image", root=w.images.root_bytes().decode()), "repository_exists",
      lambda w, at: {"maker": "oem", "kind": "image", "height": _anchored_at(w)}),
    d("root_not_json_names_the_role_and_the_parser_error", OEM2,
      lambda w: RegisterRepository(kind="image", root="{not json"),
      "invalid_metadata", lambda w, at: {"role": "root", "reason": _decode_error("{not json")}),
    d("rotation_not_json_names_the_role", OEM, lambda w: RotateRoot(kind="image", root="{not json"),
      "invalid_metadata", lambda w, at: {"role": "root", "reason": _decode_error("{not json")}),
    d("root_with_a_float_names_the_canonical_json_error", OEM2,
      lambda w: RegisterRepository(kind="image", root=edited(oem2_root(w), _a_float)), "invalid_metadata",
      lambda w, at: {"role": "root", "reason": "SerializationError"}),  # python-tuf's error has no message
    d("a_targets_file_as_root_names_the_role", OEM2,
      lambda w: RegisterRepository(kind="image", root=w.images.targets_bytes().decode()), "invalid_metadata",
      lambda w, at: {"role": "root", "reason": "it is targets metadata, not root"}),
    d("root_naming_36_keys_names_the_count", OEM2,
      lambda w: RegisterRepository(kind="image", root=oem2_root(w, change=_thirty_six_keys)), "invalid_metadata",
      lambda w, at: {"role": "root", "reason": "it names 36 keys, more than 32"}),
    d("root_with_an_rsa_key_names_the_key_and_the_schemes_taken", OEM2,
      lambda w: RegisterRepository(kind="image", root=oem2_root(w, change=lambda r: r.add_key(_rsa_key(), "targets"))),
      "invalid_metadata", lambda w, at: {"role": "root", "reason": f"key {_rsa_key().keyid[:16]} uses scheme "
                                                                   f"'rsassa-pss-sha256'; use one of "
                                                                   f"ecdsa-sha2-nistp256, ed25519"}),
    d("root_whose_threshold_its_keys_cannot_meet_names_the_role", OEM2,
      lambda w: RegisterRepository(kind="image", root=oem2_root(w, thresholds={"targets": 2})), "invalid_metadata",
      lambda w, at: {"role": "root", "reason": "the targets role needs 2 of 1 known keys"}),
    d("root_expired_names_its_expiry_and_the_block_time", OEM2,
      lambda w: RegisterRepository(kind="image", root=_expired_yesterday(w)), "metadata_expired",
      lambda w, at: {"role": "root", "reason": f"version 1 expired at {(at - 1 - DAY) // 1000 * 1000} ms, not after "
                                               f"{at} ms"}),
    d("rotation_back_to_the_anchored_version_names_both_versions", OEM,
      lambda w: RotateRoot(kind="image", root=w.images.root_bytes().decode()), "metadata_rollback",
      lambda w, at: {"role": "root", "reason": "version 1 after 1"}),
    d("rotation_skipping_a_version_names_the_role", OEM,
      lambda w: RotateRoot(kind="image", root=next_root(w, version=3)),
      "invalid_metadata", lambda w, at: {"role": "root", "reason": "version 3 does not follow 1; anchor every root "
                                                                   "in turn"}),
    # ------------------------------------------------ releases
    d("target_whose_sha256_is_not_hex", OEM,
      lambda w: AnchorRelease(targets=release_text(w, target("brake/x.bin", image("x", 1),
                                                             hashes={"sha256": "X" * 64}))),
      "invalid_release", lambda w, at: {"reason": "target 'brake/x.bin' has no sha256 hash in lowercase hex"}),
    d("target_path_over_100_shows_its_first_80_characters", OEM,
      lambda w: AnchorRelease(targets=release_text(w, target("a" * 101, image("brake", 2)))), "invalid_release",
      lambda w, at: {"reason": f"target path {'a' * 80!r} is not a plain relative path"}),
    d("image_released_again_under_another_path_names_both", OEM,
      lambda w: AnchorRelease(targets=release_text(w, target("brake/renamed.bin", BRAKE[1][1]))), "image_mismatch",
      lambda w, at: {"what": "target 'brake/renamed.bin'", "reason": f"release 1 describes the image "
                                                                     f"{short(BRAKE[1][1])} as 'brake/brake-1.bin' for "
                                                                     f"'brake-ecu-v2', counter 1, length "
                                                                     f"{len(BRAKE[1][1])}"}),
    # ------------------------------------------------ fitting ECUs
    d("fit_naming_an_ecu_twice_names_that_ecu_not_the_first", OEM,
      lambda w: FitEcus(vin=VIN, ecus=[EcuSpec(ecu="a-1", hardware_id=BRAKE_HW),
                                       EcuSpec(ecu="b-1", hardware_id=BRAKE_HW),
                                       EcuSpec(ecu="b-1", hardware_id=GATEWAY_HW)]),
      "duplicate_ecu", lambda w, at: {"ecu": "b-1"}),
    d("factory_image_not_anchored_names_it_and_the_ecu", OEM,
      lambda w: FitEcus(vin=VIN, ecus=[EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW, image=sha256(b"unreleased"))]),
      "release_not_anchored", lambda w, at: {"what": f"factory image {short(b'unreleased')} of ECU 'brake-9'",
                                             "maker": "oem"}),
    d("factory_image_for_other_hardware_names_its_path", OEM,
      lambda w: FitEcus(vin=VIN, ecus=[EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW, image=sha256(GW[1][1]))]),
      "wrong_hardware_id", lambda w, at: {"path": GW[1][0], "image_hardware": GATEWAY_HW, "ecu": "brake-9",
                                          "ecu_hardware": BRAKE_HW}),
    d("fit_beyond_64_ecus_names_the_vehicle", OEM,
      lambda w: FitEcus(vin=VIN, ecus=[EcuSpec(ecu=f"e{i}", hardware_id=BRAKE_HW) for i in range(63)]),
      "too_many_ecus", lambda w, at: {"vin": VIN, "count": 65, "limit": 64}),
    # ------------------------------------------------ manifests
    d("manifest_of_a_vehicle_with_no_ecus_names_the_first_ecu", BOB_DEVICE,
      manifest(("gw-1", *GW[2]), ("brake-1", *BRAKE[2]), vin=OTHER_VIN), "unknown_ecu",
      lambda w, at: {"vin": OTHER_VIN, "ecu": "gw-1"}, setup=released_v2),
    d("manifest_naming_an_ecu_never_fitted_names_the_vehicle", DEVICE, manifest(("brake-9", *BRAKE[2])), "unknown_ecu",
      lambda w, at: {"vin": VIN, "ecu": "brake-9"}, setup=released_v2),
    d("manifest_dated_beyond_the_skew_names_every_time", DEVICE,
      manifest(("brake-1", *BRAKE[2]), t=lambda w: now(w.chain) + 1 + SKEW + 1), "manifest_out_of_order",
      lambda w, at: {"vin": VIN, "t": at + SKEW + 1, "last": 0, "skew_ms": SKEW, "time": at}, setup=released_v2),
    d("manifest_naming_an_ecu_twice_names_that_ecu_not_the_first", DEVICE,
      manifest(("gw-1", *GW[2]), ("brake-1", *BRAKE[2]), ("brake-1", *BRAKE[1])), "duplicate_ecu",
      lambda w, at: {"ecu": "brake-1"}, setup=released_v2),
    d("arbitrary_software_names_its_path_and_hash", DEVICE, manifest(("brake-1", "brake/brake-2.bin", b"evil")),
      "release_not_anchored", lambda w, at: {"what": f"image 'brake/brake-2.bin' ({short(b'evil')})", "maker": "oem"},
      setup=released_v2),
    d("mix_and_match_names_the_ecu_and_both_paths", DEVICE, manifest(("brake-1", BRAKE[2][0], BRAKE[1][1])),
      "image_mismatch", lambda w, at: {"what": "ECU 'brake-1'", "reason": f"the image {short(BRAKE[1][1])} is released "
                                                                         f"as 'brake/brake-1.bin', not "
                                                                         f"'brake/brake-2.bin'"},
      setup=released_v2),
    d("image_for_other_hardware_names_its_path", DEVICE, manifest(("brake-1", *GW[2])), "wrong_hardware_id",
      lambda w, at: {"path": GW[2][0], "image_hardware": GATEWAY_HW, "ecu": "brake-1", "ecu_hardware": BRAKE_HW},
      setup=released_v2),
    d("software_rollback_names_the_path", DEVICE, manifest(("brake-1", *BRAKE[1])), "software_rollback",
      lambda w, at: {"path": BRAKE[1][0], "counter": 1, "current": 2, "ecu": "brake-1"}, setup=installed_v2),
    d("half_a_bundle_names_the_image_the_other_ecu_must_run", DEVICE, manifest(("brake-1", *BRAKE[3])),
      "partial_bundle", lambda w, at: {"bundle": "b3", "ecu": "gw-1", "hardware_id": GATEWAY_HW, "path": GW[3][0]},
      setup=bundled),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_names_exactly_what_was_wrong(case: Detailed, tmp_path: Path) -> None:
    w = ota_world(tmp_path)
    if case.setup is not None:
        case.setup(w)
    at = now(w.chain) + 1
    raw = tx(w, case.sender, case.msg(w), at)
    before = snapshot(w.chain)
    receipt = w.chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.detail == case.detail(w, at)
    assert snapshot(w.chain) == before


# ---------------------------------------------------------------- recalls closed by the manifest


def fix_world(tmp: Path) -> OtaWorld:
    """``ota_world``, Bob's car fitted too, and release 2: brake v2, v3, v4 (counters 2-4)."""
    w = ota_world(tmp)
    w.fit(vin=OTHER_VIN, factory={"brake-1": sha256(BRAKE[1][1]), "gw-1": sha256(GW[1][1])})
    w.release(*[(*BRAKE[n], BRAKE_HW, n, "") for n in (2, 3, 4)])
    return w


def opened(w: OtaWorld, number: str, scope: Scope = ALICES, min_counter: int = 3) -> int:
    r = ok(w.chain, OEM, campaign(number, scope, ota_remedy=True,
                                  software_fix=SoftwareFix(hardware_id=BRAKE_HW, min_release_counter=min_counter)))
    return next(e["campaign"] for e in r.events if e["type"] == "recalls.campaign_opened")


def workshop_remedied(number: str) -> Callable[[OtaWorld, dict[str, int]], None]:
    def step(w: OtaWorld, ids: dict[str, int]) -> None:
        ok(w.chain, SHOP, RecordRemedy(campaign=ids[number], vin=VIN, notes="reflashed at the workshop"))
    return step


@pytest.mark.parametrize("campaigns,before,fixed", [
    pytest.param([("R-HIGH", ALICES, 4), ("R-LOW", ALICES, 3)], None, ["R-LOW"], id="one_it_does_not_fix_first"),
    pytest.param([("R-1", ALICES, 3), ("R-2", ALICES, 3)], workshop_remedied("R-1"), ["R-2"],
                 id="one_already_remedied_first"),
    pytest.param([("R-BOB", BOBS, 3), ("R-ALICE", ALICES, 3)], None, ["R-ALICE"],
                 id="one_that_did_not_cover_the_vehicle_first"),
    pytest.param([("R-HIGH", ALICES, 4), ("R-1", ALICES, 3), ("R-BOB", BOBS, 3), ("R-2", EVERY_CAR, 2)], None,
                 ["R-1", "R-2"], id="every_kind_in_turn"),
])
def test_a_manifest_remedies_every_campaign_it_fixes_whatever_comes_before_it(
        tmp_path: Path, campaigns: list[tuple[str, Scope, int]], before: Any, fixed: list[str]) -> None:
    """The hardware index lists the campaigns in the order they opened; one the manifest does not
    remedy does not stop the ones after it."""
    w = fix_world(tmp_path)
    ids = {number: opened(w, number, scope, counter) for number, scope, counter in campaigns}
    if before is not None:
        before(w, ids)
    r = w.report(("brake-1", *BRAKE[3]))
    assert r.ok, r
    assert [e["campaign"] for e in r.events if e["type"] == "recalls.remedied"] == [ids[n] for n in fixed]


def test_a_vehicle_registered_in_the_block_the_campaign_opened_is_covered(tmp_path: Path) -> None:
    """Covered is judged at the block the campaign opened: a vehicle registered in that block, before
    the campaign, was there when it opened."""
    w = fix_world(tmp_path)
    late, key = vin_for(WMI["oem"], 3), K("tel-dev-late")
    at = now(w.chain) + 1
    registered = tx(w, OEM, register_msg(late, device_keys=[key.did]), at)
    opening = tx(w, OEM, campaign("R-1", EVERY_CAR, ota_remedy=True,
                                  software_fix=SoftwareFix(hardware_id=BRAKE_HW, min_release_counter=3)), at)
    receipts = w.chain.block(registered, opening, time=at).receipts
    assert all(x.ok for x in receipts), receipts
    cid = next(e["campaign"] for e in receipts[1].events if e["type"] == "recalls.campaign_opened")
    ok(w.chain, OEM, FitEcus(vin=late, ecus=[EcuSpec(ecu="brake-1", hardware_id=BRAKE_HW)]))
    r = w.report(("brake-1", *BRAKE[3]), vin=late, key=key)
    assert [e for e in r.events if e["type"] == "recalls.remedied"] == [
        {"type": "recalls.remedied", "campaign": cid, "vin": late}]


# ---------------------------------------------------------------- recalls.remedy


def test_a_manufacturer_attests_no_workshop_remedy_and_a_dealer_does(tmp_path: Path) -> None:
    """A manufacturer's own word remedies nothing, even on its own vehicle; a dealer (like a
    workshop) attests a workshop remedy."""
    w = fix_world(tmp_path)
    r = ok(w.chain, OEM, campaign("R-1", ALICES))
    cid = r.events[-1]["campaign"]
    before = snapshot(w.chain)
    refused = send(w.chain, OEM, RecordRemedy(campaign=cid, vin=VIN, method="workshop"))
    assert (refused.ok, refused.code, refused.detail) == (False, "not_your_campaign", {
        "reason": "a manufacturer attests only over-the-air remedies; a workshop or dealer attests a workshop remedy"})
    assert snapshot(w.chain) == before
    done = ok(w.chain, DEALER, RecordRemedy(campaign=cid, vin=VIN, notes="at the dealer"))
    assert {"type": "recalls.remedied", "campaign": cid, "vin": VIN} in done.events
    assert CAMPAIGNS.get(w.chain.ledger, cid).remedied == 1


def _remedy_world(w: OtaWorld) -> dict[str, int]:
    """Campaigns on Alice's car: "plain" (a workshop remedy) remedied by the shop, "closed" closed,
    "fix" (brake counter 3) remedied by her car's manifest of brake v3, "fix4" (counter 4) not yet."""
    ids = {}
    for name, counter in [("plain", None), ("closed", None), ("fix", 3), ("fix4", 4)]:
        kw = {} if counter is None else {"ota_remedy": True, "software_fix": SoftwareFix(
            hardware_id=BRAKE_HW, min_release_counter=counter)}
        r = ok(w.chain, OEM, campaign(name.upper(), ALICES, **kw))
        ids[name] = r.events[-1]["campaign"]
    ids["opened"] = CAMPAIGNS.get(w.chain.ledger, ids["plain"]).opened
    ids["fix_opened"] = CAMPAIGNS.get(w.chain.ledger, ids["fix"]).opened
    ok(w.chain, OEM, CloseCampaign(campaign=ids["closed"]))
    ok(w.chain, SHOP, RecordRemedy(campaign=ids["plain"], vin=VIN))
    ids["remedied_at"] = w.chain.ledger.head.height
    assert w.report(("brake-1", *BRAKE[3])).ok
    ids["fix_remedied_at"] = w.chain.ledger.head.height
    return ids


def _p(msg: Callable[[dict[str, int]], Any], code: str, detail: Callable[[dict[str, int]], dict[str, Any]],
       name: str) -> Any:
    return pytest.param(msg, code, detail, id=name)


REMEDY_REFUSALS = [
    # ------------------------------------------------ recalls.remedy
    _p(lambda ids: RecordRemedy(campaign=99, vin=VIN), "unknown_campaign", lambda ids: {"campaign": 99},
       "remedy_of_an_unknown_campaign"),
    _p(lambda ids: RecordRemedy(campaign=ids["closed"], vin=VIN), "campaign_closed",
       lambda ids: {"campaign": ids["closed"]}, "remedy_of_a_closed_campaign"),
    _p(lambda ids: RecordRemedy(campaign=ids["plain"], vin=VIN, method="software"), "not_your_campaign",
       lambda ids: {"reason": f"campaign {ids['plain']} has no over-the-air remedy"},
       "software_remedy_without_ota_remedy"),
    _p(lambda ids: RecordRemedy(campaign=ids["plain"], vin=OTHER_VIN), "not_affected",
       lambda ids: {"vin": OTHER_VIN, "campaign": ids["plain"], "height": ids["opened"]}, "remedy_not_affected"),
    _p(lambda ids: RecordRemedy(campaign=ids["plain"], vin=VIN), "already_remedied",
       lambda ids: {"vin": VIN, "campaign": ids["plain"], "height": ids["remedied_at"]}, "remedy_twice"),
    # ------------------------------------------------ recalls.confirm_software_remedy
    _p(lambda ids: ConfirmSoftwareRemedy(campaign=ids["closed"], vin=VIN), "campaign_closed",
       lambda ids: {"campaign": ids["closed"]}, "confirm_a_closed_campaign"),
    _p(lambda ids: ConfirmSoftwareRemedy(campaign=ids["plain"], vin=VIN), "not_your_campaign",
       lambda ids: {"reason": f"campaign {ids['plain']} has no software fix"}, "confirm_a_campaign_without_a_fix"),
    _p(lambda ids: ConfirmSoftwareRemedy(campaign=ids["fix"], vin=OTHER_VIN), "not_affected",
       lambda ids: {"vin": OTHER_VIN, "campaign": ids["fix"], "height": ids["fix_opened"]}, "confirm_not_affected"),
    _p(lambda ids: ConfirmSoftwareRemedy(campaign=ids["fix"], vin=VIN), "already_remedied",
       lambda ids: {"vin": VIN, "campaign": ids["fix"], "height": ids["fix_remedied_at"]},
       "confirm_what_the_manifest_remedied"),
    _p(lambda ids: ConfirmSoftwareRemedy(campaign=ids["fix4"], vin=VIN), "fix_not_installed",
       lambda ids: {"vin": VIN, "hardware_id": BRAKE_HW, "min_release_counter": 4}, "confirm_below_the_fix"),
]


@pytest.mark.parametrize("msg,code,detail", REMEDY_REFUSALS)
def test_a_remedy_refusal_names_the_campaign_and_vehicle(tmp_path: Path, msg: Any, code: str, detail: Any) -> None:
    w = fix_world(tmp_path)
    ids = _remedy_world(w)
    before = snapshot(w.chain)
    r = send(w.chain, SHOP, msg(ids))
    assert (r.ok, r.code, r.detail) == (False, code, detail(ids)), r
    assert snapshot(w.chain) == before


@pytest.mark.parametrize("first,last,affected", [("S1", "S1", True), ("S0", "S9", True), ("S2", "S3", False)])
def test_a_serial_range_covers_the_serials_in_it(first: str, last: str, affected: bool) -> None:
    """V1 carries BRK:S1 (``helpers.parts.supplied``): a workshop remedy is taken exactly when the
    campaign's serial range holds S1."""
    chain = hp.parts_chain()
    hp.supplied(chain)
    hp.ok(chain, hp.OEM, hp.register_msg(hp.V2))
    hp.ok(chain, hp.OEM, hp.install(hp.V1, "BRK:S1"))
    hp.ok(chain, hp.OEM, hp.install(hp.V2, "BRK:S2"))
    r = hp.ok(chain, hp.OEM, campaign("R-1", Scope(serial_ranges=[SerialRange(part_number="BRK", first=first,
                                                                           last=last)])))
    cid = r.events[-1]["campaign"]
    remedy = chain.run(hp.SHOP, RecordRemedy(campaign=cid, vin=hp.V1))
    assert (remedy.ok, remedy.code) == (affected, "" if affected else "not_affected"), remedy
