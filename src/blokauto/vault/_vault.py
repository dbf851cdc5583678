"""The vault's implementation: one SQLite file and one master key in a folder beside the node.

    folder/master.key   32 random bytes, mode 0600, created on first use (never for an existing vault.db)
    folder/vault.db     subjects(subject, created_ms, wrapped_key, erased_ms)
                        records(subject, field, sealed, commitment, created_ms, updated_ms)
                        meta(name, value): a check value sealed with the master key

``wrapped_key`` is the subject's 32-byte key sealed with the master key (``SecretBox``: XSalsa20-
Poly1305, a random nonce each time); ``sealed`` is {subject, field, value, salt, vin} sealed with the
subject's key. Both bind what they belong to (the subject, the field) inside the authenticated
plaintext, so a row moved to another subject or field does not open. Only the commitment (which
is on the ledger anyway) and times are stored in clear.

The database runs with ``secure_delete=ON`` (deleted content is overwritten with zeros),
``journal_mode=DELETE`` (no write-ahead log keeps old pages), ``synchronous=FULL`` (every commit
is fsync'd) and ``temp_store=MEMORY`` (``VACUUM`` copies nothing to a temporary file).
Randomness and the wall clock are allowed here: this is the organisation's own store, not the
state transition.
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any, Iterator

import msgspec
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from ..core.encoding import canonical
from ..modules.privacy.commitment import SALT_BYTES, commitment
from ._errors import (InvalidField, InvalidSubject, SubjectErased, UnknownField, UnknownSubject, VaultDataDamaged,
                      VaultFolderUnsafe, VaultKeyInvalid, VaultKeyMissing, VaultKeyUnsafe, VaultKeyWrong)

MASTER_KEY_FILE = "master.key"
DB_FILE = "vault.db"
KEY_BYTES = SecretBox.KEY_SIZE  # 32
SUBJECT_PREFIX = "subj-"
SUBJECT_RE = re.compile(r"^subj-[a-z2-7]{26}$")
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CHECK = b"blokauto-vault/v1 master key check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    subject TEXT PRIMARY KEY,
    created_ms INTEGER,
    wrapped_key BLOB,
    erased_ms INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    subject TEXT NOT NULL REFERENCES subjects(subject),
    field TEXT NOT NULL,
    sealed BLOB NOT NULL,
    commitment TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, field)
);
"""


