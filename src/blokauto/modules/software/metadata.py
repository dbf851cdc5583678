"""TUF metadata as the ledger reads it, through python-tuf's Metadata API: parse one role's file,
check its signatures against its delegator, read its expiry as integer milliseconds.

Every failure is one of the module's ``DomainError``s (never a python-tuf or JSON exception), so
the ledger's handlers and the vehicle's updater refuse the same way. Nothing here reads a clock.
"""

from __future__ import annotations

import calendar
import hashlib
from typing import TypeVar

import msgspec
from securesystemslib.exceptions import VerificationError as KeyVerificationError
from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Root, Signed, TargetFile

from . import errors

T = TypeVar("T", bound=Signed)

#: The largest metadata file the ledger takes (a root or one release's targets); a repository with
#: more images per release splits them into releases.
MAX_METADATA_BYTES = 49_152
#: Key schemes a repository's keys may use (both verified by pyca/cryptography).
SCHEMES = frozenset({"ed25519", "ecdsa-sha2-nistp256"})
TOP_ROLES = ("root", "targets", "snapshot", "timestamp")
#: Most keys a root names (each is checked when a role's metadata is).
MAX_KEYS = 32


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: The deepest nesting of arrays and objects a metadata file may have (TUF's needs 5). Checked on
#: the bytes before any parser runs: a parser's own limit depends on the stack it runs on, and a
#: rule that depends on the machine would let nodes disagree.
MAX_DEPTH = 16


def nesting_depth(data: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text ``data``, outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parse(data: bytes, kind: type[T], role: str) -> Metadata[T]:
    """``data`` (one metadata file) as ``Metadata[kind]``; ``InvalidMetadata`` if it is not."""
    if len(data) > MAX_METADATA_BYTES:
        raise errors.MetadataTooLarge(role=role, size=len(data), limit=MAX_METADATA_BYTES)
    depth = nesting_depth(data)
    if depth > MAX_DEPTH:
        raise errors.InvalidMetadata(role=role, reason=f"it nests {depth} levels of arrays and objects; TUF metadata "
                                                       f"needs at most {MAX_DEPTH}")
    try:
        doc = msgspec.json.decode(data)  # strict UTF-8 and JSON, parsed once
        if not isinstance(doc, dict):
            raise ValueError("it is not a JSON object")
        md = Metadata.from_dict(doc)
        _ = md.signed_bytes  # canonical JSON: refuses floats and other values it cannot sign
    except (RepositoryError, msgspec.DecodeError, ValueError, TypeError, KeyError) as exc:
        raise errors.InvalidMetadata(role=role, reason=str(exc)[:300] or type(exc).__name__) from None
    if not isinstance(md.signed, kind):
        raise errors.InvalidMetadata(role=role, reason=f"it is {md.signed.type} metadata, not {kind.type}")
    return md  # type: ignore[return-value]


def expires_ms(signed: Signed) -> int:
    """When ``signed`` expires, in ms since the epoch (whole seconds, as TUF writes them)."""
    return calendar.timegm(signed.expires.utctimetuple()) * 1000


def check_fresh(signed: Signed, role: str, now_ms: int) -> None:
    """Refuse metadata that expired at ``now_ms`` (a block time, or a checkpoint's)."""
    exp = expires_ms(signed)
    if exp <= now_ms:
        raise errors.MetadataExpired(role=role, reason=f"version {signed.version} expired at {exp} ms, not after {now_ms} "
                                                      "ms")


def check_root_shape(root: Root) -> None:
    """A root the ledger anchors: the four top-level roles, each with a threshold its keys can meet,
    every key of a scheme in ``SCHEMES``."""
    if len(root.keys) > MAX_KEYS:
        raise errors.InvalidMetadata(role="root", reason=f"it names {len(root.keys)} keys, more than {MAX_KEYS}")
    for keyid, key in root.keys.items():
        if key.scheme not in SCHEMES:
            raise errors.InvalidMetadata(role="root", reason=f"key {keyid[:16]} uses scheme {key.scheme!r}; use one of "
                                                              f"{', '.join(sorted(SCHEMES))}")
    for name in TOP_ROLES:
        role = root.roles.get(name)
        if role is None:
            raise errors.InvalidMetadata(role="root", reason=f"it names no {name} role")
        known = [k for k in role.keyids if k in root.keys]
        if role.threshold < 1 or len(known) < role.threshold:
            raise errors.InvalidMetadata(role="root", reason=f"the {name} role needs {role.threshold} of "
                                                              f"{len(known)} known keys")


def check_signed(delegator: Root, role: str, md: Metadata) -> None:
    """Refuse unless ``md`` carries the threshold of valid signatures ``delegator`` sets for ``role``."""
    try:
        result = delegator.get_verification_result(role, md.signed_bytes, md.signatures)
    except (KeyVerificationError, ValueError, TypeError) as exc:
        raise errors.InvalidMetadata(role=role, reason=f"a key or signature is malformed ({exc})") from None
    if not result.verified:
        raise errors.ThresholdNotMet(role=role, reason=f"{len(result.signed)} valid of {result.threshold} needed")


def check_root_rotation(old: Root, new: Metadata[Root]) -> None:
    """A new root is the next version and is signed by the thresholds of both the old root and itself."""
    if new.signed.version <= old.version:
        raise errors.MetadataRollback(role="root", reason=f"version {new.signed.version} after {old.version}")
    if new.signed.version != old.version + 1:
        raise errors.InvalidMetadata(role="root", reason=f"version {new.signed.version} does not follow "
                                                          f"{old.version}; anchor every root in turn")
    check_signed(old, "root", new)
    check_signed(new.signed, "root", new)


def target_hash(t: TargetFile) -> str:
    """The image's sha256 (a release lists every image with one)."""
    h = t.hashes.get("sha256")
    if not isinstance(h, str) or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise errors.InvalidRelease(reason=f"target {t.path!r} has no sha256 hash in lowercase hex")
    return h
