"""What every command group shares: options, output, the SDK client and where its trust comes from.

Every option has a help text and a metavar that says what to type (``DIR``, ``URL``, ``NAME``,
``SECONDS``), and flags show none: ``tests/cli/test_help.py`` checks this for every command.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import msgspec
import typer
from rich.console import Console
from rich.markup import escape

from ..core.encoding import to_builtins

console = Console(highlight=False, emoji=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

DEFAULT_DATA = Path("blokauto-data")
DEFAULT_NODE = "http://127.0.0.1:8545"
DEFAULT_PORT = 8545

#: How a command that runs a node logs: today's text, or one JSON object per line on stderr (blokauto.logs).
LogFormatOpt = typer.Option("text", "--log-format", metavar="text|json",
                            help="How the node logs: text (the default), or json: every line one JSON object on "
                                 "stderr, with an access line per HTTP request (docs/operations.md).")


def group(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       rich_markup_mode="markdown")


def _help_option_shows_no_type() -> None:
    """Typer labels its own --help with the Python type ``<bool>``, and arguments with theirs
    (``<str>``) beside their metavar: the help says what to type in words instead. (typer is
    pinned; this uses its Command.get_help_option and TyperArgument.display_type_rich.)"""
    from typer import core as typer_core
    from typer._click import core as click_core

    typer_core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]

    original = click_core.Command.get_help_option
    if getattr(original, "_blokauto", False):
        return

    def get_help_option(self: Any, ctx: Any) -> Any:
        opt = original(self, ctx)
        if opt is not None and opt.metavar is None:
            opt.metavar = ""
        return opt

    get_help_option._blokauto = True  # type: ignore[attr-defined]
    click_core.Command.get_help_option = get_help_option  # type: ignore[method-assign]


_help_option_shows_no_type()


def flag(name: str, help: str, default: bool = False, *short: str) -> Any:
    """A switch (no value): help text only, no type shown."""
    return typer.Option(default, name, *short, help=help, metavar="")


def DataOpt(help: str = "Data folder of the chain (genesis.json, keys/, the node's files).") -> Any:  # noqa: N802
    return typer.Option(DEFAULT_DATA, "--data", "-d", envvar="BLOKAUTO_DATA", help=help, metavar="DIR")


def OptionalDataOpt(help: str) -> Any:  # noqa: N802
    return typer.Option(None, "--data", "-d", envvar="BLOKAUTO_DATA", help=help, metavar="DIR")


NodeOpt = typer.Option(DEFAULT_NODE, "--node", "-n", envvar="BLOKAUTO_NODE", help="Base URL of a node's API.",
                       metavar="URL")
JsonOpt = flag("--json", "Print JSON instead of text.")
TrustOpt = typer.Option(None, "--trust", metavar="FILE",
                        help="The consortium's genesis.json to verify against (default: DATA/genesis.json if there "
                             "is one; else the node's own, which the command then says).")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_builtins(data), indent=2, sort_keys=True) + "\n")


def when(ms: int | None) -> str:
    """A block time (ms since the epoch) as a UTC date and time people read."""
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def data_given(name: str = "data") -> bool:
    """Whether the user named ``--data`` (on the command line or in BLOKAUTO_DATA) rather than
    leaving its default."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return True
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)


def no_genesis(data: Path) -> str:
    return f"{data} holds no genesis.json: is it a data folder? (--data DIR verifies against DIR/genesis.json)"


def trust_anchor(data: Optional[Path], trust: Optional[Path]) -> Optional[Path]:
    """The one rule for what a command verifies against: ``--trust FILE``, else ``DATA/genesis.json``.
    A ``--data`` the user named must hold a genesis.json (a mistyped folder never silently drops the
    pin); the default folder, when it holds none, leaves the anchor to the node (and the command says
    so). Exit 2 for a named file or folder that is missing."""
    if trust is not None:
        if not trust.is_file():
            raise FileNotFoundError(f"the trust anchor file {trust} does not exist")
        return trust
    if data is None:
        return None
    if (data / "genesis.json").is_file():
        return data / "genesis.json"
    if data_given():
        raise FileNotFoundError(no_genesis(data))
    return None


AsOpt = typer.Option(None, "--as", "-a", envvar="BLOKAUTO_KEY", metavar="NAME|FILE",
                     help="Sign requests with this key: its name in DATA/keys, or a key file (….json). The node "
                          "answers what that key may read. Without it only public routes answer.")


def signing_key(data: Optional[Path], name: Optional[str]) -> Any:
    """The key ``name`` names: a key file (a path ending in .json, or containing a /), else the key of
    that name in ``DATA/keys`` (None: requests go unsigned)."""
    if name is None:
        return None
    from ..keystore import KeyFile, KeyStore
    from ..core.crypto import KeyPair

    if name.endswith(".json") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"the key file {path} does not exist")
        try:
            entry = msgspec.json.decode(path.read_bytes(), type=KeyFile)
            key = KeyPair(bytes.fromhex(entry.seed))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise ValueError(f"{path} is not a blokauto key file (name, did, seed): {exc}") from None
        if key.did != entry.did:
            raise ValueError(f"{path}: its seed is not the key of {entry.did}")
        return key
    folder = (data if data is not None else Path(DEFAULT_DATA)) / "keys"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder.parent} holds no keys/ folder: is it a data folder? (--data DIR names it; "
                                f"--as also takes a key file path)")
    return KeyStore(folder).load(name)


def share_origin(link: str) -> str:
    """The node a share link points at (scheme://host:port)."""
    from urllib.parse import urlsplit

    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}"


def share_token(given: str) -> str:
    """The token of a share link, given as the token itself or as the whole link (…?share=TOKEN)."""
    from urllib.parse import parse_qs, urlsplit

    if "share=" in given:
        found = parse_qs(urlsplit(given).query).get("share")
        if not found:
            raise ValueError(f"{given[:80]!r} holds no share token (…?share=TOKEN)")
        return found[0]
    return given


def client(node: str, data: Optional[Path] = None, trust: Optional[Path] = None, *, key: Any = None) -> Any:
    """The SDK client for ``node``, verifying against the trust anchor the user has
    (:func:`trust_anchor`); with none it uses the node's own genesis and says so (on stderr, so JSON
    output stays clean) — a served anchor is never trusted silently. ``key`` (a KeyPair) signs
    every request."""
    from ..client import Client

    return Client(node, trust=trust_anchor(data, trust), key=key)


def say_trust(c: Any) -> None:
    """Say which trust anchor what follows was verified against (a served one is never trusted silently)."""
    note = f"verified against trust anchor {c.trust_source} (genesis hash {c.genesis.hash().hex()[:16]}…)"
    if "not pinned" in c.trust_source:
        err_console.print(f"[yellow]{escape(note)}: pass --trust genesis.json or --data DIR to verify against "
                          f"your own copy[/]")
    else:
        err_console.print(f"[dim]{escape(note)}[/]")


def yes_no(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "-" if value is None else str(value)
