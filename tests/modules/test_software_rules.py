"""The software module's ledger rules, one row per rule, on a MemoryLedger (``helpers.software``'s
OtaWorld: oem's image repository and director anchored with real python-tuf metadata, release 1
listing brake v1 and gateway v1 at counter 1, Alice's car fitted with both ECUs running them).

Refusals are one table (``REFUSALS``), each row named after the attack or the rule it stops: the
stable code, the detail that names what was wrong, no event, the ledger exactly as before (state,
index rows, state root), and the same transaction refused as a replay afterwards (its id is
consumed). Then the accepted edge of each rule: what an honest maker and vehicle do at the boundary
(a root or release expiring one second after the block, release counter 0 and 2**53 - 1, 1 and
200 targets, an equal release counter with another image, a manifest dated exactly the skew
ahead), and what an accepted transaction writes (repositories, releases, images, inventory,
history, installs, events).

Metadata for attacks is written by hand (``helpers.software``: python-tuf's Metadata API signed
with chosen keys); what an honest maker publishes comes from ``ota.repository``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from securesystemslib.signer import SSlibKey
from tuf.api.metadata import Metadata, Root

from blokauto.core.crypto import KeyPair
from blokauto.modules.software import queries as sq
from blokauto.modules.software.messages import (AnchorRelease, EcuSpec, FitEcus, RegisterRepository, ReportManifest,
                                                RotateRoot)
from blokauto.modules.software.metadata import MAX_METADATA_BYTES, sha256
from blokauto.modules.software.spec import INSTALLS
from blokauto.modules.software.state import BUNDLES, IMAGES, RELEASES, REPOSITORIES, VEHICLES, ImageRef
from blokauto.modules.vehicles.messages import Deregister, RevokeDeviceKey, RotateDeviceKey
from blokauto.ota.repository import ImageRepository, public_key

from conftest import Chain, K, build_tx
from helpers.insurance import ALICE, BOB_DEVICE, DEVICE, DEVICE2, NEW_DEVICE, OEM, OTHER_VIN, VIN, now, ok, send
from helpers.software import (BRAKE_HW, GATEWAY_HW, OtaWorld, SqlView, chain_clock, image, image_keys, installed,
                              new_root, ota_world, release_text, role_keys, signed_text, target, tuf_time)
from helpers.vehicles import WMI, admin, event_types, history, snapshot, vin_for

OEM2 = admin("oem2")
SCRAP = admin("scrap")
DAY = 86_400_000
SKEW = 5 * 60_000  # manifest_future_skew_ms by default
BRAKE1, GW1 = ("brake/brake-1.bin", image("brake", 1)), ("gateway/gw-1.bin", image("gw", 1))
BRAKE2, GW2 = ("brake/brake-2.bin", image("brake", 2)), ("gateway/gw-2.bin", image("gw", 2))
BRAKE3, GW3 = ("brake/brake-3.bin", image("brake", 3)), ("gateway/gw-3.bin", image("gw", 3))
#: A block time about a day (100,000 s) after the test chains start, in whole seconds.
T_EXP = 1_800_100_000_000
#: oem2's repository keys (deterministic), for roots a maker with no repository yet sends.
KEYS2 = role_keys(1, "oem2")


# ---------------------------------------------------------------- building what is sent


def year(w: OtaWorld) -> Any:
    return tuf_time(now(w.chain) + 365 * DAY)


def tx(chain: Chain, sender: KeyPair, msg: Any, at: int) -> bytes:
    return build_tx(sender, msg, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")


def edited(text: str, change: Callable[[dict], Any]) -> str:
    """A metadata file with its JSON changed after signing (what a parser must refuse before any signature)."""
    d = json.loads(text)
    change(d)
    return json.dumps(d, ensure_ascii=False)


def oem2_root(w: OtaWorld, *, keys: dict[str, list[KeyPair]] | None = None, thresholds: dict[str, int] | None = None,
              expires: int | None = None, signers: list[KeyPair] | None = None,
              change: Callable[[Root], Any] | None = None) -> str:
    """A version-1 root for oem2 (which has no repository), signed by its root key unless ``signers``."""
    keys = keys or KEYS2
    root = new_root(keys, expires=tuf_time(expires) if expires is not None else year(w), thresholds=thresholds)
    if change is not None:
        change(root)
    return signed_text(root, *(signers if signers is not None else keys["root"]))


def register2(text: str | Callable[[OtaWorld], str]) -> Callable[[OtaWorld], RegisterRepository]:
    return lambda w: RegisterRepository(kind="image", root=text(w) if callable(text) else text)


def anchored_root(w: OtaWorld, kind: str = "image") -> Root:
    return Metadata[Root].from_bytes(REPOSITORIES.get(w.chain.ledger, "oem", kind).root.encode()).signed


def next_root(w: OtaWorld, *, kind: str = "image", version: int | None = None, signers: list[KeyPair] | None = None,
              change: Callable[[Root], Any] | None = None, expires: int | None = None) -> str:
    """The root after the anchored one (``version``: another), changed by ``change``, signed by the
    repository's root keys unless ``signers``."""
    repo = w.images if kind == "image" else w.director
    root = anchored_root(w, kind)
    root.version = version if version is not None else root.version + 1
    root.expires = tuf_time(expires) if expires is not None else year(w)
    if change is not None:
        change(root)
    return signed_text(root, *(signers if signers is not None else repo.role_keys("root")))


def swap_root_key(new: KeyPair) -> Callable[[Root], None]:
    """A rotation to a new root key: the old one is dropped."""
    def change(root: Root) -> None:
        for keyid in list(root.roles["root"].keyids):
            root.revoke_key(keyid, "root")
        root.add_key(public_key(new), "root")
    return change


def rotate(kind: str = "image", **kw: Any) -> Callable[[OtaWorld], RotateRoot]:
    return lambda w: RotateRoot(kind=kind, root=next_root(w, kind=kind, **kw))


def release(*entries: Any, **kw: Any) -> Callable[[OtaWorld], AnchorRelease]:
    """An AnchorRelease of oem's image repository (``release_text``); entries may read the world."""
    return lambda w: AnchorRelease(targets=release_text(w, *[e(w) if callable(e) else e for e in entries], **kw))


def brake(n: int, counter: int | None = None, **kw: Any) -> Any:
    return target(f"brake/brake-{n}.bin", image("brake", n), BRAKE_HW, n if counter is None else counter, **kw)


def gateway(n: int, counter: int | None = None, **kw: Any) -> Any:
    return target(f"gateway/gw-{n}.bin", image("gw", n), GATEWAY_HW, n if counter is None else counter, **kw)


def many(n: int) -> list[Any]:
    """``n`` small distinct targets (compact: 200 of them fit the size limit)."""
    return [target(f"x/{i}.bin", sha256(f"x{i}".encode()), BRAKE_HW, 1) for i in range(n)]


def fit(*ecus: EcuSpec, vin: str = VIN) -> Callable[[OtaWorld], FitEcus]:
    return lambda w: FitEcus(vin=vin, ecus=list(ecus))


def manifest(*items: tuple[str, str, bytes | str], vin: str = VIN, dt: int = 0) -> Callable[[OtaWorld], Any]:
    """A manifest dated ``dt`` ms from the next block's time (now + 1)."""
    return lambda w: ReportManifest(vin=vin, t=now(w.chain) + 1 + dt, installed=installed(*items))


def dated(t: Callable[[OtaWorld], int], *items: tuple[str, str, bytes | str]) -> Callable[[OtaWorld], Any]:
    return lambda w: ReportManifest(vin=VIN, t=t(w), installed=installed(*items))


def last_t(w: OtaWorld) -> int:
    return VEHICLES.get(w.chain.ledger, VIN).last_t


