"""The payments module's door: what other modules and the outer layers may ask of payments.

Balances and supplies, read by the module's own rules (``state``); the voucher code the SDK hands
to vehicles and merchants lives in ``vouchers`` (pure); the door re-exports it (``Voucher``,
``make_voucher``, ``check_voucher``, ``voucher_digest``), so the SDK and other layers reach it here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.module import Context
from ...core.state import Overlay, StateReader
from .handlers import _currency, check_owner, credit, debit
from .messages import Transferred
from .state import ACCOUNTS, CURRENCIES, ESCROWS, HELD
from .vouchers import Voucher, check_voucher, make_voucher, voucher_digest  # noqa: F401  (the voucher format: part of the door)


@runtime_checkable
class PaymentsDoor(Protocol):
    """The payments module's door."""

    def balance(self, state: StateReader, owner: str, currency: str) -> int:
        """The balance of ``owner``'s account in ``currency`` (minor units; 0 if it has none)."""
        ...

    def supply(self, state: StateReader, currency: str) -> int | None:
        """Units of ``currency`` outstanding (None if no issuer issues it)."""
        ...

    def sale_paid(self, state: StateReader, escrow: int) -> bool:
        """Whether sale escrow ``escrow`` was settled (the title moved against its price)."""
        ...

    def pay(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int, memo: str) -> None:
        """Move ``amount`` from ``payer``'s account to ``to``'s, for another module's rule that already
        decided who owes whom (an insurance premium, a claim's payout); refused (unknown_currency,
        insufficient_funds, invalid_account) leaving both accounts as they were."""
        ...

    def hold(self, state: Overlay, ctx: Context, currency: str, owner: str, amount: int, module: str) -> None:
        """Move ``amount`` from ``owner``'s account into what ``module``'s rules hold (an energy bid's
        most it can cost); the module keeps its own record of whose it is and gives it back with
        ``release``. Refused (unknown_currency, insufficient_funds) moving nothing."""
        ...

    def release(self, state: Overlay, ctx: Context, currency: str, module: str, to: str, amount: int) -> None:
        """Move ``amount`` of what ``module`` holds to ``to``'s account (a refund, or the price it
        settles), even if ``to`` is an organisation removed since: the module named it while it was
        valid, and the money must not stay held for ever. Holding less is a bug of the module."""
        ...

    def move(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int) -> None:
        """Move ``amount`` between two accounts another module's records named while they were valid
        (a settlement's counterparty, an organisation removed since included); refused
        (insufficient_funds) moving nothing."""
        ...

    def held(self, state: StateReader, currency: str, module: str) -> int:
        """What ``module``'s rules hold in ``currency`` in all."""
        ...


class PaymentsRecords:
    """The implementation of ``PaymentsDoor`` wired in the module's definition."""

    def balance(self, state: StateReader, owner: str, currency: str) -> int:
        if not owner or "/" in owner or len(owner) > 200 or not currency.isalpha():
            return 0
        return ACCOUNTS.get(state, currency, owner) or 0

    def supply(self, state: StateReader, currency: str) -> int | None:
        c = CURRENCIES.get(state, currency) if currency.isalpha() else None
        return None if c is None else c.supply

    def sale_paid(self, state: StateReader, escrow: int) -> bool:
        e = ESCROWS.get(state, escrow) if escrow >= 0 else None
        return e is not None and e.status == "settled"

    def pay(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int, memo: str) -> None:
        _currency(state, currency)
        check_owner(state, ctx, to)
        if amount <= 0 or payer == to:
            return
        debit(state, currency, payer, amount)
        credit(state, currency, to, amount)
        ctx.emit(Transferred(currency=currency, payer=payer, to=to, amount=amount, memo=memo))

    def hold(self, state: Overlay, ctx: Context, currency: str, owner: str, amount: int, module: str) -> None:
        _currency(state, currency)
        if amount <= 0:
            return
        debit(state, currency, owner, amount)
        HELD.put(state, self.held(state, currency, module) + amount, currency, module)

    def release(self, state: Overlay, ctx: Context, currency: str, module: str, to: str, amount: int) -> None:
        if amount <= 0:
            return
        have = self.held(state, currency, module)
        if have < amount:
            raise AssertionError(f"{module} releases {amount} {currency} and holds {have}")
        if have == amount:
            HELD.delete(state, currency, module)
        else:
            HELD.put(state, have - amount, currency, module)
        credit(state, currency, to, amount)

    def move(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int) -> None:
        if amount <= 0 or payer == to:
            return
        debit(state, currency, payer, amount)
        credit(state, currency, to, amount)

    def held(self, state: StateReader, currency: str, module: str) -> int:
        return HELD.get(state, currency, module) or 0
