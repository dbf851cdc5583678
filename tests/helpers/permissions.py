"""The rule every module's message × role matrix follows: who may send a message, and which code
the framework or the handler refuses the others with."""

from __future__ import annotations

from typing import Any, Collection, Mapping


def expected_code(case: Any, actor: str, orgs: Mapping[str, Collection[str]],
                  members: Collection[str] | None = None) -> str | None:
    """None when ``actor`` may send ``case``'s message; else the refusal code. ``case`` has
    ``overrides`` (actor -> code), ``allowed`` (actors), ``roles`` (a set, "member" for any member
    key, or None: the handler decides) and ``refusal`` (the handler's code, "*": any refusal);
    ``orgs`` maps member actors to their roles, ``members`` (default: ``orgs``) the actors that are
    member keys."""
    if actor in case.overrides:
        return case.overrides[actor]
    if actor in case.allowed:
        return None
    if case.roles is None:
        return case.refusal
    if actor not in (orgs if members is None else members):
        return "unknown_signer"
    if case.roles == "member":
        return case.refusal
    if not case.roles & set(orgs[actor]):
        return "role_not_allowed"
    return case.refusal
