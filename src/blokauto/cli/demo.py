"""``blokauto demo``: a one-node chain in a local folder and a story told through real signed
transactions, submitted over the node's HTTP API with the Python SDK."""

from __future__ import annotations

import hashlib
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from ..api.server import ApiServer
from ..client import Client, TxInfo
from ..client._client import now_ms
from ..client.sourcing import Sourcing
from ..core.encoding import canonical
from ..core.crypto import KeyPair
from ..core.errors import BlokautoError
from ..keystore import KeyStore
from ..modules.consent import messages as consent
from ..modules.governance import messages as gov
from ..modules.governance import state as gov_state
from ..modules.parts import messages as parts
from ..modules.recalls import messages as recalls
from ..modules.recalls import state as recall_state
from ..modules.vehicles import messages as veh
from ..node.audit import audit
from .demo_energy import interval_settles, market_opens
from ..node.folder_lock import refuse_if_in_use
from ..node.init import init_chain
from ..node.network import NETWORK_ORGS
from ..node.node import Node
from ..verify import TrustAnchor
from ..verify.passport import verify_passport_credential

MARKER = ".blokauto-demo"

FOUNDERS = NETWORK_ORGS  # the story's founding organisations; a network demo runs nodes for the first few
DEMO_VIN = "WZZ3E5C22NM400117"
CARLA_VIN = "WZZ3E5C22NM400125"  # the recall's second car; payments_story sells it to Dan


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


MARKER_TEXT = "created by `blokauto demo`; the next demo run replaces this folder\n"

#: What a demo writes at the top of its folder: a one-node chain's files, or a local network's
#: (servers' and organisations' folders). A folder holding anything else is not replaced.
PASSPORT_FILE = "passport-VP83-0001.json"  # the pack's passport credential the story exports
DEMO_NAMES = frozenset({
    MARKER, PASSPORT_FILE, "genesis.json", "keys", "chain.db", "chain.db-wal", "chain.db-shm", "chain.db-journal", "state.db",
    "state.db-wal", "state.db-shm", "state.db-journal", "head.json", "intake.journal", "integrity.json", "node.lock",
    "node.log", "consortium", "orgs", "nats", "tls", "operator.nk", "network.json", "vault",
    "samples.db", "samples.db-wal", "samples.db-shm", "samples.db-journal",  # the node's sample store (telemetry)
    "software",  # the maker's Uptane repositories and the cars' primary-ECU storage (software_story)
})
DEMO_PREFIXES = ("intake.journal.torn-", "damaged-")  # a journal's torn tail, damage set aside by a node


def prepare_folder(data: Path, console: Console | None = None) -> None:
    """Make ``data`` an empty folder for a demo. A folder that is not empty is replaced only if it
    is an earlier demo's: its marker is the one a demo writes and it holds nothing a demo does not
    write (else FileExistsError, naming what is there: nobody's files are deleted)."""
    if data.exists() and not data.is_dir():
        raise FileExistsError(f"{data} is a file; the demo needs a folder. Use --data NEWDIR.")
    if data.exists() and any(data.iterdir()):
        try:
            genuine = (data / MARKER).is_file() and (data / MARKER).read_text(encoding="utf-8") == MARKER_TEXT
        except (OSError, UnicodeDecodeError):
            genuine = False
        foreign = sorted(p.name for p in data.iterdir()
                         if p.name not in DEMO_NAMES and not p.name.startswith(DEMO_PREFIXES))
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        if not genuine:
            why = (f"its {MARKER} is not the one a demo writes" if (data / MARKER).exists()
                   else f"it has no {MARKER} marker")
            raise FileExistsError(f"{data} holds other data ({why}" + (f"; it holds {shown}" if foreign else "")
                                  + "); the demo only replaces its own. Use --data NEWDIR.")
        if foreign:
            raise FileExistsError(f"{data} is an earlier demo's folder but also holds {shown}, which a demo does "
                                  f"not write: it is not replaced. Move those away, or use --data NEWDIR.")
        refuse_if_in_use(data, "replace it (a demo is still serving it)")
        if (data / "orgs").is_dir():
            for node_dir in (data / "orgs").iterdir():
                refuse_if_in_use(node_dir, "replace it (a node of the demo network still runs on it)")
        if console is not None:
            console.print(f"[yellow]replacing {data}/, the folder of an earlier demo run[/]")
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    (data / MARKER).write_text(MARKER_TEXT)


def run_demo(data: Path, *, serve: bool, port: int, console: Console) -> None:
    prepare_folder(data, console)
    genesis = init_chain(data, chain="blokauto-demo", orgs=FOUNDERS, quorum=1, node_orgs=1, params=DEMO_PARAMS)
    keys = KeyStore(data / "keys")
    console.print(f"[bold]blokauto demo[/] — chain {genesis.chain!r} in {data}/")
    console.print(f"  founding organisations: {', '.join(o.name for o in genesis.organisations)}")
    console.print(f"  trust anchor: {data / 'genesis.json'} (hash {genesis.hash().hex()[:16]}…)")
    node = Node(data)
    node.start()
    wanted = port if serve else 0  # only a served demo needs a known port
    try:
        server = ApiServer(node, "127.0.0.1", wanted)
    except OSError as exc:  # the port is taken (another node?): any free one, and say so
        server = ApiServer(node, "127.0.0.1", 0)
        console.print(f"[yellow]port {wanted} is taken ({exc.strerror}); the demo's API uses port {server.port}[/]")
    url = server.start()
    console.print(f"  node {node.node_did[:24]}… serving {url} (OpenAPI at {url}/schema)\n")
    try:
        with Client(url, trust=genesis) as bc:
            tell_story(bc, keys, Story(console), data / "vault", data / "software")
        st = node.status()
        node.committer.state.flush()
        report = audit(data)
        console.print(f"\nchain height {st['height']}, {st['committed_txs']} transactions, state root {st['state_root'][:16]}…")
        console.print(f"audit: {'[green]OK[/]' if report.ok else '[red]FAILED[/]'} — re-executed {report.blocks} blocks, "
                      f"checked {report.signatures} signatures and {report.state_entries} state entries")
        for f in report.findings:
            console.print(f"  [red]✗[/] {f}")
        if serve:
            console.print(f"\nserving on {url} — try:\n  {url}/console in a browser (load a key file of "
                          f"{data}/keys, e.g. ben.json: Ben holds the demo's car)\n  curl {url}/v1/status\n"
                          f"  blokauto --help   |  blokauto status --node {url}\n"
                          f"  blokauto query governance organisations --node {url} --data {data} --as kba-admin\n"
                          f"Ctrl-C stops the node.")
            stop_on_sigterm()
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        node.stop()
    console.print(f"node stopped; data kept in {data}/ (`blokauto node start --data {data}` resumes it)")


# The story compresses years of a car's life into seconds of block time: readings thousands of km
# apart arrive moments apart, so the demo chains allow larger jumps between trusted readings.
DEMO_PARAMS = {"odometer_jump_slack_km": 20_000, "attestation_required:cobalt": 1, "attestation_required:cobalt-metal": 1}


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """A serving demo stopped with SIGTERM (kill PID, a service manager) stops as with Ctrl-C: its node,
    workers and servers shut down in order, nothing left behind."""
    signal.signal(signal.SIGTERM, _interrupted)


