"""Consent messages and events."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Ident, Purpose

Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=32,
                                       description="history, odometer, location, driving or identity")]


class GrantConsent(Message, tag="consent.grant"):
    """The title holder lets an organisation read some categories of a vehicle's data, for a
    purpose, until a block time (ms). It stops counting when revoked, at ``until``, or when the
    title passes to someone else."""

    vin: Vin
    org: Ident
    categories: Annotated[list[Category], msgspec.Meta(min_length=1, max_length=5)]
    purpose: Purpose
    until: Uint


class RevokeConsent(Message, tag="consent.revoke"):
    """The holder who made a grant revokes it, at any moment."""

    vin: Vin
    grant: Uint


class ConsentGranted(Event, tag="consent.granted"):
    grant: Uint
    vin: str
    org: str
    categories: list[str]
    until: Uint


class ConsentRevoked(Event, tag="consent.revoked"):
    grant: Uint
    vin: str
    org: str