class Disclosure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a person hands to a third party to prove one fact: the value, the salt that opens the
    commitment on the ledger, and the commitment itself. Whoever holds it recomputes
    ``commitment(subject, field, value, salt)`` and asks the ledger whether it is on record."""

    subject: str
    field: str
    value: str
    salt: str  # 64 lowercase hex
    commitment: str  # 64 lowercase hex


class _Sealed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subject: str
    field: str
    value: str
    salt: str
    vin: str | None = None


class _Wrapped(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subject: str
    key: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def utc(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def new_subject_id() -> str:
    """A fresh opaque subject id: ``subj-`` and 26 base32 digits of 16 random bytes (nothing about
    the person goes into it)."""
    return SUBJECT_PREFIX + base64.b32encode(os.urandom(16)).decode().rstrip("=").lower()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Vault:
    """An organisation's vault of personal data in ``folder`` (created 0700 if missing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.db_path = self.folder / DB_FILE
        self.key_path = self.folder / MASTER_KEY_FILE
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_folder()
        self._master = SecretBox(self._master_key())
        if not self.db_path.exists():
            os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        elif stat.S_IMODE(os.stat(self.db_path).st_mode) & 0o077:
            os.chmod(self.db_path, 0o600)  # sealed values and subject ids: its owner's only
        self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        try:
            for pragma in ("secure_delete=ON", "journal_mode=DELETE", "synchronous=FULL", "temp_store=MEMORY",
                           "foreign_keys=ON"):
                self._db.execute(f"PRAGMA {pragma}")
            with self._write():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                row = self._db.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO meta (name, value) VALUES ('check', ?)",
                                     (bytes(self._master.encrypt(_CHECK)),))
            if row is not None:
                try:
                    ok = self._master.decrypt(row[0]) == _CHECK
                except CryptoError:
                    ok = False
                if not ok:
                    raise VaultKeyWrong(path=str(self.key_path), db=str(self.db_path))
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------ the master key

    def _check_folder(self) -> None:
        """Refuse a vault folder others may write, or that is a symbolic link, and database or key
        paths that are symbolic links."""
        st = os.lstat(self.folder)
        if stat.S_ISLNK(st.st_mode):
            raise VaultFolderUnsafe(path=str(self.folder), why="is a symbolic link",
                                    fix="put the vault folder itself at that path")
        if st.st_mode & 0o022:
            raise VaultFolderUnsafe(path=str(self.folder), fix=f"run `chmod 700 {self.folder}`",
                                    why=f"may be written by others (mode {oct(stat.S_IMODE(st.st_mode))})")
        for path in (self.db_path, self.key_path):
            if path.is_symlink():
                raise VaultFolderUnsafe(path=str(path), why="is a symbolic link",
                                        fix="keep the vault's files in the vault folder itself")

    def _master_key(self) -> bytes:
        if not self.key_path.exists():
            if self.db_path.exists():
                raise VaultKeyMissing(path=str(self.key_path), db=str(self.db_path))
            key = os.urandom(KEY_BYTES)
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.folder)
            return key
        st = os.lstat(self.key_path)  # a symbolic link could point the vault at another file
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
            raise VaultKeyUnsafe(path=str(self.key_path), mode=oct(stat.S_IMODE(st.st_mode)))
        key = self.key_path.read_bytes()
        if len(key) != KEY_BYTES:
            raise VaultKeyInvalid(path=str(self.key_path), size=len(key))
        return key

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Vault":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind: object, *exc: object) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _write(self) -> "Vault._Tx":
        return Vault._Tx(self._db)

    @staticmethod
    def _check_subject(subject: str) -> None:
        if not isinstance(subject, str) or not SUBJECT_RE.match(subject):
            raise InvalidSubject(subject=str(subject)[:80])

    @staticmethod
    def _check_field(field: str) -> None:
        if not isinstance(field, str) or not FIELD_RE.match(field):
            raise InvalidField(field=str(field)[:80])

    def _subject_row(self, subject: str) -> tuple[int | None, bytes | None, int | None]:
        """(created_ms, wrapped_key, erased_ms) of a subject the vault knows; refused if it does not
        know it or erased it."""
        self._check_subject(subject)
        row = self._db.execute("SELECT created_ms, wrapped_key, erased_ms FROM subjects WHERE subject = ?",
                               (subject,)).fetchone()
        if row is None:
            raise UnknownSubject(vault=str(self.folder), subject=subject)
        if row[2] is not None:
            raise SubjectErased(subject=subject, erased_at=utc(row[2]))
        return row

    def _subject_box(self, subject: str, wrapped: bytes | None) -> SecretBox:
        try:
            if wrapped is None:
                raise CryptoError("no key")
            w = msgspec.json.decode(self._master.decrypt(wrapped), type=_Wrapped)
            if w.subject != subject:
                raise CryptoError("the key is another subject's")
            key = bytes.fromhex(w.key)
            if len(key) != KEY_BYTES:
                raise CryptoError("the key has the wrong length")
        except (CryptoError, msgspec.DecodeError, ValueError) as exc:
            raise VaultDataDamaged(what="key", subject=subject, reason=str(exc) or type(exc).__name__) from None
        return SecretBox(key)

    def _open(self, subject: str, field: str, box: SecretBox, sealed: bytes) -> _Sealed:
        try:
            s = msgspec.json.decode(box.decrypt(sealed), type=_Sealed)
            if (s.subject, s.field) != (subject, field):
                raise CryptoError("the value is sealed for another subject or field")
        except (CryptoError, msgspec.DecodeError, ValueError) as exc:
            raise VaultDataDamaged(what=f"{field} value", subject=subject,
                                   reason=str(exc) or type(exc).__name__) from None
        return s

    def _records(self, subject: str) -> Iterator[tuple[str, bytes, str, int, int]]:
        yield from self._db.execute("SELECT field, sealed, commitment, created_ms, updated_ms FROM records "
                                    "WHERE subject = ? ORDER BY field", (subject,))

    def _record(self, subject: str, field: str) -> tuple[bytes, str, int, int]:
        self._check_field(field)
        row = self._db.execute("SELECT sealed, commitment, created_ms, updated_ms FROM records WHERE subject = ? "
                               "AND field = ?", (subject, field)).fetchone()
        if row is None:
            raise UnknownField(field=field, subject=subject, held=", ".join(self.fields(subject)) or "nothing")
        return row

    # ------------------------------------------------------------ the API

    def new_subject(self) -> str:
        """A new subject with its own random key; returns its opaque id."""
        subject = new_subject_id()
        key = os.urandom(KEY_BYTES)
        wrapped = bytes(self._master.encrypt(canonical(_Wrapped(subject, key.hex()))))
        with self._write() as db:
            db.execute("INSERT INTO subjects (subject, created_ms, wrapped_key) VALUES (?, ?, ?)",
                       (subject, now_ms(), wrapped))
        return subject

    def subjects(self) -> list[str]:
        """Every subject the vault knows (erased ones too), by id."""
        return [r[0] for r in self._db.execute("SELECT subject FROM subjects ORDER BY subject")]

    def put(self, subject: str, field: str, value: str, *, vin: str | None = None) -> Disclosure:
        """Store ``value`` of ``field`` (replacing any earlier one) under a fresh salt; returns the
        disclosure whose commitment goes on the ledger."""
        self._check_field(field)
        if not isinstance(value, str):
            raise TypeError("a vault value is a str")
        _, wrapped, _ = self._subject_row(subject)
        box = self._subject_box(subject, wrapped)
        salt = os.urandom(SALT_BYTES).hex()
        digest = commitment(subject, field, value, salt)
        sealed = bytes(box.encrypt(canonical(_Sealed(subject, field, value, salt, vin))))
        t = now_ms()
        with self._write() as db:
            db.execute("INSERT INTO records (subject, field, sealed, commitment, created_ms, updated_ms) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject, field) DO UPDATE SET sealed = excluded.sealed, "
                       "commitment = excluded.commitment, updated_ms = excluded.updated_ms",
                       (subject, field, sealed, digest, t, t))
        return Disclosure(subject=subject, field=field, value=value, salt=salt, commitment=digest)

    def fields(self, subject: str) -> list[str]:
        """The fields the vault holds for ``subject``, by name."""
        self._subject_row(subject)
        return [r[0] for r in self._db.execute("SELECT field FROM records WHERE subject = ? ORDER BY field",
                                               (subject,))]

    def get(self, subject: str, field: str) -> str:
        return self.disclose(subject, field).value

    def disclose(self, subject: str, field: str) -> Disclosure:
        """The value of ``field``, its salt and commitment: what the person hands a third party."""
        _, wrapped, _ = self._subject_row(subject)
        sealed, digest, _, _ = self._record(subject, field)
        s = self._open(subject, field, self._subject_box(subject, wrapped), sealed)
        if commitment(subject, field, s.value, s.salt) != digest:
            raise VaultDataDamaged(what=f"{field} commitment", subject=subject,
                                   reason="the stored commitment does not match the sealed value")
        return Disclosure(subject=subject, field=field, value=s.value, salt=s.salt, commitment=digest)

    def export(self, subject: str) -> dict[str, Any]:
        """Everything the vault holds about ``subject`` (GDPR Articles 15 and 20): each field with its
        value, VIN, salt, commitment and times."""
        created, wrapped, _ = self._subject_row(subject)
        box = self._subject_box(subject, wrapped)
        out = []
        for field, sealed, digest, c_ms, u_ms in self._records(subject):
            s = self._open(subject, field, box, sealed)
            out.append({"field": field, "value": s.value, "vin": s.vin, "salt": s.salt, "commitment": digest,
                        "created_ms": c_ms, "created": utc(c_ms), "updated_ms": u_ms, "updated": utc(u_ms)})
        return {"format": "blokauto-vault-export/1", "subject": subject, "created_ms": created,
                "created": utc(created), "fields": out}

    def erase(self, subject: str) -> None:
        """Destroy ``subject``'s key and every value in one transaction, then rewrite the file
        (``VACUUM``) so none of their bytes stays in it. A row keeps only the id and when it was
        erased. Refused (``subject_erased``) if it was erased already."""
        self._subject_row(subject)
        with self._write() as db:
            db.execute("DELETE FROM records WHERE subject = ?", (subject,))
            db.execute("UPDATE subjects SET wrapped_key = NULL, created_ms = NULL, erased_ms = ? WHERE subject = ?",
                       (now_ms(), subject))
        self._db.execute("VACUUM")

    def erased(self, subject: str) -> bool:
        """Whether the vault erased ``subject`` (False for a subject it never knew)."""
        self._check_subject(subject)
        row = self._db.execute("SELECT erased_ms FROM subjects WHERE subject = ?", (subject,)).fetchone()
        return row is not None and row[0] is not None

    def erased_at(self, subject: str) -> int | None:
        """When the vault erased ``subject`` (ms since the epoch), or None."""
        self._check_subject(subject)
        row = self._db.execute("SELECT erased_ms FROM subjects WHERE subject = ?", (subject,)).fetchone()
        return None if row is None else row[0]