# ---------------------------------------------------------------- set-ups


def released_v2(w: OtaWorld) -> None:
    """Release 2: brake v2 and gateway v2 (counter 2 each)."""
    w.release((*BRAKE2, BRAKE_HW, 2, ""), (*GW2, GATEWAY_HW, 2, ""))


def installed_v2(w: OtaWorld) -> None:
    released_v2(w)
    assert w.report(("brake-1", *BRAKE2)).ok


def released_v3(w: OtaWorld) -> None:
    released_v2(w)
    w.release((*BRAKE3, BRAKE_HW, 3, ""))


def bundled(w: OtaWorld) -> None:
    """Release 2: bundle "b3" of brake v3 and gateway v3 (installed together)."""
    w.release((*BRAKE3, BRAKE_HW, 3, "b3"), (*GW3, GATEWAY_HW, 3, "b3"))


def oem2_released(w: OtaWorld) -> None:
    """oem2 registers its image repository and releases brake firmware of its own."""
    repo = ImageRepository.create(w.images.directory.parent / "oem2-image", now=chain_clock(w.chain))
    ok(w.chain, OEM2, RegisterRepository(kind="image", root=repo.root_bytes().decode()))
    data = repo.release([("brake/oem2-brake.bin", image("oem2-brake", 1), BRAKE_HW, 5, "")])
    ok(w.chain, OEM2, AnchorRelease(targets=data.decode()))


def targets_key_revoked(w: OtaWorld) -> None:
    """oem rotates its image root: its targets key is replaced (the old one leaked)."""
    old = image_keys(w, "targets")[0]
    data = w.images.rotate_root(add={"targets": [K("targets-new")]}, remove={"targets": [public_key(old).keyid]})
    ok(w.chain, OEM, RotateRoot(kind="image", root=data.decode()))
    w.leaked = old  # type: ignore[attr-defined]


def targets_threshold_two(w: OtaWorld) -> None:
    """oem rotates its image root: two targets keys, both needed."""
    data = w.images.rotate_root(add={"targets": [K("targets-second")]}, thresholds={"targets": 2})
    ok(w.chain, OEM, RotateRoot(kind="image", root=data.decode()))


def root_key_swapped(w: OtaWorld) -> None:
    """oem rotates its image root to a new root key (root v2); the old root key is dropped."""
    old = image_keys(w, "root")
    ok(w.chain, OEM, RotateRoot(kind="image", root=next_root(w, change=swap_root_key(K("root-new")),
                                                             signers=[*old, K("root-new")])))
    w.old_root_keys = old  # type: ignore[attr-defined]


def revoked(key: KeyPair) -> Callable[[OtaWorld], None]:
    def setup(w: OtaWorld) -> None:
        ok(w.chain, ALICE, RevokeDeviceKey(vin=VIN, key=key.did, reason="lost"))
    return setup


def device_rotated(w: OtaWorld) -> None:
    ok(w.chain, ALICE, RotateDeviceKey(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), DEVICE, NEW_DEVICE)


def scrapped(w: OtaWorld) -> None:
    ok(w.chain, SCRAP, Deregister(vin=VIN, certificate="COD-1"), ALICE)


def one_manifest_kept(w: OtaWorld) -> None:
    """brake v2 installed by a manifest whose transaction bytes are kept (to be replayed)."""
    released_v2(w)
    at = now(w.chain) + 1
    w.kept = tx(w.chain, DEVICE, w.manifest(("brake-1", *BRAKE2), t=at), at)  # type: ignore[attr-defined]
    assert w.chain.block(w.kept, time=at).receipts[0].ok  # type: ignore[attr-defined]


def rsa_key() -> SSlibKey:
    return SSlibKey.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())


def p384_key() -> SSlibKey:
    return SSlibKey.from_crypto(ec.generate_private_key(ec.SECP384R1()).public_key())


def with_targets_key(key: Callable[[], SSlibKey]) -> Callable[[Root], None]:
    return lambda root: root.add_key(key(), "targets")


def nested(text: str, depth: int) -> str:
    """``text`` (compact JSON) with a field of ``depth`` nested arrays in its signed part (written as
    text: Python's own json would recurse as deep)."""
    assert text.count('"signed":{') == 1
    return text.replace('"signed":{', '"signed":{"x":' + "[" * depth + "]" * depth + ",")


def set_field(*path: str, value: Any) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        for p in path[:-1]:
            d = d[p]
        d[path[-1]] = value
    return change


def drop_role(role: str) -> Callable[[dict], None]:
    return lambda d: d["signed"]["roles"].pop(role) and None


def first_key_scheme(scheme: str) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        next(iter(d["signed"]["keys"].values()))["scheme"] = scheme
    return change


def unknown_targets_keyid(d: dict) -> None:
    d["signed"]["roles"]["targets"]["keyids"] = ["ab" * 32]


def thirty_three_keys(root: Root) -> None:
    for i in range(32):
        root.add_key(public_key(K(f"spare-{i}")), "snapshot")


def two_descriptions_in_one_release(w: OtaWorld) -> AnchorRelease:
    """One image (by hash) listed under two paths, for two hardware ids, in the same release."""
    return AnchorRelease(targets=release_text(w, target("brake/z.bin", image("z", 1), BRAKE_HW, 4),
                                              target("gateway/z.bin", image("z", 1), GATEWAY_HW, 9)))


def bundle_recomposed(w: OtaWorld) -> AnchorRelease:
    """Bundle b3 again, now with a brake v4 image (a bundle's members are fixed when it is released)."""
    return AnchorRelease(targets=release_text(w, target("brake/brake-4.bin", image("brake", 4), BRAKE_HW, 4,
                                                        "b3")))


def expired_root_release(w: OtaWorld) -> AnchorRelease:
    """A release that itself expires later, signed by the targets key of an anchored root that has
    expired by the block time (keys the root no longer vouches for)."""
    repo = REPOSITORIES.get(w.chain.ledger, "oem", "image")
    return AnchorRelease(targets=release_text(w, brake(2), expires=repo.root_expires + 30 * DAY))


def longer(t: Any) -> Any:
    """``t`` claiming one byte more."""
    t.length += 1
    return t


def after_root_expiry(w: OtaWorld) -> int:
    return REPOSITORIES.get(w.chain.ledger, "oem", "image").root_expires + 1


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Callable[[OtaWorld], Any]  # a message, or the bytes of a transaction already sent
    code: str
    setup: Callable[[OtaWorld], Any] | None = None
    at: Callable[[OtaWorld], int] | None = None  # the block time (default: 1 ms after the head)
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # a part of detail["reason"]


def r(name: str, who: KeyPair, msg: Callable[[OtaWorld], Any], code: str, setup: Any = None, *, at: Any = None,
      reason: str = "", marks: Any = (), **detail: Any) -> Any:
    return pytest.param(Refusal(name, who, msg, code, setup, at, detail, reason), id=name, marks=marks)


def bug(reason: str, raises: type[BaseException] = AssertionError) -> Any:
    return pytest.mark.xfail(strict=True, raises=raises, reason=reason)


BAD_PATHS = ["brake/../../etc/passwd", "../brake.bin", "/brake/x.bin", "brake//x.bin", "brake/./x.bin", "brake/",
             "a" * 101]

