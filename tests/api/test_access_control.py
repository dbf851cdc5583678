"""Who reads what over HTTP: every route and module query × every kind of caller -> 200, 401 or 403.

One node, one consortium (every role of the vehicles module), one vehicle whose holder is a
private key and which has a device key, a lien, a consent grant to the insurer for its history,
a second vehicle nobody consented to, a part minted and shipped, a recall, a revoked member key.
Each row says what a caller gets; a refusal is checked by its code, never by status alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from blokauto.client import Client, signed_http
from blokauto.core.block import Genesis
from blokauto.core.crypto import KeyPair
from blokauto.http_signatures import sign_request
from blokauto.modules.consent.messages import GrantConsent, RevokeConsent
from blokauto.modules.energy import messages as energy
from blokauto.modules.energy.state import Terms
from blokauto.modules.governance.messages import AddMember, RevokeMember
from blokauto.modules.parts import messages as parts
from blokauto.modules.payments import messages as pay
from blokauto.modules.privacy.messages import CommitPersonalData
from blokauto.modules.recalls import state as recall_state
from blokauto.modules.recalls.messages import OpenCampaign
from blokauto.modules.vehicles.messages import AssignWmi, RecordLien, TransferTitle

from conftest import K, Served, write_chain
from helpers.vehicles import WMI, admin, register_msg, vehicles_genesis, vin_for

VIN = vin_for(WMI["oem"], 1)  # held by OWNER; device DEVICE; lien by bank; consent to ins (history)
VIN2 = vin_for(WMI["oem"], 2)  # held by the manufacturer; nobody consented
OWNER, DEVICE, OUTSIDER = K("acl-owner"), K("acl-device"), K("acl-outsider")
REVOKED = K("acl-revoked-member")
SUBJECT = "subj-" + "a" * 26  # a person the insurer holds data about (its vault); the ledger holds a commitment
#: Energy: zone Z1 of the grid operator "grid"; meter M1 of "meterco" trades for OWNER, who bids for the interval at
#: EN_START (midnight UTC two days ahead: aligned, its gate open while the tests run). Nothing settled yet.
EN_START = (int(time.time() * 1000) // 86_400_000 + 2) * 86_400_000
METER_KEY = K("acl-meter")

CALLERS: dict[str, KeyPair | None] = {
    "none": None, "outsider": OUTSIDER, "revoked": REVOKED, "node": K("reg-node"), "regulator": admin("reg"),
    "maker": admin("oem"), "other_maker": admin("oem2"), "dealer": admin("dealer"), "insurer": admin("ins"),
    "lender": admin("bank"), "workshop": admin("shop"), "holder": OWNER, "device": DEVICE, "fleet": admin("fleet"),
    "supplier": admin("sup"), "issuer": admin("pay"), "grid_operator": admin("grid"), "meter_operator": admin("meterco"),
}


@pytest.fixture(scope="module")
def acl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("acl") / "data"
    g = vehicles_genesis(extra=[("sup", ["supplier"]), ("pay", ["issuer"]), ("tollco", ["toll"]), ("grid", ["grid"]),
                                ("meterco", ["energy"])])
    genesis = Genesis(chain=g.chain, time=int(time.time() * 1000) - 1000, organisations=g.organisations, quorum=1)
    write_chain(data, genesis)
    served = Served(data)
    try:
        with Client(served.url, key=K("reg-node"), trust=genesis) as c:
            c.send(AssignWmi(wmi=WMI["oem"], org="oem"), admin("reg")).raise_for_status()
            c.send(AssignWmi(wmi=WMI["oem2"], org="oem2"), admin("reg")).raise_for_status()
            c.send(register_msg(VIN, device_keys=[DEVICE.did]), admin("oem")).raise_for_status()
            c.send(register_msg(VIN2), admin("oem")).raise_for_status()
            c.send(TransferTitle(vin=VIN, to=OWNER.did, usage="private"), admin("oem"), OWNER).raise_for_status()
            c.send(RecordLien(vin=VIN, amount=1_000_000, currency="EUR"), admin("bank"), OWNER).raise_for_status()
            until = c.checkpoint("latest").header.time + 86_400_000
            c.send(GrantConsent(vin=VIN, org="ins", categories=["history"], purpose="quote", until=until),
                   OWNER).raise_for_status()
            c.send(AddMember(member=REVOKED.did, roles=["manufacturer"]), admin("oem"), REVOKED).raise_for_status()
            c.send(RevokeMember(member=REVOKED.did, reason="left"), admin("oem")).raise_for_status()
            c.send(parts.RegisterPartType(part_number="PN-1", name="pad", category="brakes", serialized=True),
                   admin("oem")).raise_for_status()
            c.send(parts.MintParts(part_number="PN-1", serials=["S1"], produced="2027-01-01", plant="P"),
                   admin("oem")).raise_for_status()
            c.send(parts.Ship(items=["PN-1:S1"], to="org:shop"), admin("oem")).raise_for_status()
            c.send(parts.RegisterLot(lot="L-1", material="cobalt", mass_g=1000, mine="M", country="CD"),
                   admin("sup")).raise_for_status()
            c.send(parts.RegisterPartType(part_number="PN-2", name="cell", category="battery", serialized=False),
                   admin("sup")).raise_for_status()
            c.send(parts.MintBatch(part_number="PN-2", batch="B1", quantity=10, produced="2027-01-01", plant="P",
                                   materials=[parts.MaterialUse(lot="L-1", mass_g=100)]), admin("sup")).raise_for_status()
            info = c.send(OpenCampaign(number="27V-001", component="pads", summary="s", consequence="c", remedy="r",
                                       scope=recall_state.Scope(vin_ranges=[recall_state.VinRange(first=VIN, last=VIN)])),
                          admin("oem")).raise_for_status()
            c.send(CommitPersonalData(subject=SUBJECT, field="postal_address", commitment="ab" * 32, vin=VIN),
                   admin("ins")).raise_for_status()
            c.send(pay.RegisterCurrency(currency="EUR", exponent=2), admin("pay")).raise_for_status()
            c.send(pay.AttestReserves(currency="EUR", reserves=10**9, evidence="cd" * 32), admin("pay")).raise_for_status()
            c.send(pay.Issue(currency="EUR", to=OWNER.did, amount=100_000), admin("pay")).raise_for_status()
            c.send(pay.SetLimit(vin=VIN, currency="EUR", per_payment=1_000, per_day=5_000, categories=["toll"]),
                   OWNER).raise_for_status()
            c.send(energy.OpenZone(zone="Z1", currency="EUR", terms=Terms(1_000, 1_000, 30, 8, 40, 5)),
                   admin("grid")).raise_for_status()
            c.send(energy.RegisterMeter(meter="M1", zone="Z1", kind="home", key=METER_KEY.did, owner=OWNER.did,
                                        max_power_w=10_000), admin("meterco")).raise_for_status()
            c.send(energy.PlaceOrder(meter="M1", start=EN_START, side="buy", price=20, wh=1_000),
                   OWNER).raise_for_status()
            served.campaign = next(e["campaign"] for e in info.events if e["type"] == "recalls.campaign_opened")
            served.height = info.height
            served.genesis = genesis
        yield served
    finally:
        served.stop()


def call(acl: Any, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
    key = CALLERS[who]
    with (signed_http(acl.url, key, timeout=30) if key is not None else httpx.Client(base_url=acl.url, timeout=30)) as h:
        return h.request(method, path, **kw)


def outcome(r: httpx.Response) -> str:
    """200, or the status and code of a refusal ("403 consent_required")."""
    if r.status_code < 400:
        return str(r.status_code)
    try:
        return f"{r.status_code} {r.json()['error']['code']}"
    except (ValueError, KeyError):
        return f"{r.status_code} ?"


OK, SIG, UNKNOWN, REVOKED_ = "200", "401 signature_required", "401 unknown_caller", "401 revoked_caller"
CONSENT, NODE_ONLY, NOT_YOURS = "403 consent_required", "403 node_key_required", "403 not_your_data"

VEHICLE_READERS = {"node": OK, "regulator": OK, "maker": OK, "lender": OK, "insurer": OK, "holder": OK,
                   "device": OK, "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_,
                   "other_maker": CONSENT, "dealer": CONSENT, "workshop": CONSENT, "fleet": CONSENT,
                   "supplier": CONSENT, "issuer": CONSENT, "grid_operator": CONSENT, "meter_operator": CONSENT}
PUBLIC_ROUTE = {who: OK for who in CALLERS}
KNOWN_ONLY = {**{who: OK for who in CALLERS}, "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}

DRIVING_READERS = {**VEHICLE_READERS, "insurer": CONSENT}


ANY_SIGNED = {**{who: OK for who in CALLERS}, "none": SIG, "revoked": REVOKED_}
METER_READERS = {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK,
                 "meter_operator": OK, "grid_operator": OK, "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_,
                 "device": UNKNOWN}
ORDER_READERS = {**METER_READERS, "meter_operator": "403 not_a_party"}


def nobodys(missing: str) -> dict[str, str]:
    """A record of its parties that does not exist: nobody's (regulators and nodes get 404 ``missing``)."""
    return {**{w: "403 not_a_party" for w in CALLERS}, "node": f"404 {missing}", "regulator": f"404 {missing}",
            "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}


TABLE: list[tuple[str, str, dict[str, str]]] = [
    ("/v1/status", "public", PUBLIC_ROUTE),
    ("/v1/genesis", "public", PUBLIC_ROUTE),
    ("/v1/params", "public", PUBLIC_ROUTE),
    ("/v1/messages", "public", PUBLIC_ROUTE),
    ("/v1/queries", "public", PUBLIC_ROUTE),
    ("/v1/checkpoints/latest", "public", PUBLIC_ROUTE),
    ("/v1/consensus/changes", "public", PUBLIC_ROUTE),
    ("/schema/openapi.json", "public", PUBLIC_ROUTE),
    ("/v1/blocks/latest", "headers: known keys", KNOWN_ONLY),
    ("/v1/blocks?limit=3", "the explorer's list of headers: known keys", KNOWN_ONLY),
    ("/v1/network", "this node's and its peers' status and checkpoints: known keys", KNOWN_ONLY),
    ("/v1/blocks/1?full=true", "whole blocks: nodes", {**{w: NODE_ONLY for w in CALLERS}, "node": OK, "none": SIG,
                                                       "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/snapshot/chain", "block log: nodes", {**{w: NODE_ONLY for w in CALLERS}, "node": OK, "none": SIG,
                                                "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/vehicles/vehicle?vin={VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/q/vehicles/history?vin={VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/q/parts/bom?vin={VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/q/recalls/of_vehicle?vin={VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/reports/{VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/state/veh/v/{VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/q/vehicles/history?vin={VIN2}", "nobody consented",
     {**VEHICLE_READERS, "insurer": CONSENT, "lender": CONSENT, "holder": CONSENT, "device": UNKNOWN}),
    (f"/v1/q/vehicles/vehicles_of?holder={OWNER.did}", "the holder's own list",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/consent/grants_of?vin={VIN}", "the holder's grants",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/consent/grants_to?org=ins", "an organisation's grants",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "insurer": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/governance/organisations", "the directory: known keys", KNOWN_ONLY),
    ("/v1/state/gov/org/oem", "the directory: known keys", KNOWN_ONLY),
    ("/v1/state/consent/next", "other state: regulators",
     {**{w: "403 role_required" for w in CALLERS}, "node": OK, "regulator": OK, "none": SIG, "outsider": UNKNOWN,
      "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/parts/trace?id=PN-1:S1", "a part's parties",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "workshop": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/recalls/affected?campaign={campaign}", "a campaign's opener",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/recalls/progress?campaign={campaign}", "a campaign's opener",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/recalls/remedies?campaign={campaign}", "a campaign's opener",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/recalls/preview?scope={{}}", "manufacturers",
     {**{w: "403 role_required" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "other_maker": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/recalls/open", "known keys", KNOWN_ONLY),
    ("/v1/q/recalls/campaign?id={campaign}", "known keys", KNOWN_ONLY),
    ("/v1/q/governance/consensus", "known keys", KNOWN_ONLY),
    (f"/v1/q/governance/member?did={admin('oem').did}", "known keys", KNOWN_ONLY),
    ("/v1/q/parts/batch?id=PN-2:B1", "a batch's parties",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "supplier": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/parts/lot?id=L-1", "a lot's parties",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "supplier": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/governance/organisation?id=oem", "known keys", KNOWN_ONLY),
    ("/v1/q/governance/proposals", "known keys", KNOWN_ONLY),
    ("/v1/q/governance/proposal?id=1", "known keys (none exists: 404 for those who may ask)",
     {w: ("404 not_found" if v == OK else v) for w, v in KNOWN_ONLY.items()}),
    (f"/v1/q/vehicles/wmi?wmi={WMI['oem']}", "known keys", KNOWN_ONLY),
    (f"/v1/q/parts/materials_of?vin={VIN}", "vehicle data", VEHICLE_READERS),
    # sourcing: an item's origins and route read by its parties; a product's legs, lanes and stock in
    # transit by its supplier; a battery passport by anyone (none exists here: 404 to all)
    ("/v1/q/parts/origin?id=PN-2:B1", "a batch's parties",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "supplier": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/parts/route?id=PN-1:S1", "a part's parties",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "workshop": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    *[(f"/v1/q/parts/{q}?part_number=PN-1", "the part number's supplier",
       {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK,
        "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}) for q in ("legs", "in_transit")],
    ("/v1/q/parts/lanes?supplier=sup", "the supplier asked about",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "supplier": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/parts/passport?id=PN-2:X", "anyone who signs (none issued: 404)",
     {**{who: "404 not_found" for who in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/parts/part?id=PN-1:S1", "a part's parties",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "workshop": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/privacy/commitments?subject={SUBJECT}", "organisations holding data about the person",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "insurer": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/privacy/commitment?subject={SUBJECT}&field=postal_address&commitment={'ab' * 32}",
     "whoever holds the commitment", KNOWN_ONLY),
    (f"/v1/q/payments/balance?owner={OWNER.did}&currency=EUR", "the account's owner",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/payments/supply?currency=EUR", "the currency's issuer",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK, "issuer": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/payments/currencies", "known keys", KNOWN_ONLY),
    (f"/v1/q/payments/limit?vin={VIN}&currency=EUR", "the vehicle's holder and devices",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "device": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_}),
    ("/v1/q/payments/tariffs?merchant=tollco", "prices: any signed key",
     {**{w: OK for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/payments/tariff?merchant=tollco&tariff=none", "prices: any signed key (none published: found false)",
     {**{w: OK for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/payments/price?merchant=tollco&tariff=none&quantity=1", "prices: any signed key",
     {**{w: OK for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/payments/fare?fare=1", "fares: any signed key",
     {**{w: OK for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/payments/channel?channel=1", "a channel's parties (none opened: nobody's)",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/payments/channels_of?merchant=tollco", "the merchant organisation",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/payments/escrow?escrow=1", "a sale's buyer and seller (none locked: nobody's)",
     {**{w: "403 not_a_party" for w in CALLERS}, "node": OK, "regulator": OK,
      "none": SIG, "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/vehicles/devices?vin={VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/q/vehicles/device_status?vin={VIN}&key={DEVICE.did}", "the key asked about, about itself",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "device": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_}),
    (f"/v1/q/telemetry/batches?vin={VIN}", "driving data (ins has history consent only)", DRIVING_READERS),
    (f"/v1/q/telemetry/totals?vin={VIN}", "driving data", DRIVING_READERS),
    (f"/v1/q/telemetry/seq_totals?vin={VIN}&after=0&through=1", "driving data", DRIVING_READERS),
    (f"/v1/q/telemetry/crashes?vin={VIN}", "driving data", DRIVING_READERS),
    (f"/v1/q/telemetry/batch?vin={VIN}&seq=1", "driving data (none committed: 404 for its readers)",
     {w: ("404 unknown_telemetry_batch" if v == OK else v) for w, v in DRIVING_READERS.items()}),
    (f"/v1/telemetry/{VIN}/batches/1", "driving data (none committed: 404 for its readers)",
     {w: ("404 unknown_telemetry_batch" if v == OK else v) for w, v in DRIVING_READERS.items()}),
    (f"/v1/telemetry/{VIN}/batches/1/samples", "location data (none committed: 404 for its readers)",
     {w: ("404 unknown_telemetry_batch" if v == OK else v) for w, v in DRIVING_READERS.items()}),
    (f"/v1/telemetry/{VIN}/batches/1/samples/0", "location data (none committed: 404 for its readers)",
     {w: ("404 unknown_telemetry_batch" if v == OK else v) for w, v in DRIVING_READERS.items()}),
    # software: what every vehicle checks an update against (none anchored here: 404 for signed callers)
    ("/v1/q/software/repository?maker=oem&kind=image", "anchors: any signed key (none registered: 404)",
     {**{w: "404 unknown_repository" for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/software/releases?maker=oem", "anchors: any signed key",
     {**{w: OK for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    ("/v1/q/software/release?maker=oem&version=1", "anchors: any signed key (none anchored: 404)",
     {**{w: "404 not_found" for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    (f"/v1/q/software/image?maker=oem&sha256={'ab' * 32}", "anchors: any signed key (none anchored: 404)",
     {**{w: "404 not_found" for w in CALLERS}, "none": SIG, "revoked": REVOKED_}),
    (f"/v1/q/software/inventory?vin={VIN}", "vehicle data (no ECUs fitted: 404 for its readers)",
     {w: ("404 not_found" if v == OK else v) for w, v in VEHICLE_READERS.items()}),
    (f"/v1/q/software/installs?vin={VIN}", "vehicle data", VEHICLE_READERS),
    (f"/v1/q/software/running?maker=oem&sha256={'ab' * 32}", "the maker's members",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "maker": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/insurance/products", "offers: known keys", KNOWN_ONLY),
    ("/v1/q/insurance/product?insurer=ins&product=none", "offers: known keys (none published: 404)",
     {w: ("404 unknown_product" if v == OK else v) for w, v in KNOWN_ONLY.items()}),
    ("/v1/q/insurance/policy?policy=1", "a policy's insurer and holder (none bound: nobody's)", nobodys("unknown_policy")),
    ("/v1/q/insurance/statements?policy=1", "a policy's insurer and holder", nobodys("unknown_policy")),
    ("/v1/q/insurance/statement?policy=1&period=0", "a policy's insurer and holder", nobodys("unknown_statement")),
    ("/v1/q/insurance/claim?claim=1", "a claim's insurer, holder and workshop", nobodys("unknown_claim")),
    ("/v1/q/insurance/insurer_policies?insurer=ins", "the insurer named",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "insurer": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    ("/v1/q/insurance/insurer_claims?insurer=ins", "the insurer named",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "insurer": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/insurance/holder_policies?holder={OWNER.did}", "the holder named",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/insurance/vehicle_policies?vin={VIN}", "the vehicle's holder",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/consent/allowed?vin={VIN}&org=ins&category=history", "the organisation asked about, the holder",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "insurer": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    # energy: the market (zones, terms, books) for every signed request; a meter's data for its owner, its operator
    # and its zone's grid operator; an order for its owner and the zone's operator; lists for the account's keys
    ("/v1/q/energy/zone?zone=Z1", "the market: any signed key", ANY_SIGNED),
    ("/v1/q/energy/zones", "the market: any signed key", ANY_SIGNED),
    (f"/v1/q/energy/book?zone=Z1&start={EN_START}", "the market: any signed key", ANY_SIGNED),
    ("/v1/state/en/zone/Z1", "the market: any signed key", ANY_SIGNED),
    (f"/v1/state/en/book/Z1/{EN_START:016d}", "the market: any signed key", ANY_SIGNED),
    ("/v1/q/energy/meter?meter=M1", "a meter's owner, operator and grid operator", METER_READERS),
    ("/v1/state/en/meter/M1", "a meter's owner, operator and grid operator", METER_READERS),
    ("/v1/q/energy/positions?meter=M1", "a meter's owner, operator and grid operator", METER_READERS),
    (f"/v1/q/energy/position?meter=M1&start={EN_START}", "a meter's parties (not settled: 404 for them)",
     {w: ("404 not_found" if v == OK else v) for w, v in METER_READERS.items()}),
    (f"/v1/state/en/pos/Z1/{EN_START:016d}/M1", "a meter's parties (proven absent)", METER_READERS),
    (f"/v1/q/energy/reading?meter=M1&start={EN_START}", "a meter's parties (not read: 404 for them)",
     {w: ("404 not_found" if v == OK else v) for w, v in METER_READERS.items()}),
    (f"/v1/state/en/reading/M1/{EN_START:016d}", "a meter's parties (proven absent)", METER_READERS),
    (f"/v1/q/energy/order?zone=Z1&start={EN_START}&seq=1", "an order's owner and the zone's operator",
     ORDER_READERS),
    (f"/v1/state/en/order/Z1/{EN_START:016d}/{1:016d}", "an order's owner and the zone's operator", ORDER_READERS),
    (f"/v1/q/energy/orders?owner={OWNER.did}", "the account's keys",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
    (f"/v1/q/energy/meters?owner={OWNER.did}", "the account's keys",
     {**{w: NOT_YOURS for w in CALLERS}, "node": OK, "regulator": OK, "holder": OK, "none": SIG,
      "outsider": UNKNOWN, "revoked": REVOKED_, "device": UNKNOWN}),
]


@pytest.mark.parametrize("path,rule,expected", TABLE, ids=[f"{p.split('?')[0]}:{r}" for p, r, _ in TABLE])
def test_every_route_answers_each_caller_as_its_read_rule_says(acl: Any, path: str, rule: str,
                                                               expected: dict[str, str]) -> None:
    assert set(expected) == set(CALLERS), "every caller has its row"
    path = path.format(campaign=acl.campaign)
    got = {who: outcome(call(acl, who, "GET", path)) for who in CALLERS}
    assert got == expected, f"{path} ({rule})"


def test_every_route_and_query_of_the_api_is_in_the_table(acl: Any) -> None:
    """A new route or query must say who reads it here too (the app refuses to start without a policy)."""
    spec = httpx.get(f"{acl.url}/schema/openapi.json").json()
    tabled = {p.split("?")[0] for p, _, _ in TABLE}
    covered_by_pattern = {"/v1/blocks/{height}", "/v1/checkpoints/{height}", "/v1/state/{key}", "/v1/txs/{tx_id}",
                          "/v1/reports/{vin}", "/v1/reports/{vin}/pdf", "/reports/{vin}", "/v1/txs", "/v1/txs/batch",
                          "/v1/events", "/v1/telemetry/batches", "/v1/telemetry/{vin}/samples",
                          "/v1/telemetry/{vin}/batches/{seq}", "/v1/telemetry/{vin}/batches/{seq}/samples",
                          "/v1/telemetry/{vin}/batches/{seq}/samples/{index}"}  # rows above with a VIN
    # each has its own tests below or in test_share_links / test_signed_requests / test_telemetry_intake
    untabled = [p for p in spec["paths"] if p not in covered_by_pattern and not any(
        t == p or t.startswith(p.rstrip("/") + "/") for t in tabled)]
    assert untabled == [], f"routes and queries without a row in TABLE: {untabled}"


def test_consent_revoked_at_the_newest_block_stops_the_next_read(acl: Any) -> None:
    with Client(acl.url, key=OWNER, trust=acl.genesis) as owner:
        until = owner.checkpoint("latest").header.time + 86_400_000
        info = owner.send(GrantConsent(vin=VIN, org="fleet", categories=["history"], purpose="p", until=until), OWNER)
        grant = next(e["grant"] for e in info.raise_for_status().events if e["type"] == "consent.granted")
        with Client(acl.url, key=admin("fleet"), trust=acl.genesis) as fleet:
            assert fleet.query("vehicles", "history", vin=VIN, min_height=info.height)["total"] >= 1
            revoked = owner.send(RevokeConsent(vin=VIN, grant=grant), OWNER).raise_for_status()
            with pytest.raises(Exception) as refused:
                fleet.query("vehicles", "history", vin=VIN, min_height=revoked.height)
            assert getattr(refused.value, "code", "") == "consent_required"


def test_consent_for_another_category_does_not_open_the_history(acl: Any) -> None:
    with Client(acl.url, key=OWNER, trust=acl.genesis) as owner:
        until = owner.checkpoint("latest").header.time + 86_400_000
        info = owner.send(GrantConsent(vin=VIN, org="dealer", categories=["location"], purpose="p", until=until),
                          OWNER).raise_for_status()
    r = call(acl, "dealer", "GET", f"/v1/q/vehicles/history?vin={VIN}&min_height={info.height}")
    assert outcome(r) == CONSENT
    assert "history" in r.json()["error"]["message"]


def test_receipts_are_read_by_their_signers_and_their_organisations(acl: Any) -> None:
    with Client(acl.url, key=OWNER, trust=acl.genesis) as owner:
        until = owner.checkpoint("latest").header.time + 3_600_000
        info = owner.send(GrantConsent(vin=VIN, org="shop", categories=["odometer"], purpose="p", until=until), OWNER)
    path = f"/v1/txs/{info.id}"
    assert outcome(call(acl, "holder", "GET", path)) == OK
    assert outcome(call(acl, "node", "GET", path)) == OK
    assert outcome(call(acl, "regulator", "GET", path)) == OK
    assert outcome(call(acl, "maker", "GET", path)) == NOT_YOURS
    assert outcome(call(acl, "outsider", "GET", path)) == UNKNOWN
    assert outcome(call(acl, "none", "GET", path)) == SIG


def test_a_new_key_submits_a_transaction_it_signs_but_not_one_it_does_not(acl: Any) -> None:
    """A buyer's fresh key is unknown to the ledger: it may submit its own co-signed transaction,
    not someone else's."""
    from conftest import build_tx

    newcomer = KeyPair.generate()
    raw = build_tx(admin("oem"), AddMember(member=newcomer.did, roles=["manufacturer"]), newcomer,
                   chain=acl.genesis.chain, expires=int(time.time() * 1000) + 600_000)
    with signed_http(acl.url, OUTSIDER) as h:
        r = h.post("/v1/txs", content=raw, headers={"content-type": "application/json"})
    assert outcome(r) == UNKNOWN
    with signed_http(acl.url, newcomer) as h:
        r = h.post("/v1/txs?wait=10", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_the_event_stream_carries_only_what_the_caller_may_read(acl: Any) -> None:
    """The insurer (consented for VIN's history) sees VIN's events and the directory's, never
    VIN2's; the node sees both; the stream ids still advance past what is withheld."""
    def types(who: str) -> list[dict[str, Any]]:
        out = []
        with signed_http(acl.url, CALLERS[who], timeout=httpx.Timeout(3.0, connect=5)) as h:
            try:
                with h.stream("GET", "/v1/events?from_height=0") as r:
                    assert r.status_code == 200
                    for line in r.iter_lines():
                        if line.startswith("data:"):
                            out.append(json.loads(line[5:]))
            except httpx.ReadTimeout:
                pass
        return out

    node = types("node")
    insurer = types("insurer")
    assert any(e.get("vin") == VIN2 for e in node)
    assert not any(e.get("vin") == VIN2 for e in insurer), "VIN2's events leaked to an insurer without consent"
    assert any(e.get("vin") == VIN for e in insurer)
    assert any(e["type"].startswith("governance.") for e in insurer)
    assert not any(e["type"].startswith("parts.") for e in insurer)


def test_a_request_signed_for_another_path_or_body_is_refused(acl: Any) -> None:
    headers: dict[str, str] = {}
    sign_request(K("reg-node"), "GET", f"{acl.url}/v1/q/recalls/open", headers)
    r = httpx.get(f"{acl.url}/v1/q/vehicles/vehicle?vin={VIN}", headers=headers)
    assert outcome(r) == "401 request_signature_invalid"
    headers = {"content-type": "application/json"}
    sign_request(K("reg-node"), "POST", f"{acl.url}/v1/txs", headers, b"[]")
    r = httpx.post(f"{acl.url}/v1/txs", content=b"{}", headers=headers)
    assert outcome(r) == "401 digest_mismatch"


def test_an_old_or_future_signature_and_a_replay_are_refused(acl: Any) -> None:
    now = int(time.time())
    for created in (now - 3600, now + 3600):
        headers: dict[str, str] = {}
        sign_request(K("reg-node"), "GET", f"{acl.url}/v1/q/recalls/open", headers, created=created)
        assert outcome(httpx.get(f"{acl.url}/v1/q/recalls/open", headers=headers)) == "401 request_expired"
    headers = {}
    sign_request(K("reg-node"), "GET", f"{acl.url}/v1/q/recalls/open", headers)
    assert outcome(httpx.get(f"{acl.url}/v1/q/recalls/open", headers=headers)) == OK
    assert outcome(httpx.get(f"{acl.url}/v1/q/recalls/open", headers=headers)) == "401 replayed_request"


@pytest.mark.parametrize("mangle", ["drop_signature", "bad_base64", "other_key", "no_nonce", "no_tag", "garbage_input"])
def test_malformed_signatures_are_refused_with_401_and_a_code(acl: Any, mangle: str) -> None:
    headers = httpx.Headers()
    url = f"{acl.url}/v1/q/recalls/open"
    sign_request(K("reg-node"), "GET", url, headers)
    if mangle == "drop_signature":
        del headers["signature"]
    elif mangle == "bad_base64":
        headers["signature"] = "blokauto=:!!!:"
    elif mangle == "other_key":
        headers["signature-input"] = headers["signature-input"].replace(K("reg-node").did, admin("oem").did)
    elif mangle == "no_nonce":
        headers["signature-input"] = ";".join(p for p in headers["signature-input"].split(";")
                                              if not p.startswith("nonce="))
    elif mangle == "no_tag":
        headers["signature-input"] = headers["signature-input"].replace(';tag="blokauto/1"', "")
    else:
        headers["signature-input"] = "blokauto=(" + "x" * 5000
    r = httpx.get(url, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] in {"request_signature_invalid", "signature_required"}


def test_unsigned_requests_to_every_private_route_are_refused_before_any_work(acl: Any) -> None:
    for method, path in [("POST", "/v1/txs"), ("POST", "/v1/txs/batch"), ("GET", "/v1/events"),
                         ("GET", f"/v1/txs/{'0' * 64}"), ("GET", f"/v1/reports/{VIN}/pdf"), ("GET", f"/reports/{VIN}")]:
        r = httpx.request(method, f"{acl.url}{path}", content=b"[]" if method == "POST" else None,
                          headers={"content-type": "application/json"})
        assert r.status_code == 401, (path, r.text[:200])


def test_an_event_type_nobody_declared_readers_for_goes_to_nodes_and_regulators_only(acl: Any) -> None:
    from blokauto.core.access import Caller as C

    ev = [{"type": "nobody.declared", "vin": VIN}]
    reader = acl.node.reader
    assert reader.visible(C(OWNER.did), ev) == [False]
    assert reader.visible(C(admin("oem").did, "oem", frozenset({"manufacturer"})), ev) == [False]
    assert reader.visible(C(admin("reg").did, "reg", frozenset({"regulator"})), ev) == [True]
    assert reader.visible(C(K("reg-node").did, "reg", node=True), ev) == [True]


def test_a_share_link_opens_without_a_key_until_its_signer_sells_the_vehicle(acl: Any) -> None:
    vin, seller, buyer = vin_for(WMI["oem"], 40), K("acl-share-seller"), K("acl-share-buyer")
    with Client(acl.url, key=K("reg-node"), trust=acl.genesis) as c:
        c.send(register_msg(vin), admin("oem")).raise_for_status()
        c.send(TransferTitle(vin=vin, to=seller.did, usage="private"), admin("oem"), seller).raise_for_status()
        link = c.share_report(vin, seller, ttl_ms=600_000)
        stranger_link = c.share_report(vin, K("acl-not-the-holder"), ttl_ms=600_000)
    token = link.split("share=", 1)[1]
    for path in (f"/v1/reports/{vin}?share={token}", f"/v1/reports/{vin}/pdf?share={token}", f"/reports/{vin}?share={token}"):
        assert outcome(call(acl, "none", "GET", path)) == OK, path
    assert outcome(call(acl, "none", "GET", f"/v1/reports/{VIN}?share={token}")) == "401 share_token_invalid"
    other = stranger_link.split("share=", 1)[1]
    assert outcome(call(acl, "none", "GET", f"/v1/reports/{vin}?share={other}")) == "401 share_token_invalid"
    with Client(acl.url, key=K("reg-node"), trust=acl.genesis) as c:
        sold = c.send(TransferTitle(vin=vin, to=buyer.did), seller, buyer).raise_for_status()
    r = call(acl, "none", "GET", f"/v1/reports/{vin}?share={token}&min_height={sold.height}")
    assert outcome(r) == "401 share_token_invalid" and "does not hold" in r.json()["error"]["message"]


def test_the_sdk_sends_as_the_sender_whatever_key_the_client_reads_with(acl: Any) -> None:
    """A client reading as the insurer sends the holder's transaction: the submission and its
    receipt are signed by the sender, who may always read its own transaction."""
    with Client(acl.url, key=admin("ins"), trust=acl.genesis) as insurer:
        until = insurer.checkpoint("latest").header.time + 3_600_000
        info = insurer.send(GrantConsent(vin=VIN, org="oem2", categories=["odometer"], purpose="p", until=until), OWNER)
    assert info.ok and info.tx["body"]["sender"] == OWNER.did


def test_a_request_signed_for_another_node_is_refused_here(acl: Any) -> None:
    """Found by the fourth attack: a request signed for node B, replayed to node A, was answered
    (and a replayed event stream kept delivering). A node answers only requests signed for itself."""
    port = acl.url.rsplit(":", 1)[1]
    for authority in (f"127.0.0.1:{int(port) + 1}", "evil.example", f"node-b.example:{port}"):
        headers = httpx.Headers({"host": authority})
        sign_request(K("reg-node"), "GET", f"http://{authority}/v1/q/recalls/open", headers)
        r = httpx.get(f"{acl.url}/v1/q/recalls/open", headers=headers)
        assert outcome(r) == "401 wrong_authority", (authority, r.text[:200])
        assert authority in r.json()["error"]["message"]
    for authority in (f"localhost:{port}", f"127.0.0.1:{port}"):  # the node's own names (it listens on loopback)
        headers = httpx.Headers({"host": authority})
        sign_request(K("reg-node"), "GET", f"http://{authority}/v1/q/recalls/open", headers)
        assert outcome(httpx.get(f"{acl.url}/v1/q/recalls/open", headers=headers)) == OK, authority


def test_a_get_with_a_body_is_refused_because_its_signature_would_not_cover_it(acl: Any) -> None:
    with signed_http(acl.url, K("reg-node")) as h:
        r = h.request("GET", "/v1/q/recalls/open", content=b"anything")
    assert outcome(r) == "400 bad_request" and "carries no body" in r.text


def test_a_device_key_follows_its_vehicles_events_and_no_others(acl: Any) -> None:
    """Its vehicle's events, and those every signed key reads (an energy zone's market events)."""
    from blokauto.core.access import SIGNED

    public = {t for t, policy in acl.node.registry.event_reads.items() if policy is SIGNED}
    out = []
    with signed_http(acl.url, DEVICE, timeout=httpx.Timeout(3.0, connect=5)) as h:
        try:
            with h.stream("GET", "/v1/events?from_height=0") as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        out.append(json.loads(line[5:]))
        except httpx.ReadTimeout:
            pass
    assert any(e.get("vin") == VIN for e in out)
    assert all(e.get("vin") == VIN or e["type"] in public for e in out), \
        {e["type"] for e in out if e.get("vin") != VIN and e["type"] not in public}


def test_a_consent_closes_at_its_until_even_if_no_block_comes_after(acl: Any) -> None:
    with Client(acl.url, key=OWNER, trust=acl.genesis) as owner:
        until = int(time.time() * 1000) + 3_000
        info = owner.send(GrantConsent(vin=VIN, org="oem2", categories=["history"], purpose="p", until=until), OWNER)
        info.raise_for_status()
    assert outcome(call(acl, "other_maker", "GET", f"/v1/q/vehicles/history?vin={VIN}&min_height={info.height}")) == OK
    time.sleep(max(0.0, (until - time.time() * 1000) / 1000) + 0.2)  # the chain stays idle meanwhile
    assert outcome(call(acl, "other_maker", "GET", f"/v1/q/vehicles/history?vin={VIN}")) == CONSENT


def test_a_new_holder_does_not_read_the_former_holders_consents(acl: Any) -> None:
    """Found by the fourth attack: after a sale, the buyer read every grant the seller had made
    (organisations, purposes, categories) in grants_of and on the event stream."""
    vin, seller, buyer = vin_for(WMI["oem"], 41), K("acl-grant-seller"), K("acl-grant-buyer")
    with Client(acl.url, key=K("reg-node"), trust=acl.genesis) as c:
        c.send(register_msg(vin), admin("oem")).raise_for_status()
        c.send(TransferTitle(vin=vin, to=seller.did, usage="private"), admin("oem"), seller).raise_for_status()
        until = c.checkpoint("latest").header.time + 86_400_000
        c.send(GrantConsent(vin=vin, org="ins", categories=["location"], purpose="seller's secret", until=until),
               seller).raise_for_status()
        sold = c.send(TransferTitle(vin=vin, to=buyer.did), seller, buyer).raise_for_status()
    path = f"/v1/q/consent/grants_of?vin={vin}&min_height={sold.height}"
    with signed_http(acl.url, buyer) as h:
        mine = h.get(path).json()["result"]
        assert mine["total"] == 0 and mine["grants"] == []
        assert outcome(h.get(path + "&holdings=all")) == "403 role_required"
        events = []
        with h.stream("GET", f"/v1/events?from_height={sold.height - 3}", timeout=httpx.Timeout(3.0, connect=5)) as r:
            try:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
            except httpx.ReadTimeout:
                pass
    assert not [e for e in events if e["type"].startswith("consent.")], events
    assert any(e["type"] == "vehicles.title_transferred" and e["vin"] == vin for e in events)
    with signed_http(acl.url, admin("reg")) as h:
        assert h.get(path + "&holdings=all").json()["result"]["total"] == 1


def _stream(acl: Any, key: KeyPair, from_height: int) -> list[dict[str, Any]]:
    out = []
    with signed_http(acl.url, key, timeout=httpx.Timeout(3.0, connect=5)) as h:
        try:
            with h.stream("GET", f"/v1/events?from_height={from_height}") as r:
                assert r.status_code == 200, r.read()
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        out.append(json.loads(line[5:]))
        except httpx.ReadTimeout:
            pass
    return out


def test_one_readable_payment_does_not_open_the_stream_to_every_later_one(acl: Any) -> None:
    """Found by the payments attack: the stream remembered its answer per event type and a few
    fields, so once a reader could read one transfer, it received every later transfer (amounts,
    memos, parties), and one who could not read the first missed its own later ones."""
    with Client(acl.url, key=OWNER, trust=acl.genesis) as owner:
        first = owner.send(pay.Transfer(currency="EUR", to="org:ins", amount=1), OWNER).raise_for_status()
        owner.send(pay.Transfer(currency="EUR", to="org:dealer", amount=777, memo="secret for the dealer"),
                   OWNER).raise_for_status()
        last = owner.send(pay.Transfer(currency="EUR", to="org:ins", amount=2), OWNER).raise_for_status()
    for who, sees, never in (("insurer", {1, 2}, {777}), ("dealer", {777}, {1, 2})):
        events = [e for e in _stream(acl, CALLERS[who], first.height)
                  if e["type"] == "payments.transferred" and e.get("height", last.height) <= last.height]
        amounts = {e["amount"] for e in events}
        assert sees <= amounts and not (never & amounts), (who, events)
