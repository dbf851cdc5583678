"""A synthetic but realistic fleet for benchmarks: deterministic keys and VINs, and the signed
lifecycle transactions of each vehicle (birth, sale to a dealer, sale to an owner, then a mix of
telematics odometer readings, services, inspections, accidents and repairs).

Everything is derived from the vehicle's index, so a transaction can be rebuilt anywhere (signing
runs in a process pool) and a cached data set can be extended or checked.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Iterator

from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import Message, make_body, sign
from ..modules.vehicles import messages as vm

ORGS = [
    "kba:regulator,police,inspector:Registry",
    "fleet-oem:manufacturer:Fleet OEM",
    "metro-dealer:dealer:Metro Dealer",
    "quick-garage:workshop:Quick Garage",
    "safe-insurance:insurer:Safe Insurance",
]
WMI = "WZZ"


def vin_of(i: int) -> str:
    """A valid 17-character European VIN (no check digit needed) for vehicle ``i``."""
    return f"{WMI}3E5C2{i:09d}"


def _key(label: bytes) -> KeyPair:
    return KeyPair(hashlib.sha256(b"blokauto/bench/" + label).digest())


def device_key(i: int) -> KeyPair:
    return _key(b"device-%d" % i)


def owner_key(i: int) -> KeyPair:
    return _key(b"owner-%d" % i)


@dataclass
class FleetKeys:
    oem: KeyPair
    dealer: KeyPair
    shop: KeyPair
    insurer: KeyPair
    registry: KeyPair


def fleet_keys(load: Any) -> FleetKeys:
    """The organisations' admin keys (``load(name)`` reads the keystore)."""
    return FleetKeys(load("fleet-oem-admin"), load("metro-dealer-admin"), load("quick-garage-admin"),
                     load("safe-insurance-admin"), load("kba-admin"))


class TxFactory:
    def __init__(self, chain: str, keys: FleetKeys, ttl_ms: int = 55 * 60_000) -> None:
        self.chain = chain
        self.k = keys
        self.expires = time.time_ns() // 1_000_000 + ttl_ms
        self._nonce = 0

    def tx(self, sender: KeyPair, msg: Message, *cosigners: KeyPair, nonce: str) -> bytes:
        body = make_body(self.chain, sender.did, msg, nonce=nonce, expires=self.expires)
        return canonical(sign(body, sender, *cosigners))

    def signed(self, sender: KeyPair, msg: Message, *cosigners: KeyPair, nonce: str) -> Any:
        body = make_body(self.chain, sender.did, msg, nonce=nonce, expires=self.expires)
        return sign(body, sender, *cosigners)

    @staticmethod
    def nonce(i: int, step: int) -> str:
        return f"{i:020x}{step:012x}"

    def assign_wmi(self) -> bytes:
        return self.tx(self.k.registry, vm.AssignWmi(wmi=WMI, org="fleet-oem"), nonce=self.nonce(0, 0xFFFFFFFFFF))

    def birth(self, i: int) -> bytes:
        msg = vm.RegisterVehicle(vin=vin_of(i), make="Fleet", model=("E3", "E5", "X7")[i % 3], model_year=2018 + i % 7,
                                 body="sedan", powertrain=("bev", "ice", "phev")[i % 3], plant="Leipzig",
                                 build_date=f"{2018 + i % 7}-0{1 + i % 9}-1{i % 10}", country="DE",
                                 battery_wh=75_000 if i % 3 == 0 else 0, device_keys=[device_key(i).did])
        return self.tx(self.k.oem, msg, nonce=self.nonce(i, 1))

    def to_dealer(self, i: int) -> bytes:
        return self.tx(self.k.oem, vm.TransferTitle(vin=vin_of(i), to="org:metro-dealer"), self.k.dealer,
                       nonce=self.nonce(i, 2))

    def to_owner(self, i: int) -> bytes:
        owner = owner_key(i)
        return self.tx(self.k.dealer, vm.TransferTitle(vin=vin_of(i), to=owner.did, usage="private"), owner,
                       nonce=self.nonce(i, 3))

    def event(self, i: int, step: int, km: int | None = None) -> bytes:
        """The ``step``-th event of vehicle ``i`` (step >= 4): mostly telematics readings."""
        km = 1_500 * step + i % 997 if km is None else km
        kind = (i * 31 + step * 7) % 20
        vin = vin_of(i)
        if kind < 12:
            return self.tx(device_key(i), vm.RecordOdometer(vin=vin, value=km), nonce=self.nonce(i, step))
        if kind < 16:
            return self.tx(self.k.shop, vm.RecordService(vin=vin, odometer=km, items=["oil", "filters"],
                                                         parts=[vm.PartRef(part_number="OF-100", serial=f"OF{i}-{step}")]),
                           nonce=self.nonce(i, step))
        if kind < 19:
            return self.tx(self.k.registry, vm.RecordInspection(vin=vin, odometer=km, result="pass"),
                           nonce=self.nonce(i, step))
        return self.tx(self.k.insurer, vm.RecordAccident(vin=vin, date="2023-05-17", severity="minor",
                                                         impact_areas=["rear"]), nonce=self.nonce(i, step))

    def life(self, i: int, events: int) -> list[bytes]:
        """Birth, two sales, then ``events`` more entries."""
        return [self.birth(i), self.to_dealer(i), self.to_owner(i)] + [self.event(i, 4 + s) for s in range(events)]


