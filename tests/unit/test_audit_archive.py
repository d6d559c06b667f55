"""The audit archive file (audit_trail/archive.py): append-only at the database level, one chain across
appends and reopenings, the same entry never twice, a reused stream id with new content kept, search."""
from __future__ import annotations

import sqlite3

import pytest

from audit_trail.archive import ARCHIVE_FILE_NAME, ArchiveSearch, AuditArchive, verify

T0 = 1_738_300_000_000


def entry(n: int, **fields: str) -> tuple[str, dict[str, str]]:
    base = {"time_ms": str(T0 + n * 1000), "user": "operator", "action": "write", "result": "done",
            "tag": "T1.sp", "old": "", "new": str(n), "reason": "", "source_ip": "", "comment": ""}
    return f"{T0 + n * 1000}-0", {**base, **fields}


@pytest.fixture
def archive(tmp_path):
    with AuditArchive(tmp_path / ARCHIVE_FILE_NAME) as archive:
        yield archive


def test_the_database_refuses_update_and_delete(archive):
    archive.append([entry(1), entry(2)])
    db = sqlite3.connect(archive.path)
    for statement in ("UPDATE audit SET user = 'x' WHERE seq = 1", "DELETE FROM audit WHERE seq = 2",
                      "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(statement)
    db.close()
    assert archive.count() == 2 and verify(archive.path).intact


def test_the_file_is_wal_with_full_sync(archive):
    archive.append([entry(1)])
    db = archive._connection()  # noqa: SLF001 - the pragmas of the writer's own connection
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_appends_continue_one_chain_also_after_reopening(archive, tmp_path):
    assert archive.append([entry(1), entry(2)]) == 2
    archive.close()
    with AuditArchive(tmp_path / ARCHIVE_FILE_NAME) as again:
        assert again.append([entry(3)]) == 1
        assert again.last_entry().stream_id == f"{T0 + 3000}-0"
    report = verify(archive.path)
    assert report.intact and report.rows == 3


def test_the_same_entry_twice_is_archived_once_but_a_reused_id_with_new_content_is_kept(archive):
    assert archive.append([entry(1), entry(2)]) == 2
    assert archive.append([entry(2), entry(3)]) == 1  # 2 read again (a restart)
    # A Redis that lost its data hands out the same id again, for another event: both are kept.
    assert archive.append([entry(2, user="engineer", action="login", result="ok")]) == 1
    assert archive.count() == 4
    same_id = archive.search(ArchiveSearch(from_ms=T0 + 2000, to_ms=T0 + 2000))
    assert sorted(e.fields["user"] for e in same_id) == ["engineer", "operator"]
    assert verify(archive.path).intact


def test_fields_round_trip_exactly_also_missing_and_unknown_ones(archive):
    old_style = {"time_ms": str(T0), "user": "operator", "action": "login", "result": "ok"}  # no comment etc.
    newer = {**entry(2)[1], "approved_by": "engineer"}  # a field this archive has no column for
    archive.append([(f"{T0}-0", old_style), (f"{T0 + 2000}-0", newer)])
    found = {e.stream_id: e.fields for e in archive.search(ArchiveSearch())}
    assert found == {f"{T0}-0": old_style, f"{T0 + 2000}-0": newer}
    assert verify(archive.path).intact


def test_a_failed_batch_adds_nothing(archive):
    archive.append([entry(1)])
    with pytest.raises(AttributeError):
        archive.append([entry(2), ("3-0", None)])  # the second entry is broken: the batch is one transaction
    assert archive.count() == 1 and archive.append([entry(2)]) == 1 and verify(archive.path).intact


def test_search_filters_newest_first(archive):
    archive.append([
        entry(1, user="operator", action="login", result="ok", tag=""),
        entry(2, tag="T1.level", result="refused", reason="not writable"),
        entry(3, tag="T1.sp", comment="Batch 7 START"),
        entry(4, user="engineer", action="acknowledge", result="ok", tag="T2.temp:high"),
        entry(5, user="(plant file)", action="config_changed", result="ok", tag="plant.yaml", new="abc"),
    ])

    def users_actions(**query) -> list[tuple[str, str]]:
        return [(e.fields["user"], e.fields["action"]) for e in archive.search(ArchiveSearch(**query))]

    assert [e.stream_id for e in archive.search(ArchiveSearch())] == [f"{T0 + n * 1000}-0" for n in (5, 4, 3, 2, 1)]
    assert users_actions(user="engineer") == [("engineer", "acknowledge")]
    assert users_actions(tag="T1.*") == [("operator", "write"), ("operator", "write")]
    assert users_actions(tag="T1") == []
    assert users_actions(action="write", result="refused") == [("operator", "write")]
    assert users_actions(text="batch 7") == [("operator", "write")]  # the comment, ignoring case
    assert users_actions(from_ms=T0 + 2000, to_ms=T0 + 3000) == [("operator", "write"), ("operator", "write")]
    assert len(archive.search(ArchiveSearch(limit=2))) == 2
    assert archive.last_of_actions(("config_loaded", "config_changed")).fields["new"] == "abc"
    assert archive.last_of_actions(("config_loaded",)) is None


def test_a_reader_never_creates_the_file(tmp_path):
    path = tmp_path / "none" / ARCHIVE_FILE_NAME
    with pytest.raises(FileNotFoundError), AuditArchive(path, read_only=True) as reader:
        reader.count()
    assert not path.parent.exists()