def run_network_demo(base: Path, *, serve: bool, orgs: int, console: Console, log_format: str = "text") -> None:
    """The same story on a local consortium: NATS JetStream servers and one node per organisation."""
    from ..node.network import network_down, network_status, network_up

    prepare_folder(base, console)
    console.print(f"[bold]blokauto demo --network[/] — a consortium in {base}/")
    state = network_up(base, orgs=orgs, founders=len(FOUNDERS), chain="blokauto-demo-net", params=DEMO_PARAMS,
                       say=lambda s: console.print(f"  {s}", soft_wrap=True), log_format=log_format)
    keys = KeyStore(base / "consortium" / "keys")
    url = state.nodes[0].url
    try:
        console.print(f"  the story is sent to {state.nodes[0].org}'s node; every node orders it through JetStream, "
                      f"executes it and attests each block\n")
        with Client(url, trust=base / "consortium" / "genesis.json") as bc:
            tell_story(bc, keys, Story(console), base / "orgs" / "allied-insurance" / "vault",
                       base / "orgs" / "bavaria-motors" / "software")
            height = bc.status()["height"]
            cp = bc.checkpoint(height)  # verified: a quorum of the consortium's node keys signed it
        deadline = time.monotonic() + 30
        st = network_status(base)
        while not (st["in_step"] and st["max_height"] >= height) and time.monotonic() < deadline:
            time.sleep(0.2)
            st = network_status(base)
        console.print("\n[bold]The consortium[/]")
        for n in st["nodes"]:
            console.print(f"  node {n['org']:<20} height {n['height']}  state root {(n['state_root'] or '')[:16]}…  "
                          f"{'[green]healthy[/]' if n['healthy'] else '[red]' + str(n['error']) + '[/]'}", soft_wrap=True)
        console.print(f"  {'[green]all nodes agree[/]' if st['in_step'] else '[red]nodes disagree[/]'}"
                      + f"; checkpoint {height} carries {len(cp.attestations)} verified node attestations")
        if serve:
            console.print(f"\nserving — `blokauto network status --base {base}`; Ctrl-C stops the network.")
            stop_on_sigterm()
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        network_down(base)
    console.print(f"network stopped; data kept in {base}/ (`blokauto network up --base {base}` resumes it)")


def tell_story(bc: Client, keys: KeyStore, story: Story, vault_dir: Path, software_dir: Path) -> None:
    """The whole story; Allied Insurance keeps personal data in ``vault_dir``, beside its node; Bavaria
    Motors its Uptane repositories (and the cars their primary-ECU storage) in ``software_dir``."""
    bmw, allied = keys.load("bavaria-motors-admin"), keys.load("allied-insurance-admin")
    line = keys.create("bavaria-line-7", org="bavaria-motors")
    claims = keys.create("allied-claims", org="allied-insurance")

    story.say("[bold]Member keys[/]")
    first = bc.sign(bc.build(gov.AddMember(member=line.did, roles=["manufacturer"]), bmw), bmw, line)
    story.committed("Bavaria Motors registers its production-line key (the new key co-signs)",
                    bc.receipt(bc.submit(first, key=bmw), key=bmw))
    story.committed("Allied Insurance registers its claims-desk key",
                    bc.send(gov.AddMember(member=claims.did, roles=["insurer"]), allied, claims))
    stranger = KeyPair.generate()
    story.refused("the production-line key tries to add a member (it is not an admin)",
                  lambda: bc.send(gov.AddMember(member=stranger.did, roles=["manufacturer"]), line, stranger))
    story.refused("someone replays the signed registration", lambda: bc.submit(first, key=bmw))
    story.committed("Allied tries to give its new key a role Allied does not hold",
                    bc.send(gov.SetMemberRoles(member=claims.did, roles=["manufacturer"]), allied))

    story.say("\n[bold]Consortium votes[/] (threshold: two thirds of organisations)")
    voters = [(o.name, keys.load(f"{o.id}-admin")) for o in FOUNDERS]
    dealer_admin = keys.create("city-motors-admin", org="city-motors")
    info = story.committed(
        "Bavaria Motors proposes admitting City Motors GmbH as a dealer",
        bc.send(gov.Propose(action=gov_state.AdmitOrganisation(id="city-motors", name="City Motors GmbH",
                                                               roles=["dealer"], admins=[dealer_admin.did]),
                            note="authorised dealer, Munich"), bmw))
    vote_until_decided(bc, story, info, voters, "City Motors joins the consortium")
    info = story.committed("Allied proposes a 30-minute limit on transaction validity",
                           bc.send(gov.Propose(action=gov_state.SetParameter(name="max_tx_ttl_ms", value=1_800_000)), allied))
    vote_until_decided(bc, story, info, voters, "the parameter changes from the next block")

    story.say("\n[bold]Key lifecycle[/]")
    line2 = keys.create("bavaria-line-7b", org="bavaria-motors")
    story.committed("the production line rotates to a new key (old key retired, new key co-signs)",
                    bc.send(gov.RotateKey(new_key=line2.did), line, line2))
    story.refused("the retired key tries to sign again",
                  lambda: bc.send(gov.RevokeMember(member=line.did), line))
    story.committed("Allied revokes the claims-desk key (a laptop was stolen)",
                    bc.send(gov.RevokeMember(member=claims.did, reason="device stolen"), allied))
    story.refused("the stolen key tries to act", lambda: bc.send(gov.RevokeMember(member=claims.did), claims))

    story.say("\n[bold]Verifiable reads[/] (every request signed by the reader's key: here Allied Insurance's)")
    as_allied = bc.as_key(allied)
    dealer = as_allied.state("gov/org/city-motors", min_height=bc.status()["height"])
    story.say(f"[green]✓[/] City Motors' record, proven against the checkpoint at height {dealer.height} "
              f"({len(dealer.checkpoint.attestations)} node attestation): roles {dealer.value['roles']}")
    revoked = as_allied.state(f"gov/member/{claims.did}")
    story.say(f"[green]✓[/] the claims-desk key is proven {revoked.value['status']} since height {revoked.value['since']}")
    absent = as_allied.state(f"gov/member/{stranger.did}")
    story.say(f"[green]✓[/] the stranger's key is proven absent from the registry: {absent.value is None}")
    supply_story(bc, keys, story)
    vehicle_story(bc, keys, story)
    recall_story(bc, keys, story)
    software_story(bc, keys, story, software_dir)
    payments_story(bc, keys, story)
    voters = [(o.name, keys.load(f"{o.id}-admin")) for o in FOUNDERS] + [("City Motors", keys.load("city-motors-admin"))] \
        + [(name, keys.load(f"{org}-admin")) for org, name, _ in PAYMENT_ORGS]
    market = market_opens(bc, keys, story, voters)  # the interval is delivered while the rest of the story goes on
    insurance_story(bc, keys, story)
    share_story(bc, keys, story, DEMO_VIN)
    privacy_story(bc, keys, story, vault_dir, DEMO_VIN)
    interval_settles(bc, keys, story, market)
    print_history(bc, story, DEMO_VIN, keys.load("ben"))


def vote_until_decided(bc: Client, story: Story, opened: TxInfo, voters: list[tuple[str, KeyPair]], outcome: str) -> None:
    """Organisations vote yes one after another until the proposal passes."""
    proposal = next(e["proposal"] for e in opened.events if e["type"] == "governance.proposal_opened")
    org_of = {k.did: name for name, k in voters}
    opener = opened.tx["body"]["sender"]
    cast = []
    for name, key in voters:
        if key.did == opener:
            continue
        info = bc.send(gov.Vote(proposal=proposal, approve=True), key).raise_for_status()
        cast.append(name.split(" ")[0])
        decided = next((e for e in info.events if e["type"] == "governance.proposal_decided"), None)
        if decided is not None:
            story.step += 1
            story.say(f"[green]✓[/] {story.step:>2}. votes yes from {', '.join(cast)}: {decided['yes']} yes votes reach two "
                      f"thirds of the organisations, passed: {outcome}  [dim](block {info.height})[/]")
            return
    raise AssertionError(f"proposal {proposal} did not pass ({org_of.get(opener)})")