def events_for(i: int, mean: int) -> int:
    """A skewed number of extra entries per vehicle (many with few, some with many), mean ``mean``."""
    h = int.from_bytes(hashlib.sha256(b"events-%d" % i).digest()[:4], "big")
    return (h % (2 * mean + 1)) if mean else 0


# ---------------------------------------------------------------- parallel signing


_factory: TxFactory | None = None


def _init_worker(chain: str, seeds: list[bytes]) -> None:
    global _factory
    _factory = TxFactory(chain, FleetKeys(*[KeyPair(s) for s in seeds]))


#: Vehicles 0-9 get 200 history entries and 10-19 get 100 (3 from birth and sales, the rest events).
LONG_200 = range(0, 10)
LONG_100 = range(10, 20)


def planned_events(i: int, mean_events: int) -> int:
    if i in LONG_200:
        return 197
    if i in LONG_100:
        return 97
    return events_for(i, mean_events)


def _sign_range(args: tuple[int, int, int]) -> list[bytes]:
    """All transactions of vehicles [start, end): births, then sales, then events, so each
    vehicle's entries come in order."""
    start, end, mean_events = args
    f = _factory
    assert f is not None
    f.expires = time.time_ns() // 1_000_000 + 55 * 60_000
    out = [f.birth(i) for i in range(start, end)]
    out += [f.to_dealer(i) for i in range(start, end)]
    out += [f.to_owner(i) for i in range(start, end)]
    for i in range(start, end):
        out.extend(f.event(i, 4 + s) for s in range(planned_events(i, mean_events)))
    return out


def signed_lives(chain: str, keys: FleetKeys, vehicles: range, mean_events: int, *, chunk: int = 1_000,
                 workers: int | None = None, ahead: int = 4) -> Iterator[list[bytes]]:
    """Signed transactions of every vehicle in ``vehicles``, chunk by chunk, signed in a process
    pool at most ``ahead`` chunks ahead of the consumer (bounded memory, fresh expiries)."""
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    seeds = [keys.oem.seed, keys.dealer.seed, keys.shop.seed, keys.insurer.seed, keys.registry.seed]
    jobs = iter([(s, min(s + chunk, vehicles.stop), mean_events) for s in range(vehicles.start, vehicles.stop, chunk)])
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(chain, seeds)) as pool:
        window: deque = deque()
        for job in jobs:
            window.append(pool.submit(_sign_range, job))
            if len(window) >= ahead:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
