"""Every refusal blokauto can give, with a stable code and a sentence a person can act on.

    BlokautoError                      code, detail, message; http_status at the API boundary
    ├── RequestError (400)             the request itself is malformed
    │   ├── MalformedTx, TxTooLarge, UnknownMessage, WrongChain
    │   ├── TxExpired, ExpiryTooFar
    │   └── BadSignature, MissingSignature, UnexpectedSigner, DuplicateSigner, InvalidKey
    ├── AuthError (403)                signer unknown, revoked, wrong role or organisation
    │   └── UnknownSigner, RevokedKey, RoleNotAllowed, MissingCosigner
    ├── Conflict (409)                 ReplayedTx
    ├── NotFound (404)
    ├── DomainError (422)              a module's rule was broken (each module adds its own)
    └── Unavailable (503)              the node is busy or stopping; retry

The code and the detail are recorded in a failure receipt (so they are hashed and must stay
stable); the sentence is rendered from them, so wording can improve without forking the chain.
Codes are unique across the project: ``all_error_classes()`` lists them for docs and tests.
"""

from __future__ import annotations

from typing import Any, ClassVar

_REGISTRY: dict[str, type["BlokautoError"]] = {}


class BlokautoError(Exception):
    """Base of every blokauto refusal. ``detail`` holds the data that caused it."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    template: ClassVar[str] = "The request was refused."
    retryable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            other = _REGISTRY.get(cls.code)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"error code {cls.code!r} used by {other.__name__} and {cls.__name__}")
            _REGISTRY[cls.code] = cls

    #: The sentence to show when ``detail`` cannot fill the template (an error a remote node answered
    #: with detail this code does not expect carries the node's own sentence here).
    fallback: str | None = None

    def __init__(self, **detail: Any) -> None:
        self.detail = detail
        super().__init__(self.message)

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
    err = cls.__new__(cls)
    err.detail = detail
    return err.message


def template_fields(cls: type[BlokautoError]) -> list[str]:
    """The detail fields ``cls``'s sentence names (``{what}``, ``{key!r}`` -> ``what``, ``key``)."""
    import string

    return [name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(cls.template) if name]


def all_error_classes() -> list[type[BlokautoError]]:
    return sorted(_REGISTRY.values(), key=lambda c: c.code)


# ---------------------------------------------------------------- request errors (400)


class RequestError(BlokautoError):
    code = "bad_request"
    http_status = 400
    template = "The request is not valid: {reason}"


class MalformedTx(RequestError):
    code = "malformed_tx"
    template = "The transaction could not be read: {reason}. Check it against the schema at /schema."


class TxTooLarge(RequestError):
    code = "tx_too_large"
    http_status = 413
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
    http_status = 401
    template = ("The signature of {signer} does not verify for this transaction, whose id is {tx_id}. Sign that id "
                "again with that key: the id is the hash of the canonical body, optional fields filled in with their "
                "defaults (see detail.canonical_body and docs/protocol.md).")


class MissingSignature(RequestError):
    code = "missing_signature"
    http_status = 401
    template = "The transaction is not signed by its sender {sender}."


class UnexpectedSigner(RequestError):
    code = "unexpected_signer"
    http_status = 401
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


# ---------------------------------------------------------------- authorisation (403)


class AuthError(BlokautoError):
    code = "unauthorised"
    http_status = 403
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
    http_status = 409
    template = "Conflicts with the ledger."


class ReplayedTx(Conflict):
    code = "replayed_tx"
    template = "Transaction {tx_id} was already accepted (height {height}); a transaction is accepted once. Build a new one with a fresh nonce."


class NotFound(BlokautoError):
    code = "not_found"
    http_status = 404
    template = "{what} {key!r} was not found."


class Unavailable(BlokautoError):
    code = "unavailable"
    http_status = 503
    retryable = True
    template = "The node cannot take this now ({reason}); retry shortly."


class DomainError(BlokautoError):
    """A module rule was broken; modules subclass this with their own codes."""

    code = "domain_rule"
    http_status = 422
    template = "A ledger rule refused the transaction."


class HandlerError(DomainError):
    """A handler failed in a way its rules did not foresee. Recorded like any refusal (the same
    input fails the same way on every node), so the chain keeps going; it signals a bug."""

    code = "handler_error"
    template = "The {type} handler could not process this transaction ({error}); nothing was written. Please report it."


class ValueOutOfRange(DomainError):
    code = "value_out_of_range"
    template = "The resulting value of {key!r} is out of range ({reason}); nothing was written."
