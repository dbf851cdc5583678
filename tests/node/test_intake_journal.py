"""The solo node's intake journal: what it acknowledged survives, a torn last group is set aside
(never acknowledged), and damage to acknowledged transactions stops the node instead of
silently dropping them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from blokauto.node.journal import GROUP_MAGIC, JOURNAL_FILE, IntakeJournal, JournalDamaged


def journal_with(tmp: Path, *groups: list[bytes]) -> IntakeJournal:
    j = IntakeJournal(tmp)
    j.read()
    j.open()
    for g in groups:
        j.append(g)
    j.close()
    return j


def test_every_appended_group_reads_back_in_order(tmp_path):
    journal_with(tmp_path, [b"a", b"bb"], [b"ccc"], [b""])
    assert IntakeJournal(tmp_path).read().txs == [b"a", b"bb", b"ccc", b""]


@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), max_size=6))
@settings(max_examples=60, deadline=None)
def test_any_groups_round_trip(groups):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        journal_with(Path(d), *groups)
        assert IntakeJournal(Path(d)).read().txs == [t for g in groups for t in g]


@pytest.mark.parametrize("cut", [1, 5, 12, 20, 33])
def test_a_group_cut_short_by_a_crash_is_set_aside_and_the_rest_kept(tmp_path, cut):
    journal_with(tmp_path, [b"first"], [b"second-group-being-written"])
    path = tmp_path / JOURNAL_FILE
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    got = IntakeJournal(tmp_path).read()
    assert got.txs == [b"first"] and got.torn_bytes > 0
    aside = tmp_path / f"{JOURNAL_FILE}.torn-1"
    assert aside.exists() and data.startswith(path.read_bytes()) and path.read_bytes() + aside.read_bytes() == data[:-cut]


def test_a_flipped_byte_in_an_acknowledged_group_stops_the_node(tmp_path):
    journal_with(tmp_path, [b"acknowledged-one", b"acknowledged-two"], [b"acknowledged-three"])
    path = tmp_path / JOURNAL_FILE
    data = bytearray(path.read_bytes())
    data[data.index(b"acknowledged-one") + 3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged) as err:
        IntakeJournal(tmp_path).read()
    assert "damaged at byte 16" in str(err.value) and "acknowledged" in str(err.value)
    assert path.read_bytes() == bytes(data)  # nothing changed


def test_a_journal_that_is_not_a_journal_is_refused(tmp_path):
    (tmp_path / JOURNAL_FILE).write_bytes(b"SQLite format 3\x00 and more")
    with pytest.raises(JournalDamaged):
        IntakeJournal(tmp_path).read()


def test_a_failed_write_leaves_the_journal_as_it_was(tmp_path, monkeypatch):
    j = IntakeJournal(tmp_path)
    j.read()
    j.open()
    j.append([b"kept"])
    before = (tmp_path / JOURNAL_FILE).read_bytes()
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        j.append([b"never-acknowledged"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert (tmp_path / JOURNAL_FILE).read_bytes() == before
    j.append([b"next"])
    j.close()
    assert IntakeJournal(tmp_path).read().txs == [b"kept", b"next"]


def test_clearing_keeps_a_readable_empty_journal(tmp_path):
    j = IntakeJournal(tmp_path, clear_above_bytes=10)
    j.read()
    j.open()
    j.append([b"x" * 50])
    j.committed()
    j.append([b"after"])
    j.close()
    assert IntakeJournal(tmp_path).read().txs == [b"after"]


def test_the_writer_answers_each_group_once_durable_and_clears_only_what_was_committed(tmp_path):
    from blokauto.node.journal import JournalWriter

    j = IntakeJournal(tmp_path, clear_above_bytes=0)
    j.read()
    j.open()
    w = JournalWriter(j)
    answers: list[tuple[str, object]] = []
    w.append([b"first"], lambda err: answers.append(("first", err)))
    w.committed()  # the first group's block is committed: it may go
    w.append([b"second"], lambda err: answers.append(("second", err)))  # not committed yet: it must stay
    w.close()
    j.close()
    assert answers == [("first", None), ("second", None)]
    assert IntakeJournal(tmp_path).read().txs == [b"second"]


def test_the_writer_reports_a_failed_write_to_the_group_it_stopped(tmp_path, monkeypatch):
    from blokauto.node.journal import JournalWriter

    j = IntakeJournal(tmp_path)
    j.read()
    j.open()
    w = JournalWriter(j)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    errors: list[object] = []
    w.append([b"lost"], errors.append)
    w.close()
    j.close()
    assert len(errors) == 1 and isinstance(errors[0], OSError)
    assert IntakeJournal(tmp_path).read().txs == []


def test_a_flipped_byte_in_the_last_complete_group_is_damage_not_a_torn_write(tmp_path):
    """The group's own length says it is complete: it was fsynced and answered, so it is not set aside."""
    journal_with(tmp_path, [b"first"], [b"acknowledged-last"])
    path = tmp_path / JOURNAL_FILE
    data = bytearray(path.read_bytes())
    data[data.index(b"acknowledged-last") + 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match="a complete group does not match its checksum"):
        IntakeJournal(tmp_path).read()
    assert not (tmp_path / f"{JOURNAL_FILE}.torn-1").exists()