YEAR_MS = 365 * 86_400_000


def sourcing_orgs(bc: Client, keys: KeyStore, story: Story, voters: list[tuple[str, KeyPair]]) -> None:
    """The consortium admits the mine and the refinery the cobalt story needs."""
    kba = keys.load("kba-admin")
    for org, name, roles in SOURCING_ORGS:
        admin = keys.create(f"{org}-admin", org=org)
        info = bc.send(gov.Propose(action=gov_state.AdmitOrganisation(id=org, name=name, roles=roles,
                                                                      admins=[admin.did])), kba).raise_for_status()
        vote_until_decided(bc, story, info, voters, f"{name} joins ({', '.join(roles)})")


#: Organisations admitted for the cobalt story: (id, name, roles).
SOURCING_ORGS = [
    ("kamoto-mining", "Kamoto Mining SA", ["supplier"]),
    ("nordic-refining", "Nordic Cobalt Refining Oy", ["supplier"]),
]


def supply_story(bc: Client, keys: KeyStore, story: Story) -> dict[str, str]:
    """Cobalt from mine to pack: two ore lots audited at the mine (one non-conformant and refused), the
    good one concentrated, shipped, refined and audited at the refinery, its cobalt made into battery
    packs whose passport carries the mine it came from; brake pads minted and shipped."""
    volt, stop = keys.load("voltcell-admin"), keys.load("stopwell-brakes-admin")
    audit, bmw, shop = keys.load("fairmine-audit-admin"), keys.load("bavaria-motors-admin"), keys.load("meister-werkstatt-admin")
    story.say("\n[bold]Supply chain: cobalt from mine to pack[/] (the consortium requires a conformant, unexpired "
              "audit before cobalt ore or refined cobalt is used: parameters attestation_required:cobalt and "
              ":cobalt-metal, set at genesis)")
    voters = [(o.name, keys.load(f"{o.id}-admin")) for o in FOUNDERS] + [("City Motors", keys.load("city-motors-admin"))]
    sourcing_orgs(bc, keys, story, voters)
    mine, refinery = keys.load("kamoto-mining-admin"), keys.load("nordic-refining-admin")
    until = now_ms() + YEAR_MS
    story.committed("Kamoto Mining registers ore lots KAM-ORE-7 (60 t, Kamoto pit) and KAM-ORE-8 (20 t, Mashamba pit)", _all(
        bc.send(parts.RegisterLot(lot="KAM-ORE-7", material="cobalt", mass_g=60_000_000, mine="Kamoto", country="CD",
                                  location="CDKWZ"), mine),
        bc.send(parts.RegisterLot(lot="KAM-ORE-8", material="cobalt", mass_g=20_000_000, mine="Mashamba", country="CD",
                                  location="CDKWZ"), mine)))
    story.committed("Fairmine Audit finds KAM-ORE-7 conformant (OECD due diligence) and KAM-ORE-8 not: child labour "
                    "at the pit", _all(
                        bc.send(parts.AttestLot(lot="KAM-ORE-7", standard="OECD-DDG", result="conformant",
                                                report="FMA-2024-101", valid_until=until), audit),
                        bc.send(parts.AttestLot(lot="KAM-ORE-8", standard="OECD-DDG", result="non_conformant",
                                                report="FMA-2024-102", valid_until=until), audit)))
    story.committed("Kamoto tries to concentrate the non-conformant ore", bc.send(parts.TransformLots(
        inputs=[parts.LotPortion(lot="KAM-ORE-8", mass_g=20_000_000)],
        outputs=[parts.LotOutput(lot="KAM-CONC-8", material="cobalt-hydroxide", mass_g=600_000)],
        process="concentration", yield_ppm=30_000, location="CDKWZ"), mine))
    story.committed("Kamoto concentrates KAM-ORE-7 into 1.8 t of cobalt hydroxide (a 3 % yield)", bc.send(
        parts.TransformLots(inputs=[parts.LotPortion(lot="KAM-ORE-7", mass_g=60_000_000)],
                            outputs=[parts.LotOutput(lot="KAM-CONC-7", material="cobalt-hydroxide", mass_g=1_800_000)],
                            process="concentration", yield_ppm=30_000, location="CDKWZ"), mine))
    story.committed("it trucks the concentrate out of Kolwezi to Nordic Refining, which signs for it in Kokkola", _all(
        bc.send(parts.Ship(to="org:nordic-refining", lots=["KAM-CONC-7"], location="CDKWZ"), mine),
        bc.send(parts.Receive(lots=["KAM-CONC-7"], location="FIKOK"), refinery)))
    story.committed("Nordic Refining refines it into 990 kg of cobalt metal, lot CO-KAM-0042; Fairmine audits the "
                    "refinery (RMAP, conformant)", _all(
                        bc.send(parts.TransformLots(inputs=[parts.LotPortion(lot="KAM-CONC-7", mass_g=1_800_000)],
                                                    outputs=[parts.LotOutput(lot="CO-KAM-0042", material="cobalt-metal",
                                                                             mass_g=990_000)],
                                                    process="refining", yield_ppm=550_000, location="FIKOK"), refinery),
                        bc.send(parts.AttestLot(lot="CO-KAM-0042", standard="RMAP", result="conformant",
                                                report="FMA-2024-118", valid_until=until), audit)))
    story.committed("the refined cobalt ships to Voltcell in Pécs", _all(
        bc.send(parts.Ship(to="org:voltcell", lots=["CO-KAM-0042"], location="FIKOK"), refinery),
        bc.send(parts.Receive(lots=["CO-KAM-0042"], location="HUPEC"), volt)))
    story.committed("Voltcell registers battery pack VP-83 and makes batch P1 (36 kg of that cobalt)", _all(
        bc.send(parts.RegisterPartType(part_number="VP-83", name="83 kWh battery pack", category="battery",
                                       serialized=True), volt),
        bc.send(parts.MintBatch(part_number="VP-83", batch="P1", quantity=3, produced="2022-05-02", plant="Pecs",
                                materials=[parts.MaterialUse(lot="CO-KAM-0042", mass_g=36_000)], location="HUPEC"), volt),
        bc.send(parts.MintParts(part_number="VP-83", serials=["VP83-0001", "VP83-0002", "VP83-0003"],
                                produced="2022-05-02", plant="Pecs", batch="P1", location="HUPEC"), volt)))
    story.refused("Voltcell tries to draw 1.3 t more cobalt from the same lot",
                  lambda: bc.send(parts.MintBatch(part_number="VP-83", batch="P2", quantity=30, produced="2022-05-09",
                                                  plant="Pecs", materials=[parts.MaterialUse(lot="CO-KAM-0042",
                                                                                             mass_g=1_300_000)]),
                                  volt).raise_for_status())
    info = story.committed("Voltcell issues the battery passport of pack VP83-0001 (EU Battery Regulation fields; "
                           "origins and recycled content computed by the ledger)", bc.send(parts.IssuePassport(
                               pack="VP-83:VP83-0001", category="ev", chemistry="NMC811", capacity_wh=83_000,
                               nominal_voltage_mv=400_000, mass_g=480_000, carbon_footprint_g_per_kwh=61_000,
                               carbon_footprint_report="VC-CFP-2022-05", due_diligence_report="VC-DD-2022"), volt))
    passport = bc.as_key(bmw).state("parts/passport/VP-83:VP83-0001", min_height=info.height)
    origin = ", ".join(f"{m['material']} {m['ppm'] // 10_000} % from {m['mine']} ({m['country']})"
                       for m in passport.value["materials"])
    recycled = ", ".join(f"{r['material']} {r['ppm'] // 10_000} %" for r in passport.value["recycled"])
    story.say(f"[green]✓[/] Bavaria Motors reads the passport, proven at block {passport.height}: {origin}; "
              f"recycled content {recycled}; audits {', '.join(a['standard'] + ' ' + a['result'] for a in passport.value['attestations'])}")
    vc = Sourcing(bc.as_key(volt)).export_passport("VP-83:VP83-0001", volt)
    path = keys.directory.parent / PASSPORT_FILE
    path.write_bytes(canonical(vc) + b"\n")
    proven = verify_passport_credential(path.read_bytes(), TrustAnchor.from_genesis(bc.genesis))
    story.say(f"[green]✓[/] Voltcell exports it as a W3C Verifiable Credential ({path.name}, signed by its key); checked "
              f"offline against the genesis alone: passport v{proven['version']} proven at block {proven['proven_at']} "
              f"(`blokauto sourcing passport verify {path} --trust {path.parent / 'genesis.json'}`)")
    story.committed("Stopwell registers brake pad SW-PAD-44 and makes batches B2024-07, -08 and -09", _all(
        bc.send(parts.RegisterPartType(part_number="SW-PAD-44", name="front brake pad set", category="brakes",
                                       serialized=False), stop),
        *[bc.send(parts.MintBatch(part_number="SW-PAD-44", batch=b, quantity=400, produced=d, plant="Brescia"), stop)
          for b, d in (("B2024-07", "2022-04-11"), ("B2024-08", "2022-04-25"), ("B2024-09", "2023-02-06"))]))
    story.committed("packs and two pad batches ship to Bavaria Motors, the third to Meister Werkstatt", _all(
        bc.send(parts.Ship(items=["VP-83:VP83-0001", "VP-83:VP83-0002", "VP-83:VP83-0003"], to="org:bavaria-motors"), volt),
        bc.send(parts.Ship(items=["SW-PAD-44:B2024-07", "SW-PAD-44:B2024-08"], to="org:bavaria-motors"), stop),
        bc.send(parts.Ship(items=["SW-PAD-44:B2024-09"], to="org:meister-werkstatt"), stop)))
    story.committed("each receiver signs for what it got: custody passes", _all(
        bc.send(parts.Receive(items=["VP-83:VP83-0001", "VP-83:VP83-0002", "VP-83:VP83-0003",
                                     "SW-PAD-44:B2024-07", "SW-PAD-44:B2024-08"]), bmw),
        bc.send(parts.Receive(items=["SW-PAD-44:B2024-09"]), shop)))
    return {"pack": "VP-83:VP83-0001"}


