"""Attack: register a weak Ed25519 key (small order, non-canonical, mixed order).

A small-order public key lets anyone "sign" for it: with the identity key, (R = identity,
S = 0) is a valid signature for every message under OpenSSL's and WebCrypto's rules, while
libsodium refuses it. A non-canonical encoding (y >= p) names a point that other libraries
decode differently or refuse. A key with a torsion component verifies differently under
cofactored and cofactorless equations. Any of them in the ledger would let verifiers disagree,
so blokauto refuses them when they are registered (``crypto.check_public_key``), in genesis, in
``governance.propose`` (admit organisation, node keys), ``add_member`` and ``rotate_key``.

The eight small-order points are computed here with a few lines of curve arithmetic (and cross-
checked against the encodings published in "Taming the many EdDSAs", Chalkias et al., 2020).
"""

from __future__ import annotations

import msgspec
import pytest

from blokauto.core import crypto
from blokauto.core.block import GenesisOrganisation
from blokauto.core.chain import MemoryLedger
from blokauto.core.encoding import canonical
from blokauto.core.errors import InvalidKey
from blokauto.core.tx import Signature, Tx, make_body, sign
from blokauto.modules import default_registry
from blokauto.modules.governance.messages import AddMember, Propose, RotateKey
from blokauto.modules.governance.state import MEMBERS, ORGS, AdmitOrganisation, SetNodeKeys

from conftest import CHAIN, T0, Chain, K, build_tx, consortium

# ---------------------------------------------------------------- edwards25519 in a few lines

P = 2**255 - 19
D = -121665 * pow(121666, -1, P) % P
L = 2**252 + 27742317777372353535851937790883648493  # order of the prime subgroup
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1)


def decode_point(b: bytes, *, strict: bool = True) -> tuple[int, int] | None:
    """RFC 8032 5.1.3; ``strict=False`` reduces y mod p instead of refusing y >= p."""
    n = int.from_bytes(b, "little")
    sign_bit, y = n >> 255, n & ((1 << 255) - 1)
    if y >= P and strict:
        return None
    y %= P
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        x = x * SQRT_M1 % P
        if (v * x * x - u) % P:
            return None
    if x == 0 and sign_bit:
        return None if strict else (0, y)
    if x & 1 != sign_bit:
        x = P - x
    return x, y


def encode_point(pt: tuple[int, int]) -> bytes:
    x, y = pt
    return (y | (x & 1) << 255).to_bytes(32, "little")


def add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    return (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P


def mul(k: int, pt: tuple[int, int]) -> tuple[int, int]:
    acc = IDENTITY
    while k:
        if k & 1:
            acc = add(acc, pt)
        pt, k = add(pt, pt), k >> 1
    return acc


def order_dividing_8(pt: tuple[int, int]) -> int | None:
    return next((k for k in (1, 2, 4, 8) if mul(k, pt) == IDENTITY), None)


def _torsion_points() -> list[tuple[int, int]]:
    """The 8-torsion subgroup: multiples of a point of order 8, found from the curve itself."""
    for y in range(2, 1000):
        pt = decode_point(y.to_bytes(32, "little"))
        if pt is None:
            continue
        t = mul(L, pt)  # kills the prime-order part, leaves the torsion part
        if order_dividing_8(t) == 8:
            return [mul(k, t) for k in range(8)]
    raise AssertionError("no point of order 8 found")


TORSION = _torsion_points()
SMALL_ORDER_KEYS = sorted(encode_point(t) for t in TORSION)

PUBLISHED_SMALL_ORDER = sorted(bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity, order 1
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
))
IDENTITY_KEY = bytes.fromhex("01" + "00" * 31)

#: Every encoding with y >= p (19 values of y, either sign): none is canonical.
NON_CANONICAL_KEYS = [((P + k) | s << 255).to_bytes(32, "little") for k in range(19) for s in (0, 1)]
#: x = 0 with the sign bit set: "negative zero", another non-canonical encoding (of small-order points).
NEGATIVE_ZERO_KEYS = [bytes.fromhex("01" + "00" * 30 + "80"), bytes.fromhex("ec" + "ff" * 31)]

#: A non-canonical encoding (y = p + small) of a point of large order: only the canonical check stops it.
NON_CANONICAL_LARGE_ORDER = next(
    k for k in NON_CANONICAL_KEYS
    if (pt := decode_point(k, strict=False)) is not None and order_dividing_8(pt) is None)

ALICE = K("alice").public_key
#: alice's key plus each non-zero torsion point: canonical, on the curve, not in the prime subgroup.
MIXED_ORDER_KEYS = [encode_point(add(decode_point(ALICE), t)) for t in TORSION[1:]]


def _hex_ids(keys: list[bytes]) -> list[str]:
    return [k.hex()[:8] + ".." + k.hex()[-4:] for k in keys]


# ---------------------------------------------------------------- the key sets are what they claim


def test_small_order_points_computed_match_the_published_list():
    assert SMALL_ORDER_KEYS == PUBLISHED_SMALL_ORDER
    orders = sorted(order_dividing_8(decode_point(k)) for k in SMALL_ORDER_KEYS)
    assert orders == [1, 2, 4, 4, 8, 8, 8, 8]