REFUSALS = [
    # ------------------------------------------------ registering a repository
    r("register_the_image_repository_twice", OEM, lambda w: RegisterRepository(
        kind="image", root=w.images.root_bytes().decode()), "repository_exists", maker="oem", kind="image"),
    r("register_the_director_twice", OEM, lambda w: RegisterRepository(
        kind="director", root=w.director.root_bytes().decode()), "repository_exists", kind="director"),
    r("root_not_json", OEM2, register2("{not json"), "invalid_metadata", role="root"),
    r("root_not_an_object", OEM2, register2("[1, 2]"), "invalid_metadata"),
    r("root_of_deeply_nested_json", OEM2, register2(lambda w: nested(oem2_root(w), 3_000)),
      "invalid_metadata", reason="it nests 3002 levels"),
    # between 800 and 950 levels python's own parser limit depends on the stack: the rule must not
    r("root_nested_900_levels", OEM2, register2(lambda w: nested(oem2_root(w), 900)), "invalid_metadata",
      reason="it nests 902 levels"),
    r("root_with_a_float", OEM2, register2(lambda w: edited(oem2_root(w), set_field("signed", "x", value=1.5))),
      "invalid_metadata"),
    r("root_with_a_float_version", OEM2, register2(lambda w: edited(oem2_root(w), set_field("signed", "version",
                                                                                              value=1.0))),
      "invalid_metadata"),
    r("a_targets_file_as_root", OEM2, register2(lambda w: w.images.targets_bytes().decode()), "invalid_metadata",
      reason="it is targets metadata, not root"),
    r("a_root_missing_its_timestamp_role", OEM2, register2(lambda w: edited(oem2_root(w), drop_role("timestamp"))),
      "invalid_metadata"),
    r("a_root_with_an_rsa_targets_key", OEM2, register2(lambda w: oem2_root(w, change=with_targets_key(rsa_key))),
      "invalid_metadata", reason="uses scheme 'rsassa-pss-sha256'"),
    r("a_root_with_a_p384_targets_key", OEM2, register2(lambda w: oem2_root(w, change=with_targets_key(p384_key))),
      "invalid_metadata", reason="uses scheme 'ecdsa-sha2-nistp384'"),
    r("a_root_with_a_key_of_an_unknown_scheme", OEM2,
      register2(lambda w: edited(oem2_root(w), first_key_scheme("ed25519-but-not-really"))), "invalid_metadata"),
    r("a_role_whose_threshold_its_keys_cannot_meet", OEM2, register2(lambda w: oem2_root(w, thresholds={"targets": 2})),
      "invalid_metadata", reason="the targets role needs 2 of 1 known keys"),
    r("a_role_naming_a_key_the_root_does_not_list", OEM2,
      register2(lambda w: edited(oem2_root(w), unknown_targets_keyid)), "invalid_metadata",
      reason="the targets role needs 1 of 0 known keys"),
    r("a_root_naming_33_keys", OEM2, register2(lambda w: oem2_root(w, change=thirty_three_keys)), "invalid_metadata",
      reason="more than 32"),
    r("a_root_larger_than_the_limit", OEM2,
      register2(lambda w: edited(oem2_root(w), set_field("signed", "note", value="é" * 25_000))),
      "metadata_too_large", role="root", limit=MAX_METADATA_BYTES),
    r("a_root_longer_than_the_message_takes", OEM2,
      register2(lambda w: edited(oem2_root(w), set_field("signed", "note", value="e" * MAX_METADATA_BYTES))),
      "malformed_tx"),
    r("a_root_signed_by_its_targets_key_not_its_root_key", OEM2,
      register2(lambda w: oem2_root(w, signers=KEYS2["targets"])), "threshold_not_met", role="root",
      reason="0 valid of 1 needed"),
    r("a_root_without_signatures", OEM2, register2(lambda w: oem2_root(w, signers=[])), "threshold_not_met"),
    r("a_root_with_a_forged_signature", OEM2,
      register2(lambda w: edited(oem2_root(w), lambda d: d["signatures"][0].update(sig="00" * 64))),
      "threshold_not_met"),
    r("a_root_signed_by_one_of_its_two_root_keys", OEM2,
      register2(lambda w: oem2_root(w, keys=role_keys(2, "oem2"), thresholds={"root": 2},
                                    signers=[role_keys(2, "oem2")["root"][0]])),
      "threshold_not_met", reason="1 valid of 2 needed"),
    r("a_root_signed_twice_by_one_of_its_two_root_keys", OEM2,
      register2(lambda w: oem2_root(w, keys=role_keys(2, "oem2"), thresholds={"root": 2},
                                    signers=[role_keys(2, "oem2")["root"][0]] * 2)),
      "threshold_not_met", reason="1 valid of 2 needed"),
    r("a_root_expiring_at_the_block_time", OEM2, register2(lambda w: oem2_root(w, expires=now(w.chain) + 1_000)),
      "metadata_expired", at=lambda w: (now(w.chain) + 1_000) // 1000 * 1000, role="root"),
    r("a_root_that_expired_yesterday_freeze", OEM2, register2(lambda w: oem2_root(w, expires=now(w.chain) - DAY)),
      "metadata_expired", role="root"),
    # ------------------------------------------------ rotating a root
    r("rotate_without_a_repository", OEM2, lambda w: RotateRoot(kind="image", root=oem2_root(w)),
      "unknown_repository", maker="oem2", kind="image"),
    r("rotation_skipping_a_version", OEM, rotate(version=3), "invalid_metadata", reason="does not follow 1"),
    r("rotation_back_to_the_anchored_version", OEM, lambda w: RotateRoot(kind="image",
                                                                         root=w.images.root_bytes().decode()),
      "metadata_rollback", role="root"),
    r("rotation_to_an_older_version", OEM, rotate(version=1, change=swap_root_key(K("root-new"))), "metadata_rollback",
      setup=root_key_swapped),
    r("rotation_signed_only_by_the_new_root_key", OEM, rotate(change=swap_root_key(K("root-new")),
                                                              signers=[K("root-new")]),
      "threshold_not_met", role="root", reason="0 valid of 1 needed"),
    r("rotation_signed_only_by_the_old_root_key", OEM, rotate(change=swap_root_key(K("root-new"))),
      "threshold_not_met", role="root", reason="0 valid of 1 needed"),
    r("rotation_signed_by_a_root_key_an_earlier_rotation_dropped", OEM,
      lambda w: RotateRoot(kind="image", root=next_root(w, signers=[*w.old_root_keys])), "threshold_not_met",
      setup=root_key_swapped),
    r("rotation_to_a_root_without_a_snapshot_role", OEM,
      lambda w: RotateRoot(kind="image", root=edited(next_root(w), drop_role("snapshot"))), "invalid_metadata"),
    r("rotation_to_a_root_whose_threshold_its_keys_cannot_meet", OEM,
      rotate(change=lambda root: setattr(root.roles["timestamp"], "threshold", 3)), "invalid_metadata",
      reason="the timestamp role needs 3 of 1"),
    r("rotation_already_expired", OEM, rotate(expires=0), "metadata_expired", role="root"),
    r("rotation_of_the_director_skipping_a_version", OEM,
      lambda w: RotateRoot(kind="director", root=next_root(w, kind="director", version=5)), "invalid_metadata"),
    # ------------------------------------------------ anchoring a release
    r("release_without_an_image_repository", OEM2, release(brake(2)), "unknown_repository", maker="oem2",
      kind="image"),
    r("release_signed_by_the_revoked_maker_key", OEM, lambda w: AnchorRelease(
        targets=release_text(w, brake(2), signers=[w.leaked])), "threshold_not_met", setup=targets_key_revoked,
      role="targets", reason="0 valid of 1 needed"),
    r("release_signed_by_one_of_two_targets_keys", OEM, release(brake(2), signers=[K("targets-second")]),
      "threshold_not_met", setup=targets_threshold_two, role="targets", reason="1 valid of 2 needed"),
    r("release_signed_twice_by_one_of_two_targets_keys", OEM, release(brake(2), signers=[K("targets-second")] * 2),
      "threshold_not_met", setup=targets_threshold_two, reason="1 valid of 2 needed"),
    r("release_signed_by_the_root_key", OEM, lambda w: AnchorRelease(
        targets=release_text(w, brake(2), signers=image_keys(w, "root"))), "threshold_not_met"),
    r("release_signed_by_the_snapshot_key", OEM, lambda w: AnchorRelease(
        targets=release_text(w, brake(2), signers=image_keys(w, "snapshot"))), "threshold_not_met"),
    r("release_signed_by_a_director_targets_key", OEM, lambda w: AnchorRelease(
        targets=release_text(w, brake(2), signers=w.director.role_keys("targets"))), "threshold_not_met"),
    r("release_signed_by_an_outsider", OEM, release(brake(2), signers=[K("mallory-tuf")]), "threshold_not_met"),
    r("release_not_newer_than_the_anchored_one", OEM, release(brake(2), version=1), "metadata_rollback",
      role="targets", reason="version 1, and release 1 is anchored"),
    r("release_going_back_a_version", OEM, release(brake(4), version=2), "metadata_rollback", setup=released_v3),
    r("release_expiring_at_the_block_time", OEM, release(brake(2), expires=T_EXP),
      "metadata_expired", at=lambda w: T_EXP, role="targets"),
    r("release_signed_long_ago_freeze", OEM, release(brake(2), expires=1_800_000_000_000 + DAY),
      "metadata_expired", at=lambda w: 1_800_000_000_000 + 2 * DAY),
    r("release_under_a_root_that_has_expired", OEM, expired_root_release, "metadata_expired", at=after_root_expiry,
      role="root"),
    r("a_root_file_as_a_release", OEM, lambda w: AnchorRelease(targets=w.images.root_bytes().decode()),
      "invalid_metadata", reason="it is root metadata, not targets"),
    r("release_not_json", OEM, lambda w: AnchorRelease(targets="targets v2"), "invalid_metadata", role="targets"),
    r("release_with_a_float_release_counter", OEM, lambda w: AnchorRelease(targets=edited(
        release_text(w, brake(2)), set_field("signed", "targets", "brake/brake-2.bin", "custom", "release_counter",
                                             value=2.5))), "invalid_metadata"),
    r("release_larger_than_the_limit", OEM, lambda w: AnchorRelease(targets=edited(
        release_text(w, brake(2)), set_field("signed", "note", value="ü" * 25_000))), "metadata_too_large",
      role="targets"),
    r("target_without_a_sha256", OEM, release(brake(2, hashes={"sha512": "ab" * 64})), "invalid_release",
      reason="no sha256 hash"),
    r("target_with_an_uppercase_sha256", OEM, release(brake(2, hashes={"sha256": sha256(image("brake", 2)).upper()})),
      "invalid_release", reason="no sha256 hash in lowercase hex"),
    r("target_with_a_short_sha256", OEM, release(brake(2, hashes={"sha256": "ab" * 16})), "invalid_release"),
    r("target_without_custom_fields", OEM, release(brake(2, custom=...)), "invalid_release",
      reason="has no custom fields"),
    r("target_with_custom_fields_not_an_object", OEM, release(brake(2, custom=["brake-ecu-v2", 2])),
      "invalid_release", reason="has no custom fields"),
    r("target_without_a_hardware_id", OEM, release(target("brake/brake-2.bin", image("brake", 2), None, 2)),
      "invalid_release", reason="no valid custom.hardware_id"),
    r("target_with_a_hardware_id_not_an_identifier", OEM,
      release(target("brake/brake-2.bin", image("brake", 2), "brake ecu", 2)), "invalid_release",
      reason="no valid custom.hardware_id"),
    r("target_without_a_release_counter", OEM, release(brake(2, custom={"hardware_id": BRAKE_HW})),
      "invalid_release", reason="no integer custom.release_counter"),
    r("target_with_a_release_counter_in_a_string", OEM, release(brake(2, counter="2")), "invalid_release",
      reason="no integer custom.release_counter"),
    r("target_with_a_boolean_release_counter", OEM, release(brake(2, counter=True)), "invalid_release",
      reason="no integer custom.release_counter"),
    r("target_with_a_negative_release_counter", OEM, release(brake(2, counter=-1)), "invalid_release",
      reason="no integer custom.release_counter"),
    r("target_with_a_release_counter_of_2_to_the_53", OEM, release(brake(2, counter=2**53)), "invalid_release",
      reason="no integer custom.release_counter"),
    r("target_with_a_bundle_not_an_identifier", OEM, release(brake(2, bundle="two words")), "invalid_release",
      reason="invalid custom.bundle"),
    r("target_with_a_bundle_not_a_string", OEM, release(brake(2, custom={"hardware_id": BRAKE_HW,
                                                                         "release_counter": 2, "bundle": 7})),
      "invalid_release", reason="invalid custom.bundle"),
    *[r(f"target_path_{i}_{label}", OEM, release(target(path, image("brake", 2), BRAKE_HW, 2)), "invalid_release",
        reason="is not a plain relative path")
      for i, (label, path) in enumerate(zip(["climbing_out", "starting_with_dotdot", "absolute", "with_an_empty_segment",
                                             "with_a_dot_segment", "ending_in_a_slash", "segment_over_100"], BAD_PATHS))],
    r("release_of_no_targets", OEM, release(), "invalid_release", reason="it lists 0 targets"),
    r("release_of_201_targets", OEM, release(*many(201)), "invalid_release", reason="it lists 201 targets"),
    r("same_image_released_under_another_path", OEM, release(target("brake/renamed.bin", image("brake", 1), BRAKE_HW,
                                                                     1)),
      "image_mismatch", reason="describes the image"),
    r("same_image_released_for_other_hardware", OEM, release(target(BRAKE1[0], BRAKE1[1], GATEWAY_HW, 1)),
      "image_mismatch"),
    r("same_image_released_with_a_higher_counter", OEM, release(target(BRAKE1[0], BRAKE1[1], BRAKE_HW, 9)),
      "image_mismatch"),
    r("same_image_released_in_a_bundle", OEM, release(target(BRAKE1[0], BRAKE1[1], BRAKE_HW, 1, "b9")),
      "image_mismatch"),
    r("same_image_released_with_another_length", OEM, release(longer(target(*BRAKE1, BRAKE_HW, 1))),
      "image_mismatch"),
    r("same_image_described_twice_in_one_release", OEM, two_descriptions_in_one_release, "image_mismatch"),
    r("bundle_released_again_with_another_image", OEM, bundle_recomposed, "invalid_release", setup=bundled,
      reason="bundle 'b3' was released before"),
    r("bundle_with_two_images_for_one_hardware", OEM, release(brake(3, bundle="b3"), brake(4, bundle="b3")),
      "invalid_release", reason="two images for 'brake-ecu-v2'"),
    # ------------------------------------------------ fitting ECUs
    r("fit_another_makers_vehicle", OEM2, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW)), "not_vehicle_maker",
      vin=VIN, manufacturer="oem"),
    r("fit_an_unknown_vehicle", OEM, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW),
                                         vin=vin_for(WMI["oem"], 77)), "unknown_vehicle"),
    r("fit_a_scrapped_vehicle", OEM, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW)), "vehicle_scrapped",
      setup=scrapped),
    r("fit_one_ecu_twice", OEM, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW),
                                    EcuSpec(ecu="brake-9", hardware_id=GATEWAY_HW)), "duplicate_ecu", ecu="brake-9"),
    r("factory_image_not_anchored", OEM, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW,
                                                     image=sha256(b"unreleased"))), "release_not_anchored"),
    r("factory_image_of_another_makers_release", OEM, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW,
                                                                  image=sha256(image("oem2-brake", 1)))),
      "release_not_anchored", setup=oem2_released, maker="oem"),
    r("factory_image_for_other_hardware", OEM, fit(EcuSpec(ecu="brake-9", hardware_id=BRAKE_HW,
                                                           image=sha256(GW1[1]))), "wrong_hardware_id",
      ecu="brake-9", image_hardware=GATEWAY_HW, ecu_hardware=BRAKE_HW),
    r("fit_beyond_64_ecus", OEM, fit(*[EcuSpec(ecu=f"e{i}", hardware_id=BRAKE_HW) for i in range(63)]),
      "too_many_ecus", count=65, limit=64),
    # ------------------------------------------------ manifests: who signs
    r("manifest_signed_by_another_vehicles_device", BOB_DEVICE, manifest(("brake-1", *BRAKE2)), "not_vehicle_device",
      setup=released_v2, signer=BOB_DEVICE.did, vin=VIN),
    r("manifest_signed_by_the_holder", ALICE, manifest(("brake-1", *BRAKE2)), "not_vehicle_device",
      setup=released_v2),
    r("manifest_signed_by_the_maker", OEM, manifest(("brake-1", *BRAKE2)), "not_vehicle_device", setup=released_v2),
    r("manifest_for_another_vehicle_signed_by_this_ones_device", DEVICE, manifest(("brake-1", *BRAKE2),
                                                                                  vin=OTHER_VIN),
      "not_vehicle_device", setup=released_v2),
    r("manifest_signed_by_a_revoked_device_key", DEVICE2, manifest(("brake-1", *BRAKE2)), "device_key_revoked",
      setup=lambda w: (released_v2(w), revoked(DEVICE2)(w)), signer=DEVICE2.did, reason="lost"),
    r("manifest_signed_by_a_rotated_out_device_key", DEVICE, manifest(("brake-1", *BRAKE2)), "device_key_revoked",
      setup=lambda w: (released_v2(w), device_rotated(w)), reason="rotated"),
    r("manifest_of_a_scrapped_vehicle", DEVICE, manifest(("brake-1", *BRAKE2)), "vehicle_scrapped",
      setup=lambda w: (released_v2(w), scrapped(w))),
    r("manifest_of_an_unknown_vehicle", DEVICE, manifest(("brake-1", *BRAKE2), vin=vin_for(WMI["oem"], 77)),
      "unknown_vehicle", setup=released_v2),
    # ------------------------------------------------ manifests: what was installed
    r("manifest_of_a_vehicle_with_no_ecus_fitted", BOB_DEVICE, manifest(("brake-1", *BRAKE2), vin=OTHER_VIN),
      "unknown_ecu", setup=released_v2, vin=OTHER_VIN),
    r("manifest_naming_an_ecu_never_fitted", DEVICE, manifest(("brake-9", *BRAKE2)), "unknown_ecu",
      setup=released_v2, ecu="brake-9"),
    r("manifest_naming_an_ecu_twice", DEVICE, manifest(("brake-1", *BRAKE2), ("brake-1", *BRAKE1)), "duplicate_ecu",
      setup=released_v2, ecu="brake-1"),
    r("arbitrary_software", DEVICE, manifest(("brake-1", "brake/brake-2.bin", b"evil firmware")),
      "release_not_anchored", setup=released_v2, maker="oem"),
    r("a_release_not_anchored", DEVICE, manifest(("brake-1", *BRAKE3)), "release_not_anchored", setup=released_v2),
    r("software_of_another_makers_release", DEVICE, manifest(("brake-1", "brake/oem2-brake.bin",
                                                              image("oem2-brake", 1))),
      "release_not_anchored", setup=oem2_released),
    r("mix_and_match_a_path_with_another_images_hash", DEVICE, manifest(("brake-1", BRAKE2[0], BRAKE3[1])),
      "image_mismatch", setup=released_v3, reason="is released as 'brake/brake-3.bin'"),
    r("image_for_other_hardware", DEVICE, manifest(("brake-1", *GW2)), "wrong_hardware_id", setup=released_v2,
      ecu="brake-1", image_hardware=GATEWAY_HW, ecu_hardware=BRAKE_HW),
    r("software_rollback_to_a_lower_release_counter", DEVICE, manifest(("brake-1", *BRAKE1)), "software_rollback",
      setup=installed_v2, counter=1, current=2, ecu="brake-1"),
    r("software_rollback_below_the_factory_image", DEVICE, manifest(("brake-1", "brake/brake-0.bin",
                                                                     image("brake", 0))),
      "software_rollback", setup=lambda w: w.release(("brake/brake-0.bin", image("brake", 0), BRAKE_HW, 0, "")),
      counter=0, current=1),
    r("half_a_bundle", DEVICE, manifest(("brake-1", *BRAKE3)), "partial_bundle", setup=bundled, bundle="b3",
      ecu="gw-1", hardware_id=GATEWAY_HW),
    r("half_a_bundle_named_with_the_old_image_on_the_other_ecu", DEVICE, manifest(("gw-1", *GW3), ("brake-1", *BRAKE1)),
      "partial_bundle", setup=bundled, ecu="brake-1"),
    # ------------------------------------------------ manifests: in order, and news
    r("manifest_dated_at_the_last_manifest", DEVICE, dated(last_t, ("brake-1", *BRAKE3)), "manifest_out_of_order",
      setup=lambda w: (released_v3(w), w.report(("brake-1", *BRAKE2)))),
    r("manifest_dated_before_the_last_manifest", DEVICE, dated(lambda w: last_t(w) - 1, ("brake-1", *BRAKE3)),
      "manifest_out_of_order", setup=lambda w: (released_v3(w), w.report(("brake-1", *BRAKE2)))),
    r("manifest_dated_at_time_zero", DEVICE, dated(lambda w: 0, ("brake-1", *BRAKE2)), "manifest_out_of_order",
      setup=released_v2, last=0),
    r("manifest_dated_beyond_the_skew", DEVICE, manifest(("brake-1", *BRAKE2), dt=SKEW + 1), "manifest_out_of_order",
      setup=released_v2, skew_ms=SKEW),
    r("manifest_that_changes_nothing", DEVICE, manifest(("brake-1", *BRAKE1), ("gw-1", *GW1)), "manifest_unchanged",
      vin=VIN),
    r("replayed_manifest", DEVICE, lambda w: w.kept, "replayed_tx", setup=one_manifest_kept),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing(case: Refusal, tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    if case.setup is not None:
        case.setup(w)
    at = now(w.chain) + 1 if case.at is None else case.at(w)
    msg = case.msg(w)
    raw = msg if isinstance(msg, bytes) else tx(w.chain, case.sender, msg, at)
    before = snapshot(w.chain)
    receipt = w.chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        assert receipt.detail[k] == v, receipt.detail
    if case.reason:
        assert case.reason in receipt.detail["reason"], receipt.detail
    assert snapshot(w.chain) == before, "a failed transaction changed the ledger"
    if case.code != "malformed_tx":  # a transaction that cannot be decoded has no id to consume
        again = w.chain.block(raw, time=at).receipts[0]
        assert (again.ok, again.code) == (False, "replayed_tx")


def test_every_refusal_code_of_the_module_has_a_row() -> None:
    from blokauto.modules.software import errors

    ledger_side = {cls.code for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "code")
                   and cls.__module__ == errors.__name__} - {"endless_data", "image_hash_mismatch", "download_failed",
                                                             "root_not_anchored"}  # the updater's alone
    assert ledger_side <= {p.values[0].code for p in REFUSALS}


