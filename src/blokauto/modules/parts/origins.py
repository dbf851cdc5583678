"""Material origins by mass balance: pure arithmetic, shared by the rules, the queries and the
SDK's check of a proven answer (``blokauto.client.sourcing``).

Every lot carries, per raw material it contains (the material its mined or recovered lots were
registered as), the share of that material coming from each origin lot, in parts per million.
Mixing lots (a merge, a transformation, a batch consuming several lots, a pack of cells from
several batches) weights each input by the mass it brings; this is the *mass-balance* model of
chain of custody (ISO 22095): shares follow the masses declared at each step, not a physical
analysis. Exact rationals, then largest-remainder rounding so the shares of each material sum to
exactly 1,000,000 ppm; ties go to the origin that sorts first. No floats, so every node and the
SDK compute the same shares.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence

from .state import Origin

PPM = 1_000_000
#: Most origins (material and origin lot pairs) one lot or product may carry.
MAX_ORIGINS = 256


def _key(o: Origin) -> tuple[str, str]:
    return (o.material, o.lot)


def mix(inputs: Iterable[tuple[Fraction | int, Sequence[Origin]]]) -> list[Origin]:
    """The origins of what ``inputs`` make together: each input is (its weight: the mass it brings,
    its origins). Per material, an input's shares count in proportion to its weight among the
    inputs that carry that material. Returns origins sorted by (material, lot)."""
    weight_of: dict[str, Fraction] = {}  # material -> total weight of the inputs carrying it
    share: dict[tuple[str, str], Fraction] = {}
    about: dict[tuple[str, str], Origin] = {}
    for weight, origins in inputs:
        w = Fraction(weight)
        if w <= 0:
            continue
        for material in sorted({o.material for o in origins}):
            weight_of[material] = weight_of.get(material, Fraction(0)) + w
        for o in origins:
            k = _key(o)
            share[k] = share.get(k, Fraction(0)) + w * o.ppm
            about.setdefault(k, o)
    out: list[Origin] = []
    for material in sorted(weight_of):
        keys = sorted(k for k in share if k[0] == material and share[k] > 0)
        if not keys:
            continue
        total = sum(share[k] for k in keys)  # weight_of[material] * PPM, up to the inputs' own rounding
        floors = {k: (share[k] * PPM) // total for k in keys}  # an int: floor division, exact
        rest = {k: share[k] * PPM - floors[k] * total for k in keys}  # what the floor left, on one scale
        left = PPM - sum(floors.values())
        for k in sorted(keys, key=lambda k: (-rest[k], k))[:left]:
            floors[k] += 1
        for k in keys:
            o = about[k]
            out.append(Origin(o.material, o.lot, o.mine, o.country, floors[k], o.recycled))
    return out


def recycled_ppm(origins: Iterable[Origin]) -> dict[str, int]:
    """Per material, the ppm of its content recovered from waste (recycled origins)."""
    out: dict[str, int] = {}
    for o in origins:
        out.setdefault(o.material, 0)
        if o.recycled:
            out[o.material] += o.ppm
    return dict(sorted(out.items()))
