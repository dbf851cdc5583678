"""The layering and determinism rules, checked on the source (AST, nothing is imported).

- ``core/`` and ``modules/`` never import the outer layers: ``node``, ``api``, ``cli``, ``web``,
  ``store``, ``client`` (relative imports are resolved; ``__import__``/``importlib`` with a
  constant name count too);
- ``core/`` imports nothing from ``modules/`` (modules plug into the core, not the reverse);
- the state transition is deterministic: no ``time``, ``datetime``, ``random``, ``secrets``,
  ``uuid`` or ``os.urandom``; no floats (literals, ``float()``, ``float`` in annotations or type
  expressions, true division ``/``);
- modules meet only at their declared doors: a module imports of another module only its
  ``doors`` (the typed door and the records it returns) and ``messages``; the report, the
  verifiers, the API, the SDK and the audit import of a module only its package (which exports
  its door), ``doors``, ``messages``, ``errors`` and ``keys`` (its state-key prefixes);
- no raw SQL on a module's index tables outside that module: no other file names them
  (``ix_<module>_...``) or imports the ``spec`` that declares them (generic code such as the
  store and the audit walks ``registry.indexes`` and names no table);
- ``verify/`` runs offline: it imports neither the node, the store, the API, the CLI, the SDK nor
  the report assembly.

Every violation is reported as ``file:line: what``. The checker is itself tested on snippets,
so a rule cannot silently stop matching.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

SRC = ROOT / "src"
PACKAGE = SRC / "blokauto"
OUTER_LAYERS = ("node", "api", "cli", "web", "store", "client")
NONDETERMINISTIC_MODULES = ("time", "datetime", "random", "secrets", "uuid")


@dataclass(frozen=True)
class Import:
    name: str  # absolute dotted name
    line: int


def module_name(path: Path) -> str:
    """``src/blokauto/core/chain.py`` -> ``blokauto.core.chain`` (a package's ``__init__`` -> the package)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(tree: ast.AST, path: Path) -> list[Import]:
    """Every module ``tree`` imports, as absolute names (``from x import y`` yields x and x.y)."""
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path).split(".")
                if node.level - 1 > len(base) - 1:
                    raise AssertionError(f"{path}:{node.lineno}: relative import beyond the top package")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append(Import(target, node.lineno))
            out += [Import(f"{target}.{a.name}", node.lineno) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            dynamic = (isinstance(f, ast.Name) and f.id in ("__import__", "import_module")) or \
                (isinstance(f, ast.Attribute) and f.attr == "import_module")
            if dynamic:
                name = node.args[0].value
                if name.startswith("."):
                    level = len(name) - len(name.lstrip("."))
                    base = _package_of(path).split(".")
                    name = ".".join(base[: len(base) - (level - 1)] + ([name.lstrip(".")] if name.strip(".") else []))
                out.append(Import(name, node.lineno))
    return out


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layering_violations(path: Path, tree: ast.AST) -> list[str]:
    rel = path.relative_to(SRC)
    mod = module_name(path)
    out = []
    for imp in imports_of(tree, path):
        for layer in OUTER_LAYERS:
            if _is_under(imp.name, f"blokauto.{layer}"):
                out.append(f"{rel}:{imp.line}: {mod} imports {imp.name} (the outer layer '{layer}')")
        if _is_under(mod, "blokauto.core") and _is_under(imp.name, "blokauto.modules"):
            out.append(f"{rel}:{imp.line}: {mod} imports {imp.name} (core must not depend on modules)")
    return sorted(set(out))


def _names_in(expr: ast.AST | None) -> set[str]:
    """Names in a type expression, looking inside string annotations too."""
    if expr is None:
        return set()
    names = set()
    for n in ast.walk(expr):
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.Attribute):
            names.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                names |= _names_in(ast.parse(n.value, mode="eval"))
            except SyntaxError:
                pass
    return names