def _all(*infos: TxInfo) -> TxInfo:
    for info in infos:
        info.raise_for_status()
    return infos[-1]


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
    story.committed("at the line, Bavaria Motors fits battery pack VP83-0001 and four pads of batch B2024-07",
                    bc.send(parts.Install(vin=vin, items=[parts.InstallItem(part="VP-83:VP83-0001", position="floor"),
                                                          parts.InstallItem(batch="SW-PAD-44:B2024-07", qty=4,
                                                                            position="front axle")]), bmw))
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
    month = bc.checkpoint("latest").header.time + 30 * 86_400_000
    granted = story.committed("Ben lets Allied Insurance read his car's history and odometer for 30 days, for a quote",
                              bc.send(consent.GrantConsent(vin=vin, org="allied-insurance",
                                                           categories=["history", "odometer"],
                                                           purpose="usage-based insurance quote", until=month), ben))
    story.refused("Anna, who sold the car, tries to grant consent on it",
                  lambda: bc.send(consent.GrantConsent(vin=vin, org="allied-insurance", categories=["location"],
                                                       purpose="marketing", until=month), anna).raise_for_status())
    as_allied = bc.as_key(allied)
    ok = as_allied.query("consent", "allowed", vin=vin, org="allied-insurance", category="odometer",
                         min_height=granted.height)
    story.say(f"  consent on record: Allied Insurance may read the odometer: {ok['allowed']} (grant {ok['grant']}); "
              f"Ben can revoke it at any moment (`blokauto consent revoke`)")
    hist = as_allied.query("vehicles", "history", vin=vin, min_height=granted.height)
    story.say(f"[green]✓[/] with Ben's consent, Allied reads the car's history: {hist['total']} entries")
    story.refused("City Motors, which sold the car on, asks for its history (no relation, no consent)",
                  lambda: bc.as_key(dealer).query("vehicles", "history", vin=vin))
    story.refused("a key nobody knows asks for the car's record",
                  lambda: bc.as_key(KeyPair.generate()).query("vehicles", "vehicle", vin=vin))



def recall_story(bc: Client, keys: KeyStore, story: Story) -> None:
    """A faulty brake-pad batch: every affected car and its owner found at once, one car fixed."""
    bmw, shop = keys.load("bavaria-motors-admin"), keys.load("meister-werkstatt-admin")
    carla, dan = keys.create("carla", kind="owner"), keys.create("dan", kind="owner")
    dealer = keys.load("city-motors-admin")
    story.say("\n[bold]A recall[/]")
    others = {CARLA_VIN: ("SW-PAD-44:B2024-07", carla, "VP-83:VP83-0002"),
              "WZZ3E5C22NM400133": ("SW-PAD-44:B2024-08", dan, "VP-83:VP83-0003")}
    devices = {CARLA_VIN: [keys.create("carla-car-unit", kind="device").did]}  # it pays tolls later (payments_story)
    for vin, (pads, owner, pack) in others.items():
        _all(bc.send(veh.RegisterVehicle(vin=vin, make="Bavaria", model="E5", model_year=2022, body="sedan",
                                         powertrain="bev", plant="Dingolfing", build_date="2022-07-01", country="DE",
                                         battery_wh=83_000, device_keys=devices.get(vin, [])), bmw),
             bc.send(parts.Install(vin=vin, items=[parts.InstallItem(part=pack), parts.InstallItem(batch=pads, qty=4)]), bmw),
             bc.send(veh.TransferTitle(vin=vin, to="org:city-motors"), bmw, dealer),
             bc.send(veh.TransferTitle(vin=vin, to=owner.did), dealer, owner))
    story.say("  two more E5s were built (pads from B2024-07 and B2024-08) and sold to Carla and Dan")
    info = story.committed(
        "Stopwell finds cracking pads in batch B2024-07; Bavaria Motors opens recall 24V-117",
        bc.send(recalls.OpenCampaign(number="24V-117", component="front brake pads (SW-PAD-44)",
                                     summary="Pads of batch B2024-07 may crack under repeated hard braking.",
                                     consequence="Longer stopping distance increases the risk of a crash.",
                                     remedy="Replace the front brake pads free of charge.",
                                     scope=recall_state.Scope(batches=[recall_state.BatchRef(part_number="SW-PAD-44",
                                                                                             batch="B2024-07")])), bmw))
    campaign = next(e["campaign"] for e in info.events if e["type"] == "recalls.campaign_opened")
    affected = bc.as_key(bmw).query("recalls", "affected", campaign=campaign, min_height=info.height)
    owners = {k.did: n for n, k in (("Ben", keys.load("ben")), ("Carla", carla), ("Dan", dan))}
    for row in affected["vehicles"]:
        story.say(f"  → affected: {row['vin']}, owner notified: {owners.get(row['holder'], row['holder'][:24])}")
    story.say(f"  ({affected['progress']['affected']} vehicles; Dan's car has pads from another batch and is not affected)")
    story.refused("a workshop tries to fit pads from the recalled batch to Dan's car",
                  lambda: bc.send(parts.Install(vin="WZZ3E5C22NM400133",
                                                items=[parts.InstallItem(batch="SW-PAD-44:B2024-07", qty=4)]),
                                  bmw).raise_for_status())
    story.refused("someone tries to fit a battery pack serial Voltcell never made",
                  lambda: bc.send(parts.Install(vin="WZZ3E5C22NM400133",
                                                items=[parts.InstallItem(part="VP-83:VP83-9999")]), bmw).raise_for_status())
    remedy = story.committed("Meister Werkstatt replaces Ben's pads with batch B2024-09 and attests the remedy", _all(
        bc.send(parts.Remove(vin=DEMO_VIN, items=[parts.InstallItem(batch="SW-PAD-44:B2024-07", qty=4)]), shop),
        bc.send(parts.Install(vin=DEMO_VIN, items=[parts.InstallItem(batch="SW-PAD-44:B2024-09", qty=4,
                                                                      position="front axle")]), shop),
        bc.send(recalls.RecordRemedy(campaign=campaign, vin=DEMO_VIN, notes="pads replaced"), shop)))
    p = bc.as_key(bmw).query("recalls", "campaign", id=campaign, min_height=remedy.height)["progress"]
    story.say(f"  recall 24V-117: {p['affected']} affected, {p['remedied']} remedied, {p['outstanding']} outstanding")
    m = bc.as_key(keys.load("ben")).query("parts", "materials_of", vin=DEMO_VIN, min_height=remedy.height)["lots"][0]
    att = m["attestations"][0]
    story.say(f"  the cobalt in Ben's battery: lot {m['lot']}, {m['mine']} mine ({m['country']}), "
              f"attested {att['result']} ({att['standard']}) by {att['auditor']}")


