"""``blokauto privacy``: personal data an organisation holds in its vault (DATA/vault), off the
ledger, and what the ledger records of it: salted commitments and, after erasure, a tombstone.

    record SUBJECT|--new FIELD VALUE   store a value in the vault, commit to it on the ledger
    erase SUBJECT                      destroy the subject's key and data, record the tombstone
    export SUBJECT                     everything held about the person, as JSON (GDPR Art. 15, 20)
    disclose SUBJECT FIELD             the disclosure a person hands a third party
    check-disclosure FILE              does the ledger hold that commitment, still in force?

Transactions and reads are signed with ``--key NAME`` (a member key of the organisation in
DATA/keys); ``check-disclosure`` may use any key the ledger knows.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import httpx
import msgspec
import typer
from rich.markup import escape

from ..core.errors import Unavailable
from .common import (DataOpt, JsonOpt, NodeOpt, TrustOpt, client, console, err_console, flag, group, print_json,
                     say_trust, signing_key, when)
from .errors import cli_errors, fail
from .tx import WaitOpt, print_receipt

privacy_app = group("Personal data off the ledger: the organisation's vault, commitments, erasure, export and "
                    "selective disclosure.")

VAULT_FOLDER = "vault"
SubjectArg = typer.Argument(..., metavar="SUBJECT", help="The subject's id (subj-..., as `privacy record --new` printed it).")
KeyOpt = typer.Option(..., "--key", "-k", metavar="NAME",
                      help="A member key of your organisation (its name in DATA/keys): it signs the transaction and "
                           "the reads.")
OutOpt = typer.Option(None, "--out", "-o", metavar="FILE",
                      help="Write the JSON to this file (created readable by you only) instead of stdout.")


def _vault(data: Path) -> Any:
    from ..vault import Vault

    return Vault(data / VAULT_FOLDER)


def _write_json(doc: Any, out: Optional[Path]) -> None:
    """``doc`` as JSON on stdout, or in ``out`` (mode 0600: it holds personal data)."""
    from ..core.encoding import to_builtins

    text = json.dumps(to_builtins(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    if out.is_dir():
        fail(f"--out {out} is a folder; name a file", 2)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    err_console.print(f"wrote {escape(str(out))}")


def _checked(msg: Any) -> Any:
    """``msg`` if the ledger would decode it (a subject id, field name and VIN of the right form);
    else exit 2 before the vault changes."""
    try:
        return msgspec.json.decode(msgspec.json.encode(msg), type=type(msg))
    except msgspec.ValidationError as exc:
        fail(f"the ledger would not take this: {exc}", 2)


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.HTTPError, ConnectionError, Unavailable))


@privacy_app.command("record")
@cli_errors
def record(words: list[str] = typer.Argument(..., metavar="[SUBJECT] FIELD VALUE",
                                             help="The subject (omit it with --new), the field (name, postal_address: "
                                                  "lowercase, digits, _) and its value (- reads it from stdin, so it "
                                                  "stays out of the shell history)."),
           new: bool = flag("--new", "A new subject: the vault assigns its id (give FIELD VALUE only)."),
           vin: Optional[str] = typer.Option(None, "--vin", metavar="VIN",
                                             help="The vehicle the value is held for (a registered VIN), if any."),
           key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
           trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Store a person's value in the vault (encrypted) and record its salted commitment on the ledger."""
    from ..modules.privacy.messages import CommitPersonalData

    want = 2 if new else 3
    if len(words) != want:
        fail(f"give {'FIELD VALUE' if new else 'SUBJECT FIELD VALUE'} ({len(words)} given)"
             + ("" if new else "; --new makes a new subject"), 2)
    *subject_given, field, value = words
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
    sender = signing_key(data, key)
    with client(node, data, trust, key=sender) as c:  # its trust anchor is checked before the vault changes
        with _vault(data) as vault:
            _checked(CommitPersonalData(subject=subject_given[0] if subject_given else "subj-" + "a" * 26,
                                        field=field, commitment="0" * 64, vin=vin))
            subject = vault.new_subject() if new else subject_given[0]
            disclosure = vault.put(subject, field, value, vin=vin)
        msg = CommitPersonalData(subject=subject, field=field, commitment=disclosure.commitment, vin=vin)
        if not as_json:
            console.print(f"subject {subject}\nfield {field}\ncommitment {disclosure.commitment}")
        try:
            if wait <= 0:  # --wait 0: the id, at once
                console.print(c.submit(c.sign(c.build(msg, sender), sender)))
                return
            info = c.send(msg, sender, wait=wait)
            say_trust(c)
        except Exception as exc:
            why = "the node did not take it" if _unreachable(exc) else "the node refused it"
            err_console.print(f"[yellow]the value is in the vault as {field} of {subject}, but its commitment is not "
                              f"on the ledger ({why}); record it again when that is resolved: blokauto privacy "
                              f"record {subject} {field} - --key {escape(key)}[/]")
            raise
    if as_json:
        print_json({"subject": subject, "field": field, "commitment": disclosure.commitment, "id": info.id,
                    "height": info.height, "receipt": info.receipt})
        if not info.ok:
            raise typer.Exit(1)
        return
    print_receipt(info, False)


