"""Stored data that does not match what was committed (a flipped byte, an edited row)."""

from __future__ import annotations

from typing import Any, Literal

Scope = Literal["block", "state"]


class DamagedData(Exception):
    """``what`` at ``where`` does not match what the node committed, for ``reason``.

    ``scope`` says what a node must stop serving: one block of the log (``height``), or
    everything read from ``state.db`` (which can be rebuilt from the log).
    """

    def __init__(self, what: str, where: str, reason: str, *, scope: Scope, height: int | None = None) -> None:
        self.what, self.where, self.reason = what, where, reason
        self.scope, self.height = scope, height
        super().__init__(f"{what} at {where}: {reason}")

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "where": self.where, "reason": self.reason}