DAN_VIN = "WZZ3E5C22NM400133"  # the recall's third car: no telematics unit, so no over-the-air updates


def _firmware(name: str, version: int) -> bytes:
    """A stand-in firmware image (what an ECU would flash)."""
    return f"{name} firmware {version}\n".encode() * 512


def software_story(bc: Client, keys: KeyStore, story: Story, folder: Path) -> None:
    """Bavaria Motors ships brake-controller firmware over the air through Uptane repositories the
    ledger anchors; a faulty release is recalled and fixed by the cars' own signed manifests."""
    from ..client.software import Software
    from ..modules.software.messages import Installed, ReportManifest
    from ..ota import Director, ImageRepository, RepositoryServer

    bmw, shop = keys.load("bavaria-motors-admin"), keys.load("meister-werkstatt-admin")
    ben_car, carla_car = keys.load("car-telematics-unit"), keys.load("carla-car-unit")
    sw = Software(bc)
    story.say("\n[bold]Over-the-air software[/] (Uptane, TUF metadata by python-tuf, anchored on the ledger)")
    images = ImageRepository.create(folder / "repo" / "image")
    director = Director.create(folder / "repo" / "director")
    story.committed("Bavaria Motors anchors the roots of its image repository and its director", _all(
        sw.register_repository(bmw, "image", images.root_bytes()),
        sw.register_repository(bmw, "director", director.root_bytes())))
    brake, gateway = "brake-ctl-e5", "gateway-e5"
    def release(what: str, notes: str, *new: tuple[str, bytes, str, int, str]) -> None:
        """Sign a release, anchor it, and only then publish it to the cars."""
        story.committed(what, sw.release(bmw, images, list(new), notes=notes))

    release("release 1 (brake controller 1.0, gateway 1.0) anchored: image hashes, hardware ids, counters",
            "factory software of the E5", ("e5/brake-1.0.bin", _firmware("brake", 1), brake, 1, ""),
            ("e5/gateway-1.0.bin", _firmware("gateway", 1), gateway, 1, ""))
    factory = [("brake", brake, hashlib.sha256(_firmware("brake", 1)).hexdigest()),
               ("gateway", gateway, hashlib.sha256(_firmware("gateway", 1)).hexdigest())]
    story.committed("Bavaria Motors records the ECUs of the three E5s and their factory software",
                    _all(*(sw.fit_ecus(bmw, vin, factory) for vin in (DEMO_VIN, CARLA_VIN, DAN_VIN))))
    release("release 2: brake controller 2.0 (stronger regenerative braking)", "brake 2.0: regenerative braking",
            ("e5/brake-2.0.bin", _firmware("brake", 2), brake, 2, ""))
    cars = {DEMO_VIN: ("Ben", ben_car), CARLA_VIN: ("Carla", carla_car)}
    with RepositoryServer(folder / "repo") as served:
        def updater(vin: str) -> Any:
            return sw.updater(vin, cars[vin][1], director_url=f"{served.url}/director",
                              images_url=f"{served.url}/image", state_dir=folder / "vehicles" / vin)

        for vin, (owner, key) in cars.items():
            director.assign(vin, [(["brake"], images.target("e5/brake-2.0.bin"))])
            with updater(vin) as car:
                done = car.update()
            story.committed(f"{owner}'s car verifies the update against the ledger's anchors (Uptane full "
                            f"verification), installs brake 2.0 and signs its manifest",
                            bc.receipt(done.manifest_tx, key=key))
        story.committed("a manifest claiming the brake runs 1.0 again (a rollback) is refused by the ledger",
                        bc.send(ReportManifest(vin=DEMO_VIN, t=time.time_ns() // 1_000_000, installed=[
                            Installed(ecu="brake", path="e5/brake-1.0.bin", image=factory[0][2])]), ben_car))
        info = story.committed(
            "brake 2.0 can disengage regeneration on ice: Bavaria Motors opens recall 24V-201, fixed over the air "
            "by brake 2.1 (release counter 3)",
            bc.send(recalls.OpenCampaign(number="24V-201", component="brake controller software (brake-ctl-e5)",
                                         summary="Brake controller 2.0 may disengage regenerative braking on ice.",
                                         consequence="Unexpected loss of deceleration increases the risk of a crash.",
                                         remedy="Update the brake controller to 2.1 over the air, or at a workshop.",
                                         ota_remedy=True,
                                         software_fix=recall_state.SoftwareFix(hardware_id=brake, min_release_counter=3),
                                         scope=recall_state.Scope(vin_ranges=[recall_state.VinRange(
                                             first=DEMO_VIN, last=DAN_VIN)])), bmw))
        campaign = next(e["campaign"] for e in info.events if e["type"] == "recalls.campaign_opened")
        release("release 3: brake controller 2.1 anchored", "fixes 24V-201",
                ("e5/brake-2.1.bin", _firmware("brake", 3), brake, 3, ""))
        for vin in cars:
            director.assign(vin, [(["brake"], images.target("e5/brake-2.1.bin"))])
        served_file = next((folder / "repo" / "image" / "targets" / "e5").glob("*.brake-2.1.bin"))
        genuine = served_file.read_bytes()
        served_file.write_bytes(genuine.replace(b"brake", b"brakX", 1))
        with updater(DEMO_VIN) as car:
            _refused_off_ledger(story, "someone swaps the image on the download server: Ben's car refuses it and "
                                       "installs nothing", car.update)
        served_file.write_bytes(genuine)
        for vin, (owner, key) in cars.items():
            with updater(vin) as car:
                done = car.update()
            story.committed(f"{owner}'s car installs brake 2.1; its own manifest remedies recall 24V-201",
                            bc.receipt(done.manifest_tx, key=key))
    story.committed("Bavaria Motors tries to declare Dan's car fixed over the air on its own word",
                    bc.send(recalls.RecordRemedy(campaign=campaign, vin=DAN_VIN, method="software"), bmw))
    fixed = story.committed("Dan's car has no telematics unit: Meister Werkstatt flashes brake 2.1 and attests it",
                            bc.send(recalls.RecordRemedy(campaign=campaign, vin=DAN_VIN,
                                                         notes="brake controller flashed to 2.1"), shop))
    p = bc.as_key(bmw).query("recalls", "campaign", id=campaign, min_height=fixed.height)["progress"]
    story.say(f"  recall 24V-201: {p['affected']} affected, {p['remedied']} remedied (2 by the cars' own manifests), "
              f"{p['outstanding']} outstanding")
    inv = sw.inventory(DEMO_VIN, key=keys.load("ben"), min_height=fixed.height)
    assert inv is not None
    story.say("[green]✓[/] Ben's car's software, proven against a checkpoint: " + ", ".join(
        f"{e['ecu']} {e['path'].rsplit('/', 1)[-1]} (counter {e['release_counter']})" for e in inv["ecus"]))