def test_groups_missing_from_what_head_json_records_as_answered_are_damage(tmp_path):
    journal_with(tmp_path, [b"one"], [b"two"], [b"three"])
    path = tmp_path / JOURNAL_FILE
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"GRP1", data.index(b"two"))])  # the third group cut away cleanly
    with pytest.raises(JournalDamaged, match="holds 2 group"):
        IntakeJournal(tmp_path).read(answered=(0, 3))
    assert IntakeJournal(tmp_path).read(answered=(0, 2)).txs == [b"one", b"two"]


def test_a_deleted_journal_with_answered_groups_on_record_is_damage(tmp_path):
    with pytest.raises(JournalDamaged, match="the file is missing"):
        IntakeJournal(tmp_path).read(answered=(4, 1))
    assert IntakeJournal(tmp_path).read(answered=(4, 0)).txs == []  # nothing answered since it was emptied


def test_an_older_journal_put_back_is_damage(tmp_path):
    j = journal_with(tmp_path, [b"old"])
    old = (tmp_path / JOURNAL_FILE).read_bytes()
    j = IntakeJournal(tmp_path)
    j.read()
    j.open()
    j.clear()  # generation 1 now
    j.append([b"new"])
    j.close()
    (tmp_path / JOURNAL_FILE).write_bytes(old)
    with pytest.raises(JournalDamaged, match="generation 0"):
        IntakeJournal(tmp_path).read(answered=(1, 1))


def test_emptying_starts_a_new_generation_and_reports_it(tmp_path):
    seen: list[tuple[int, int]] = []
    j = IntakeJournal(tmp_path)
    j.read()
    j.on_durable = seen.append
    j.open()
    j.append([b"a"])
    j.append([b"b"])
    j.clear()
    j.append([b"c"])
    j.close()
    assert seen == [(0, 1), (0, 2), (1, 0), (1, 1)]
    got = IntakeJournal(tmp_path).read(answered=(1, 1))
    assert (got.txs, got.generation, got.groups) == ([b"c"], 1, 1)


def test_a_journal_moved_aside_as_the_refusal_says_starts_with_its_intact_groups_only(tmp_path):
    """The documented remedy, followed literally: `mv intake.journal intake.journal.damaged`. The
    node orders every intact group of the moved copy (answered transactions), before and after
    the damage, and does without the damaged one."""
    journal_with(tmp_path, [b"one"], [b"two", b"deux"], [b"three"])
    path = tmp_path / JOURNAL_FILE
    raw = bytearray(path.read_bytes())
    second = raw.find(GROUP_MAGIC, raw.find(GROUP_MAGIC) + 1)
    raw[second + 20] ^= 0xFF  # inside the second group
    path.write_bytes(bytes(raw))
    with pytest.raises(JournalDamaged):
        IntakeJournal(tmp_path).read(answered=(0, 3))
    path.rename(tmp_path / f"{JOURNAL_FILE}.damaged")
    j = IntakeJournal(tmp_path)
    contents = j.read(answered=(0, 3))
    assert contents.txs == [b"one", b"three"] and j.started_without == 1
    assert j.state == (1, 0)  # a new generation: the moved copy can never pass as this one


def test_a_whole_journal_moved_aside_gives_up_every_group(tmp_path):
    journal_with(tmp_path, [b"one"], [b"two"])
    (tmp_path / JOURNAL_FILE).rename(tmp_path / f"{JOURNAL_FILE}.damaged")
    j = IntakeJournal(tmp_path)
    assert j.read(answered=(0, 2)).txs == [b"one", b"two"] and j.started_without == 0


def test_a_torn_tail_the_node_set_aside_is_not_an_operators_decision(tmp_path):
    (tmp_path / f"{JOURNAL_FILE}.torn-1").write_bytes(b"x")
    with pytest.raises(JournalDamaged, match="the file is missing.*mv "):
        IntakeJournal(tmp_path).read(answered=(0, 2))
