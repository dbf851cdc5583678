"""``blokauto demo``: a one-node chain in a local folder and a story told through real signed
transactions, submitted over the node's HTTP API with the Python SDK."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from ..api.server import ApiServer
from ..client import Client, TxInfo
from ..core.crypto import KeyPair
from ..core.errors import BlokautoError
from ..keystore import KeyStore
from ..modules.governance import messages as gov
from ..modules.governance import state as gov_state
from ..modules.vehicles import messages as veh
from ..node.audit import audit
from ..node.init import OrgSpec, init_chain
from ..node.node import Node

MARKER = ".blokauto-demo"

FOUNDERS = [
    OrgSpec("kba", ("regulator", "police", "inspector"), "Kraftfahrt-Bundesamt (vehicle registry)"),
    OrgSpec("bavaria-motors", ("manufacturer",), "Bavaria Motors AG"),
    OrgSpec("allied-insurance", ("insurer",), "Allied Insurance SE"),
    OrgSpec("meister-werkstatt", ("workshop",), "Meister Werkstatt GmbH"),
]
DEMO_VIN = "WZZ3E5C22NM400117"


class Story:
    """Prints each step of the demo with what the ledger answered."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.step = 0

    def say(self, text: str) -> None:
        self.console.print(text)

    def committed(self, what: str, info: TxInfo) -> TxInfo:
        self.step += 1
        if info.ok:
            events = ", ".join(e["type"].split(".", 1)[1] for e in info.events)
            self.console.print(f"[green]✓[/] {self.step:>2}. {what}  [dim](block {info.height}, tx {info.id[:12]}…: {events})[/]")
        else:
            err = info.error
            assert err is not None
            self.console.print(f"[yellow]✗[/] {self.step:>2}. {what}  → recorded as failed "
                               f"{escape(f'[{err.code}]')} {escape(err.message)}")
        return info

    def refused(self, what: str, action: Callable[[], Any]) -> None:
        self.step += 1
        try:
            action()
        except BlokautoError as err:
            self.console.print(f"[yellow]✗[/] {self.step:>2}. {what}  → refused, HTTP {err.http_status} "
                               f"{escape(f'[{err.code}]')} {escape(err.message)}")
            return
        raise AssertionError(f"the ledger accepted: {what}")


def prepare_folder(data: Path) -> None:
    if data.exists() and any(data.iterdir()):
        if not (data / MARKER).exists():
            raise FileExistsError(f"{data} holds other data; the demo only replaces its own. Use --data NEWDIR.")
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    (data / MARKER).write_text("created by `blokauto demo`; the next demo run replaces this folder\n")


