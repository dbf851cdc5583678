"""Payments: accounts in issuer-backed units, vehicles that pay within their holders' limits,
merchants' tariffs, payment channels settled with off-ledger vouchers, journeys split between
operators, and delivery versus payment for vehicle sales.

Decisions (the rules themselves are listed in each handler's docstring):

- **Currencies and issuers.** An organisation governance admitted with the ``issuer`` role (an
  e-money institution) registers an ISO 4217 code; a code has one issuer on a chain. It attests its
  reserves (minor units, plus the SHA-256 of the attestation document kept off the ledger) and
  issues only while ``supply + amount <= reserves``. Any account holder redeems (the units leave
  the supply; the issuer pays out off the ledger). An attestation below the supply is recorded as
  given (it is evidence), and stops issuance until the reserves cover the supply again.
- **Accounts.** Keyed by (currency, owner); an owner is a usable Ed25519 ``did:key`` or
  ``org:<id>`` of an active organisation; anyone may hold one without opening it. Amounts are
  integer minor units (``Uint``), never floats. Any active key of an organisation spends from its
  account (``payer: org:<id>``), as it acts for its titles. A zero balance is no state at all.
- **Conservation.** Only ``issue`` creates units and only ``redeem`` destroys them; per currency,
  supply == balances + deposits of channels not closed + prices of locked escrows, and no balance is
  negative (tests/modules/test_payments_properties.py checks it over random operations).
- **A vehicle's wallet** is its title holder's account. The holder (a key, or any key of a holding
  organisation: a fleet manager) sets a ``SpendingLimit`` per (VIN, currency): per payment, per UTC
  day (block time // 86,400,000) and the merchant categories allowed; revoking it is immediate.
  Only the vehicle's device keys (vehicles' relation "device") spend under it. A limit belongs to
  the holding that set it (holder and holder-since, as consent grants do): after a sale it lapses,
  so a device can never spend its new holder's money on the old holder's say-so. Refusals name the
  limit: ``category_not_allowed``, ``over_payment_limit``, ``over_daily_limit``,
  ``spending_limit_revoked``, ``spending_limit_lapsed``, ``no_spending_limit``.
- **Merchants** are organisations admitted with the role of their category: toll → ``toll``,
  parking → ``parking``, charging → ``charging``, fuel → ``fuel``, ride → ``mobility``, insurance →
  ``insurer`` (``state.CATEGORY_ROLES``). A payment, channel or fare share to an organisation
  without the category's role is refused (``merchant_not_in_category``). Tariffs: ``base`` per use
  plus, in the band (minutes of the UTC day) of the block time, ``price`` per ``per`` units of km,
  minute, kWh, Wh or entry, rounded down; per zone; republishing bumps the version. A vehicle's
  payment may name a tariff and quantity, and the ledger then checks its amount.
- **Payment channels.** Opened with a deposit (from an account, or from a vehicle's wallet by its
  device within the limit: the deposit counts as spent). The sender's key signs vouchers off the
  ledger: Ed25519 over SHA-256("blokauto/voucher/v1\\0" || canonical {amount, chain, channel})
  (``vouchers.py``, shared with the SDK). The merchant closes at once with a voucher
  (``claim_channel``); the payer (or its funder) starts a close, optionally presenting its latest
  voucher, and after the challenge period (``channel_challenge_ms``, fixed at opening) anyone
  settles. The highest voucher presented wins; a lower one is refused (``stale_voucher``). A voucher
  of another channel or chain, a forged one, or one over the deposit is worthless and refused.
- **Journeys.** Operators agree a fare (shares in basis points adding to 10,000; the lead sends it
  and a key of every other operator co-signs). A payment to it is split in one transaction, all or
  nothing (every operator must still be active in its category); rounding goes to the lead.
- **Delivery versus payment.** The buyer locks the price for a VIN, naming its current holder as
  seller and a deadline (at most ``max_escrow_ms`` ahead). The seller settles before the deadline:
  through the vehicles door (``transfer_paid``) every lien is released as paid off and the title
  passes to the buyer under transfer_title's own rules; each lender is paid its lien's amount (same
  currency, not more than the price in all) and the seller the rest; the vehicle's history gets a
  ``sale_paid`` entry naming the escrow, never the amount. Lenders need not sign: they are paid in
  full in the same transaction. The buyer reclaims after the deadline, or earlier once the seller no
  longer holds the title. The price is read only by the parties (and regulators, police).

The module's door, ``PaymentsDoor`` (balances, supplies, whether a sale was paid), is wired here.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import PaymentsDoor, PaymentsRecords
from .spec import module
from .vouchers import Voucher, check_voucher, make_voucher, voucher_digest

module.provide(PaymentsDoor, PaymentsRecords())

__all__ = ["PaymentsDoor", "Voucher", "check_voucher", "make_voucher", "module", "voucher_digest"]