@privacy_app.command("erase")
@cli_errors
def erase(subject: str = SubjectArg,
          tombstone_only: bool = flag("--tombstone-only",
                                      "Only record the tombstone on the ledger (the vault erased the subject already, "
                                      "and the node was unreachable then)."),
          key: str = KeyOpt, wait: float = WaitOpt, data: Path = DataOpt(), node: str = NodeOpt,
          trust: Optional[Path] = TrustOpt, as_json: bool = JsonOpt) -> None:
    """Erase a person: destroy their key and data in the vault, then record a tombstone on the
    ledger (no personal data in it). If the node cannot be reached, the vault erases all the same
    and the command says how to record the tombstone later (exit 2)."""
    from ..modules.privacy.messages import EraseSubject

    sender = signing_key(data, key)
    msg = _checked(EraseSubject(subject=subject))
    with client(node, data, trust, key=sender) as c:  # its trust anchor is checked before the vault changes
        with _vault(data) as vault:
            if tombstone_only:
                if subject in vault.subjects() and not vault.erased(subject):
                    fail(f"the vault still holds subject {subject}: erase it there too (run without "
                         f"--tombstone-only)", 1)
            elif vault.erased(subject):
                err_console.print(f"the vault erased {subject} already; recording the tombstone")
            else:
                vault.erase(subject)
                if not as_json:
                    console.print(f"[green]erased[/] {subject} from the vault {escape(str(vault.folder))}: its key "
                                  f"and data are destroyed")
        try:
            if wait <= 0:  # --wait 0: the id, at once
                console.print(c.submit(c.sign(c.build(msg, sender), sender)))
                return
            info = c.send(msg, sender, wait=wait)
            say_trust(c)
        except Exception as exc:
            if not _unreachable(exc):
                raise
            fail(f"the tombstone is pending: the node at {node} did not take it ({exc or type(exc).__name__}). The "
                 f"vault has erased {subject}; record the tombstone when the node answers: blokauto privacy erase "
                 f"{subject} --tombstone-only --key {key}", 2)
    print_receipt(info, as_json)


def _ledger_records(c: Any, subject: str) -> dict[str, Any]:
    head = c.checkpoint("latest").header
    page, offset, commitments = 1000, 0, []
    while True:
        r = c.query("privacy", "commitments", subject=subject, limit=page, offset=offset, min_height=head.height)
        commitments += r["commitments"]
        offset += page
        if offset >= r["total"] or not r["commitments"]:
            break
    return {"as_of": {"height": head.height, "time": head.time}, "commitments": commitments,
            "tombstones": r["tombstones"]}