# ---------------------------------------------------------------- repositories


def test_a_repository_is_anchored_with_its_root(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    t = now(w.chain)
    text = oem2_root(w)
    r = ok(w.chain, OEM2, RegisterRepository(kind="director", root=text))
    assert r.events == [{"type": "software.repository_anchored", "maker": "oem2", "kind": "director", "version": 1}]
    repo = REPOSITORIES.get(w.chain.ledger, "oem2", "director")
    assert (repo.maker, repo.kind, repo.root_version, repo.root_sha256, repo.root, repo.registered, repo.rotated,
            repo.release) == ("oem2", "director", 1, sha256(text.encode()), text, w.chain.ledger.head.height, 0, 0)
    assert repo.root_expires == t // 1000 * 1000 + 365 * DAY
    assert REPOSITORIES.get(w.chain.ledger, "oem2", "image") is None  # each kind is registered on its own


@pytest.mark.parametrize("lead_ms,code", [(1_000, ""), (1, ""), (0, "metadata_expired"), (-1, "metadata_expired")])
def test_a_root_is_fresh_until_the_second_it_expires(tmp_path: Any, lead_ms: int, code: str) -> None:
    """A root expiring at E (whole seconds) is anchored in a block before E, refused at E and after."""
    w = ota_world(tmp_path)
    expires = (now(w.chain) + DAY) // 1000 * 1000
    raw = tx(w.chain, OEM2, RegisterRepository(kind="image", root=oem2_root(w, expires=expires)), expires - lead_ms)
    receipt = w.chain.block(raw, time=expires - lead_ms).receipts[0]
    assert (receipt.ok, receipt.code) == (not code, code), receipt


def test_a_root_may_name_ecdsa_p256_keys_and_a_threshold_of_several(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    keys = role_keys(3, "oem2")
    p256 = SSlibKey.from_crypto(ec.generate_private_key(ec.SECP256R1()).public_key())
    text = oem2_root(w, keys=keys, thresholds={"root": 2, "targets": 3},
                     change=lambda root: root.add_key(p256, "snapshot"), signers=keys["root"][:2])
    ok(w.chain, OEM2, RegisterRepository(kind="image", root=text))


def test_a_root_with_32_keys_is_anchored(tmp_path: Any) -> None:
    w = ota_world(tmp_path)

    def thirty_two(root: Root) -> None:
        for i in range(28):
            root.add_key(public_key(K(f"spare-{i}")), "snapshot")

    ok(w.chain, OEM2, RegisterRepository(kind="image", root=oem2_root(w, change=thirty_two)))


def test_a_rotation_signed_by_both_roots_is_anchored_and_the_dropped_key_signs_nothing_after(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    old = image_keys(w, "root")
    r = ok(w.chain, OEM, RotateRoot(kind="image", root=next_root(w, change=swap_root_key(K("root-new")),
                                                                 signers=[*old, K("root-new")])))
    assert r.events == [{"type": "software.repository_anchored", "maker": "oem", "kind": "image", "version": 2}]
    repo = REPOSITORIES.get(w.chain.ledger, "oem", "image")
    assert (repo.root_version, repo.rotated, repo.release) == (2, w.chain.ledger.head.height, 1)
    assert repo.registered < repo.rotated
    # version 3 needs the new root key (the anchored root's) and its own
    assert send(w.chain, OEM, RotateRoot(kind="image", root=next_root(w, signers=old))).code == "threshold_not_met"
    ok(w.chain, OEM, RotateRoot(kind="image", root=next_root(w, signers=[K("root-new")])))
    assert REPOSITORIES.get(w.chain.ledger, "oem", "image").root_version == 3


def test_a_rotation_may_come_after_the_anchored_root_expired(tmp_path: Any) -> None:
    """TUF walks rotations without judging the expiry of the root being replaced: only the new one's."""
    w = ota_world(tmp_path)
    at = REPOSITORIES.get(w.chain.ledger, "oem", "image").root_expires + DAY
    raw = tx(w.chain, OEM, RotateRoot(kind="image", root=next_root(w, expires=at + 365 * DAY)), at)
    assert w.chain.block(raw, time=at).receipts[0].ok


def test_the_makers_own_rotation_of_a_targets_key_moves_the_releases_to_the_new_key(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    targets_key_revoked(w)
    assert REPOSITORIES.get(w.chain.ledger, "oem", "image").root_version == 2
    assert image_keys(w, "targets") == [K("targets-new")]
    w.release((*BRAKE2, BRAKE_HW, 2, ""))  # the repository signs with its current targets key
    assert REPOSITORIES.get(w.chain.ledger, "oem", "image").release == 2


def test_a_release_with_a_threshold_of_two_is_anchored_when_both_sign(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    targets_threshold_two(w)
    assert len(image_keys(w, "targets")) == 2
    ok(w.chain, OEM, AnchorRelease(targets=release_text(w, brake(2))))


def test_the_director_rotates_on_its_own(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    ok(w.chain, OEM, RotateRoot(kind="director", root=w.director.rotate_root().decode()))
    assert REPOSITORIES.get(w.chain.ledger, "oem", "director").root_version == 2
    assert REPOSITORIES.get(w.chain.ledger, "oem", "image").root_version == 1


# ---------------------------------------------------------------- releases


def test_a_release_anchors_its_targets_images_and_bundles(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    t = now(w.chain)
    data = w.images.release([(*BRAKE3, BRAKE_HW, 3, "b3"), (*GW3, GATEWAY_HW, 3, "b3")], keep=False)
    r = ok(w.chain, OEM, AnchorRelease(targets=data.decode(), notes="brake and gateway together"))
    assert r.events == [{"type": "software.release_anchored", "maker": "oem", "version": 2, "images": 2}]
    rel = RELEASES.get(w.chain.ledger, "oem", 2)
    assert (rel.version, rel.sha256, rel.height, rel.time, rel.notes) == (
        2, sha256(data), w.chain.ledger.head.height, now(w.chain), "brake and gateway together")
    assert rel.images == [ImageRef(BRAKE3[0], sha256(BRAKE3[1])), ImageRef(GW3[0], sha256(GW3[1]))]
    assert rel.expires == t // 1000 * 1000 + 90 * DAY
    img = IMAGES.get(w.chain.ledger, "oem", sha256(BRAKE3[1]))
    assert (img.path, img.length, img.hardware_id, img.release_counter, img.release, img.bundle) == (
        BRAKE3[0], len(BRAKE3[1]), BRAKE_HW, 3, 2, "b3")
    assert BUNDLES.get(w.chain.ledger, "oem", "b3") == {BRAKE_HW: ImageRef(BRAKE3[0], sha256(BRAKE3[1])),
                                                         GATEWAY_HW: ImageRef(GW3[0], sha256(GW3[1]))}
    repo = REPOSITORIES.get(w.chain.ledger, "oem", "image")
    assert (repo.release, repo.release_sha256) == (2, sha256(data))


def test_an_image_listed_again_with_the_same_description_keeps_its_first_release(tmp_path: Any) -> None:
    """The maker's repository lists every earlier image again in each release (keep=True)."""
    w = ota_world(tmp_path)
    released_v2(w)
    rel = RELEASES.get(w.chain.ledger, "oem", 2)
    assert [i.path for i in rel.images] == [BRAKE1[0], BRAKE2[0], GW1[0], GW2[0]]
    assert IMAGES.get(w.chain.ledger, "oem", sha256(BRAKE1[1])).release == 1
    assert IMAGES.get(w.chain.ledger, "oem", sha256(BRAKE2[1])).release == 2


def test_a_path_may_be_released_again_with_another_image(tmp_path: Any) -> None:
    """A rebuilt image under the same path is a new image (by hash); the old one stays anchored."""
    w = ota_world(tmp_path)
    ok(w.chain, OEM, AnchorRelease(targets=release_text(w, target(BRAKE1[0], image("brake", 11), BRAKE_HW, 1))))
    assert IMAGES.get(w.chain.ledger, "oem", sha256(image("brake", 11))).path == BRAKE1[0]
    assert IMAGES.get(w.chain.ledger, "oem", sha256(BRAKE1[1])).path == BRAKE1[0]


@pytest.mark.parametrize("counter", [0, 1, 2**53 - 1])
def test_release_counters_from_0_to_2_to_the_53_minus_1(tmp_path: Any, counter: int) -> None:
    w = ota_world(tmp_path)
    ok(w.chain, OEM, AnchorRelease(targets=release_text(w, brake(7, counter=counter))))
    assert IMAGES.get(w.chain.ledger, "oem", sha256(image("brake", 7))).release_counter == counter


@pytest.mark.parametrize("n", [1, 200])
def test_a_release_lists_1_to_200_targets(tmp_path: Any, n: int) -> None:
    w = ota_world(tmp_path)
    text = release_text(w, *many(n))
    assert len(text.encode()) <= MAX_METADATA_BYTES
    r = ok(w.chain, OEM, AnchorRelease(targets=text))
    assert r.events[-1]["images"] == n


def test_a_target_path_of_200_characters_in_8_segments_is_plain(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    path = "/".join(["a" * 24] * 8)
    assert len(path) == 199
    ok(w.chain, OEM, AnchorRelease(targets=release_text(w, target(path, image("long", 1), BRAKE_HW, 1))))


@pytest.mark.parametrize("lead_ms,code", [(1_000, ""), (1, ""), (0, "metadata_expired")])
def test_a_release_is_fresh_until_the_second_it_expires(tmp_path: Any, lead_ms: int, code: str) -> None:
    w = ota_world(tmp_path)
    expires = (now(w.chain) + DAY) // 1000 * 1000
    at = expires - lead_ms
    raw = tx(w.chain, OEM, AnchorRelease(targets=release_text(w, brake(2), expires=expires)), at)
    receipt = w.chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (not code, code), receipt


def test_a_release_may_skip_versions(tmp_path: Any) -> None:
    """Unlike a root, a targets version only has to be newer (the repository may sign versions it never anchors)."""
    w = ota_world(tmp_path)
    ok(w.chain, OEM, AnchorRelease(targets=release_text(w, brake(2), version=9)))
    assert REPOSITORIES.get(w.chain.ledger, "oem", "image").release == 9
    assert RELEASES.get(w.chain.ledger, "oem", 2) is None


def test_the_next_release_of_the_makers_repository_lists_a_bundle_again_unchanged(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    bundled(w)
    data = w.images.release([("brake/brake-4.bin", image("brake", 4), BRAKE_HW, 4, "")])  # keeps b3's images
    receipt = send(w.chain, OEM, AnchorRelease(targets=data.decode()))
    assert receipt.ok, receipt
    assert BUNDLES.get(w.chain.ledger, "oem", "b3") == {BRAKE_HW: ImageRef(BRAKE3[0], sha256(BRAKE3[1])),
                                                         GATEWAY_HW: ImageRef(GW3[0], sha256(GW3[1]))}


# ---------------------------------------------------------------- fitting ECUs


def test_fitting_ecus_writes_the_inventory_the_history_and_the_installs(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    sw = VEHICLES.get(w.chain.ledger, VIN)
    assert [(e.ecu, e.hardware_id, e.path, e.image, e.release_counter) for e in sw.ecus] == [
        ("brake-1", BRAKE_HW, BRAKE1[0], sha256(BRAKE1[1]), 1), ("gw-1", GATEWAY_HW, GW1[0], sha256(GW1[1]), 1)]
    assert (sw.maker, sw.manifests, sw.last_t) == ("oem", 0, 0)
    entry = history(w.chain, VIN)[-1]
    assert entry["type"] == "ecus_fitted"
    assert [{k: e[k] for k in ("ecu", "hardware_id", "path")} for e in entry["data"]["ecus"]] == [
        {"ecu": "brake-1", "hardware_id": BRAKE_HW, "path": BRAKE1[0]},
        {"ecu": "gw-1", "hardware_id": GATEWAY_HW, "path": GW1[0]}]
    rows = sorted(w.chain.ledger.index[INSTALLS.name].values(), key=lambda x: x["ecu"])
    assert [(x["ecu"], x["path"], x["counter"], x["maker"]) for x in rows] == [
        ("brake-1", BRAKE1[0], 1, "oem"), ("gw-1", GW1[0], 1, "oem")]


def test_a_replaced_ecu_takes_its_new_hardware_and_factory_image_and_keeps_the_others(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    r = ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="gw-1", hardware_id="gateway-v9"),
                                                EcuSpec(ecu="adas-1", hardware_id="adas-v1")]))
    assert r.events[-1] == {"type": "software.ecus_fitted", "vin": VIN, "ecus": 2}
    ecus = {e.ecu: e for e in VEHICLES.get(w.chain.ledger, VIN).ecus}
    assert list(ecus) == ["adas-1", "brake-1", "gw-1"]  # by ECU id
    assert (ecus["gw-1"].hardware_id, ecus["gw-1"].path, ecus["gw-1"].image, ecus["gw-1"].release_counter) == (
        "gateway-v9", "", "", 0)
    assert ecus["brake-1"].release_counter == 1 and ecus["brake-1"].image == sha256(BRAKE1[1])


def test_a_vehicle_takes_64_ecus(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu=f"e{i}", hardware_id=BRAKE_HW) for i in range(62)]))
    assert len(VEHICLES.get(w.chain.ledger, VIN).ecus) == 64
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="e0", hardware_id=GATEWAY_HW)]))  # a replacement adds none


