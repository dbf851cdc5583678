"""The vault: values sealed per subject, keys wrapped by the master key, erasure that leaves no
byte of the subject's key or data in the files, and clear refusals for a missing, exposed, wrong
or damaged key and for damaged data."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from blokauto.modules.privacy.commitment import commitment
from blokauto.vault import (InvalidField, InvalidSubject, SubjectErased, UnknownField, UnknownSubject, Vault,
                            VaultDataDamaged, VaultKeyInvalid, VaultKeyMissing, VaultKeyUnsafe, VaultKeyWrong)
from blokauto.vault._vault import SUBJECT_RE

NAME = "Erika Mustermann"
ADDRESS = "Heidestrasse 17, 51147 Koeln"
VIN = "WVWZZZ1JZ00000042"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "vault"


def raw_files(folder: Path) -> bytes:
    """Every byte of the vault's database files (the database, and any journal or WAL beside it)."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("vault.db*")))


def subject_key(vault: Vault, subject: str) -> bytes:
    """The subject's key as the vault unwraps it (white-box: to look for its bytes on disk)."""
    wrapped = vault._db.execute("SELECT wrapped_key FROM subjects WHERE subject = ?", (subject,)).fetchone()[0]
    return bytes(vault._subject_box(subject, wrapped))


def test_put_get_fields_disclose(folder: Path) -> None:
    with Vault(folder) as vault:
        s = vault.new_subject()
        assert SUBJECT_RE.match(s)
        d = vault.put(s, "name", NAME, vin=VIN)
        vault.put(s, "postal_address", ADDRESS)
        assert (d.subject, d.field, d.value) == (s, "name", NAME)
        assert d.commitment == commitment(s, "name", NAME, d.salt) and len(d.salt) == 64
        assert vault.get(s, "name") == NAME and vault.fields(s) == ["name", "postal_address"]
        assert vault.disclose(s, "name") == d
    with Vault(folder) as again:  # reopened with the same master key
        assert again.get(s, "postal_address") == ADDRESS and again.subjects() == [s]


def test_subject_ids_are_random_and_say_nothing(folder: Path) -> None:
    with Vault(folder) as vault:
        ids = {vault.new_subject() for _ in range(50)}
    assert len(ids) == 50 and all(SUBJECT_RE.match(i) for i in ids)


def test_a_new_value_replaces_the_old_under_a_new_salt(folder: Path) -> None:
    with Vault(folder) as vault:
        s = vault.new_subject()
        first = vault.put(s, "postal_address", ADDRESS)
        second = vault.put(s, "postal_address", "Am Markt 1, 10117 Berlin")
        same = vault.put(s, "postal_address", "Am Markt 1, 10117 Berlin")
        assert len({first.salt, second.salt, same.salt}) == 3
        assert len({first.commitment, second.commitment, same.commitment}) == 3  # a guess cannot be confirmed
        assert vault.get(s, "postal_address") == "Am Markt 1, 10117 Berlin"
        assert vault.fields(s) == ["postal_address"]
    assert ADDRESS.encode() not in raw_files(folder)


def test_export_holds_everything_about_the_subject_and_nothing_else(folder: Path) -> None:
    with Vault(folder) as vault:
        s, other = vault.new_subject(), vault.new_subject()
        d1 = vault.put(s, "name", NAME, vin=VIN)
        d2 = vault.put(s, "postal_address", ADDRESS)
        vault.put(other, "name", "Max Mustermann")
        doc = vault.export(s)
    assert doc["subject"] == s and doc["format"] == "blokauto-vault-export/1"
    assert isinstance(doc["created_ms"], int) and doc["created"].endswith("Z")
    assert [(f["field"], f["value"], f["vin"], f["salt"], f["commitment"]) for f in doc["fields"]] == [
        ("name", NAME, VIN, d1.salt, d1.commitment), ("postal_address", ADDRESS, None, d2.salt, d2.commitment)]
    assert all(f["created_ms"] <= f["updated_ms"] and f["created"] for f in doc["fields"])
    assert "Max" not in repr(doc)


def test_nothing_is_stored_in_clear(folder: Path) -> None:
    with Vault(folder) as vault:
        s = vault.new_subject()
        d = vault.put(s, "name", NAME, vin=VIN)
        key = subject_key(vault, s)
    raw = raw_files(folder)
    for secret in (NAME.encode(), b"Erika", VIN.encode(), d.salt.encode(), bytes.fromhex(d.salt), key, key.hex().encode(),
                   (folder / "master.key").read_bytes()):
        assert secret not in raw