@privacy_app.command("export")
@cli_errors
def export(subject: str = SubjectArg, out: Optional[Path] = OutOpt, key: str = KeyOpt, data: Path = DataOpt(),
           node: str = NodeOpt, trust: Optional[Path] = TrustOpt) -> None:
    """Everything held about a person (GDPR Articles 15 and 20), as JSON: the vault's values with
    their salts and commitments, and what the ledger records (commitments, tombstones). For an
    erased subject the vault part says when it was erased."""
    from ..vault._vault import now_ms, utc

    sender = signing_key(data, key)
    with _vault(data) as vault:
        if vault.erased(subject):
            at = vault.erased_at(subject)
            held: dict[str, Any] = {"subject": subject, "erased": True, "erased_ms": at, "erased_at": utc(at),
                                    "fields": [],
                                    "note": "the vault destroyed this subject's key and data; nothing of it can be "
                                            "read any more"}
        else:
            held = {**vault.export(subject), "erased": False}
    with client(node, data, trust, key=sender) as c:
        ledger = _ledger_records(c, subject)
        say_trust(c)
    exported = now_ms()
    _write_json({"format": "blokauto-privacy-export/1", "subject": subject, "exported_ms": exported,
                 "exported": utc(exported), "vault": held, "ledger": ledger}, out)


@privacy_app.command("disclose")
@cli_errors
def disclose(subject: str = SubjectArg,
             field: str = typer.Argument(..., metavar="FIELD", help="The field to disclose (name, postal_address)."),
             out: Optional[Path] = OutOpt, data: Path = DataOpt()) -> None:
    """The disclosure of one field a person hands a third party: the value, its salt and its
    commitment (JSON). Whoever holds it checks it with `blokauto privacy check-disclosure FILE`."""
    with _vault(data) as vault:
        d = vault.disclose(subject, field)
    _write_json(d, out)


@privacy_app.command("check-disclosure")
@cli_errors
def check_disclosure(file: Path = typer.Argument(..., metavar="FILE", help="A disclosure (JSON, from `privacy disclose`)."),
                     key: str = typer.Option(..., "--key", "-k", metavar="NAME",
                                             help="Your key (its name in DATA/keys; any key the ledger knows) to sign "
                                                  "the read."),
                     data: Path = DataOpt(), node: str = NodeOpt, trust: Optional[Path] = TrustOpt,
                     as_json: bool = JsonOpt) -> None:
    """Check a disclosure: its value and salt open its commitment, and the ledger holds that
    commitment, in force (not replaced, not erased). Exit 0 if so, 1 if not."""
    from ..modules.privacy.commitment import commitment
    from ..vault import Disclosure

    if not file.is_file():
        fail(f"the disclosure file {file} does not exist", 2)
    try:
        d = msgspec.json.decode(file.read_bytes(), type=Disclosure)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        fail(f"{file} is not a disclosure ({exc})", 2)
    try:
        opened = commitment(d.subject, d.field, d.value, d.salt) == d.commitment
    except ValueError:
        opened = False
    answer: dict[str, Any] = {"subject": d.subject, "field": d.field, "commitment": d.commitment, "opens": opened}
    if opened:
        sender = signing_key(data, key)
        with client(node, data, trust, key=sender) as c:
            r = c.query("privacy", "commitment", subject=d.subject, field=d.field, commitment=d.commitment)
            say_trust(c)
        answer.update(recorded=r["recorded"], status=r["status"], record=r["record"], tombstone=r["tombstone"])
    ok = opened and answer.get("status") == "live"
    answer["ok"] = ok
    if as_json:
        print_json(answer)
    elif not opened:
        console.print(f"[red]not proven[/]: the value and salt in {escape(str(file))} do not open its commitment "
                      f"(the value was changed, or the salt is not the one the vault drew)")
    elif not answer["recorded"]:
        console.print(f"[red]not proven[/]: the ledger holds no commitment {d.commitment} for {escape(d.field)} of "
                      f"{escape(d.subject)}")
    else:
        rec = answer["record"]
        said = f"{escape(d.field)} of {escape(d.subject)}, recorded by {escape(rec['org'])} at block {rec['height']} " \
               f"({when(rec['time'])})"
        if answer["status"] == "live":
            console.print(f"[green]proven[/]: {said}, in force")
        elif answer["status"] == "erased":
            t = answer["tombstone"]
            console.print(f"[red]erased[/]: {said}; {escape(t['org'])} erased the subject at block {t['height']} "
                          f"({when(t['time'])}): the disclosure no longer counts")
        else:
            console.print(f"[red]replaced[/]: {said}, but replaced at block {rec['replaced']} by a newer value")
    if not ok:
        raise typer.Exit(1)
