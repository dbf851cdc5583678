"""Energy trading from Python, for every side of a zone's market: the grid operator opens zones and
sets their terms, meter operators register meters with device keys, owners bid and ask, meters
sign their readings, and anyone clears and settles an interval.

    from blokauto.client.energy import Energy, Terms

    en = Energy(client)                                          # a Client pinned to the trust anchor
    en.open_zone(grid, "DE-MUC-1", currency="EUR", terms=Terms(import_wh=50_000, export_wh=20_000,
                 import_price=30, export_price=8, short_price=40, long_price=5))
    en.register_meter(meterco, "house-7", zone="DE-MUC-1", kind="home", key=meter_key.did,
                      owner=alice.did, max_power_w=10_000)
    start = en.next_interval("DE-MUC-1")                          # the first interval still open
    zone, start, seq = order_of(en.ask(alice, "house-7", start, price=12, wh=3_000))
    en.clear(anyone, "DE-MUC-1", start)                           # once its gate has closed
    en.submit_reading(meter_key, "house-7", start, imported_wh=0, exported_wh=3_000)  # after it ends
    en.settle(anyone, "DE-MUC-1", start)
    en.position("house-7", start, key=alice)                     # proven against a checkpoint

Sending methods return the ``TxInfo`` of the committed transaction, as ``Client.send`` does: a
refused transaction is on record with its failure receipt (``info.ok`` False;
``info.raise_for_status()`` raises the module's error class). Reads are signed with ``key=`` or
the client's own key. The auction is the module's own pure function (``clear``, ``fill``, handed on
here), never a second copy that could drift from the ledger's.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..core.crypto import KeyPair
from ..modules.energy import Offer, Result, Terms, book_key, clear, fill, position_key, value
from ..modules.energy.messages import (CancelOrder, ClearInterval, OpenZone, PlaceOrder, RegisterMeter, RevokeMeter,
                                       RotateMeterKey, SetTerms, SettleInterval, SubmitReading)
from ._client import Client, now_ms
from ._results import StateValue, TxInfo

__all__ = ["Energy", "Offer", "Result", "Terms", "clear", "fill", "order_of", "position_key", "book_key", "value"]

PAGE = 1000


def order_of(info: TxInfo) -> tuple[str, int, int]:
    """(zone, interval start, seq) of the order a committed ``place_order`` placed; raises its error if
    it was refused."""
    info.raise_for_status()
    for e in info.events:
        if e["type"] == "energy.order_placed":
            return str(e["zone"]), int(e["start"]), int(e["seq"])
    raise ValueError(f"transaction {info.id} placed no order")


class Energy:
    """The energy market through one node: ``client`` (its trust anchor checks every receipt and
    every proven read)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._others: dict[str, Client] = {}

    def close(self) -> None:
        """Close the clients made to read as other keys (``key=``); the caller closes ``client``."""
        for c in self._others.values():
            c.close()
        self._others.clear()

    def __enter__(self) -> "Energy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- the grid operator

    def open_zone(self, grid: KeyPair, zone: str, *, currency: str, terms: Terms, interval_ms: int = 900_000,
                  gate_closure_ms: int = 300_000, reading_window_ms: int = 3_600_000, wait: float = 30.0) -> TxInfo:
        """Open a zone (its currency and clock are for good); ``terms`` apply from the first interval
        whose gate is still open."""
        return self.client.send(OpenZone(zone=zone, currency=currency, interval_ms=interval_ms,
                                         gate_closure_ms=gate_closure_ms, reading_window_ms=reading_window_ms,
                                         terms=terms), grid, wait=wait)

    def set_terms(self, grid: KeyPair, zone: str, start: int, terms: Terms, *, wait: float = 30.0) -> TxInfo:
        """New capacities and prices from the interval at ``start`` (its gate still open) on."""
        return self.client.send(SetTerms(zone=zone, start=start, terms=terms), grid, wait=wait)

    # ---------------------------------------------------------------- meter operators

    def register_meter(self, operator: KeyPair, meter: str, *, zone: str, kind: str, key: str, owner: str,
                       max_power_w: int, vin: str = "", wait: float = 30.0) -> TxInfo:
        """Register a meter (``kind``: home, charge_point or v2g_charger) with the device key (a did:key)
        that signs its readings and the account (did:key or org:<id>) it trades for."""
        return self.client.send(RegisterMeter(meter=meter, zone=zone, kind=kind, key=key, owner=owner,  # type: ignore[arg-type]
                                              max_power_w=max_power_w, vin=vin), operator, wait=wait)

    def rotate_meter_key(self, operator: KeyPair, meter: str, key: str, *, wait: float = 30.0) -> TxInfo:
        return self.client.send(RotateMeterKey(meter=meter, key=key), operator, wait=wait)

    def revoke_meter(self, operator: KeyPair, meter: str, reason: str = "", *, wait: float = 30.0) -> TxInfo:
        return self.client.send(RevokeMeter(meter=meter, reason=reason), operator, wait=wait)

    # ---------------------------------------------------------------- owners

    def bid(self, owner: KeyPair, meter: str, start: int, *, price: int, wh: int, wait: float = 30.0) -> TxInfo:
        """Buy up to ``wh`` Wh at no more than ``price`` minor units per kWh in the interval at
        ``start``; its most cost is held from the owner's account until the interval settles."""
        return self.client.send(PlaceOrder(meter=meter, start=start, side="buy", price=price, wh=wh), owner, wait=wait)

    def ask(self, owner: KeyPair, meter: str, start: int, *, price: int, wh: int, wait: float = 30.0) -> TxInfo:
        """Sell up to ``wh`` Wh at no less than ``price`` minor units per kWh."""
        return self.client.send(PlaceOrder(meter=meter, start=start, side="sell", price=price, wh=wh), owner,
                                wait=wait)

    def cancel(self, owner: KeyPair, zone: str, start: int, seq: int, *, wait: float = 30.0) -> TxInfo:
        """Cancel an open order before its gate closes (a bid's money comes back at once)."""
        return self.client.send(CancelOrder(zone=zone, start=start, seq=seq), owner, wait=wait)

    # ---------------------------------------------------------------- meters and anyone

    def submit_reading(self, meter_key: KeyPair, meter: str, start: int, *, imported_wh: int, exported_wh: int,
                       wait: float = 30.0) -> TxInfo:
        """The meter's own reading of an interval that has ended, signed by its device key."""
        return self.client.send(SubmitReading(meter=meter, start=start, imported_wh=imported_wh,
                                              exported_wh=exported_wh), meter_key, wait=wait)

    def clear(self, sender: KeyPair, zone: str, start: int, *, wait: float = 30.0) -> TxInfo:
        """Clear the interval (anyone, once its gate has closed)."""
        return self.client.send(ClearInterval(zone=zone, start=start), sender, wait=wait)

    def settle(self, sender: KeyPair, zone: str, start: int, *, wait: float = 30.0) -> TxInfo:
        """Settle the interval (anyone, after it ends, once its meters have read or its window passed)."""
        return self.client.send(SettleInterval(zone=zone, start=start), sender, wait=wait)

    # ---------------------------------------------------------------- reads

    def zone(self, zone: str, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """A zone: operator, currency, clock, every terms it has had (``next_open`` is judged at the newest
        block's time, which on a quiet chain may be long past: see ``next_interval``)."""
        return self._as(key).query("energy", "zone", zone=zone, min_height=min_height)

    def zones(self, *, key: KeyPair | None = None, min_height: int = -1) -> Iterator[dict[str, Any]]:
        """The zones on the ledger, by id (zone, operator, currency)."""
        yield from self._pages(self._as(key), "zones", "zones", min_height=min_height)

    def next_interval(self, zone: str, *, key: KeyPair | None = None, after_ms: int = 0) -> int:
        """The start of the first interval of ``zone`` whose gate is open ``after_ms`` (time to get an
        order into a block) after now: the later of the newest block's time and this machine's clock,
        since the block an order lands in is cut at the node's clock, and a quiet chain's newest block
        can be hours old."""
        z = self.zone(zone, key=key)
        head = self._as(key).checkpoint("latest").header
        t = max(head.time, now_ms()) + after_ms
        return ((t + z["gate_closure_ms"]) // z["interval_ms"] + 1) * z["interval_ms"]

    def book(self, zone: str, start: int, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """An interval: times, open totals, clearing and settlement (not individual orders)."""
        return self._as(key).query("energy", "book", zone=zone, start=start, min_height=min_height)

    def proven_book(self, zone: str, start: int, *, key: KeyPair | None = None, min_height: int = -1) -> Any:
        """The interval's book from state, checked against a quorum checkpoint (None when proven absent)."""
        return self._as(key).state(book_key(zone, start), min_height=min_height).value

    def order(self, zone: str, start: int, seq: int, *, key: KeyPair | None = None,
              min_height: int = -1) -> dict[str, Any]:
        """One order (its owner's and the zone operator's), with ``filled_wh`` once its interval cleared."""
        return self._as(key).query("energy", "order", zone=zone, start=start, seq=seq, min_height=min_height)

    def orders(self, owner: str, *, start: int | None = None, key: KeyPair | None = None,
               min_height: int = -1) -> Iterator[dict[str, Any]]:
        """An account's open orders, newest interval first (one interval's with ``start``)."""
        params: dict[str, Any] = {"owner": owner} if start is None else {"owner": owner, "start": start}
        yield from self._pages(self._as(key), "orders", "orders", min_height=min_height, **params)

    def meter(self, meter: str, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """A meter (read by its owner, its operator and its zone's operator)."""
        return self._as(key).query("energy", "meter", meter=meter, min_height=min_height)

    def meters(self, owner: str, *, key: KeyPair | None = None, min_height: int = -1) -> list[dict[str, Any]]:
        return list(self._pages(self._as(key), "meters", "meters", min_height=min_height, owner=owner))

    def reading(self, meter: str, start: int, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        return self._as(key).query("energy", "reading", meter=meter, start=start, min_height=min_height)

    def position(self, meter: str, start: int, *, key: KeyPair | None = None, min_height: int = -1) -> Any:
        """How the meter's trades of an interval settled, from state with its proof (None when proven
        absent: the interval has not settled, or the meter had no open order in it)."""
        return self.proven_position(meter, start, key=key, min_height=min_height).value

    def proven_position(self, meter: str, start: int, *, key: KeyPair | None = None, min_height: int = -1) -> StateValue:
        """The position with its key, height and the checkpoint its proof was checked against."""
        m = self.meter(meter, key=key, min_height=min_height)
        return self._as(key).state(position_key(m["zone"], start, meter), min_height=min_height)

    def positions(self, meter: str, *, key: KeyPair | None = None, min_height: int = -1) -> list[dict[str, Any]]:
        return list(self._pages(self._as(key), "positions", "positions", min_height=min_height, meter=meter))

    def _as(self, key: KeyPair | None) -> Client:
        """The client reading as ``key`` (made once per key, closed by ``close``)."""
        if key is None or key is self.client.key or (self.client.key is not None and key.did == self.client.key.did):
            return self.client
        if key.did not in self._others:
            self._others[key.did] = self.client.as_key(key)
        return self._others[key.did]

    @staticmethod
    def _pages(c: Client, query: str, field: str, *, min_height: int = -1, **params: Any) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            rows = c.query("energy", query, limit=PAGE, offset=offset, min_height=min_height, **params)[field]
            yield from rows
            if len(rows) < PAGE:
                return
            offset += len(rows)