# ---------------------------------------------------------------- manifests


def test_a_manifest_installs_on_the_ecus_it_changes(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    released_v2(w)
    t = now(w.chain) - 5
    r = w.report(("brake-1", *BRAKE2), ("gw-1", *GW1), t=t)  # the gateway is named, unchanged
    assert r.ok, r
    assert event_types(r) == ["vehicles.history_appended", "software.installed"]
    assert r.events[-1] == {"type": "software.installed", "vin": VIN, "ecus": ["brake-1"]}
    sw = VEHICLES.get(w.chain.ledger, VIN)
    brake_ecu, gw = sw.ecus
    assert (brake_ecu.path, brake_ecu.image, brake_ecu.release_counter, brake_ecu.height, brake_ecu.time) == (
        BRAKE2[0], sha256(BRAKE2[1]), 2, w.chain.ledger.head.height, now(w.chain))
    assert gw.height < brake_ecu.height  # untouched
    assert (sw.manifests, sw.last_t) == (1, t)
    entry = history(w.chain, VIN)[-1]
    assert (entry["type"], entry["by"], entry["data"]) == ("software_installed", DEVICE.did, {"t": t, "installed": [
        {"ecu": "brake-1", "path": BRAKE2[0], "image": sha256(BRAKE2[1]), "release_counter": 2}]})


def test_the_other_device_key_and_a_rotated_in_key_report(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    released_v3(w)
    assert w.report(("brake-1", *BRAKE2), key=DEVICE2).ok
    device_rotated(w)
    assert w.report(("brake-1", *BRAKE3), key=NEW_DEVICE).ok


def test_an_equal_release_counter_with_another_image_is_installed(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    w.release(("brake/brake-1b.bin", image("brake", 101), BRAKE_HW, 1, ""))
    assert w.report(("brake-1", "brake/brake-1b.bin", image("brake", 101))).ok
    assert VEHICLES.get(w.chain.ledger, VIN).ecus[0].release_counter == 1
    # and back to the first image at counter 1: no rollback either
    assert w.report(("brake-1", *BRAKE1)).ok


def test_a_counter_may_jump(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    w.release(("brake/brake-9.bin", image("brake", 9), BRAKE_HW, 2**53 - 1, ""))
    assert w.report(("brake-1", "brake/brake-9.bin", image("brake", 9))).ok


@pytest.mark.parametrize("dt,code", [(SKEW, ""), (SKEW + 1, "manifest_out_of_order"), (0, ""),
                                     (-DAY, "")])
def test_a_manifest_may_be_dated_up_to_the_skew_after_the_block(tmp_path: Any, dt: int, code: str) -> None:
    w = ota_world(tmp_path)
    released_v2(w)
    at = now(w.chain) + 1
    raw = tx(w.chain, DEVICE, w.manifest(("brake-1", *BRAKE2), t=at + dt), at)
    receipt = w.chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (not code, code), receipt


def test_a_manifest_dated_1_ms_after_the_last_is_in_order(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    released_v3(w)
    assert w.report(("brake-1", *BRAKE2), t=now(w.chain) + SKEW).ok  # the vehicle's clock runs ahead
    t = last_t(w) + 1
    assert w.report(("brake-1", *BRAKE3), t=t).ok
    assert last_t(w) == t


def test_a_whole_bundle_is_installed(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    bundled(w)
    assert w.report(("gw-1", *GW3), ("brake-1", *BRAKE3)).ok
    assert [e.release_counter for e in VEHICLES.get(w.chain.ledger, VIN).ecus] == [3, 3]


def test_a_bundle_binds_only_the_hardware_the_vehicle_has(tmp_path: Any) -> None:
    """Bundle b5 covers brakes and an infotainment unit this car does not have: its brake image alone is whole."""
    w = ota_world(tmp_path)
    w.release(("brake/brake-5.bin", image("brake", 5), BRAKE_HW, 5, "b5"),
              ("ivi/ivi-5.bin", image("ivi", 5), "ivi-v1", 5, "b5"))
    assert w.report(("brake-1", "brake/brake-5.bin", image("brake", 5))).ok


def test_a_bundle_binds_every_ecu_of_its_hardware(tmp_path: Any) -> None:
    """A car with two brake ECUs installs a bundle's brake image on both, or it is half a bundle."""
    w = ota_world(tmp_path)
    bundled(w)
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="brake-2", hardware_id=BRAKE_HW,
                                                    image=sha256(BRAKE1[1]))]))
    r = w.report(("brake-1", *BRAKE3), ("gw-1", *GW3))
    assert (r.code, r.detail["ecu"]) == ("partial_bundle", "brake-2")
    assert w.report(("brake-1", *BRAKE3), ("brake-2", *BRAKE3), ("gw-1", *GW3)).ok


def test_leaving_a_bundle_by_a_later_image_is_an_install(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    bundled(w)
    assert w.report(("gw-1", *GW3), ("brake-1", *BRAKE3)).ok
    w.release(("brake/brake-4.bin", image("brake", 4), BRAKE_HW, 4, ""), keep=False)
    assert w.report(("brake-1", "brake/brake-4.bin", image("brake", 4))).ok


def test_a_factory_image_counts_for_rollback(tmp_path: Any) -> None:
    """An ECU fitted with no factory image takes any counter; one fitted with counter 2 takes no counter 1."""
    w = ota_world(tmp_path)
    released_v2(w)
    ok(w.chain, OEM, FitEcus(vin=VIN, ecus=[EcuSpec(ecu="brake-2", hardware_id=BRAKE_HW, image=sha256(BRAKE2[1])),
                                            EcuSpec(ecu="brake-3", hardware_id=BRAKE_HW)]))
    assert w.report(("brake-3", *BRAKE1)).ok
    assert w.report(("brake-2", *BRAKE1)).code == "software_rollback"


def test_installs_and_running_follow_the_manifests(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    released_v2(w)
    assert w.report(("brake-1", *BRAKE2)).ok
    view = SqlView(w.chain)
    rows = sq.installs(view, sq.VinPage(vin=VIN))["installs"]
    assert [(x["ecu"], x["path"], x["counter"]) for x in rows] == [
        ("brake-1", BRAKE1[0], 1), ("gw-1", GW1[0], 1), ("brake-1", BRAKE2[0], 2)]
    run = sq.running(view, sq.RunningQuery(maker="oem", sha256=sha256(BRAKE1[1])))
    assert run["vehicles"] == []
    run = sq.running(view, sq.RunningQuery(maker="oem", sha256=sha256(BRAKE2[1])))
    assert run["vehicles"] == [{"vin": VIN, "ecu": "brake-1", "since": w.chain.ledger.head.height}]
    assert [v["ecu"] for v in sq.running(view, sq.RunningQuery(maker="oem", sha256=sha256(GW1[1])))["vehicles"]] == [
        "gw-1"]
    assert sq.running(view, sq.RunningQuery(maker="oem2", sha256=sha256(BRAKE2[1])))["vehicles"] == []


def test_two_manifests_in_one_block_are_two_installs(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    released_v3(w)
    at = now(w.chain) + 1
    first = tx(w.chain, DEVICE, w.manifest(("brake-1", *BRAKE2), t=at - 2), at)
    second = tx(w.chain, DEVICE, w.manifest(("brake-1", *BRAKE3), t=at - 1), at)
    assert all(x.ok for x in w.chain.block(first, second, time=at).receipts)
    assert [e["type"] for e in history(w.chain, VIN)].count("software_installed") == 2
    rows = sq.installs(SqlView(w.chain), sq.VinPage(vin=VIN))["installs"]
    assert [x["path"] for x in rows if x["ecu"] == "brake-1"] == [BRAKE1[0], BRAKE2[0], BRAKE3[0]]


def test_the_queries_read_what_was_anchored(tmp_path: Any) -> None:
    w = ota_world(tmp_path)
    released_v2(w)
    view = SqlView(w.chain)
    repo = sq.repository(view, sq.RepositoryQuery(maker="oem"))
    assert (repo["kind"], repo["root_version"], repo["release"]) == ("image", 1, 2)
    assert sq.repository(view, sq.RepositoryQuery(maker="oem", kind="director"))["kind"] == "director"
    assert [x["version"] for x in sq.releases(view, sq.ReleasesQuery(maker="oem"))["releases"]] == [2, 1]
    assert [x["version"] for x in sq.releases(view, sq.ReleasesQuery(maker="oem", limit=1, offset=1))["releases"]] == [1]
    assert sq.releases(view, sq.ReleasesQuery(maker="oem2")) == {"maker": "oem2", "latest": 0, "releases": []}
    assert sq.release(view, sq.ReleaseQuery(maker="oem", version=2))["version"] == 2
    assert sq.image(view, sq.ImageQuery(maker="oem", sha256=sha256(GW2[1])))["path"] == GW2[0]
    assert [e["ecu"] for e in sq.inventory(view, sq.VinQuery(vin=VIN))["ecus"]] == ["brake-1", "gw-1"]
    for call, code in [(lambda: sq.repository(view, sq.RepositoryQuery(maker="oem2")), "unknown_repository"),
                       (lambda: sq.release(view, sq.ReleaseQuery(maker="oem", version=3)), "not_found"),
                       (lambda: sq.image(view, sq.ImageQuery(maker="oem2", sha256=sha256(GW2[1]))), "not_found"),
                       (lambda: sq.inventory(view, sq.VinQuery(vin=OTHER_VIN)), "not_found")]:
        with pytest.raises(Exception) as err:
            call()
        assert err.value.code == code  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the nesting rule, on bytes


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n'),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k'), inner,
                                                                                  max_size=3), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_the_nesting_depth_on_bytes_is_the_depth_of_the_decoded_value(value: Any) -> None:
    """Brackets inside strings (escaped quotes and backslashes too) do not count; every array and
    object does."""
    import json

    from blokauto.modules.software.metadata import nesting_depth

    assert nesting_depth(json.dumps(value).encode()) == _depth(value)
