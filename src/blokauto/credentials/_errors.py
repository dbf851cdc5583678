"""The two refusals of the credentials library: the document or its proof is unsound, or it is sound
but not what the caller accepts (issuer, type, context, validity period, subject shape).

Each ``reason`` names the field at fault and what would be accepted instead."""

from __future__ import annotations

from ..core.errors import RequestError


class CredentialInvalid(RequestError):
    code = "credential_invalid"
    template = "The credential is not valid: {reason}."


class CredentialNotAccepted(RequestError):
    code = "credential_not_accepted"
    template = "The credential's proof holds, but it is not accepted here: {reason}."
