"""Starting and stopping the engine: a failed recovery still shuts down cleanly."""

import sqlite3
from pathlib import Path

import pytest

from blokauto.modules import default_registry
from blokauto.node.committer import BlockCommitter
from blokauto.node.faults import LogBehindCommitted

from conftest import K, write_chain


@pytest.mark.timeout(30)
def test_engine_stops_after_a_failed_recovery(tmp_path: Path) -> None:
    data = tmp_path / "data"
    genesis = write_chain(data)
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    engine.recover()
    engine.close()
    with sqlite3.connect(data / "state.db") as c:  # state.db claims a height chain.db never reached
        c.execute("UPDATE meta SET v=99 WHERE k='height'")
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    with pytest.raises(LogBehindCommitted, match="committed blocks up to 99") as err:
        engine.recover()
    assert "delete state.db" not in str(err.value).replace("do not delete state.db", "")
    engine.close()  # must return (the flusher never started)
    with sqlite3.connect(data / "state.db") as c:
        assert c.execute("SELECT v FROM meta WHERE k='height'").fetchone()[0] == 99  # nothing changed