def test_non_canonical_set_includes_encodings_of_real_points():
    on_curve = [k for k in NON_CANONICAL_KEYS if decode_point(k, strict=False) is not None]
    assert len(NON_CANONICAL_KEYS) == 38 and len(on_curve) >= 20
    assert order_dividing_8(decode_point(NON_CANONICAL_LARGE_ORDER, strict=False)) is None  # not only small ones
    assert all(decode_point(k) is None for k in NON_CANONICAL_KEYS + NEGATIVE_ZERO_KEYS)


def test_mixed_order_keys_are_canonical_points_outside_the_prime_subgroup():
    for k in MIXED_ORDER_KEYS:
        pt = decode_point(k)
        assert pt is not None and encode_point(pt) == k
        assert mul(L, pt) != IDENTITY and mul(8 * L, pt) == IDENTITY


# ---------------------------------------------------------------- check_public_key / check_did


def test_a_normal_key_is_accepted():
    crypto.check_public_key(ALICE)
    assert crypto.check_did(K("alice").did) == ALICE


def _refused(key: bytes) -> InvalidKey:
    with pytest.raises(InvalidKey) as exc:
        crypto.check_public_key(key)
    assert exc.value.code == "invalid_key"
    return exc.value


@pytest.mark.parametrize("key", SMALL_ORDER_KEYS, ids=_hex_ids(SMALL_ORDER_KEYS))
def test_small_order_key_is_refused(key):
    _refused(key)
    did = crypto.did_from_public_key(key)
    with pytest.raises(InvalidKey) as exc:
        crypto.check_did(did)
    assert exc.value.code == "invalid_key" and exc.value.detail["key"] == did


@pytest.mark.parametrize("key", NON_CANONICAL_KEYS + NEGATIVE_ZERO_KEYS,
                         ids=_hex_ids(NON_CANONICAL_KEYS + NEGATIVE_ZERO_KEYS))
def test_non_canonical_key_is_refused(key):
    _refused(key)
    with pytest.raises(InvalidKey):
        crypto.check_did(crypto.did_from_public_key(key))


@pytest.mark.parametrize("key", MIXED_ORDER_KEYS, ids=_hex_ids(MIXED_ORDER_KEYS))
def test_mixed_order_key_is_refused(key):
    _refused(key)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_key_of_wrong_length_is_refused(length):
    err = _refused(ALICE[:length] if length <= 32 else ALICE + bytes(length - 32))
    assert str(length) in err.detail["reason"]


def test_identity_key_forgery_is_not_a_valid_signature():
    """The forgery the rule exists for: R = identity, S = 0 "signs" anything under the identity
    key for lenient verifiers. Our one verification rule refuses it."""
    forged = IDENTITY_KEY + bytes(32)
    for message in (b"", b"any message", crypto.TAG_TX_SIG + bytes(32)):
        assert not crypto.verify_signature(IDENTITY_KEY, forged, message)


# ---------------------------------------------------------------- end to end through the ledger

WEAK_KEYS = (
    [(k, "small-order") for k in SMALL_ORDER_KEYS]
    + [(NON_CANONICAL_KEYS[2], "non-canonical-identity"), (NON_CANONICAL_LARGE_ORDER, "non-canonical"),
       (NEGATIVE_ZERO_KEYS[0], "negative-zero")]
    + [(MIXED_ORDER_KEYS[0], "mixed-order")]
)
WEAK_IDS = [f"{kind}-{k.hex()[:8]}" for k, kind in WEAK_KEYS]


def _weak_did(key: bytes) -> str:
    return crypto.did_from_public_key(key)


def _assert_refused_and_nothing_changed(chain: Chain, raw: bytes, codes: set[str]) -> None:
    root = chain.root
    receipt = chain.block(raw).receipts[0]
    assert not receipt.ok and receipt.code in codes, receipt
    assert receipt.events == []
    assert chain.root == root


def test_admitting_an_organisation_with_good_keys_works(chain):
    """Control: the same proposal with sound keys is applied (one vote is not enough for three
    organisations, so it stays open, but it is recorded)."""
    root = chain.root
    r = chain.run(K("oem-admin"), Propose(action=AdmitOrganisation(
        id="dealer", name="Dealer", roles=["dealer"], admins=[K("dealer-admin").did], nodes=[K("dealer-node").did])))
    assert r.ok, r
    assert chain.root != root


@pytest.mark.parametrize("key, kind", WEAK_KEYS, ids=WEAK_IDS)
def test_propose_admit_organisation_with_weak_admin_key_is_refused(chain, key, kind):
    action = AdmitOrganisation(id="evil", name="Evil Motors", roles=["dealer"], admins=[_weak_did(key)])
    raw = build_tx(K("oem-admin"), Propose(action=action))
    _assert_refused_and_nothing_changed(chain, raw, {"invalid_key"})


