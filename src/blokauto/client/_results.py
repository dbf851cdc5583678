"""What the SDK returns: committed transactions and state values, proven against the trust anchor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.block import Checkpoint, Receipt
from ..core.errors import BlokautoError, render
from ._errors import remote_error


@dataclass(frozen=True)
class TxInfo:
    """A committed transaction with its receipt, verified against the trust anchor."""

    id: str
    height: int
    index: int
    receipt: Receipt
    tx: dict[str, Any]
    checkpoint: Checkpoint
    evidence: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.receipt.ok

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.receipt.events

    @property
    def error(self) -> BlokautoError | None:
        if self.receipt.ok:
            return None
        return remote_error(self.receipt.code, render(self.receipt.code, self.receipt.detail), self.receipt.detail, 422)

    def raise_for_status(self) -> "TxInfo":
        err = self.error
        if err is not None:
            raise err
        return self


@dataclass(frozen=True)
class StateValue:
    key: str
    value: Any  # decoded JSON, or None when the key is absent
    height: int
    checkpoint: Checkpoint