def test_erase_leaves_no_byte_of_the_key_or_data_in_the_files(folder: Path) -> None:
    with Vault(folder) as vault:
        s, kept = vault.new_subject(), vault.new_subject()
        d = vault.put(s, "name", NAME, vin=VIN)
        vault.put(s, "postal_address", ADDRESS)
        vault.put(kept, "name", "Max Mustermann")
        key = subject_key(vault, s)
        wrapped = vault._db.execute("SELECT wrapped_key FROM subjects WHERE subject = ?", (s,)).fetchone()[0]
        sealed = [r[0] for r in vault._db.execute("SELECT sealed FROM records WHERE subject = ?", (s,))]
        before = raw_files(folder)
        assert wrapped in before and all(x in before for x in sealed)  # what erasure must remove is there now
        vault.erase(s)
        assert vault.erased(s) and not vault.erased(kept) and vault.erased_at(s) is not None
        for read in (lambda: vault.get(s, "name"), lambda: vault.disclose(s, "name"), lambda: vault.export(s),
                     lambda: vault.fields(s), lambda: vault.put(s, "name", NAME), lambda: vault.erase(s)):
            with pytest.raises(SubjectErased) as err:
                read()
            assert err.value.code == "subject_erased" and s in err.value.message
        assert vault.get(kept, "name") == "Max Mustermann"  # the others are untouched
    assert sorted(p.name for p in folder.iterdir()) == ["master.key", "vault.db"]  # no journal or WAL left behind
    raw = raw_files(folder)
    for gone in (NAME.encode(), ADDRESS.encode(), VIN.encode(), d.salt.encode(), bytes.fromhex(d.salt), key,
                 key.hex().encode(), wrapped, *sealed):
        assert gone not in raw
    with sqlite3.connect(folder / "vault.db") as db:
        assert db.execute("SELECT created_ms, wrapped_key FROM subjects WHERE subject = ?", (s,)).fetchone() == \
            (None, None)
        assert db.execute("SELECT count(*) FROM records WHERE subject = ?", (s,)).fetchone() == (0,)
        assert db.execute("PRAGMA freelist_count").fetchone() == (0,)  # VACUUM left no free pages
    with Vault(folder) as reopened:
        assert reopened.erased(s) and reopened.get(kept, "name") == "Max Mustermann"


def test_the_master_key_is_created_owner_only_and_refused_when_exposed(folder: Path) -> None:
    Vault(folder).close()
    key = folder / "master.key"
    assert len(key.read_bytes()) == 32
    assert (key.stat().st_mode & 0o777) == 0o600 and (folder.stat().st_mode & 0o777) == 0o700
    for mode in (0o640, 0o604, 0o660, 0o644):
        key.chmod(mode)
        with pytest.raises(VaultKeyUnsafe) as err:
            Vault(folder)
        assert err.value.code == "vault_key_unsafe" and "chmod 600" in err.value.message and oct(mode) in err.value.message
    key.chmod(0o400)
    Vault(folder).close()  # read-only for its owner is fine


def test_a_missing_master_key_is_refused_for_an_existing_vault(folder: Path) -> None:
    with Vault(folder) as vault:
        vault.put(vault.new_subject(), "name", NAME)
    (folder / "master.key").unlink()
    with pytest.raises(VaultKeyMissing) as err:
        Vault(folder)
    assert err.value.code == "vault_key_missing" and "backup" in err.value.message
    assert not (folder / "master.key").exists()  # never silently replaced


def test_a_wrong_master_key_is_refused_clearly(folder: Path) -> None:
    with Vault(folder) as vault:
        vault.put(vault.new_subject(), "name", NAME)
    key = folder / "master.key"
    key.chmod(0o600)
    key.write_bytes(os.urandom(32))
    with pytest.raises(VaultKeyWrong) as err:
        Vault(folder)
    assert err.value.code == "vault_key_wrong"
    key.write_bytes(b"x" * 31)
    with pytest.raises(VaultKeyInvalid) as err2:
        Vault(folder)
    assert err2.value.code == "vault_key_invalid" and "31 bytes" in err2.value.message


