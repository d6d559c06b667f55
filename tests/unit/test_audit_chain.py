"""The audit archive's hash chain (audit_trail/chain.py) and verify() on a real SQLite file: an intact
archive passes; an edited field, a deleted row and a reordered row are each found, at the right row."""
from __future__ import annotations

import sqlite3

import pytest

from audit_trail.__main__ import main as audit_cli
from audit_trail.archive import ARCHIVE_FILE_NAME, AuditArchive, verify
from audit_trail.chain import GENESIS_HASH, ChainRow, canonical, chain_hash, verify_rows

T0 = 1_738_300_000_000


def entry(n: int, **changes: str) -> tuple[str, dict[str, str]]:
    fields = {"time_ms": str(T0 + n), "user": "operator", "action": "write", "result": "done", "tag": f"T{n}.sp",
              "old": "1", "new": str(n), "reason": "", "source_ip": "10.0.0.5", "comment": f"step {n}"}
    return f"{T0 + n}-0", {**fields, **changes}


def test_canonical_encoding_is_sorted_compact_and_keeps_every_field_and_the_id():
    text = canonical("5-1", {"b": "2", "a": "ü"})
    assert text == '{"fields":{"a":"ü","b":"2"},"stream_id":"5-1"}'
    assert canonical("5-1", {"a": "ü", "b": "2"}) == text  # field order does not matter
    assert canonical("5-2", {"a": "ü", "b": "2"}) != text


def test_each_hash_depends_on_the_one_before():
    first = chain_hash(GENESIS_HASH, "1-0", {"user": "a"})
    assert len(first) == 64 and first != chain_hash("f" * 64, "1-0", {"user": "a"})
    assert chain_hash(first, "2-0", {"user": "a"}) != chain_hash(GENESIS_HASH, "2-0", {"user": "a"})


def test_verify_rows_on_a_built_chain():
    rows, prev = [], GENESIS_HASH
    for n in range(1, 4):
        digest = chain_hash(prev, f"{n}-0", {"n": str(n)})
        rows.append(ChainRow(n, f"{n}-0", {"n": str(n)}, prev, digest))
        prev = digest
    report = verify_rows(rows)
    assert report.intact and report.rows == 3 and report.head_hash == prev
    assert verify_rows([]).intact and verify_rows([]).head_hash == GENESIS_HASH
    assert verify_rows(rows[1:]).broken.seq == 2  # the first row is missing


@pytest.fixture
def archive_path(tmp_path):
    path = tmp_path / ARCHIVE_FILE_NAME
    with AuditArchive(path) as archive:
        assert archive.append([entry(n) for n in range(1, 6)]) == 5
    return path


def tamper(path, *statements: str) -> None:
    """What someone with the file could do: drop the append-only triggers, then change rows."""
    db = sqlite3.connect(path)
    with db:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
        for statement in statements:
            db.execute(statement)
    db.close()


def test_an_intact_archive_verifies(archive_path):
    report = verify(archive_path)
    assert report.intact and report.rows == 5
    with AuditArchive(archive_path, read_only=True) as archive:
        assert archive.head() == (5, report.head_hash)


def test_an_edited_field_is_found_at_its_row(archive_path):
    tamper(archive_path, "UPDATE audit SET new = '99' WHERE seq = 3")
    report = verify(archive_path)
    assert not report.intact and report.rows == 2
    assert (report.broken.seq, report.broken.stream_id) == (3, f"{T0 + 3}-0")
    assert "changed" in report.broken.problem


def test_a_field_added_behind_the_archives_back_is_found(archive_path):
    tamper(archive_path, "UPDATE audit SET extra = '{\"note\": \"added later\"}' WHERE seq = 4")
    assert verify(archive_path).broken.seq == 4


def test_a_deleted_row_is_found_at_the_row_after_it(archive_path):
    tamper(archive_path, "DELETE FROM audit WHERE seq = 2")
    report = verify(archive_path)
    assert report.broken.seq == 3 and "row 2 is missing" in report.broken.problem


def test_a_deleted_row_with_the_rows_renumbered_is_still_found(archive_path):
    tamper(archive_path, "DELETE FROM audit WHERE seq = 2", "UPDATE audit SET seq = seq - 1 WHERE seq > 2")
    report = verify(archive_path)
    assert report.broken.seq == 2 and "does not follow" in report.broken.problem


def test_reordered_rows_are_found(archive_path):
    tamper(archive_path, "UPDATE audit SET seq = -1 WHERE seq = 2", "UPDATE audit SET seq = 2 WHERE seq = 3",
           "UPDATE audit SET seq = 3 WHERE seq = -1")
    report = verify(archive_path)
    assert report.broken.seq == 2 and report.rows == 1


def test_the_cli_says_intact_broken_or_usage(archive_path, capsys):
    data_dir = str(archive_path.parent)
    assert audit_cli(["verify", "--data-dir", data_dir]) == 0
    assert "chain intact, 5 entries" in capsys.readouterr().out
    tamper(archive_path, "UPDATE audit SET user = 'someone else' WHERE seq = 4")
    assert audit_cli(["verify", "--data-dir", data_dir]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at row 4" in out and f"{T0 + 4}-0" in out
    assert audit_cli(["verify", "--data-dir", str(archive_path.parent / "elsewhere")]) == 2
    assert "no audit archive" in capsys.readouterr().err
    assert audit_cli(["check"]) == 2
    assert audit_cli([]) == 2


def test_the_cli_finds_the_archive_through_the_plant_file(archive_path, tmp_path, capsys):
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"data_dir: {archive_path.parent}\nsources: {{skid: {{kind: mqtt}}}}\n"
                     "tags:\n  - {name: u.flow, source: skid, topic: a/flow}\n")
    assert audit_cli(["verify", "--config", str(plant)]) == 0
    assert audit_cli(["verify", "--config", str(tmp_path / "missing.yaml")]) == 2
