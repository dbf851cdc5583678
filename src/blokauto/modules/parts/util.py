"""Who the sender acts for: shared by the parts rules."""

from __future__ import annotations

from ...core.module import Context


def org_of(ctx: Context) -> str:
    assert ctx.member is not None
    return ctx.member.org


def speaks_for(ctx: Context, holder: str) -> bool:
    """The sender may act for ``holder``: its own key, or an active key of that organisation."""
    if holder == ctx.sender:
        return True
    return ctx.member is not None and ctx.member.active and holder == "org:" + ctx.member.org