@pytest.mark.parametrize("key, kind", WEAK_KEYS, ids=WEAK_IDS)
def test_propose_admit_organisation_with_weak_node_key_is_refused(chain, key, kind):
    action = AdmitOrganisation(id="evil", name="Evil Motors", roles=["dealer"], admins=[K("evil-admin").did],
                               nodes=[_weak_did(key)])
    raw = build_tx(K("oem-admin"), Propose(action=action))
    _assert_refused_and_nothing_changed(chain, raw, {"invalid_key"})


@pytest.mark.parametrize("key, kind", WEAK_KEYS[:1] + WEAK_KEYS[-4:], ids=WEAK_IDS[:1] + WEAK_IDS[-4:])
def test_propose_weak_node_keys_for_an_organisation_is_refused(chain, key, kind):
    raw = build_tx(K("reg-admin"), Propose(action=SetNodeKeys(org="reg", nodes=[K("reg-node").did, _weak_did(key)])))
    _assert_refused_and_nothing_changed(chain, raw, {"invalid_key"})


def test_weak_key_refusal_is_stateless_and_recorded_with_its_detail(chain):
    did = _weak_did(IDENTITY_KEY)
    raw = build_tx(K("oem-admin"), Propose(action=AdmitOrganisation(id="evil", name="E", roles=["dealer"],
                                                                    admins=[did])))
    refused = chain.ledger.check(raw)
    assert refused.code == "invalid_key" and refused.detail["key"] == did
    receipt = chain.block(raw).receipts[0]
    assert (receipt.code, receipt.detail) == ("invalid_key", refused.detail)
    assert ORGS.get(chain.ledger, "evil") is None and MEMBERS.get(chain.ledger, did) is None


def _add_member_with_forged_cosignature(key: bytes, nonce: str) -> bytes:
    """add_member of ``key``: the admin signs; the new key "co-signs" with (R = identity, S = 0),
    the only kind of signature nobody holding its private key could produce for it."""
    did = _weak_did(key)
    body = make_body(CHAIN, K("oem-admin").did, AddMember(member=did, roles=["manufacturer"]),
                     nonce=nonce, expires=T0 + 3_000_000)
    admin_signed = sign(body, K("oem-admin"))
    return canonical(Tx(body=body, sigs=[*admin_signed.sigs, Signature(did, (IDENTITY_KEY + bytes(32)).hex())]))


@pytest.mark.parametrize("key, kind", WEAK_KEYS, ids=WEAK_IDS)
def test_add_member_of_weak_key_with_forged_cosignature_is_refused(chain, key, kind):
    raw = _add_member_with_forged_cosignature(key, "ab" * 16)
    _assert_refused_and_nothing_changed(chain, raw, {"bad_signature", "invalid_key"})
    assert MEMBERS.get(chain.ledger, _weak_did(key)) is None


@pytest.mark.parametrize("key, kind", WEAK_KEYS, ids=WEAK_IDS)
def test_add_member_of_weak_key_without_its_cosignature_is_refused(chain, key, kind):
    """No co-signature at all: the signatures verify, and the key check refuses the new key."""
    raw = build_tx(K("oem-admin"), AddMember(member=_weak_did(key), roles=["manufacturer"]))
    _assert_refused_and_nothing_changed(chain, raw, {"invalid_key"})
    assert MEMBERS.get(chain.ledger, _weak_did(key)) is None


def test_add_member_of_identity_key_is_refused_even_if_the_forgery_were_accepted(chain, monkeypatch):
    """Defence in depth: even a verifier fooled by the identity-key forgery leaves the key out,
    because the key itself is checked at registration."""
    real = crypto.verify_signature
    monkeypatch.setattr(crypto, "verify_signature",
                        lambda pk, sig, msg: pk == IDENTITY_KEY or real(pk, sig, msg))
    raw = _add_member_with_forged_cosignature(IDENTITY_KEY, "ab" * 16)
    _assert_refused_and_nothing_changed(chain, raw, {"invalid_key"})


@pytest.mark.parametrize("key, kind", WEAK_KEYS[:1] + WEAK_KEYS[-4:], ids=WEAK_IDS[:1] + WEAK_IDS[-4:])
def test_rotate_to_weak_key_is_refused(chain, key, kind):
    raw = build_tx(K("ins-admin"), RotateKey(new_key=_weak_did(key)))
    _assert_refused_and_nothing_changed(chain, raw, {"invalid_key"})
    member = MEMBERS.get(chain.ledger, K("ins-admin").did)
    assert member is not None and member.status == "active"


@pytest.mark.parametrize("where", ["admins", "nodes"])
def test_genesis_with_small_order_key_is_refused(where):
    g = consortium()
    weak = _weak_did(SMALL_ORDER_KEYS[0])
    orgs = list(g.organisations)
    first = orgs[0]
    orgs[0] = GenesisOrganisation(first.id, first.name, first.roles,
                                  first.admins + ([weak] if where == "admins" else []),
                                  first.nodes + ([weak] if where == "nodes" else []))
    bad = msgspec.structs.replace(g, organisations=orgs)
    with pytest.raises(InvalidKey):
        MemoryLedger(default_registry(), bad)