def run_demo(data: Path, *, serve: bool, port: int, console: Console) -> None:
    prepare_folder(data)
    genesis = init_chain(data, chain="blokauto-demo", orgs=FOUNDERS, quorum=1, node_orgs=1)
    keys = KeyStore(data / "keys")
    console.print(f"[bold]blokauto demo[/] — chain {genesis.chain!r} in {data}/")
    console.print(f"  founding organisations: {', '.join(o.name for o in genesis.organisations)}")
    console.print(f"  trust anchor: {data / 'genesis.json'} (hash {genesis.hash().hex()[:16]}…)")
    node = Node(data)
    node.start()
    server = ApiServer(node, "127.0.0.1", port)
    url = server.start()
    console.print(f"  node {node.node_did[:24]}… serving {url} (OpenAPI at {url}/schema)\n")
    try:
        with Client(url, trust=genesis) as bc:
            tell_story(bc, keys, Story(console))
        st = node.status()
        node.engine.state.flush()
        report = audit(data)
        console.print(f"\nchain height {st['height']}, {st['committed_txs']} transactions, state root {st['state_root'][:16]}…")
        console.print(f"audit: {'[green]OK[/]' if report.ok else '[red]FAILED[/]'} — re-executed {report.blocks} blocks, "
                      f"checked {report.signatures} signatures and {report.state_entries} state entries")
        for f in report.findings:
            console.print(f"  [red]✗[/] {f}")
        if serve:
            console.print(f"\nserving on {url} — try:\n  curl {url}/v1/status\n"
                          f"  blokauto --help   |  blokauto status --node {url}\n"
                          f"  blokauto query governance organisations --node {url}\n"
                          f"Ctrl-C stops the node.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        node.stop()
    console.print(f"node stopped; data kept in {data}/ (`blokauto node start --data {data}` resumes it)")


def tell_story(bc: Client, keys: KeyStore, story: Story) -> None:
    kba, bmw, allied = keys.load("kba-admin"), keys.load("bavaria-motors-admin"), keys.load("allied-insurance-admin")
    line = keys.create("bavaria-line-7", org="bavaria-motors")
    claims = keys.create("allied-claims", org="allied-insurance")

    story.say("[bold]Member keys[/]")
    first = bc.sign(bc.build(gov.AddMember(member=line.did, roles=["manufacturer"]), bmw), bmw, line)
    story.committed("Bavaria Motors registers its production-line key (the new key co-signs)",
                    bc.receipt(bc.submit(first)))
    story.committed("Allied Insurance registers its claims-desk key",
                    bc.send(gov.AddMember(member=claims.did, roles=["insurer"]), allied, claims))
    stranger = KeyPair.generate()
    story.refused("the production-line key tries to add a member (it is not an admin)",
                  lambda: bc.send(gov.AddMember(member=stranger.did, roles=["manufacturer"]), line, stranger))
    story.refused("someone replays the signed registration", lambda: bc.submit(first))
    story.committed("Allied tries to give its new key a role Allied does not hold",
                    bc.send(gov.SetMemberRoles(member=claims.did, roles=["manufacturer"]), allied))

    story.say("\n[bold]Consortium votes[/] (threshold: two thirds of organisations)")
    dealer_admin = keys.create("city-motors-admin", org="city-motors")
    info = story.committed(
        "Bavaria Motors proposes admitting City Motors GmbH as a dealer",
        bc.send(gov.Propose(action=gov_state.AdmitOrganisation(id="city-motors", name="City Motors GmbH",
                                                               roles=["dealer"], admins=[dealer_admin.did]),
                            note="authorised dealer, Munich"), bmw))
    proposal = next(e["proposal"] for e in info.events if e["type"] == "governance.proposal_opened")
    story.committed("the registry (KBA) votes yes: 2 of 4 organisations, not yet two thirds",
                    bc.send(gov.Vote(proposal=proposal, approve=True), kba))
    story.committed("Meister Werkstatt votes yes: 3 of 4, the proposal passes and City Motors joins",
                    bc.send(gov.Vote(proposal=proposal, approve=True), keys.load("meister-werkstatt-admin")))
    info = story.committed("Allied proposes a 30-minute limit on transaction validity",
                           bc.send(gov.Propose(action=gov_state.SetParameter(name="max_tx_ttl_ms", value=1_800_000)), allied))
    proposal = next(e["proposal"] for e in info.events if e["type"] == "governance.proposal_opened")
    story.committed("Bavaria Motors agrees (2 of 4)", bc.send(gov.Vote(proposal=proposal, approve=True), bmw))
    story.committed("KBA agrees (3 of 4); the parameter changes from the next block",
                    bc.send(gov.Vote(proposal=proposal, approve=True), kba))

    story.say("\n[bold]Key lifecycle[/]")
    line2 = keys.create("bavaria-line-7b", org="bavaria-motors")
    story.committed("the production line rotates to a new key (old key retired, new key co-signs)",
                    bc.send(gov.RotateKey(new_key=line2.did), line, line2))
    story.refused("the retired key tries to sign again",
                  lambda: bc.send(gov.RevokeMember(member=line.did), line))
    story.committed("Allied revokes the claims-desk key (a laptop was stolen)",
                    bc.send(gov.RevokeMember(member=claims.did, reason="device stolen"), allied))
    story.refused("the stolen key tries to act", lambda: bc.send(gov.RevokeMember(member=claims.did), claims))

    story.say("\n[bold]Verifiable reads[/]")
    dealer = bc.state(f"gov/org/city-motors", min_height=bc.status()["height"])
    story.say(f"[green]✓[/] City Motors' record, proven against the checkpoint at height {dealer.height} "
              f"({len(dealer.checkpoint.attestations)} node attestation): roles {dealer.value['roles']}")
    revoked = bc.state(f"gov/member/{claims.did}")
    story.say(f"[green]✓[/] the claims-desk key is proven {revoked.value['status']} since height {revoked.value['since']}")
    absent = bc.state(f"gov/member/{stranger.did}")
    story.say(f"[green]✓[/] the stranger's key is proven absent from the registry: {absent.value is None}")
    vehicle_story(bc, keys, story)


def vehicle_story(bc: Client, keys: KeyStore, story: Story) -> None:
    """A car built, sold, serviced, crashed, repaired and sold again with a clocked odometer."""
    kba, bmw = keys.load("kba-admin"), keys.load("bavaria-motors-admin")
    allied, shop = keys.load("allied-insurance-admin"), keys.load("meister-werkstatt-admin")
    dealer = keys.load("city-motors-admin")
    car = keys.create("car-telematics-unit", kind="device")
    anna, ben = keys.create("anna", kind="owner"), keys.create("ben", kind="owner")
    vin = DEMO_VIN

    story.say(f"\n[bold]A car's life[/] (VIN {vin})")
    story.committed("KBA assigns manufacturer code WZZ to Bavaria Motors",
                    bc.send(veh.AssignWmi(wmi="WZZ", org="bavaria-motors"), kba))
    story.refused("a VIN with a wrong check digit under a North American code",
                  lambda: bc.send(veh.RegisterVehicle(vin="1M8GDM9AXKP042789", make="Bavaria", model="E5",
                                                      model_year=2022, body="sedan", powertrain="bev", plant="Dingolfing",
                                                      build_date="2022-06-14", country="DE"), bmw).raise_for_status())
    story.committed("Bavaria Motors records the birth: an E5 electric sedan, 83 kWh, with its telematics key",
                    bc.send(veh.RegisterVehicle(vin=vin, make="Bavaria", model="E5", model_year=2022, body="sedan",
                                                powertrain="bev", plant="Dingolfing", build_date="2022-06-14",
                                                country="DE", battery_wh=83_000, device_keys=[car.did]), bmw))
    story.committed("sold to City Motors (both sign)",
                    bc.send(veh.TransferTitle(vin=vin, to="org:city-motors"), bmw, dealer))
    story.committed("City Motors sells it to Anna, a private buyer (both sign)",
                    bc.send(veh.TransferTitle(vin=vin, to=anna.did, usage="private"), dealer, anna))
    story.committed("the car's own telematics unit signs an odometer reading: 15,200 km",
                    bc.send(veh.RecordOdometer(vin=vin, value=15_200), car))
    story.committed("Meister Werkstatt services it at 30,050 km",
                    bc.send(veh.RecordService(vin=vin, odometer=30_050, items=["brake fluid", "cabin filter"],
                                              parts=[veh.PartRef(part_number="BP-4411", serial="BP4411-00981")]), shop))
    crash = story.committed("Allied Insurance records a front collision (moderate, airbags deployed)",
                            bc.send(veh.RecordAccident(vin=vin, date="2024-02-11", severity="moderate",
                                                       impact_areas=["front", "front_left"], airbags_deployed=True,
                                                       reference="CLAIM-2024-7781"), allied))
    seq = next(e["seq"] for e in crash.events if e["type"] == "vehicles.history_appended")
    story.committed("Meister Werkstatt repairs the damage",
                    bc.send(veh.RecordRepair(vin=vin, odometer=31_400, accident=seq,
                                             items=["bumper", "left headlamp", "airbag module"]), shop))
    story.committed("before reselling, City Motors reports 18,000 km: below the 31,400 km on record",
                    bc.send(veh.RecordOdometer(vin=vin, value=18_000), dealer))
    story.committed("Anna sells to Ben through City Motors (the dealer sends; Anna and Ben sign)",
                    bc.send(veh.TransferTitle(vin=vin, to=ben.did), dealer, anna, ben))
    story.refused("a stranger tries to sell Ben's car", lambda: bc.send(veh.TransferTitle(vin=vin, to=anna.did), anna))

    v = bc.query("vehicles", "vehicle", vin=vin)
    hist = bc.query("vehicles", "history", vin=vin)
    story.say(f"\n[bold]History of {vin}[/] — {v['birth']['make']} {v['birth']['model']} {v['birth']['model_year']}, "
              f"{v['owners']} owner(s), {v['accidents']} accident(s), odometer [bold]{v['odometer']['status']}[/] "
              f"(highest {v['odometer']['max_km']:,} km, {v['odometer']['rollbacks']} suspected rollback)")
    orgs = {"": "(device or owner key)"}
    for e in hist["entries"]:
        d = e["data"]
        detail = {"birth": lambda: f"{d['make']} {d['model']}, built {d['build_date']} in {d['plant']}",
                  "title_transfer": lambda: f"{_who(d['from'])} → {_who(d['to'])}",
                  "odometer": lambda: f"{d['value']:,} {d['unit']}" + (f"  ⚠ {d['flag']}" if d.get("flag") else ""),
                  "service": lambda: f"{d['odometer']:,} km: {', '.join(d['items'])}",
                  "accident": lambda: f"{d['severity']}, {'/'.join(d['impact_areas'])}, airbags {d['airbags_deployed']}",
                  "repair": lambda: f"{d['odometer']:,} km: {', '.join(d['items'])}"}.get(e["type"], lambda: "")()
        story.say(f"  {e['seq']:>2}. block {e['height']:>3}  {e['type']:<15} by {e['org'] or orgs['']:<22} {escape(detail)}")
    story.say(f"  history head {hist['head'][:16]}… over {hist['total']} entries (proven in the vehicle record)")


def _who(holder: str) -> str:
    return holder if holder.startswith("org:") else holder[:20] + "…"
