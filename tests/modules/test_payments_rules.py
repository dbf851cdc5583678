"""The payments module's rules, one row per rule, on a MemoryLedger.

A consortium with an e-money issuer (emi) and merchants in every category: emi issues EUR against
attested reserves, Alice's car pays tolls and parking within the limits she sets, pays by the
minute through a payment channel settled with off-ledger vouchers, rides a journey split between
a train and a scooter operator, and is sold to Bob with the price in escrow, the bank's lien paid
off in the same transaction. Refusals are one table (``REFUSALS``): each names the stable code
and checks that the failed transaction moved nothing and cannot be replayed. Who may send each
message is a matrix (``CASES`` x ``ACTORS``) generated from the intended permissions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec
import pytest

from blokauto.core.access import Caller, ReadRefused
from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair
from blokauto.modules.payments import PaymentsDoor, queries
from blokauto.modules.payments.messages import (AgreeFare, AttestReserves, ClaimChannel, CloseChannel, Issue,
                                                LockSale, OpenChannel, PayJourney, PublishTariff, ReclaimSale, Redeem,
                                                RegisterCurrency, RevokeLimit, SetLimit, SettleChannel, SettleSale,
                                                Transfer, VehiclePay)
from blokauto.modules.payments.state import (ACCOUNTS, CHANNELS, CURRENCIES, ESCROWS, LIMITS, Band, Share, split,
                                             Fare)
from blokauto.modules.payments.vouchers import Voucher, check_voucher, make_voucher, voucher_digest
from blokauto.modules.vehicles.messages import AssignWmi, BrandTitle, RecordLien, TransferTitle
from blokauto.modules.vehicles.state import VEHICLES

from conftest import CHAIN, T0, Chain, K, build_tx
from helpers.permissions import expected_code as permission_code
from helpers.vehicles import ORGS, WMI, MemoryView, admin, history, register_msg, snapshot, vin_for

VIN = vin_for(WMI["oem"], 1)  # Alice's car, device DEVICE
FLEET_VIN = vin_for(WMI["oem"], 2)  # held by org:fleet, device FLEET_DEVICE
ALICE, BOB, CAROL = K("alice"), K("bob"), K("carol")
DEVICE, FLEET_DEVICE, OTHER_DEVICE = K("pay-dev-1"), K("pay-dev-2"), K("pay-dev-9")
EMI, TOLL, PARK, RAIL, SCOOT, BANK, FLEET = (admin(o) for o in ("emi", "toll", "park", "rail", "scoot", "bank",
                                                                "fleet"))
DAY = 86_400_000
HOUR = 3_600_000

#: Organisations besides the vehicles helpers' ones: the issuer and a merchant per category.
PAY_ORGS: dict[str, list[str]] = {
    "emi": ["issuer"],
    "toll": ["toll"],
    "park": ["parking"],
    "charge": ["charging"],
    "fuel": ["fuel"],
    "rail": ["mobility"],
    "scoot": ["mobility"],
}
ALL_ORGS = {**ORGS, **PAY_ORGS}

#: Balances after ``world()``: Alice 100,000, Bob 50,000, org:fleet 100,000 (EUR cents).
START = {ALICE.did: 100_000, BOB.did: 50_000, "org:fleet": 100_000}
RESERVES = 1_000_000


def genesis() -> Genesis:
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in ALL_ORGS.items()]
    return Genesis(chain=CHAIN, time=T0, organisations=orgs, quorum=1)


def now(chain: Chain) -> int:
    return chain.ledger.head.time


def tx(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int) -> bytes:
    """A transaction valid at block time ``at``, with a nonce counted per chain."""
    return build_tx(sender, msg, *cosigners, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")


def send(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    """One transaction in its own block at block time ``at`` (default: 1 ms after the last)."""
    t = now(chain) + 1 if at is None else at
    return chain.block(tx(chain, sender, msg, *cosigners, at=t), time=t).receipts[0]


def ok(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    r = send(chain, sender, msg, *cosigners, at=at)
    assert r.ok, r
    return r


def bal(chain: Chain, owner: str | KeyPair, currency: str = "EUR") -> int:
    owner = owner.did if isinstance(owner, KeyPair) else owner
    return ACCOUNTS.get(chain.ledger, currency, owner) or 0


def supply(chain: Chain, currency: str = "EUR") -> int:
    return CURRENCIES.get(chain.ledger, currency).supply


def bands(*spec: tuple[int, int, int]) -> list[Band]:
    return [Band(start=a, end=b, price=p) for a, b, p in spec]


def world() -> Chain:
    """VIN sold to Alice (device DEVICE), FLEET_VIN held by org:fleet; EUR issued by emi; Alice's car
    may spend 5,000 per payment, 10,000 a day on tolls, parking and charging; toll publishes a
    per-km tariff (day 10, night 5 cents per km, 50 base); rail (60 %) and scoot (40 %) agree fare 1."""
    chain = Chain(genesis())
    chain.nonces = itertools.count(1)
    for org, wmi in WMI.items():
        ok(chain, admin("reg"), AssignWmi(wmi=wmi, org=org))
    ok(chain, admin("oem"), register_msg(VIN, device_keys=[DEVICE.did]))
    ok(chain, admin("oem"), register_msg(FLEET_VIN, device_keys=[FLEET_DEVICE.did]))
    ok(chain, admin("oem"), register_msg(vin_for(WMI["oem"], 9), device_keys=[OTHER_DEVICE.did]))
    ok(chain, admin("oem"), TransferTitle(vin=VIN, to=ALICE.did), ALICE)
    ok(chain, admin("oem"), TransferTitle(vin=FLEET_VIN, to="org:fleet"), FLEET)
    ok(chain, EMI, RegisterCurrency(currency="EUR", exponent=2))
    ok(chain, EMI, AttestReserves(currency="EUR", reserves=RESERVES, evidence="ab" * 32))
    for owner, amount in START.items():
        ok(chain, EMI, Issue(currency="EUR", to=owner, amount=amount))
    ok(chain, ALICE, SetLimit(vin=VIN, currency="EUR", per_payment=5_000, per_day=10_000,
                              categories=["toll", "parking", "charging"]))
    ok(chain, TOLL, PublishTariff(tariff="a8", category="toll", currency="EUR", unit="km", zone="A8",
                                  bands=bands((360, 1320, 10), (0, 360, 5), (1320, 1440, 5)), base=50))
    ok(chain, RAIL, AgreeFare(name="train+scooter", currency="EUR",
                              shares=[Share(org="rail", category="ride", bps=6_000),
                                      Share(org="scoot", category="ride", bps=4_000)]), SCOOT)
    return chain


def accounts(chain: Chain) -> dict[tuple[str, str], int]:
    out = {}
    for key, raw in chain.ledger.state.items():
        k = key.decode() if isinstance(key, bytes) else key
        if k.startswith(ACCOUNTS.prefix):
            cur, owner = k[len(ACCOUNTS.prefix):].split("/", 1)
            out[(cur, owner)] = ACCOUNTS.decode(raw)
    return out


def locked(chain: Chain, currency: str = "EUR") -> int:
    """Units held by channels not closed and escrows still locked."""
    total = 0
    for key, raw in chain.ledger.state.items():
        k = key.decode() if isinstance(key, bytes) else key
        if k.startswith(CHANNELS.prefix):
            ch = CHANNELS.decode(raw)
            total += ch.deposit if ch.status != "closed" and ch.currency == currency else 0
        elif k.startswith(ESCROWS.prefix):
            e = ESCROWS.decode(raw)
            total += e.price if e.status == "locked" and e.currency == currency else 0
    return total


def conserved(chain: Chain, currency: str = "EUR") -> bool:
    held = sum(v for (cur, _), v in accounts(chain).items() if cur == currency)
    return supply(chain, currency) == held + locked(chain, currency) and all(v > 0 for v in accounts(chain).values())


class View(MemoryView):
    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.need = chain.registry.provider
        self.time = chain.ledger.head.time


# ---------------------------------------------------------------- issuer-backed units


def test_issue_transfer_and_redeem_conserve_value() -> None:
    chain = world()
    assert supply(chain) == sum(START.values())
    r = ok(chain, ALICE, Transfer(currency="EUR", to=CAROL.did, amount=1_234, memo="lunch"))
    assert r.events == [{"type": "payments.transferred", "currency": "EUR", "payer": ALICE.did, "to": CAROL.did,
                         "amount": 1_234, "memo": "lunch"}]
    assert (bal(chain, ALICE), bal(chain, CAROL)) == (100_000 - 1_234, 1_234)
    ok(chain, CAROL, Redeem(currency="EUR", amount=1_234))
    assert bal(chain, CAROL) == 0 and ACCOUNTS.get(chain.ledger, "EUR", CAROL.did) is None  # no zero rows
    assert supply(chain) == sum(START.values()) - 1_234
    assert conserved(chain)


def test_any_key_of_an_organisation_spends_its_account() -> None:
    chain = world()
    ok(chain, FLEET, Transfer(currency="EUR", to=BOB.did, amount=500, payer="org:fleet"))
    assert (bal(chain, "org:fleet"), bal(chain, BOB)) == (99_500, 50_500)


def test_issuing_needs_attested_reserves() -> None:
    chain = world()
    room = RESERVES - supply(chain)
    ok(chain, EMI, Issue(currency="EUR", to=CAROL.did, amount=room))
    assert send(chain, EMI, Issue(currency="EUR", to=CAROL.did, amount=1)).code == "reserves_exceeded"
    ok(chain, EMI, AttestReserves(currency="EUR", reserves=RESERVES + 1, evidence="cd" * 32))
    ok(chain, EMI, Issue(currency="EUR", to=CAROL.did, amount=1))
    assert supply(chain) == RESERVES + 1 == CURRENCIES.get(chain.ledger, "EUR").reserves


# ---------------------------------------------------------------- the vehicle pays within its limits


def test_the_vehicle_pays_a_toll_from_its_holders_account() -> None:
    chain = world()
    r = ok(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR", amount=4_000))
    assert r.events[0] == {"type": "payments.vehicle_paid", "vin": VIN, "merchant": "toll", "category": "toll",
                           "currency": "EUR", "amount": 4_000, "tariff": ""}
    assert (bal(chain, ALICE), bal(chain, "org:toll")) == (96_000, 4_000)
    assert LIMITS.get(chain.ledger, VIN, "EUR").spent == 4_000


def test_a_fleet_manager_sets_the_limit_of_a_vehicle_its_organisation_holds() -> None:
    chain = world()
    ok(chain, FLEET, SetLimit(vin=FLEET_VIN, currency="EUR", per_payment=900, per_day=2_000, categories=["fuel"]))
    ok(chain, FLEET_DEVICE, VehiclePay(vin=FLEET_VIN, merchant="fuel", category="fuel", currency="EUR", amount=900))
    assert bal(chain, "org:fleet") == 99_100


def test_the_daily_limit_resets_at_midnight_utc() -> None:
    chain = world()
    pay = VehiclePay(vin=VIN, merchant="park", category="parking", currency="EUR", amount=5_000)
    midnight = (now(chain) // DAY + 1) * DAY
    ok(chain, DEVICE, pay, at=midnight - 2)
    ok(chain, DEVICE, pay, at=midnight - 1)
    r = send(chain, DEVICE, VehiclePay(vin=VIN, merchant="park", category="parking", currency="EUR", amount=1),
             at=midnight - 1)
    assert (r.code, r.detail["limit"], r.detail["spent"]) == ("over_daily_limit", 10_000, 10_000)
    ok(chain, DEVICE, pay, at=midnight)
    assert LIMITS.get(chain.ledger, VIN, "EUR").spent == 5_000


def test_a_sale_lapses_the_old_holders_limit() -> None:
    chain = world()
    ok(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB)
    r = send(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR", amount=10))
    assert (r.code, r.detail["holder"]) == ("spending_limit_lapsed", ALICE.did)
    assert bal(chain, BOB) == 50_000  # Bob's money never answered to Alice's limit
    # found by the payments attack: the new holder read the former holder's amounts and spending
    assert queries.limit(View(chain), queries.LimitQuery(vin=VIN, currency="EUR")) == {
        "vin": VIN, "currency": "EUR", "limit": None, "status": "lapsed"}
    ok(chain, BOB, SetLimit(vin=VIN, currency="EUR", per_payment=10, per_day=10, categories=["toll"]))
    ok(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR", amount=10))
    assert bal(chain, BOB) == 49_990


def test_a_revoked_limit_can_be_set_again() -> None:
    chain = world()
    ok(chain, ALICE, RevokeLimit(vin=VIN, currency="EUR"))
    assert send(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR",
                                          amount=1)).code == "spending_limit_revoked"
    ok(chain, ALICE, SetLimit(vin=VIN, currency="EUR", per_payment=1, per_day=1, categories=["toll"]))
    ok(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR", amount=1))


# ---------------------------------------------------------------- tariffs


@pytest.mark.parametrize("minute,km,amount", [(6 * 60, 100, 50 + 1_000), (6 * 60 - 1, 100, 50 + 500),
                                              (22 * 60, 7, 50 + 35), (12 * 60, 0, 50)],
                         ids=["day_band_starts", "night_before_six", "night_after_ten", "base_only"])
def test_a_payment_naming_a_tariff_must_carry_its_price(minute: int, km: int, amount: int) -> None:
    chain = world()
    at = (now(chain) // DAY + 1) * DAY + minute * 60_000
    view = View(chain)
    assert queries.price(view, queries.PriceQuery(merchant="toll", tariff="a8", quantity=km, at=at))["amount"] == amount
    wrong = send(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR",
                                           amount=amount + 1, tariff="a8", quantity=km), at=at)
    assert (wrong.code, wrong.detail["price"]) == ("amount_not_tariff", amount)
    ok(chain, DEVICE, VehiclePay(vin=VIN, merchant="toll", category="toll", currency="EUR", amount=amount,
                                 tariff="a8", quantity=km), at=at)
    assert bal(chain, "org:toll") == amount


def test_a_tariff_per_kwh_in_watt_hours_rounds_down() -> None:
    chain = world()
    ok(chain, admin("charge"), PublishTariff(tariff="dc", category="charging", currency="EUR", unit="wh",
                                             zone="M1", bands=bands((0, 1440, 39)), per=1_000))
    view = View(chain)
    assert queries.price(view, queries.PriceQuery(merchant="charge", tariff="dc", quantity=12_345))["amount"] == 481


def test_a_price_beyond_what_a_client_reads_exactly_is_refused() -> None:
    """Found by the payments attack: the price query answered amounts above 2^53-1."""
    from blokauto.core.errors import QueryParamsInvalid

    chain = world()
    top = 2**53 - 1
    ok(chain, admin("charge"), PublishTariff(tariff="big", category="charging", currency="EUR", unit="wh",
                                             zone="M1", bands=bands((0, 1440, top)), per=1))
    view = View(chain)
    assert queries.price(view, queries.PriceQuery(merchant="charge", tariff="big", quantity=0))["amount"] == 0
    with pytest.raises(QueryParamsInvalid):
        queries.price(view, queries.PriceQuery(merchant="charge", tariff="big", quantity=2))


def test_republishing_a_tariff_bumps_its_version() -> None:
    chain = world()
    r = ok(chain, TOLL, PublishTariff(tariff="a8", category="toll", currency="EUR", unit="km", zone="A8",
                                      bands=bands((0, 1440, 12))))
    assert r.events[0]["version"] == 2
    assert queries.tariffs(View(chain), queries.TariffsQuery(merchant="toll"))["tariffs"][0]["bands"] == [
        {"start": 0, "end": 1440, "price": 12}]


# ---------------------------------------------------------------- payment channels

CHARGE = admin("charge")


def opened(chain: Chain, deposit: int = 3_000, by_vehicle: bool = True) -> int:
    msg = OpenChannel(merchant="park", category="parking", currency="EUR", deposit=deposit,
                      vin=VIN if by_vehicle else "")
    r = ok(chain, DEVICE if by_vehicle else ALICE, msg)
    return r.events[0]["channel"]


def v(cid: int, amount: int, key: KeyPair = DEVICE, chain: str = CHAIN) -> Voucher:
    return make_voucher(key, chain, cid, amount)


def test_a_channel_opened_by_the_vehicle_is_paid_by_the_latest_voucher() -> None:
    chain = world()
    cid = opened(chain)
    assert (bal(chain, ALICE), LIMITS.get(chain.ledger, VIN, "EUR").spent) == (97_000, 3_000)
    vouchers = [v(cid, 25 * minute) for minute in range(1, 61)]  # 25 cents a minute, off the ledger
    for vch in vouchers:  # the merchant checks each one with the same code before serving a minute more
        assert check_voucher(vch, chain=CHAIN, channel=cid, payer=DEVICE.did, deposit=3_000) == vch.amount
    r = ok(chain, PARK, ClaimChannel(channel=cid, voucher=vouchers[-1]))
    assert r.events[0] == {"type": "payments.channel_closed", "channel": cid, "payer": DEVICE.did,
                           "funder": ALICE.did, "merchant": "park", "paid": 1_500, "refunded": 1_500}
    assert (bal(chain, ALICE), bal(chain, "org:park")) == (98_500, 1_500)
    assert conserved(chain)


def test_the_payer_closes_after_the_challenge_period_only() -> None:
    chain = world()
    cid = opened(chain, by_vehicle=False)
    t = now(chain) + 1
    ok(chain, ALICE, CloseChannel(channel=cid, voucher=make_voucher(ALICE, CHAIN, cid, 700)), at=t)
    early = send(chain, ALICE, SettleChannel(channel=cid), at=t + DAY - 1)
    assert (early.code, early.detail["until"]) == ("challenge_period_running", t + DAY)
    ok(chain, CAROL, SettleChannel(channel=cid), at=t + DAY)  # anyone settles once it is over
    assert (bal(chain, ALICE), bal(chain, "org:park")) == (99_300, 700)


def test_the_highest_voucher_wins_a_dispute() -> None:
    chain = world()
    cid = opened(chain)
    ok(chain, DEVICE, CloseChannel(channel=cid, voucher=v(cid, 400)))  # the payer shows an old voucher
    r = ok(chain, PARK, ClaimChannel(channel=cid, voucher=v(cid, 1_900)))  # the merchant, the latest
    assert r.events[0]["paid"] == 1_900
    assert (bal(chain, ALICE), bal(chain, "org:park")) == (100_000 - 1_900, 1_900)


def test_a_merchant_cannot_undercut_the_payers_voucher_in_a_dispute() -> None:
    chain = world()
    cid = opened(chain)
    ok(chain, ALICE, CloseChannel(channel=cid, voucher=v(cid, 900)))  # the funder closes with the device's voucher
    assert send(chain, PARK, ClaimChannel(channel=cid, voucher=v(cid, 899))).code == "stale_voucher"
    ok(chain, PARK, ClaimChannel(channel=cid, voucher=v(cid, 900)))
    assert bal(chain, "org:park") == 900


def test_voucher_code_is_a_tagged_hash_over_chain_channel_and_amount() -> None:
    vch = v(7, 1_000)
    assert bytes.fromhex(vch.sig) == DEVICE.sign(voucher_digest(CHAIN, 7, 1_000))
    assert len({voucher_digest(CHAIN, 7, 1_000), voucher_digest(CHAIN, 8, 1_000), voucher_digest(CHAIN, 7, 1_001),
                voucher_digest("other", 7, 1_000)}) == 4
    assert msgspec.json.decode(msgspec.json.encode(vch), type=Voucher) == vch


# ---------------------------------------------------------------- journeys


def test_a_journey_is_split_between_its_operators_in_one_transaction() -> None:
    chain = world()
    r = ok(chain, BOB, PayJourney(fare=1, amount=1_001))
    assert r.events[0]["parts"] == {"rail": 601, "scoot": 400}  # 600.6 and 400.4: the remainder to the lead
    assert (bal(chain, BOB), bal(chain, "org:rail"), bal(chain, "org:scoot")) == (48_999, 601, 400)


def test_a_journey_is_all_or_nothing() -> None:
    chain = world()
    # scoot is removed by governance: its part cannot be paid, so nobody is paid
    from blokauto.modules.governance.messages import Propose, Vote
    from blokauto.modules.governance.state import RemoveOrganisation

    r = ok(chain, admin("reg"), Propose(action=RemoveOrganisation(id="scoot")))
    pid = r.events[0]["proposal"]
    for org in ALL_ORGS:
        if org != "reg" and send(chain, admin(org), Vote(proposal=pid, approve=True)).code == "proposal_closed":
            break
    before = snapshot(chain)
    refused = send(chain, BOB, PayJourney(fare=1, amount=1_000))
    assert (refused.code, refused.detail["merchant"]) == ("unknown_merchant", "scoot")
    assert snapshot(chain)[:2] == before[:2] and bal(chain, "org:rail") == 0 and bal(chain, BOB) == 50_000


@pytest.mark.parametrize("shares,amount", [([6_000, 4_000], 1), ([1, 9_999], 10_001), ([3_333, 3_333, 3_334], 100)])
def test_a_split_adds_up_to_the_amount(shares: list[int], amount: int) -> None:
    fare = Fare(1, "o0", "f", "EUR", [Share(org=f"o{i}", category="ride", bps=b) for i, b in enumerate(shares)], 1)
    parts = split(fare, amount)
    assert sum(p for _, p in parts) == amount and all(p >= 0 for _, p in parts)


# ---------------------------------------------------------------- delivery versus payment


def sale(chain: Chain, price: int = 30_000, deadline: int | None = None) -> int:
    r = ok(chain, BOB, LockSale(vin=VIN, seller=ALICE.did, currency="EUR", price=price,
                                deadline=deadline or now(chain) + DAY))
    return r.events[0]["escrow"]


def test_the_title_and_the_money_move_in_one_transaction() -> None:
    chain = world()
    ok(chain, BANK, RecordLien(vin=VIN, amount=12_000, currency="EUR"), ALICE)
    eid = sale(chain)
    assert (bal(chain, BOB), conserved(chain)) == (20_000, True)
    r = ok(chain, ALICE, SettleSale(escrow=eid))
    assert VEHICLES.get(chain.ledger, VIN).holder == BOB.did
    assert VEHICLES.get(chain.ledger, VIN).liens == []
    assert (bal(chain, ALICE), bal(chain, "org:bank")) == (100_000 + 18_000, 12_000)
    assert ESCROWS.get(chain.ledger, eid).status == "settled"
    assert chain.registry.provider(PaymentsDoor).sale_paid(chain.ledger, eid)
    settled = next(e for e in r.events if e["type"] == "payments.sale_settled")
    assert settled == {"type": "payments.sale_settled", "escrow": eid, "vin": VIN, "buyer": BOB.did,
                       "seller": ALICE.did, "lenders": ["bank"]}
    entries = history(chain, VIN)[-3:]
    assert [e["type"] for e in entries] == ["lien_released", "title_transfer", "sale_paid"]
    assert entries[0]["data"] == {"lien": 1, "lender": "bank", "paid_off": True}
    assert entries[2]["data"] == {"escrow": eid, "liens_paid_off": 1}
    amounts = {30_000, 18_000}  # the price and the seller's share are not on the vehicle's history
    assert not any(val in amounts for e in entries for val in e["data"].values())
    assert conserved(chain)


def test_the_buyer_reclaims_after_the_deadline() -> None:
    chain = world()
    deadline = now(chain) + HOUR
    eid = sale(chain, deadline=deadline)
    early = send(chain, BOB, ReclaimSale(escrow=eid), at=deadline - 1)
    assert early.code == "escrow_deadline_not_reached"
    late = send(chain, ALICE, SettleSale(escrow=eid), at=deadline)
    assert late.code == "escrow_expired"
    ok(chain, BOB, ReclaimSale(escrow=eid), at=deadline)
    assert (bal(chain, BOB), VEHICLES.get(chain.ledger, VIN).holder) == (50_000, ALICE.did)


def test_the_buyer_reclaims_at_once_when_the_seller_sold_elsewhere() -> None:
    chain = world()
    eid = sale(chain)
    ok(chain, ALICE, TransferTitle(vin=VIN, to=CAROL.did), CAROL)
    assert send(chain, ALICE, SettleSale(escrow=eid)).code == "seller_not_holder"
    ok(chain, BOB, ReclaimSale(escrow=eid))
    assert bal(chain, BOB) == 50_000


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Any
    code: str
    setup: Callable[[Chain], Any] | None = None
    cosigners: tuple[KeyPair, ...] = ()
    at: Callable[[Chain], int] | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def r(name: str, who: KeyPair, msg: Any, code: str, setup: Any = None, cosigners: tuple = (), at: Any = None,
      **detail: Any) -> Any:
    return pytest.param(Refusal(name, who, msg, code, setup, cosigners, at, detail), id=name)


def pay(amount: int = 1_000, category: str = "toll", merchant: str = "toll", **kw: Any) -> VehiclePay:
    return VehiclePay(vin=kw.pop("vin", VIN), merchant=merchant, category=category, currency=kw.pop("currency", "EUR"),
                      amount=amount, **kw)


def revoke(chain: Chain) -> None:
    ok(chain, ALICE, RevokeLimit(vin=VIN, currency="EUR"))


def spend(*amounts: int) -> Callable[[Chain], None]:
    def setup(chain: Chain) -> None:
        for amount in amounts:
            ok(chain, DEVICE, pay(amount))

    return setup


def channel(chain: Chain) -> None:
    opened(chain)


def claimed(chain: Chain) -> None:
    cid = opened(chain)
    ok(chain, PARK, ClaimChannel(channel=cid, voucher=v(cid, 100)))


def closing(chain: Chain) -> None:
    cid = opened(chain)
    ok(chain, DEVICE, CloseChannel(channel=cid, voucher=v(cid, 500)))


def other_channel(chain: Chain) -> None:
    opened(chain)
    opened(chain, deposit=4_000)


def locked_sale(chain: Chain) -> None:
    sale(chain)


def stolen_after_sale(chain: Chain) -> None:
    sale(chain)
    ok(chain, admin("reg"), BrandTitle(vin=VIN, brand="stolen", reason="reported"))


def settled(chain: Chain) -> None:
    eid = sale(chain)
    ok(chain, ALICE, SettleSale(escrow=eid))


def big_lien(chain: Chain) -> None:
    ok(chain, BANK, RecordLien(vin=VIN, amount=40_000, currency="EUR"), ALICE)
    sale(chain)


def usd_lien(chain: Chain) -> None:
    ok(chain, BANK, RecordLien(vin=VIN, amount=4_000, currency="USD"), ALICE)
    sale(chain)


def later(ms: int) -> Callable[[Chain], int]:
    return lambda chain: now(chain) + ms


OLD_VOUCHER_CHANNEL = 1

REFUSALS = [
    # currencies and accounts
    r("register_a_taken_currency", EMI, RegisterCurrency(currency="EUR", exponent=2), "currency_taken", issuer="emi"),
    r("issue_an_unknown_currency", EMI, Issue(currency="USD", to=BOB.did, amount=1), "unknown_currency"),
    r("issue_beyond_reserves", EMI, Issue(currency="EUR", to=BOB.did, amount=RESERVES), "reserves_exceeded",
      supply=sum(START.values())),
    r("issue_to_a_key_that_is_not_a_did", EMI, Issue(currency="EUR", to="did:key:zNotAKey", amount=1),
      "invalid_account"),
    r("issue_to_an_unknown_organisation", EMI, Issue(currency="EUR", to="org:nobody", amount=1), "invalid_account"),
    r("overdraft", ALICE, Transfer(currency="EUR", to=BOB.did, amount=100_001), "insufficient_funds",
      balance=100_000, amount=100_001),
    r("overdraft_of_an_empty_account", CAROL, Transfer(currency="EUR", to=BOB.did, amount=1), "insufficient_funds",
      balance=0),
    r("transfer_to_oneself", ALICE, Transfer(currency="EUR", to=ALICE.did, amount=1), "same_account"),
    r("spend_someone_elses_account", BOB, Transfer(currency="EUR", to=BOB.did, amount=1, payer=ALICE.did),
      "not_account_holder"),
    r("spend_another_organisations_account", TOLL, Transfer(currency="EUR", to=BOB.did, amount=1, payer="org:fleet"),
      "not_account_holder"),
    r("redeem_more_than_held", BOB, Redeem(currency="EUR", amount=50_001), "insufficient_funds"),
    # spending limits
    r("spend_over_the_per_payment_limit", DEVICE, pay(5_001), "over_payment_limit", limit=5_000),
    r("spend_over_the_daily_limit", DEVICE, pay(2_001), "over_daily_limit", spend(4_000, 4_000), spent=8_000,
      limit=10_000),
    r("spend_in_a_category_not_allowed", DEVICE, pay(100, "fuel", "fuel"), "category_not_allowed", category="fuel"),
    r("spend_under_a_revoked_limit", DEVICE, pay(100), "spending_limit_revoked", revoke),
    r("spend_without_a_limit", FLEET_DEVICE, pay(100, vin=FLEET_VIN), "no_spending_limit"),
    r("spend_with_another_vehicles_device", OTHER_DEVICE, pay(100), "not_a_device_of_vehicle"),
    r("spend_with_the_holders_own_key", ALICE, pay(100), "not_a_device_of_vehicle"),
    r("spend_over_the_wallets_balance", DEVICE, pay(5_000), "insufficient_funds",
      lambda c: ok(c, ALICE, Transfer(currency="EUR", to=BOB.did, amount=96_000))),
    r("stranger_sets_a_limit", BOB, SetLimit(vin=VIN, currency="EUR", per_payment=1, per_day=1, categories=["toll"]),
      "not_wallet_holder"),
    r("device_raises_its_own_limit", DEVICE, SetLimit(vin=VIN, currency="EUR", per_payment=9, per_day=9,
                                                      categories=["toll"]), "not_wallet_holder"),
    r("limit_per_payment_above_per_day", ALICE, SetLimit(vin=VIN, currency="EUR", per_payment=2, per_day=1,
                                                         categories=["toll"]), "invalid_spending_limit"),
    r("limit_on_an_unregistered_vehicle", ALICE, SetLimit(vin=vin_for(WMI["oem"], 77), currency="EUR", per_payment=1,
                                                          per_day=1, categories=["toll"]), "unknown_vehicle"),
    r("revoke_a_revoked_limit", ALICE, RevokeLimit(vin=VIN, currency="EUR"), "spending_limit_revoked", revoke),
    r("stranger_revokes_a_limit", BOB, RevokeLimit(vin=VIN, currency="EUR"), "not_wallet_holder"),
    # merchants and tariffs
    r("pay_a_merchant_outside_its_category", DEVICE, pay(100, "toll", "park"), "merchant_not_in_category",
      merchant="park", category="toll", role="toll"),
    r("pay_an_unknown_merchant", DEVICE, pay(100, "toll", "nobody"), "unknown_merchant"),
    r("pay_an_unknown_tariff", DEVICE, pay(100, tariff="a9", quantity=1), "unknown_tariff"),
    r("pay_a_tariff_of_another_category", DEVICE, pay(100, "parking", "toll", tariff="a8", quantity=1),
      "merchant_not_in_category"),
    r("publish_a_tariff_outside_the_category", PARK, PublishTariff(
        tariff="x", category="toll", currency="EUR", unit="km", zone="Z", bands=bands((0, 1440, 1))),
      "merchant_not_in_category"),
    r("publish_overlapping_bands", TOLL, PublishTariff(
        tariff="x", category="toll", currency="EUR", unit="km", zone="Z", bands=bands((0, 600, 1), (599, 1440, 2))),
      "invalid_tariff"),
    r("publish_an_empty_band", TOLL, PublishTariff(
        tariff="x", category="toll", currency="EUR", unit="km", zone="Z", bands=bands((600, 600, 1))),
      "invalid_tariff"),
    r("pay_a_tariff_outside_its_bands", DEVICE, pay(50, tariff="n", quantity=0), "tariff_closed", lambda c: ok(
        c, TOLL, PublishTariff(tariff="n", category="toll", currency="EUR", unit="km", zone="Z",
                               bands=bands((1439, 1440, 1)), base=50))),
    # channels
    r("channel_to_a_merchant_outside_its_category", ALICE, OpenChannel(
        merchant="toll", category="parking", currency="EUR", deposit=10), "merchant_not_in_category"),
    r("channel_deposit_over_the_balance", BOB, OpenChannel(
        merchant="park", category="parking", currency="EUR", deposit=50_001), "insufficient_funds"),
    r("channel_deposit_over_the_vehicles_limit", DEVICE, OpenChannel(
        merchant="park", category="parking", currency="EUR", deposit=5_001, vin=VIN), "over_payment_limit"),
    r("voucher_over_the_deposit", PARK, ClaimChannel(channel=1, voucher=v(1, 3_001)), "voucher_over_deposit",
      channel, deposit=3_000),
    r("voucher_of_another_channel", PARK, ClaimChannel(channel=2, voucher=v(1, 100)), "voucher_other_channel",
      other_channel, voucher_channel=1),
    r("voucher_of_another_chain", PARK, ClaimChannel(channel=1, voucher=v(1, 100, chain="other-chain")),
      "voucher_other_channel", channel),
    r("voucher_with_its_channel_rewritten", PARK, ClaimChannel(
        channel=2, voucher=msgspec.structs.replace(v(1, 100), channel=2)), "voucher_forged", other_channel),
    r("voucher_with_its_amount_raised", PARK, ClaimChannel(
        channel=1, voucher=msgspec.structs.replace(v(1, 100), amount=2_000)), "voucher_forged", channel),
    r("voucher_signed_by_the_merchant", PARK, ClaimChannel(channel=1, voucher=v(1, 100, key=PARK)), "voucher_forged",
      channel),
    r("voucher_signed_by_the_holder_not_the_device", PARK, ClaimChannel(channel=1, voucher=v(1, 100, key=ALICE)),
      "voucher_forged", channel),
    r("voucher_replayed_after_the_close", PARK, ClaimChannel(channel=1, voucher=v(1, 100)), "channel_closed", claimed,
      paid=100),
    r("voucher_older_than_the_payers", PARK, ClaimChannel(channel=1, voucher=v(1, 499)), "stale_voucher", closing,
      best=500),
    r("claim_by_another_merchant", CHARGE, ClaimChannel(channel=1, voucher=v(1, 100)), "not_channel_merchant",
      channel),
    r("claim_an_unknown_channel", PARK, ClaimChannel(channel=9, voucher=v(9, 100)), "unknown_channel"),
    r("close_twice", DEVICE, CloseChannel(channel=1), "channel_closing", closing),
    r("close_a_closed_channel", DEVICE, CloseChannel(channel=1), "channel_closed", claimed),
    r("close_by_a_stranger", BOB, CloseChannel(channel=1), "not_channel_payer", channel),
    r("close_by_the_merchant", PARK, CloseChannel(channel=1), "not_channel_payer", channel),
    r("settle_an_open_channel", ALICE, SettleChannel(channel=1), "channel_not_closing", channel),
    r("settle_in_the_challenge_period", ALICE, SettleChannel(channel=1), "challenge_period_running", closing,
      at=later(DAY - 10)),
    r("claim_after_the_challenge_period", PARK, ClaimChannel(channel=1, voucher=v(1, 2_000)), "challenge_period_over",
      closing, at=later(DAY)),
    r("settle_a_closed_channel", ALICE, SettleChannel(channel=1), "channel_closed", claimed),
    # journeys
    r("fare_shares_not_adding_up", RAIL, AgreeFare(name="f", currency="EUR", shares=[
        Share(org="rail", category="ride", bps=6_000), Share(org="scoot", category="ride", bps=3_999)]),
      "invalid_fare", cosigners=(SCOOT,)),
    r("fare_naming_an_operator_twice", RAIL, AgreeFare(name="f", currency="EUR", shares=[
        Share(org="rail", category="ride", bps=5_000), Share(org="rail", category="ride", bps=5_000)]),
      "invalid_fare"),
    r("fare_without_the_lead", RAIL, AgreeFare(name="f", currency="EUR", shares=[
        Share(org="scoot", category="ride", bps=10_000)]), "invalid_fare", cosigners=(SCOOT,)),
    r("fare_share_outside_the_category", RAIL, AgreeFare(name="f", currency="EUR", shares=[
        Share(org="rail", category="ride", bps=5_000), Share(org="park", category="ride", bps=5_000)]),
      "merchant_not_in_category", cosigners=(PARK,)),
    r("fare_not_cosigned_by_an_operator", RAIL, AgreeFare(name="f", currency="EUR", shares=[
        Share(org="rail", category="ride", bps=5_000), Share(org="scoot", category="ride", bps=5_000)]),
      "missing_cosigner"),
    r("journey_over_the_balance", BOB, PayJourney(fare=1, amount=50_001), "insufficient_funds"),
    r("journey_of_an_unknown_fare", BOB, PayJourney(fare=9, amount=1), "unknown_fare"),
    r("journey_in_a_category_the_vehicle_may_not_pay", DEVICE, PayJourney(fare=1, amount=100, vin=VIN),
      "category_not_allowed", category="ride"),
    # delivery versus payment
    r("lock_a_sale_from_someone_not_holding_the_title", BOB, LockSale(
        vin=VIN, seller=CAROL.did, currency="EUR", price=1, deadline=T0 + DAY), "seller_not_holder"),
    r("lock_a_sale_over_the_balance", BOB, LockSale(
        vin=VIN, seller=ALICE.did, currency="EUR", price=50_001, deadline=T0 + DAY), "insufficient_funds"),
    r("lock_a_sale_to_oneself", ALICE, LockSale(
        vin=VIN, seller=ALICE.did, currency="EUR", price=1, deadline=T0 + DAY), "buyer_is_seller"),
    r("lock_a_sale_with_a_deadline_too_far", BOB, LockSale(
        vin=VIN, seller=ALICE.did, currency="EUR", price=1, deadline=T0 + 31 * DAY), "escrow_deadline_invalid"),
    r("settle_a_sale_by_a_stranger", CAROL, SettleSale(escrow=1), "not_escrow_seller", locked_sale),
    r("settle_a_sale_by_the_buyer", BOB, SettleSale(escrow=1), "not_escrow_seller", locked_sale),
    r("release_escrow_while_the_title_cannot_move", ALICE, SettleSale(escrow=1), "vehicle_stolen", stolen_after_sale),
    r("settle_a_sale_twice", ALICE, SettleSale(escrow=1), "escrow_closed", settled, status="settled"),
    r("settle_a_sale_whose_liens_exceed_the_price", ALICE, SettleSale(escrow=1), "liens_exceed_price", big_lien,
      liens=40_000, price=30_000),
    r("settle_a_sale_with_a_lien_in_another_currency", ALICE, SettleSale(escrow=1), "lien_currency_mismatch",
      usd_lien),
    r("reclaim_by_the_seller", ALICE, ReclaimSale(escrow=1), "not_escrow_buyer", locked_sale),
    r("reclaim_a_settled_sale", BOB, ReclaimSale(escrow=1), "escrow_closed", settled),
    r("reclaim_before_the_deadline", BOB, ReclaimSale(escrow=1), "escrow_deadline_not_reached", locked_sale),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_moves_nothing_and_cannot_be_replayed(case: Refusal) -> None:
    chain = world()
    if case.setup is not None:
        case.setup(chain)
    at = now(chain) + 1 if case.at is None else case.at(chain)
    before = snapshot(chain)
    raw = tx(chain, case.sender, case.msg, *case.cosigners, at=at)
    receipt = chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, val in case.detail.items():
        assert receipt.detail[k] == val, receipt.detail
    assert snapshot(chain)[:2] == before[:2], "a failed transaction changed the ledger"
    assert conserved(chain)
    again = chain.block(raw, time=at).receipts[0]
    assert (again.ok, again.code) == (False, "replayed_tx")


# ---------------------------------------------------------------- who may send each message

#: Every actor: a founding admin key of each organisation, and keys outside the consortium.
ACTORS: dict[str, KeyPair] = {
    **{org: admin(org) for org in ALL_ORGS},
    "outsider": K("outsider"),
    "owner": ALICE,  # holds VIN and 100,000
    "buyer": BOB,  # holds 50,000
    "device": DEVICE,  # VIN's device key
    "other_device": OTHER_DEVICE,  # a device key of another vehicle
}
MERCHANTS = {"toll", "park", "charge", "fuel", "rail", "scoot", "ins"}  # organisations with a merchant role


@dataclass(frozen=True)
class Case:
    """One message sent by each actor in turn. ``roles``: the roles that may send it at all (None:
    any key); ``allowed``: the actors it passes for; ``refusal``: the code for the others that may
    send it; ``overrides``: actors refused with another code."""

    name: str
    msg: Callable[[], Any]
    roles: frozenset[str] | None
    allowed: frozenset[str]
    refusal: str = ""
    setup: Callable[[Chain], Any] | None = None
    cosigners: Callable[[str], list[KeyPair]] = lambda actor: []
    overrides: dict[str, str] = field(default_factory=dict)
    at: Callable[[Chain], int] | None = None


def signers(*keys: KeyPair) -> Callable[[str], list[KeyPair]]:
    return lambda actor: [k for k in keys if k.did != ACTORS[actor].did]


def closing_by_payer(chain: Chain) -> None:
    cid = opened(chain, by_vehicle=False)
    ok(chain, ALICE, CloseChannel(channel=cid))


MERCHANT_ROLES = frozenset({"toll", "parking", "charging", "fuel", "mobility", "insurer"})
HOLDERS_OF_EUR = frozenset({"owner", "buyer"})

CASES: list[Case] = [
    Case("register_currency", lambda: RegisterCurrency(currency="USD", exponent=2), frozenset({"issuer"}),
         frozenset({"emi"})),
    Case("attest_reserves", lambda: AttestReserves(currency="EUR", reserves=RESERVES * 2, evidence="ee" * 32),
         frozenset({"issuer"}), frozenset({"emi"})),
    Case("issue", lambda: Issue(currency="EUR", to=CAROL.did, amount=10), frozenset({"issuer"}), frozenset({"emi"})),
    Case("redeem", lambda: Redeem(currency="EUR", amount=10), None, HOLDERS_OF_EUR, "insufficient_funds"),
    Case("redeem_from_an_organisation", lambda: Redeem(currency="EUR", amount=10, payer="org:fleet"), None,
         frozenset({"fleet"}), "not_account_holder"),
    Case("transfer", lambda: Transfer(currency="EUR", to=CAROL.did, amount=10), None, HOLDERS_OF_EUR,
         "insufficient_funds"),
    Case("set_limit", lambda: SetLimit(vin=VIN, currency="EUR", per_payment=1, per_day=2, categories=["ride"]), None,
         frozenset({"owner"}), "not_wallet_holder"),
    Case("set_limit_of_a_fleet_vehicle", lambda: SetLimit(vin=FLEET_VIN, currency="EUR", per_payment=1, per_day=2,
                                                          categories=["ride"]), None, frozenset({"fleet"}),
         "not_wallet_holder"),
    Case("revoke_limit", lambda: RevokeLimit(vin=VIN, currency="EUR"), None, frozenset({"owner"}), "not_wallet_holder"),
    Case("vehicle_pay", lambda: pay(100), None, frozenset({"device"}), "not_a_device_of_vehicle"),
    Case("publish_tariff", lambda: PublishTariff(tariff="t", category="toll", currency="EUR", unit="km", zone="Z",
                                                 bands=bands((0, 1440, 3))), MERCHANT_ROLES, frozenset({"toll"}),
         "merchant_not_in_category"),
    Case("open_channel", lambda: OpenChannel(merchant="park", category="parking", currency="EUR", deposit=10), None,
         HOLDERS_OF_EUR, "insufficient_funds"),
    Case("open_channel_from_a_vehicle", lambda: OpenChannel(merchant="park", category="parking", currency="EUR",
                                                            deposit=10, vin=VIN), None, frozenset({"device"}),
         "not_a_device_of_vehicle"),
    Case("claim_channel", lambda: ClaimChannel(channel=1, voucher=v(1, 10)), MERCHANT_ROLES, frozenset({"park"}),
         "not_channel_merchant", channel),
    Case("close_channel", lambda: CloseChannel(channel=1), None, frozenset({"owner", "device"}), "not_channel_payer",
         channel),
    Case("settle_channel", lambda: SettleChannel(channel=1), None, frozenset(ACTORS), "", closing_by_payer,
         at=later(DAY)),
    Case("agree_fare", lambda: AgreeFare(name="f", currency="EUR", shares=[
        Share(org="rail", category="ride", bps=5_000), Share(org="scoot", category="ride", bps=5_000)]),
         MERCHANT_ROLES, frozenset({"rail"}), "missing_cosigner", cosigners=signers(SCOOT)),
    Case("agree_fare_cosigned_by_both", lambda: AgreeFare(name="f", currency="EUR", shares=[
        Share(org="rail", category="ride", bps=5_000), Share(org="scoot", category="ride", bps=5_000)]),
         MERCHANT_ROLES, frozenset({"rail", "scoot"}), "invalid_fare", cosigners=signers(SCOOT, RAIL)),
    Case("pay_journey", lambda: PayJourney(fare=1, amount=10), None, HOLDERS_OF_EUR, "insufficient_funds"),
    Case("lock_sale", lambda: LockSale(vin=VIN, seller=ALICE.did, currency="EUR", price=10, deadline=T0 + DAY),
         None, frozenset({"buyer"}), "insufficient_funds", overrides={"owner": "buyer_is_seller"}),
    Case("settle_sale", lambda: SettleSale(escrow=1), None, frozenset({"owner"}), "not_escrow_seller", locked_sale),
    Case("reclaim_sale", lambda: ReclaimSale(escrow=1), None, frozenset({"buyer"}), "not_escrow_buyer",
         lambda c: sale(c, deadline=now(c) + 10), at=later(20)),
]


def expected_code(case: Case, actor: str) -> str | None:
    """None when ``actor`` may do it; else the refusal code (helpers.permissions)."""
    return permission_code(case, actor, ALL_ORGS)


MATRIX = [pytest.param(case, actor, id=f"{case.name}-{actor}") for case in CASES for actor in ACTORS]
_WORLD: dict[str, Any] = {}


def fresh_world() -> Chain:
    """``world()`` rebuilt once and copied for each case (the permission matrix is large)."""
    import copy

    if "chain" not in _WORLD:
        _WORLD["chain"] = world()
    base = _WORLD["chain"]
    chain = Chain.__new__(Chain)
    chain.genesis, chain.registry = base.genesis, base.registry
    ledger = chain.ledger = copy.copy(base.ledger)
    ledger.state, ledger.nodes, ledger.tx_index = dict(ledger.state), dict(ledger.nodes), dict(ledger.tx_index)
    ledger.index = {name: dict(rows) for name, rows in ledger.index.items()}
    ledger.index_heights = {name: dict(rows) for name, rows in ledger.index_heights.items()}
    ledger.headers, ledger.blocks, ledger.window = list(ledger.headers), list(ledger.blocks), ledger.window.copy()
    chain.nonces = itertools.count(10_000 + next(_copies) * 1_000)
    return chain


_copies = itertools.count()


@pytest.mark.parametrize(("case", "actor"), MATRIX)
def test_permission_matrix(case: Case, actor: str) -> None:
    chain = fresh_world()
    if case.setup is not None:
        case.setup(chain)
    at = now(chain) + 1 if case.at is None else case.at(chain)
    before = snapshot(chain)
    receipt = send(chain, ACTORS[actor], case.msg(), *case.cosigners(actor), at=at)
    code = expected_code(case, actor)
    if code is None:
        assert receipt.ok, receipt
        assert snapshot(chain)[:2] != before[:2]
    else:
        assert (receipt.ok, receipt.code) == (False, code), receipt
        assert snapshot(chain)[:2] == before[:2], "a refused transaction changed the ledger"
    assert conserved(chain)


def test_matrix_covers_every_payments_message() -> None:
    declared = {t for t in chain_registry().messages if t.startswith("payments.")}
    assert {type(case.msg()).__struct_config__.tag for case in CASES} == declared


def chain_registry() -> Any:
    from blokauto.modules import default_registry

    return default_registry()


# ---------------------------------------------------------------- who reads what


def caller(key: KeyPair, org: str | None = None) -> Caller:
    return Caller(key.did, org, frozenset(ALL_ORGS.get(org, [])) if org else frozenset())


@pytest.mark.parametrize("query,params,readers,refused", [
    ("balance", queries.BalanceQuery(owner=ALICE.did, currency="EUR"), [caller(ALICE), caller(admin("reg"), "reg")],
     [caller(BOB), caller(DEVICE), caller(EMI, "emi")]),
    ("balance", queries.BalanceQuery(owner="org:fleet", currency="EUR"), [caller(FLEET, "fleet")],
     [caller(TOLL, "toll")]),
    ("supply", queries.CurrencyQuery(currency="EUR"), [caller(EMI, "emi"), caller(admin("reg"), "reg")],
     [caller(ALICE), caller(TOLL, "toll")]),
    ("limit", queries.LimitQuery(vin=VIN, currency="EUR"), [caller(ALICE), caller(DEVICE)],
     [caller(BOB), caller(OTHER_DEVICE), caller(admin("oem"), "oem")]),
    ("channel", queries.ChannelQuery(channel=1), [caller(DEVICE), caller(ALICE), caller(PARK, "park")],
     [caller(BOB), caller(TOLL, "toll")]),
    ("escrow", queries.EscrowQuery(escrow=1), [caller(ALICE), caller(BOB)],
     [caller(CAROL), caller(BANK, "bank"), caller(DEVICE)]),
    ("channels_of", queries.ChannelsQuery(merchant="park"), [caller(PARK, "park")], [caller(ALICE)]),
    ("tariff", queries.TariffQuery(merchant="toll", tariff="a8"), [caller(DEVICE), caller(BOB)],
     [Caller()]),
])
def test_each_query_is_read_by_its_parties_only(query: str, params: Any, readers: list[Caller],
                                                refused: list[Caller]) -> None:
    chain = world()
    opened(chain)
    sale(chain)
    spec = chain.registry.queries[("payments", query)]
    view = View(chain)
    for c in readers:
        spec.read.check(view, c, params, query)
        spec.func(view, params)
    for c in refused:
        with pytest.raises(ReadRefused):
            spec.read.check(view, c, params, query)


def test_each_event_is_read_by_its_parties() -> None:
    chain = world()
    cid = opened(chain)
    events = ok(chain, PARK, ClaimChannel(channel=cid, voucher=v(cid, 10))).events
    view = View(chain)
    policy = chain.registry.event_reads["payments.channel_closed"]
    for c in (caller(DEVICE), caller(ALICE), caller(PARK, "park"), caller(admin("reg"), "reg")):
        policy.check(view, c, events[0], "event")
    for c in (caller(BOB), caller(TOLL, "toll")):
        with pytest.raises(ReadRefused):
            policy.check(view, c, events[0], "event")
    paid = ok(chain, DEVICE, pay(10)).events[0]
    policy = chain.registry.event_reads["payments.vehicle_paid"]
    for c in (caller(DEVICE), caller(ALICE), caller(TOLL, "toll")):
        policy.check(view, c, paid, "event")
    with pytest.raises(ReadRefused):
        policy.check(view, caller(PARK, "park"), paid, "event")