def test_damaged_ciphertext_is_a_clear_error_not_a_crash(folder: Path) -> None:
    with Vault(folder) as vault:
        s, t = vault.new_subject(), vault.new_subject()
        vault.put(s, "name", NAME)
        vault.put(s, "postal_address", ADDRESS)
        vault.put(t, "name", "Max Mustermann")
    with sqlite3.connect(folder / "vault.db") as db:
        sealed = bytearray(db.execute("SELECT sealed FROM records WHERE subject = ? AND field = 'name'", (s,)).fetchone()[0])
        sealed[-1] ^= 1
        db.execute("UPDATE records SET sealed = ? WHERE subject = ? AND field = 'name'", (bytes(sealed), s))
        wrapped = bytearray(db.execute("SELECT wrapped_key FROM subjects WHERE subject = ?", (t,)).fetchone()[0])
        wrapped[30] ^= 1
        db.execute("UPDATE subjects SET wrapped_key = ? WHERE subject = ?", (bytes(wrapped), t))
    db.close()
    with Vault(folder) as vault:
        for read in (lambda: vault.get(s, "name"), lambda: vault.export(s)):
            with pytest.raises(VaultDataDamaged) as err:
                read()
            assert err.value.code == "vault_data_damaged" and "name value" in err.value.message
        assert vault.get(s, "postal_address") == ADDRESS  # the other field still reads
        with pytest.raises(VaultDataDamaged) as err:
            vault.get(t, "name")
        assert "key" in err.value.message
        vault.erase(s)  # a damaged subject can still be erased
        assert vault.erased(s)


def test_a_value_moved_to_another_subject_or_field_does_not_open(folder: Path) -> None:
    with Vault(folder) as vault:
        s = vault.new_subject()
        vault.put(s, "name", NAME)
        vault.put(s, "postal_address", ADDRESS)
    with sqlite3.connect(folder / "vault.db") as db:
        name = db.execute("SELECT sealed FROM records WHERE field = 'name'").fetchone()[0]
        db.execute("UPDATE records SET sealed = ? WHERE field = 'postal_address'", (name,))
    db.close()
    with Vault(folder) as vault, pytest.raises(VaultDataDamaged) as err:
        vault.get(s, "postal_address")
    assert "another subject or field" in err.value.message


def test_unknown_and_malformed_names_are_refused(folder: Path) -> None:
    with Vault(folder) as vault:
        s = vault.new_subject()
        vault.put(s, "name", NAME)
        unknown = "subj-" + "a" * 26
        for call in (lambda: vault.get(unknown, "name"), lambda: vault.put(unknown, "name", NAME),
                     lambda: vault.erase(unknown), lambda: vault.export(unknown)):
            with pytest.raises(UnknownSubject):
                call()
        assert vault.erased(unknown) is False
        with pytest.raises(UnknownField) as err:
            vault.get(s, "email")
        assert "name" in err.value.message
        with pytest.raises(InvalidSubject):
            vault.get("Erika Mustermann", "name")
        for bad in ("Name", "postal address", "", "x" * 33):
            with pytest.raises(InvalidField):
                vault.put(s, bad, NAME)


# ---------------------------------------------------------------- found by the fourth attack

def test_a_vault_folder_others_may_write_or_a_linked_key_is_refused(tmp_path: Path) -> None:
    import os

    from blokauto.vault import VaultFolderUnsafe, VaultKeyUnsafe

    folder = tmp_path / "vault"
    with Vault(folder) as v:
        v.put(v.new_subject(), "name", "Erika")
    assert oct(os.stat(folder / "vault.db").st_mode & 0o777) == "0o600"
    os.chmod(folder, 0o777)
    with pytest.raises(VaultFolderUnsafe):
        Vault(folder)
    os.chmod(folder, 0o700)
    elsewhere = tmp_path / "other.key"
    os.replace(folder / "master.key", elsewhere)
    os.symlink(elsewhere, folder / "master.key")
    with pytest.raises((VaultFolderUnsafe, VaultKeyUnsafe)):
        Vault(folder)
    os.remove(folder / "master.key")
    os.replace(elsewhere, folder / "master.key")
    os.chmod(folder / "vault.db", 0o644)
    with Vault(folder):
        pass
    assert oct(os.stat(folder / "vault.db").st_mode & 0o777) == "0o600"
