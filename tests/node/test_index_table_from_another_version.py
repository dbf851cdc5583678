"""A module index table that another version of blokauto created with other columns: recreated when
it is empty (a data set or a node that never wrote a row to it), refused with a sentence naming the
way out when it holds rows (they derive from the blocks: the state is rebuilt from the block log)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from blokauto.modules import default_registry
from blokauto.store.state import StateStore

OLD = ("CREATE TABLE ix_software_installs (vin TEXT NOT NULL, ecu TEXT NOT NULL, height INTEGER NOT NULL, "
       "_height INTEGER NOT NULL, _h BLOB NOT NULL, PRIMARY KEY (vin, ecu, height)) WITHOUT ROWID")


def _old_table(path: Path, row: bool) -> None:
    StateStore(path, default_registry()).close()
    c = sqlite3.connect(path)
    c.execute("DROP TABLE ix_software_installs")
    c.execute(OLD)
    c.execute("CREATE INDEX ix_software_installs_old ON ix_software_installs (ecu)")
    if row:
        c.execute("INSERT INTO ix_software_installs VALUES ('V1', 'e', 1, 1, x'00')")
    c.commit()
    c.close()


def test_an_empty_table_of_another_version_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _old_table(path, row=False)
    StateStore(path, default_registry()).close()
    c = sqlite3.connect(path)
    cols = [r[1] for r in c.execute("PRAGMA table_info(ix_software_installs)")]
    names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE tbl_name='ix_software_installs'")}
    assert cols[:3] == ["vin", "n", "ecu"] and "ix_software_installs_old" not in names


def test_a_table_of_another_version_with_rows_is_refused_naming_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _old_table(path, row=True)
    with pytest.raises(RuntimeError, match="another version of blokauto.*move state.db aside"):
        StateStore(path, default_registry())
    c = sqlite3.connect(path)  # nothing was dropped
    assert c.execute("SELECT COUNT(*) FROM ix_software_installs").fetchone() == (1,)