#: Organisations the consortium admits for the payments journey: (id, name, roles).
PAYMENT_ORGS = [
    ("euromoney", "EuroMoney E-Money AG", ["issuer"]),
    ("bavaria-bank", "Bavaria Bank AG", ["lender"]),
    ("autobahn-toll", "Autobahn Toll GmbH", ["toll"]),
    ("citypark", "CityPark Garagen GmbH", ["parking"]),
    ("voltpoint", "VoltPoint Charging GmbH", ["charging"]),
    ("metrorail", "MetroRail S-Bahn", ["mobility"]),
    ("zipscoot", "ZipScoot e-scooters", ["mobility"]),
]


def payments_story(bc: Client, keys: KeyStore, story: Story) -> None:
    """Money on the ledger: an e-money issuer, Carla's car paying within her limits (a toll by
    tariff, parking through a payment channel with vouchers, a charging session), a journey split
    between two operators, and the car sold to Dan with the price, the lien's payoff and the title
    moving in one transaction."""
    from ..client.payments import MerchantChannel, PayerChannel
    from ..modules.payments import messages as pay
    from ..modules.payments.state import Band, Share
    from .payments import money

    carla, dan, car = keys.load("carla"), keys.load("dan"), keys.load("carla-car-unit")
    story.say("\n[bold]Payments[/] (amounts in euro cents on the ledger)")
    voters = [(o.name, keys.load(f"{o.id}-admin")) for o in FOUNDERS] + [("City Motors", keys.load("city-motors-admin"))]
    admins: dict[str, KeyPair] = {}
    for org, name, roles in PAYMENT_ORGS:
        admins[org] = keys.create(f"{org}-admin", org=org)
        info = bc.send(gov.Propose(action=gov_state.AdmitOrganisation(id=org, name=name, roles=roles,
                                                                      admins=[admins[org].did])),
                       keys.load("kba-admin")).raise_for_status()
        vote_until_decided(bc, story, info, voters, f"{name} joins ({', '.join(roles)})")
        voters.append((name, admins[org]))
    emi, bank, toll, park = admins["euromoney"], admins["bavaria-bank"], admins["autobahn-toll"], admins["citypark"]
    charge, rail, scoot = admins["voltpoint"], admins["metrorail"], admins["zipscoot"]
    eur = lambda amount: money(amount, "EUR")  # noqa: E731

    story.committed(f"Bavaria Bank records a lien of {eur(1_200_000)} on Carla's car {CARLA_VIN} (Carla co-signs)",
                    bc.send(veh.RecordLien(vin=CARLA_VIN, amount=1_200_000, currency="EUR"), bank, carla))
    evidence = hashlib.sha256(b"EuroMoney safeguarding account statement, 2024-06-30").hexdigest()
    story.committed(f"EuroMoney registers EUR and attests {eur(100_000_000)} of safeguarded reserves (the auditor's "
                    f"report stays off the ledger: only its hash)", _all(
                        bc.send(pay.RegisterCurrency(currency="EUR", exponent=2), emi),
                        bc.send(pay.AttestReserves(currency="EUR", reserves=100_000_000, evidence=evidence), emi)))
    story.committed(f"EuroMoney issues {eur(50_000)} to Carla and {eur(2_500_000)} to Dan", _all(
        bc.send(pay.Issue(currency="EUR", to=carla.did, amount=50_000), emi),
        bc.send(pay.Issue(currency="EUR", to=dan.did, amount=2_500_000), emi)))
    story.committed(f"Carla lets her car spend {eur(4_000)} per payment, {eur(6_000)} a day, on tolls, parking, "
                    f"charging and rides", bc.send(pay.SetLimit(vin=CARLA_VIN, currency="EUR", per_payment=4_000,
                                                                per_day=6_000,
                                                                categories=["toll", "parking", "charging", "ride"]), carla))
    day_night = [Band(start=0, end=360, price=8), Band(start=360, end=1320, price=12), Band(start=1320, end=1440, price=8)]
    _all(bc.send(pay.PublishTariff(tariff="a9", category="toll", currency="EUR", unit="km", zone="A9",
                                   bands=day_night), toll),
         bc.send(pay.PublishTariff(tariff="garage-1", category="parking", currency="EUR", unit="minute",
                                   zone="Munich Marienplatz", bands=[Band(start=0, end=1440, price=4)]), park),
         bc.send(pay.PublishTariff(tariff="hpc", category="charging", currency="EUR", unit="wh", per=1000,
                                   zone="A9 Fürholzen", bands=[Band(start=0, end=1440, price=49)]), charge))
    story.say("  Autobahn Toll, CityPark and VoltPoint publish their tariffs: 0.12 EUR/km by day (0.08 at night), "
              "0.04 EUR/minute, 0.49 EUR/kWh")

    as_car = bc.as_key(car)
    head = bc.checkpoint("latest").header
    price = as_car.query("payments", "price", merchant="autobahn-toll", tariff="a9", quantity=84, at=head.time,
                         min_height=head.height)
    story.committed(f"the car's own key pays the A9 toll: 84 km, {eur(price['amount'])} by the tariff (the ledger "
                    f"checks the price)",
                    bc.send(pay.VehiclePay(vin=CARLA_VIN, merchant="autobahn-toll", category="toll", currency="EUR",
                                           amount=price["amount"], tariff="a9", quantity=84), car))

    opened = story.committed(f"it parks at Marienplatz and opens a channel to CityPark with a {eur(2_000)} deposit "
                             f"from Carla's wallet", bc.send(pay.OpenChannel(merchant="citypark", category="parking",
                                                                             currency="EUR", deposit=2_000,
                                                                             vin=CARLA_VIN), car))
    channel = next(e["channel"] for e in opened.events if e["type"] == "payments.channel_opened")
    payer = PayerChannel.from_ledger(bc, channel, car, min_height=opened.height)
    merchant = MerchantChannel.from_ledger(bc.as_key(park), channel, min_height=opened.height)
    for _ in range(6):  # every 30 minutes the car signs the running total; the garage checks it off the ledger
        merchant.accept(payer.pay(30 * 4))
    story.say(f"[green]✓[/]     off the ledger: the car signs a voucher every 30 minutes for 3 hours, CityPark's SDK "
              f"checks each (payer's signature, this channel, within the deposit, higher than the last): "
              f"{eur(merchant.amount)} in all")
    forged = pay.Voucher(chain=bc.chain, channel=channel, amount=2_000, sig=merchant.best.sig if merchant.best else "")
    _refused_off_ledger(story, "someone raises the last voucher to the whole deposit, keeping the car's signature",
                        lambda: merchant.accept(forged))
    story.committed(f"CityPark claims the channel with the car's last voucher: {eur(merchant.amount)} paid, "
                    f"{eur(2_000 - merchant.amount)} back to Carla", bc.send(merchant.claim(), park))
    story.refused("CityPark claims the same channel again",
                  lambda: bc.send(merchant.claim(), park).raise_for_status())

    session = 38_500 * 49 // 1000  # 38.5 kWh at 0.49 EUR per kWh
    story.committed(f"at VoltPoint the car charges 38.5 kWh and pays {eur(session)} by the tariff",
                    bc.send(pay.VehiclePay(vin=CARLA_VIN, merchant="voltpoint", category="charging", currency="EUR",
                                           amount=session, tariff="hpc", quantity=38_500), car))
    limit = bc.as_key(carla).query("payments", "limit", vin=CARLA_VIN, currency="EUR", min_height=bc.status()["height"])
    story.committed(f"a second charge of {eur(2_500)} the same day (already {eur(limit['spent_today'])} spent)",
                    bc.send(pay.VehiclePay(vin=CARLA_VIN, merchant="voltpoint", category="charging", currency="EUR",
                                           amount=2_500, memo="session 2"), car))

    fare = story.committed("MetroRail and ZipScoot agree a journey fare: scooter + S-Bahn, 70 % / 30 % (both sign)",
                           bc.send(pay.AgreeFare(name="scooter + S-Bahn", currency="EUR",
                                                 shares=[Share(org="metrorail", category="ride", bps=7_000),
                                                         Share(org="zipscoot", category="ride", bps=3_000)]),
                                   rail, scoot))
    fare_id = next(e["fare"] for e in fare.events if e["type"] == "payments.fare_agreed")
    paid = story.committed(f"Carla rides a scooter to the S-Bahn and pays the journey, {eur(480)}, split in one "
                           f"transaction", bc.send(pay.PayJourney(fare=fare_id, amount=480), carla))
    parts = next(e["parts"] for e in paid.events if e["type"] == "payments.journey_paid")
    story.say("  → " + ", ".join(f"{org} {eur(part)}" for org, part in parts.items()))

    story.say("\n[bold]Carla sells her car to Dan, paid in the transaction that moves the title[/]")
    week = bc.checkpoint("latest").header.time + 3 * 86_400_000
    locked = story.committed(f"Dan locks the price, {eur(2_150_000)}, in escrow for {CARLA_VIN} (deadline in 3 days)",
                             bc.send(pay.LockSale(vin=CARLA_VIN, seller=carla.did, currency="EUR", price=2_150_000,
                                                  deadline=week), dan))
    escrow = next(e["escrow"] for e in locked.events if e["type"] == "payments.sale_locked")
    story.committed("Dan tries to take the money back before the deadline",
                    bc.send(pay.ReclaimSale(escrow=escrow), dan))
    before = bc.as_key(carla).query("payments", "balance", owner=carla.did, currency="EUR", min_height=locked.height)
    sold = story.committed("Carla settles: the bank's lien paid off and released, the title to Dan, the rest to Carla "
                           "— one transaction", bc.send(pay.SettleSale(escrow=escrow), carla))
    after = bc.as_key(carla).query("payments", "balance", owner=carla.did, currency="EUR", min_height=sold.height)
    lent = bc.as_key(bank).query("payments", "balance", owner="org:bavaria-bank", currency="EUR", min_height=sold.height)
    v = bc.as_key(dan).query("vehicles", "vehicle", vin=CARLA_VIN, min_height=sold.height)
    story.say(f"  → Bavaria Bank received {eur(lent['balance'])}, Carla {eur(after['balance'] - before['balance'])}; "
              f"the title is Dan's: {v['holder'] == dan.did}, liens left: {len(v.get('liens') or [])}")
    story.committed("the car's key tries to pay a toll on Carla's limit after the sale",
                    bc.send(pay.VehiclePay(vin=CARLA_VIN, merchant="autobahn-toll", category="toll", currency="EUR",
                                           amount=500), car))


