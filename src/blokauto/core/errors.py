"""Every refusal blokauto can give, with a stable code and a sentence a person can act on.

    BlokautoError                      code, detail, message (rendered from detail)
    ├── RequestError                   the request itself is malformed
    │   ├── MalformedTx, TxTooLarge, UnknownMessage, WrongChain
    │   ├── TxExpired, ExpiryTooFar
    │   ├── BadSignature, MissingSignature, UnexpectedSigner, DuplicateSigner, InvalidKey, InvalidKeyPart
    │   ├── QueryParamsInvalid, BadEventId                   (reads)
    │   └── api: RequestTooLarge, MethodNotAllowed, UnknownParameter, RepeatedParameter, RequestTimeout,
    │            BadTxId, BatchTooLarge, BatchBodyTooComplex, UnsupportedMediaType
    ├── AuthError                      signer unknown, revoked, wrong role or organisation
    │   └── UnknownSigner, RevokedKey, RoleNotAllowed, MissingCosigner
    ├── Conflict                       ReplayedTx
    ├── NotFound                       UnknownTx; vehicles' UnknownVehicleReport; api: NoRoute, UnknownQuery,
    │                                  HeightNotReached
    ├── DomainError                    a module's rule was broken (each module's errors.py adds its own)
    │   └── HandlerError, ValueOutOfRange, InvalidParameter
    ├── Unavailable                    the node is busy or stopping; retry
    ├── node.faults.DataIntegrity      the node's copy of what was asked for is damaged; ask another node
    └── api.errors: TooManyRequests, TooManyConnections

A class declares its detail once: the fields its ``template`` names are required, and
``optional`` names any further detail it may carry. Building one with a field missing or
unknown is a ``TypeError`` (a programming error: a misspelt field would otherwise fall back to a
generic sentence), and ``tests/core/test_error_model.py`` checks every construction site in ``src/``
statically::

    class VehicleStolen(DomainError):
        code = "vehicle_stolen"
        template = "VIN {vin} is reported stolen; it cannot change hands until the police record its recovery."

    raise VehicleStolen(vin=vin)

The code and the detail are recorded in a failure receipt (so they are hashed and must stay
stable); the sentence is rendered from them, so wording can improve without forking the chain.
An error recorded elsewhere (a receipt, a signature worker, a node's JSON answer) is rebuilt
unchecked with ``error_class(code).recorded(detail, fallback=sentence)``: a newer node may send
detail this version does not expect, and then its own sentence is shown.
Codes are unique across the project: ``all_error_classes()`` lists them for docs and tests.

Core knows nothing of HTTP: ``api/errors.py`` maps codes to statuses (``HTTP_STATUS``). What
stops a node (its own data disagrees with what it committed) is not a refusal but a
``node.faults.NodeFault``. docs/errors.md draws both trees.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

_REGISTRY: dict[str, type["BlokautoError"]] = {}


def _template_fields(cls: type) -> tuple[str, ...]:
    """The detail fields a template names (``{what}``, ``{key!r}``, ``{x.y}`` -> ``what``, ``key``, ``x``)."""
    names: list[str] = []
    for _, name, _, _ in string.Formatter().parse(cls.template):  # type: ignore[attr-defined]
        if name is None:
            continue
        field = name.split(".")[0].split("[")[0]
        if not field.isidentifier():
            raise TypeError(f"{cls.__name__}.template names a field {name!r}; name each field ({{reason}})")
        if field not in names:
            names.append(field)
    return tuple(names)


class BlokautoError(Exception):
    """Base of every blokauto refusal. ``detail`` holds the data that caused it."""

    code: ClassVar[str] = "error"
    template: ClassVar[str] = "The request was refused."
    retryable: ClassVar[bool] = False
    #: The detail the sentence names, all required (derived from ``template``).
    fields: ClassVar[tuple[str, ...]] = ()
    #: Further detail this class may carry that its sentence does not name (declared by the class itself).
    optional: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.fields = _template_fields(cls)
        cls.optional = tuple(cls.__dict__.get("optional", ()))
        if set(cls.fields) & set(cls.optional):
            raise TypeError(f"{cls.__name__}: {sorted(set(cls.fields) & set(cls.optional))} are named by the template, "
                            f"so required; remove them from optional")
        if "code" in cls.__dict__:
            other = _REGISTRY.get(cls.code)
            if other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
                raise TypeError(f"error code {cls.code!r} used by {other.__module__}.{other.__qualname__} and "
                                f"{cls.__module__}.{cls.__qualname__}")  # the same class defined again is a reload
            _REGISTRY[cls.code] = cls

    #: The sentence to show when ``detail`` cannot fill the template (an error a remote node answered
    #: with detail this code does not expect carries the node's own sentence here).
    fallback: str | None = None

    def __init__(self, **detail: Any) -> None:
        cls = type(self)
        missing = [f for f in cls.fields if f not in detail]
        unknown = [k for k in detail if k not in cls.fields and k not in cls.optional]
        if missing or unknown:
            said = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                           unknown and f"unknown {', '.join(unknown)}"]))
            takes = ", ".join(cls.fields) or "no detail"
            raise TypeError(f"{cls.__name__}({said}): it takes {takes}"
                            + (f" (optional: {', '.join(cls.optional)})" if cls.optional else ""))
        self.detail = detail
        super().__init__(self.message)

    @classmethod
    def recorded(cls, detail: dict[str, Any], fallback: str | None = None) -> "BlokautoError":
        """The error as recorded elsewhere (a receipt, a worker process, a node's answer), unchecked:
        its detail is what was recorded, and ``fallback`` the sentence to show if it cannot fill this
        version's template."""
        err = cls.__new__(cls)
        err.detail = detail
        if fallback is not None:
            err.fallback = fallback
        Exception.__init__(err, err.message)
        return err

    @property
    def message(self) -> str:
        try:
            return self.template.format(**self.detail)
        except (KeyError, IndexError, ValueError, AttributeError):
            return self.fallback or f"Refused with code {self.code}."

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


def error_class(code: str) -> type[BlokautoError] | None:
    """The class registered for ``code``."""
    return _REGISTRY.get(code)


def render(code: str, detail: dict[str, Any]) -> str:
    """The sentence for a recorded failure (code + detail from a receipt)."""
    cls = _REGISTRY.get(code)
    if cls is None:
        return f"Refused with code {code}."
    return cls.recorded(detail).message


def all_error_classes() -> list[type[BlokautoError]]:
    """Every registered error class (one per code), by code."""
    return sorted(_REGISTRY.values(), key=lambda c: c.code)


# ---------------------------------------------------------------- request errors


class RequestError(BlokautoError):
    code = "bad_request"
    template = "The request is not valid: {reason}"
    optional = ("errors",)  # a parameter that does not validate: what the validator said, item by item


class MalformedTx(RequestError):
    code = "malformed_tx"
    template = "The transaction could not be read: {reason}. Check it against the schema at /schema."


class TxTooLarge(RequestError):
    code = "tx_too_large"
    template = "The transaction is {size} bytes; this chain accepts at most {limit}. Split the data or store it off-ledger."


class UnknownMessage(RequestError):
    code = "unknown_message"
    template = "No module handles message type {type!r}. GET /v1/messages lists the types this node knows."


class WrongChain(RequestError):
    code = "wrong_chain"
    template = "The transaction is for chain {got!r} but this is chain {expected!r}; it cannot be replayed across chains."


class TxExpired(RequestError):
    code = "tx_expired"
    template = "The transaction expired at {expires} (ms) and the chain time is {now}. Build and sign it again."


class ExpiryTooFar(RequestError):
    code = "expiry_too_far"
    template = "The transaction expires {ttl_ms} ms after chain time; the limit is {max_ttl_ms} ms. Choose a sooner expiry."


class BadSignature(RequestError):
    code = "bad_signature"
    template = ("The signature of {signer} does not verify for this transaction, whose id is {tx_id}. Sign that id "
                "again with that key: the id is the hash of the canonical body, optional fields filled in with their "
                "defaults (see detail.canonical_body and docs/protocol.md).")
    optional = ("canonical_body",)


class MissingSignature(RequestError):
    code = "missing_signature"
    template = "The transaction is not signed by its sender {sender}."


class UnexpectedSigner(RequestError):
    code = "unexpected_signer"
    template = "{signer} signed but is neither the sender nor a required co-signer of {type}; remove that signature."


class DuplicateSigner(RequestError):
    code = "duplicate_signer"
    template = "{signer} signed the transaction more than once; keep one signature per key."


class InvalidKeyPart(RequestError):
    code = "invalid_identifier_format"
    template = "{value!r} cannot be used as an identifier: {reason}."


class InvalidKey(RequestError):
    code = "invalid_key"
    template = "{key!r} is not a usable Ed25519 did:key: {reason}."


class QueryParamsInvalid(RequestError):
    code = "invalid_query"
    template = "The query parameters are not valid: {reason}"


class BadEventId(RequestError):
    code = "bad_event_id"
    template = ("{value!r} is not an event id: height:tx:event[:derived], as the event stream sends them, or a "
                "height alone (everything after that block).")


# ---------------------------------------------------------------- authorisation


class AuthError(BlokautoError):
    code = "unauthorised"
    template = "Not allowed."


class UnknownSigner(AuthError):
    code = "unknown_signer"
    template = "{signer} is not a member key of any organisation; an organisation admin must add it with governance.add_member first."


class RevokedKey(AuthError):
    code = "revoked_key"
    template = "{signer} was {status} at height {since}; sign with the organisation's current key."


class RoleNotAllowed(AuthError):
    code = "role_not_allowed"
    template = "{type} may be sent only by a key with role {allowed}; {signer} of {org!r} has {roles}."


class MissingCosigner(AuthError):
    code = "missing_cosigner"
    template = "{type} must also be signed by {party}; collect that signature and submit again."


# ---------------------------------------------------------------- conflicts and lookups


class Conflict(BlokautoError):
    code = "conflict"
    template = "Conflicts with the ledger."


class ReplayedTx(Conflict):
    code = "replayed_tx"
    template = "Transaction {tx_id} was already accepted (height {height}); a transaction is accepted once. Build a new one with a fresh nonce."


class NotFound(BlokautoError):
    code = "not_found"
    template = "{what} {key!r} was not found."


class UnknownTx(NotFound):
    code = "unknown_tx"
    template = ("Transaction {tx_id} is not in any committed block; if it was just accepted, ask again with "
                "?wait=SECONDS to wait for its receipt.")


class Unavailable(BlokautoError):
    code = "unavailable"
    retryable = True
    template = "The node cannot take this now ({reason}); retry shortly."


class DomainError(BlokautoError):
    """A module rule was broken; modules subclass this with their own codes."""

    code = "domain_rule"
    template = "A ledger rule refused the transaction."


class HandlerError(DomainError):
    """A handler failed in a way its rules did not foresee. Recorded like any refusal (the same
    input fails the same way on every node), so the chain keeps going; it signals a bug."""

    code = "handler_error"
    template = "The {type} handler could not process this transaction ({error}); nothing was written. Please report it."


class ValueOutOfRange(DomainError):
    code = "value_out_of_range"
    template = "The resulting value of {key!r} is out of range ({reason}); nothing was written."


class InvalidParameter(DomainError):
    """A chain parameter a governance vote would set is unknown or out of its bounds."""

    code = "invalid_parameter"
    template = "Parameter {name!r} {reason}."
