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
from ..node.audit import audit
from ..node.init import OrgSpec, init_chain
from ..node.node import Node

MARKER = ".blokauto-demo"

FOUNDERS = [
    OrgSpec("kba", ("regulator", "police", "inspector"), "Kraftfahrt-Bundesamt (vehicle registry)"),
    OrgSpec("bavaria-motors", ("manufacturer",), "Bavaria Motors AG"),
    OrgSpec("allied-insurance", ("insurer",), "Allied Insurance SE"),
]


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
    story.committed("the registry (KBA) votes yes: 2 of 3 organisations, the proposal passes",
                    bc.send(gov.Vote(proposal=proposal, approve=True), kba))
    info = story.committed("Allied proposes a 30-minute limit on transaction validity",
                           bc.send(gov.Propose(action=gov_state.SetParameter(name="max_tx_ttl_ms", value=1_800_000)), allied))
    proposal = next(e["proposal"] for e in info.events if e["type"] == "governance.proposal_opened")
    story.committed("Bavaria Motors agrees; the parameter changes from the next block",
                    bc.send(gov.Vote(proposal=proposal, approve=True), bmw))

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