#: Allied's pay-per-km product: 9.90 EUR a month, 0.09 EUR a km (+50 % at night), 0.50 EUR a harsh
#: brake, 0.25 EUR a minute over the limit; no cap (with the holder's consent the km are the price).
KM_FLEX = {"base": 990, "per_km": 9, "night_factor_bps": 5_000, "per_harsh_brake": 50, "per_over_limit_minute": 25,
           "min_premium": 990, "max_premium": 50_000}


def insurance_story(bc: Client, keys: KeyStore, story: Story) -> None:
    """Dan insures the car he bought: Allied publishes a pay-per-km product and binds a policy Dan
    co-signs; the car sends three trips through the node's sample route; a crash it reports opens a
    claim in the same transaction, which Meister Werkstatt estimates and Allied approves and pays.
    A month cannot pass in a demo: Dan ends the policy, its period is billed pro rata, Dan's SDK
    checks the statement to the cent against the car's trip totals, and Dan pays it."""
    from ..client.insurance import Insurance, Pricing, claim_id, expected_premium, policy_id
    from ..client.telemetry import Telemetry
    from ..modules.payments import messages as pay
    from ..modules.telemetry import Sample
    from .payments import money

    dan, car = keys.load("dan"), keys.load("carla-car-unit")
    allied, shop = keys.load("allied-insurance-admin"), keys.load("meister-werkstatt-admin")
    ins, tel = Insurance(bc), Telemetry(bc)
    eur = lambda amount: money(amount, "EUR")  # noqa: E731
    vin = CARLA_VIN
    story.say(f"\n[bold]Insurance that reads the road[/] (Dan's car {vin})")
    bc.send(pay.Issue(currency="EUR", to="org:allied-insurance", amount=5_000_000),
            keys.load("euromoney-admin")).raise_for_status()
    pricing = Pricing(**KM_FLEX)
    story.committed(f"Allied publishes km-flex: {eur(990)} a month plus {eur(9)} a km (+50 % at night), "
                    f"{eur(50)} a harsh brake, {eur(25)} a minute over the limit",
                    ins.publish_product(allied, "km-flex", currency="EUR", period_days=30, pricing=pricing,
                                        max_coverage=5_000_000))
    month = time.time_ns() // 1_000_000 + 300 * 86_400_000
    story.committed("Dan lets Allied use the car's driving data (trip summaries, never positions) for pricing: "
                    "a period is priced on usage only if he agreed by its start",
                    bc.send(consent.GrantConsent(vin=vin, org="allied-insurance", categories=["driving"],
                                                 purpose="pay-per-km premium", until=month), dan))
    start = time.time_ns() // 1_000_000 + 1_000  # cover starts after the block that binds it: none is backdated
    bound = story.committed(f"Allied binds a policy on {vin} for 12 months from {time.strftime('%H:%M:%S', time.gmtime(start // 1000))}"
                            f" UTC (deductible {eur(30_000)}, cover {eur(5_000_000)} a claim): Allied sends, Dan co-signs",
                            ins.bind_policy(allied, dan, product="km-flex", vin=vin, start=start, periods=12,
                                            deductible=30_000, coverage=5_000_000))
    pid = policy_id(bound)

    odo, t = 4_120_000, start + 10
    for name, n, step, brakes in (("the drive to work", 40, 450, (12,)), ("a delivery round", 40, 300, (5, 22, 31)),
                                  ("the drive home", 40, 420, ())):
        samples = [Sample(t + 25 * i, 90, -4_500 if i in brakes else 150, 481_370 + i, 115_750 + i, odo + i * step,
                          100, 0) for i in range(n)]
        info = story.committed(f"the car sends {name} to the node: {n} signed samples kept off the ledger, "
                               f"their Merkle root and trip summary on it ({(n - 1) * step / 1000:.1f} km, "
                               f"{len(brakes)} harsh brake(s))",
                               tel.send_batch(vin, samples, car, utc_offset_min=60))
        odo, t = samples[-1].odometer_m, samples[-1].t + 1_000
        assert isinstance(info, TxInfo)
    story.committed("Allied tries to bill the month now", ins.issue_statements(allied, [pid])[0])

    _wait_past(t)
    crashed = story.committed(f"the car reports a crash (airbag, 6.2 g) at {odo / 1000:,.1f} km: it enters the car's "
                              f"history and opens a claim on Dan's policy in the same transaction",
                              tel.report_crash(vin, car, t=t, decel_mms2=61_000, odometer_m=odo, airbag=True))
    claim = claim_id(crashed)
    story.committed(f"Dan chooses Meister Werkstatt to assess claim {claim} (no other workshop's estimate counts)",
                    ins.choose_workshop(dan, claim, "meister-werkstatt"))
    story.committed(f"Meister Werkstatt estimates the repair of claim {claim}: {eur(238_000)}",
                    ins.assess_claim(shop, claim, 238_000, reference="KV-2024-0913"))
    story.committed(f"Allied approves {eur(238_000)}; the payout is {eur(238_000 - 30_000)} after the deductible",
                    ins.approve_claim(allied, claim, 238_000))
    before = bc.as_key(dan).query("payments", "balance", owner=dan.did, currency="EUR",
                                  min_height=bc.status()["height"])["balance"]
    paid = story.committed("Allied pays the claim from its account to Dan's", ins.pay_claim(allied, claim))
    after = bc.as_key(dan).query("payments", "balance", owner=dan.did, currency="EUR",
                                 min_height=paid.height)["balance"]
    story.say(f"  → Dan's account: {eur(before)} → {eur(after)}")

    story.say("  a month cannot pass in a demo: Dan ends the policy now, and its period is billed pro rata")
    story.committed("Dan cancels the policy", ins.cancel_policy(dan, pid))
    sent, issued = ins.issue_due(allied, "allied-insurance")
    story.committed(f"Allied issues the statements that are due: {len(issued)}, priced on the ledger from the trip "
                    f"totals", sent[-1])
    checked = ins.check_statement(pid, 0, key=dan, min_height=sent[-1].height)
    s, totals = checked.statement, checked.totals
    assert totals is not None
    story.say(f"[green]✓[/] Dan's SDK checks the statement to the cent: {eur(s['premium'])} for "
              f"{(s['end'] - s['start']) // 1000} s of a month (the base pro rata), {totals.distance_m // 1000} km "
              f"({totals.night_distance_m // 1000} at night) and {totals.harsh_brakes} harsh brakes, as the car's own "
              f"trip totals say")
    whole = expected_premium(pricing, totals, checked.policy["period_ms"], checked.policy["period_ms"])
    story.say(f"  (had the month run its course, the same trips would cost {eur(whole)}: the whole base and the km)")
    story.committed(f"Dan pays the statement, {eur(s['premium'])}, to Allied", ins.pay_premium(dan, pid, 0))


