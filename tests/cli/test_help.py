"""Every command's --help describes every option and argument in words, with a metavar that says
what to type, and never a Python type (``<bool>``, ``<list[str]>``)."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
import typer
from typer.testing import CliRunner

from blokauto.cli.main import app

PY_TYPE = re.compile(r"<(str|int|float|bool|path|list\[[^\]]*\]|[a-z_]+)>")


def commands(group, path=()) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, group
    for name, cmd in getattr(group, "commands", {}).items():
        yield from commands(cmd, (*path, name))


ALL = list(commands(typer.main.get_command(app)))


def test_every_command_group_is_reachable():
    names = {" ".join(p) for p, _ in ALL}
    for expected in ("init", "keys new", "node start", "node backup", "node restore", "node scrub", "tx send",
                     "state", "query", "report", "verify", "audit", "demo", "network up", "bench throughput"):
        assert expected in names


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) or "blokauto" for p, _ in ALL])
def test_every_option_and_argument_is_described(path, cmd):
    for param in cmd.params:
        if getattr(param, "hidden", False):
            continue
        helptext = getattr(param, "help", None)
        assert helptext and len(helptext) > 8, f"{' '.join(path)}: {param.name} has no description"
        assert helptext[0].isupper() or helptext[0] in "`.-" or helptext.startswith(("e.g.", "...")), \
            f"{' '.join(path)}: {param.name}: {helptext!r}"
        if param.param_type_name == "option" and not getattr(param, "is_flag", False) and not param.secondary_opts:
            assert param.metavar, f"{' '.join(path)}: {param.name} says no metavar (what to type)"


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) or "blokauto" for p, _ in ALL])
def test_help_shows_no_python_types(path, cmd):
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert not PY_TYPE.search(result.output), f"{' '.join(path)}: {PY_TYPE.search(result.output).group(0)}"