def determinism_violations(path: Path, tree: ast.AST) -> list[str]:
    rel = path.relative_to(SRC)
    out = []

    def bad(node: ast.AST, what: str) -> None:
        out.append(f"{rel}:{getattr(node, 'lineno', 0)}: {what}")

    for imp in imports_of(tree, path):
        top = imp.name.split(".")[0]
        if top in NONDETERMINISTIC_MODULES:
            out.append(f"{rel}:{imp.line}: imports {imp.name} (clock or randomness in the state transition)")
        if imp.name == "os.urandom":
            out.append(f"{rel}:{imp.line}: imports os.urandom (randomness in the state transition)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "urandom":
            bad(node, "uses urandom (randomness in the state transition)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
            bad(node, f"float literal {node.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
            bad(node, "calls float()")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            bad(node, "true division '/' makes a float (use // on integers)")
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div):
            bad(node, "true division '/=' makes a float (use //= on integers)")
        annotations: list[ast.AST | None] = []
        if isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        elif isinstance(node, ast.arg):
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations.append(node.returns)
        elif isinstance(node, ast.Subscript):  # type expressions outside annotations: Annotated[float, ...]
            annotations.append(node)
        if any("float" in _names_in(a) for a in annotations):
            bad(node, "'float' in a type (annotation or type expression)")
    return sorted(set(out))


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (PACKAGE / f).rglob("*.py"))


CHECKED = _sources("core", "modules")


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_checked_layers_exist():
    names = {module_name(p) for p in CHECKED}
    assert {"blokauto.core.chain", "blokauto.core.execute", "blokauto.modules.governance.handlers"} <= names


def test_core_and_modules_do_not_import_outer_layers_and_core_does_not_import_modules():
    violations = [v for p in CHECKED for v in layering_violations(p, _parse(p))]
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_core_and_modules_use_no_clock_randomness_or_floats():
    violations = [v for p in CHECKED for v in determinism_violations(p, _parse(p))]
    assert not violations, "non-deterministic code in the state transition:\n" + "\n".join(violations)


# ---------------------------------------------------------------- the checker catches what it should

CORE_FILE = PACKAGE / "core" / "example.py"
MODULE_FILE = PACKAGE / "modules" / "governance" / "example.py"
MODULE_INIT = PACKAGE / "modules" / "governance" / "__init__.py"

LAYERING_CASES = [
    (MODULE_FILE, "from ...node import engine", "blokauto.node"),
    (MODULE_FILE, "from ... import api", "blokauto.api"),
    (MODULE_INIT, "from ...store.sqlite import Store", "blokauto.store.sqlite"),
    (CORE_FILE, "from ..cli.main import app", "blokauto.cli.main"),
    (CORE_FILE, "import blokauto.web", "blokauto.web"),
    (CORE_FILE, "from blokauto import client", "blokauto.client"),
    (CORE_FILE, "from ..modules import governance", "blokauto.modules"),
    (CORE_FILE, "from blokauto.modules.governance.state import ORGS", "blokauto.modules.governance.state"),
    (CORE_FILE, "x = __import__('blokauto.node.engine')", "blokauto.node.engine"),
    (MODULE_FILE, "import importlib\nm = importlib.import_module('blokauto.api.server')", "blokauto.api.server"),
]


@pytest.mark.parametrize("path, source, culprit", LAYERING_CASES, ids=[c[1].split("\n")[-1] for c in LAYERING_CASES])
def test_checker_flags_forbidden_import(path, source, culprit):
    found = layering_violations(path, ast.parse(source))
    assert found and all(":1: " in v or ":2: " in v for v in found)
    assert any(culprit in v for v in found), found


@pytest.mark.parametrize("path, source", [
    (MODULE_FILE, "from ...core.tx import Message"),
    (MODULE_FILE, "from ..vehicles import state"),
    (MODULE_INIT, "from . import handlers"),
    (MODULE_INIT, "from ..store import x"),  # in a package's __init__, '..' is blokauto.modules
    (CORE_FILE, "from . import crypto, merkle"),
    (CORE_FILE, "from .nodes import x"),  # a name that merely starts like a layer
    (CORE_FILE, "import blokauto.core.encoding"),
])
def test_checker_allows_inward_imports(path, source):
    assert layering_violations(path, ast.parse(source)) == []


DETERMINISM_CASES = [
    "import time",
    "import datetime as dt",
    "from datetime import datetime",
    "from random import randint",
    "import secrets",
    "import uuid",
    "import os\nn = os.urandom(16)",
    "from os import urandom",
    "x = 1.5",
    "x = 1e3",
    "x = float(y)",
    "def f(a: float) -> int: ...",
    "def f(a) -> float: ...",
    "class S:\n    rate: float",
    "class S:\n    rate: 'float | None'",
    "class S:\n    rates: dict[str, float] = {}",
    "Rate = Annotated[float, Meta(ge=0)]",
    "x = a / b",
    "x /= 2",
]


@pytest.mark.parametrize("source", DETERMINISM_CASES, ids=[c.split("\n")[-1].strip() for c in DETERMINISM_CASES])
def test_checker_flags_nondeterminism(source):
    found = determinism_violations(CORE_FILE, ast.parse(source))
    assert found, source
    assert all(v.startswith("blokauto/core/example.py:") for v in found)


@pytest.mark.parametrize("source", [
    "x = a // b",
    "x = 10 ** 3",
    "import hashlib",
    "def f(a: int) -> bool: return isinstance(a, int)",
    "s = 'float'",
    "from .encoding import Uint",
])
def test_checker_allows_deterministic_code(source):
    assert determinism_violations(CORE_FILE, ast.parse(source)) == []


# ---------------------------------------------------------------- doors between modules

MODULES = PACKAGE / "modules"
MODULE_NAMES = sorted(p.name for p in MODULES.iterdir() if (p / "__init__.py").exists())
#: What a module may import of another: its door and its messages.
DOOR_PARTS = ("doors", "messages")
#: What code outside the modules (report, verifiers, API, SDK, audit) may import of a module.
PUBLIC_PARTS = ("doors", "messages", "keys", "errors")
#: Code outside the modules that reads module state only through doors (the lead moves the node's
#: remaining direct reads of governance's state to ``GovernanceReader``).
DOOR_CHECKED = ("report", "verify", "api", "client", "web", "ota", "node/audit.py")
VERIFY_FORBIDDEN = ("node", "store", "api", "cli", "client", "report")


def _module_of(name: str) -> tuple[str, str] | None:
    """``blokauto.modules.parts.state.Part`` -> ("parts", "state"); the package alone -> ("parts", "")."""
    parts = name.split(".")
    if len(parts) < 3 or parts[:2] != ["blokauto", "modules"] or parts[2] not in MODULE_NAMES:
        return None
    return parts[2], parts[3] if len(parts) > 3 else ""


def _submodule(name: str, part: str) -> bool:
    """Is ``part`` a file or package of module ``name`` (rather than a name its package exports)?"""
    return bool(part) and ((MODULES / name / f"{part}.py").exists() or (MODULES / name / part).is_dir())


def door_violations(path: Path, tree: ast.AST) -> list[str]:
    rel = path.relative_to(SRC)
    mod = module_name(path)
    own = _module_of(mod)
    allowed = DOOR_PARTS if own is not None else PUBLIC_PARTS
    out = []
    for imp in imports_of(tree, path):
        target = _module_of(imp.name)
        if target is None or (own is not None and target[0] == own[0]):
            continue
        name, part = target
        if _submodule(name, part) and part not in allowed:
            where = "a module reads another" if own is not None else "outside the module, read it"
            out.append(f"{rel}:{imp.line}: {mod} imports {imp.name}: {where} only through its door "
                       f"(blokauto.modules.{name}.doors)")
    return sorted(set(out))


def table_sql_violations(path: Path, tree: ast.AST) -> list[str]:
    """A module's index tables named, or their declarations imported, outside the module."""
    rel = path.relative_to(SRC)
    own = _module_of(module_name(path))
    out = []
    for name in MODULE_NAMES:
        if own is not None and own[0] == name:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and f"ix_{name}_" in node.value:
                out.append(f"{rel}:{node.lineno}: names a table of the {name} module (ix_{name}_...)")
        for imp in imports_of(tree, path):
            if _module_of(imp.name) == (name, "spec"):
                out.append(f"{rel}:{imp.line}: imports {imp.name}, where the {name} module declares its tables")
    return sorted(set(out))


def verify_violations(path: Path, tree: ast.AST) -> list[str]:
    rel = path.relative_to(SRC)
    out = []
    for imp in imports_of(tree, path):
        for layer in VERIFY_FORBIDDEN:
            if _is_under(imp.name, f"blokauto.{layer}"):
                out.append(f"{rel}:{imp.line}: verify imports {imp.name} (the '{layer}' layer: verification runs "
                           f"offline, without a node)")
        target = _module_of(imp.name)
        if target is not None and target[1] not in ("keys", ""):
            out.append(f"{rel}:{imp.line}: verify imports {imp.name}; of a module it needs only its state-key "
                       f"prefixes (keys), and has its own rules")
    return sorted(set(out))


def _door_checked() -> list[Path]:
    out: list[Path] = []
    for f in DOOR_CHECKED:
        target = PACKAGE / f
        out += [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    return out


def test_modules_meet_only_at_their_doors():
    files = _sources("modules") + _door_checked()
    violations = [v for p in files for v in door_violations(p, _parse(p))]
    assert not violations, "state read around a module's door:\n" + "\n".join(violations)


def test_no_raw_sql_on_a_module_tables_outside_it():
    violations = [v for p in sorted(PACKAGE.rglob("*.py")) for v in table_sql_violations(p, _parse(p))]
    assert not violations, "a module's tables read outside it:\n" + "\n".join(violations)


def test_verify_needs_no_node_and_no_store():
    files = _sources("verify")
    assert {"blokauto.verify", "blokauto.verify._report"} <= {module_name(p) for p in files}
    violations = [v for p in files for v in verify_violations(p, _parse(p))]
    assert not violations, "verify/ depends on more than the core and the modules' keys:\n" + "\n".join(violations)


def test_every_module_wires_its_door_in_its_definition():
    """Each module's door is wired in its package ``__init__`` with ``module.provide`` (an explicit
    list a reader finds in one place), never as a side effect at the bottom of another file."""
    for name in MODULE_NAMES:
        for path in sorted((MODULES / name).rglob("*.py")):
            text = path.read_text()
            assert ".provides[" not in text, f"{path.relative_to(SRC)} registers a provider by hand"
            if path.name != "__init__.py":
                assert "module.provide(" not in text, f"{path.relative_to(SRC)} wires a door outside the definition"
        assert "module.provide(" in (MODULES / name / "__init__.py").read_text(), f"{name} wires no door"


PARTS_FILE = PACKAGE / "modules" / "parts" / "example.py"
REPORT_FILE = PACKAGE / "report" / "example.py"
VERIFY_FILE = PACKAGE / "verify" / "example.py"

DOOR_CASES = [
    (PARTS_FILE, "from ..vehicles.state import VEHICLES"),
    (PARTS_FILE, "from ..vehicles import handlers"),
    (PARTS_FILE, "from ...modules.recalls.spec import REMEDIED"),
    (PARTS_FILE, "from blokauto.modules.governance.state import CONSENSUS"),
    (PARTS_FILE, "from ..vehicles import state"),
    (REPORT_FILE, "from ..modules.vehicles.state import VEHICLES"),
    (REPORT_FILE, "from ..modules.parts import handlers"),
    (REPORT_FILE, "from ..modules.recalls.queries import of_vehicle"),
]


@pytest.mark.parametrize("path, source", DOOR_CASES, ids=[f"{c[0].parent.name}:{c[1]}" for c in DOOR_CASES])
def test_checker_flags_reading_around_a_door(path, source):
    assert door_violations(path, ast.parse(source)), source


@pytest.mark.parametrize("path, source", [
    (PARTS_FILE, "from ..vehicles.doors import BirthFacts"),
    (PARTS_FILE, "from ..recalls.messages import OpenCampaign"),
    (PARTS_FILE, "from .state import PARTS"),
    (PARTS_FILE, "from . import handlers"),
    (REPORT_FILE, "from ..modules.vehicles import VehicleDoor"),
    (REPORT_FILE, "from ..modules.parts.doors import PartsDoor"),
    (REPORT_FILE, "from ..modules import default_registry"),
    (REPORT_FILE, "from ..modules.recalls.keys import OPEN"),
])
def test_checker_allows_doors(path, source):
    assert door_violations(path, ast.parse(source)) == []


@pytest.mark.parametrize("path, source", [
    (REPORT_FILE, "rows = snap.conn.execute('SELECT entry FROM ix_vehicles_history WHERE vin=?', (vin,))"),
    (REPORT_FILE, "from ..modules.vehicles.spec import HISTORY"),
    (PARTS_FILE, "view.sql('SELECT vin FROM ix_recalls_remedied')"),
    (PARTS_FILE, "from ..vehicles.spec import BIRTHS"),
])
def test_checker_flags_raw_sql_on_another_module_tables(path, source):
    assert table_sql_violations(path, ast.parse(source)), source


def test_checker_allows_a_module_its_own_tables():
    assert table_sql_violations(PARTS_FILE, ast.parse("from .spec import INSTALLATIONS\nq = 'ix_parts_history'")) == []


@pytest.mark.parametrize("source", [
    "from ..node.engine import Engine",
    "from ..store.state import StateStore",
    "import blokauto.store.blocks",
    "from ..report.assemble import build_report",
    "from ..modules.recalls.state import CAMPAIGNS",
])
def test_checker_flags_verify_reaching_the_node(source):
    assert verify_violations(VERIFY_FILE, ast.parse(source)), source


@pytest.mark.parametrize("source", ["from ..core import smt", "from ..modules.recalls import keys",
                                    "from ..modules.parts.keys import BOM"])
def test_checker_allows_verify_the_core_and_keys(source):
    assert verify_violations(VERIFY_FILE, ast.parse(source)) == []