def _wait_past(t: int) -> None:
    """Sleep until the clock (and so the next block's time) is past ``t`` (ms)."""
    while time.time_ns() // 1_000_000 <= t:
        time.sleep(0.02)


def _refused_off_ledger(story: Story, what: str, action: Callable[[], Any]) -> None:
    """A step the SDK refuses before anything reaches the ledger (a voucher check)."""
    story.step += 1
    try:
        action()
    except BlokautoError as err:
        story.console.print(f"[yellow]✗[/] {story.step:>2}. {what}  → refused off the ledger "
                            f"{escape(f'[{err.code}]')} {escape(err.message)}")
        return
    raise AssertionError(f"the SDK accepted: {what}")


def privacy_story(bc: Client, keys: KeyStore, story: Story, vault_dir: Path, vin: str) -> None:
    """Allied keeps Ben's name and address in its vault; the ledger holds commitments only. Ben asks
    to be forgotten: the vault destroys his data and key, the ledger records a tombstone."""
    from ..modules.privacy.messages import CommitPersonalData, EraseSubject
    from ..vault import SubjectErased, Vault

    allied = keys.load("allied-insurance-admin")
    story.say("\n[bold]Personal data off the ledger[/]")
    with Vault(vault_dir) as vault:
        ben = vault.new_subject()
        name = vault.put(ben, "name", "Ben Becker", vin=vin)
        address = vault.put(ben, "postal_address", "Leopoldstr. 12, 80802 München", vin=vin)
        story.committed(f"Allied keeps Ben's name and address in its vault ({vault_dir.name}/); the ledger gets "
                        f"salted commitments only", _all(
                            bc.send(CommitPersonalData(subject=ben, field="name", commitment=name.commitment, vin=vin),
                                    allied),
                            bc.send(CommitPersonalData(subject=ben, field="postal_address",
                                                       commitment=address.commitment, vin=vin), allied)))
        erased = bc.send(EraseSubject(subject=ben), allied)
        vault.erase(ben)
        story.committed("Ben asks Allied to forget him: the vault destroys his key and data, the ledger records a "
                        "tombstone (no personal data in it)", erased)
        try:
            vault.get(ben, "name")
            story.say("[red]✗ the vault still reads Ben's name[/]")
        except SubjectErased:
            story.say("[green]✓[/] the vault can no longer read anything of Ben's; every block and proof still verifies "
                      "(the audit below re-checks them all)")


def share_story(bc: Client, keys: KeyStore, story: Story, vin: str) -> None:
    """Ben shares his car's report with a buyer, who opens and verifies it without an account."""
    story.say("\n[bold]Sharing the report[/]")
    link = bc.share_report(vin, keys.load("ben"), ttl_ms=7 * 86_400_000)
    story.say(f"  Ben signs a link to his car's report, valid 7 days: {escape(link[:72])}…")
    token = link.split("share=", 1)[1]
    with Client(bc.url, trust=bc.genesis) as buyer:  # no key, no account: only the link
        doc = buyer.report(vin, share=token)  # verified against the consortium's trust anchor
    story.say(f"[green]✓[/] a buyer with no account opens it and verifies it offline: {doc['summary']['owners']} "
              f"owner(s), odometer {doc['summary']['odometer']['status']}")
    story.refused("the same buyer, without the link, asks for the report",
                  lambda: Client(bc.url, trust=bc.genesis).report(vin))


def print_history(bc: Client, story: Story, vin: str, reader: KeyPair) -> None:
    head = bc.status()["height"]  # every block so far, read back from the state queries read
    bc = bc.as_key(reader)  # the holder reads everything about the car
    v = bc.query("vehicles", "vehicle", vin=vin, min_height=head)
    hist = bc.query("vehicles", "history", vin=vin, min_height=head)
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
                  "accident": lambda: f"{d['severity']} on {d['date']} (recorded {day(e['time'])}), "
                                      f"{'/'.join(d['impact_areas'])}, airbags {d['airbags_deployed']}",
                  "repair": lambda: f"{d['odometer']:,} km: {', '.join(d['items'])}",
                  "parts_installed": lambda: ", ".join(i.get("part") or f"{i['qty']}× {i['batch']}" for i in d["items"]),
                  "parts_removed": lambda: ", ".join(i.get("part") or f"{i['qty']}× {i['batch']}" for i in d["items"]),
                  "recall_remedied": lambda: f"recall {d['number']} ({d['method']})",
                  "ecus_fitted": lambda: ", ".join(f"{x['ecu']} {x['path'] or '(none)'}" for x in d["ecus"]),
                  "software_installed": lambda: ", ".join(f"{x['ecu']} → {x['path']} (counter {x['release_counter']})"
                                                          for x in d["installed"])}.get(e["type"], lambda: "")()
        story.say(f"  {e['seq']:>2}. block {e['height']:>3} {day(e['time'])}  {e['type']:<18} by {e['org'] or orgs['']:<22} {escape(detail)}")
    story.say(f"  history head {hist['head'][:16]}… over {hist['total']} entries (proven in the vehicle record)")


def day(ms: int) -> str:
    """A block time (ms) as the UTC date it falls on."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def _who(holder: str) -> str:
    return holder if holder.startswith("org:") else holder[:20] + "…"
