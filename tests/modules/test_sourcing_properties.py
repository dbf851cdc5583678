"""Properties of mass balance and origins (hypothesis).

- **Ledger sequences**: random splits, merges and transformations of random portions (some asking a
  gram more than is left, more than the yield allows, or mixing materials, which must be refused
  and change nothing), run on a MemoryLedger against an exact model (``Model``: masses in grams and
  origin shares as Fractions). After every step, for every lot: ``consumed_g`` equals the model's
  and never exceeds ``mass_g``, the consumption index rows add up to it, the shares of each material
  sum to exactly 1,000,000 ppm, and each share is within ``depth`` ppm of the exact rational share
  (``depth``: the mixing steps on the lot's longest path from a mine; each rounds by less than 1 ppm,
  and a weighted mean never widens its inputs' error). Never more mass out than in: what is left of
  all lots weighs at most what the mines registered. The blocks replayed on a fresh ledger give the
  same state roots (determinism).
- **origins.mix**: the order of its inputs (and of each input's origins) changes nothing; each
  material's shares sum to exactly 1,000,000; each share is within 1 ppm of the exact one; an input
  of weight 0 is ignored; scaling every weight changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from blokauto.modules.parts.origins import PPM, mix, recycled_ppm
from blokauto.modules.parts.spec import LOT_USES
from blokauto.modules.parts.state import Origin

from conftest import Chain, build_tx
from helpers.parts import SUP, parts_chain
from helpers.sourcing import lot_of, merge, registered, split, transform
from helpers.vehicles import snapshot

MINES = [("M0", "cobalt", 1_000_000), ("M1", "cobalt", 250_007), ("M2", "nickel", 600_000),
         ("M3", "cobalt", 99_991), ("M4", "lithium", 40_000)]


@dataclass
class LotModel:
    mass: int
    consumed: int
    material: str
    exact: dict[tuple[str, str], Fraction]  # (raw material, origin lot) -> share of that material
    depth: int = 0  # mixing steps on the longest path from a mine

    @property
    def left(self) -> int:
        return self.mass - self.consumed


@dataclass
class Model:
    lots: dict[str, LotModel] = field(default_factory=dict)
    made: int = 0

    def new_id(self) -> str:
        self.made += 1
        return f"X{self.made}"


def exact_mix(inputs: list[tuple[int, LotModel]]) -> dict[tuple[str, str], Fraction]:
    weight: dict[str, Fraction] = {}
    total: dict[tuple[str, str], Fraction] = {}
    for w, lot in inputs:
        for m in {k[0] for k in lot.exact}:
            weight[m] = weight.get(m, Fraction(0)) + w
        for k, s in lot.exact.items():
            total[k] = total.get(k, Fraction(0)) + w * s
    return {k: v / weight[k[0]] for k, v in total.items() if v}


def portion(left: int, ppm: int) -> int:
    return max(1, left * ppm // PPM)


ppms = st.integers(1, PPM)
OPS = st.one_of(
    st.tuples(st.just("split"), st.integers(0, 10**6), st.lists(ppms, min_size=1, max_size=3), st.booleans()),
    st.tuples(st.just("merge"), st.lists(st.integers(0, 10**6), min_size=2, max_size=3),
              st.lists(ppms, min_size=3, max_size=3), st.booleans(), st.booleans()),
    st.tuples(st.just("transform"), st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
              st.lists(ppms, min_size=3, max_size=3), st.integers(1, PPM), st.integers(1, 2), st.booleans()),
)


def pick(model: Model, idx: int, *, material: str | None = None, exclude: tuple[str, ...] = ()) -> str | None:
    live = [i for i, lot in sorted(model.lots.items()) if lot.left > 0 and i not in exclude
            and (material is None or lot.material == material)]
    return live[idx % len(live)] if live else None


def plan(model: Model, op: tuple) -> tuple[Any, str, Any] | None:
    """The message for ``op``, the code it must get ("" to pass) and how to apply it to the model."""
    kind = op[0]
    if kind == "split":
        _, idx, shares, over = op
        src = pick(model, idx)
        if src is None:
            return None
        lot = model.lots[src]
        masses = [portion(lot.left // len(shares) or 1, p) for p in shares]
        if over and sum(masses) <= lot.left:
            masses[-1] += lot.left - sum(masses) + 1
        if sum(masses) > lot.left:
            return split(src, *((model.new_id(), g) for g in masses)), "mass_balance", None
        ids = [model.new_id() for _ in masses]

        def apply() -> None:
            lot.consumed += sum(masses)
            for i, g in zip(ids, masses):
                model.lots[i] = LotModel(g, 0, lot.material, dict(lot.exact), lot.depth)

        return split(src, *zip(ids, masses)), "", apply
    if kind == "merge":
        _, idxs, shares, over, mixed = op
        first = pick(model, idxs[0])
        if first is None:
            return None
        material = None if mixed else model.lots[first].material
        srcs = [first]
        for idx in idxs[1:]:
            nxt = pick(model, idx, material=material, exclude=tuple(srcs))
            if nxt is not None:
                srcs.append(nxt)
        if len(srcs) < 2:
            return None
        masses = [portion(model.lots[s].left, p) for s, p in zip(srcs, shares)]
        into = model.new_id()
        if over:
            masses[0] = model.lots[srcs[0]].left + 1
            return merge(into, *zip(srcs, masses)), "material_overconsumed", None
        if len({model.lots[s].material for s in srcs}) > 1:
            return merge(into, *zip(srcs, masses)), "wrong_material", None
        inputs = [(g, model.lots[s]) for s, g in zip(srcs, masses)]

        def apply() -> None:
            for g, lot in inputs:
                lot.consumed += g
            model.lots[into] = LotModel(sum(masses), 0, model.lots[first].material, exact_mix(inputs),
                                        max(lot.depth for _, lot in inputs) + 1)

        return merge(into, *zip(srcs, masses)), "", apply
    _, idxs, shares, yield_ppm, n_out, over = op
    srcs: list[str] = []
    for idx in idxs:
        nxt = pick(model, idx, exclude=tuple(srcs))
        if nxt is not None:
            srcs.append(nxt)
    if not srcs:
        return None
    masses = [portion(model.lots[s].left, p) for s, p in zip(srcs, shares)]
    allowed = sum(masses) * yield_ppm // PPM
    outs = [model.new_id() for _ in range(n_out)]
    out_masses = [allowed // n_out] * n_out
    out_masses[0] += allowed - sum(out_masses)
    if min(out_masses) < 1:
        return None  # a zero-gram output: no valid message to send
    if over:
        out_masses[0] += 1
    msg = transform("step", list(zip(srcs, masses)),
                    [(i, f"mat-{yield_ppm % 3}", g) for i, g in zip(outs, out_masses)], yield_ppm=yield_ppm)
    if over:
        return msg, "mass_balance", None
    inputs = [(g, model.lots[s]) for s, g in zip(srcs, masses)]

    def apply() -> None:
        for g, lot in inputs:
            lot.consumed += g
        exact = exact_mix(inputs)
        depth = max(lot.depth for _, lot in inputs) + 1
        for i, g in zip(outs, out_masses):
            model.lots[i] = LotModel(g, 0, f"mat-{yield_ppm % 3}", dict(exact), depth)

    return msg, "", apply


def start() -> tuple[Chain, Model]:
    chain = parts_chain()
    model = Model()
    chain.block(*(build_tx(SUP, registered(i, g, material=m, mine=f"mine {i}")) for i, m, g in MINES))
    for i, m, g in MINES:
        model.lots[i] = LotModel(g, 0, m, {(m, i): Fraction(1)})
    return chain, model


def check_lots(chain: Chain, model: Model) -> None:
    uses: dict[str, int] = {}
    for row in chain.ledger.index[LOT_USES.name].values():
        uses[row["lot"]] = uses.get(row["lot"], 0) + row["mass_g"]
    left = 0
    for lot_id, want in model.lots.items():
        lot = lot_of(chain, lot_id)
        assert (lot.mass_g, lot.consumed_g) == (want.mass, want.consumed), lot_id
        assert lot.consumed_g <= lot.mass_g
        assert uses.get(lot_id, 0) == lot.consumed_g, lot_id
        left += lot.mass_g - lot.consumed_g
        got: dict[tuple[str, str], int] = {(o.material, o.lot): o.ppm for o in lot.origins}
        for m in {k[0] for k in got} | {k[0] for k in want.exact}:
            assert sum(v for k, v in got.items() if k[0] == m) == PPM, (lot_id, m, got)
        for k in set(got) | set(want.exact):
            error = abs(got.get(k, 0) - want.exact.get(k, Fraction(0)) * PPM)
            assert error <= want.depth, (lot_id, k, got.get(k), want.exact.get(k), want.depth)
    assert left <= sum(g for _, _, g in MINES), "more mass left than the mines registered"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=14))
def test_mass_balance_and_origins_hold_over_any_sequence(ops: list[tuple]) -> None:
    chain, model = start()
    for op in ops:
        planned = plan(model, op)
        if planned is None:
            continue
        msg, code, apply = planned
        event(f"{op[0]}: {code or 'accepted'}")
        before = snapshot(chain)
        receipt = chain.run(SUP, msg)
        assert (receipt.ok, receipt.code) == (code == "", code), (op, receipt)
        if code:
            assert snapshot(chain) == before
        else:
            apply()
        check_lots(chain, model)
    replayed = Chain(chain.genesis)
    for block in chain.ledger.blocks[1:]:
        again = replayed.ledger.add_block([replayed.ledger.check(raw) for raw in block.txs], time=block.header.time)
        assert again.header.state_root == block.header.state_root
    assert replayed.ledger.state == chain.ledger.state and replayed.ledger.index == chain.ledger.index


# ---------------------------------------------------------------- origins.mix, pure


@st.composite
def origin_lists(draw: Any) -> list[Origin]:
    """One input's origins: per material (of 1 to 3), 1 to 4 origin lots whose ppm sum to 1,000,000."""
    out: list[Origin] = []
    for material in draw(st.lists(st.sampled_from(["cobalt", "nickel", "lithium"]), min_size=1, max_size=3,
                                  unique=True)):
        lots = draw(st.lists(st.sampled_from(["A", "B", "C", "D", "E"]), min_size=1, max_size=4, unique=True))
        cuts = sorted(draw(st.lists(st.integers(0, PPM), min_size=len(lots) - 1, max_size=len(lots) - 1)))
        bounds = [0, *cuts, PPM]
        for i, lot_id in enumerate(lots):
            out.append(Origin(material, f"{material}-{lot_id}", f"mine {lot_id}", "CD", bounds[i + 1] - bounds[i],
                              recycled=lot_id == "E"))
    return out


inputs_strategy = st.lists(st.tuples(st.integers(1, 10**9), origin_lists()), min_size=1, max_size=6)


def exact_of(inputs: list[tuple[int, list[Origin]]]) -> dict[tuple[str, str], Fraction]:
    weight: dict[str, Fraction] = {}
    total: dict[tuple[str, str], Fraction] = {}
    for w, origins in inputs:
        for m in {o.material for o in origins}:
            weight[m] = weight.get(m, Fraction(0)) + w
        for o in origins:
            total[(o.material, o.lot)] = total.get((o.material, o.lot), Fraction(0)) + w * o.ppm
    return {k: v / weight[k[0]] for k, v in total.items()}


@settings(max_examples=200, deadline=None)
@given(inputs_strategy, st.randoms(use_true_random=False))
def test_mix_is_order_independent_exact_and_sums_to_a_million(inputs: list[tuple[int, list[Origin]]],
                                                              rnd: Any) -> None:
    out = mix(inputs)
    shuffled = [(w, rnd.sample(o, len(o))) for w, o in inputs]
    rnd.shuffle(shuffled)
    assert mix(shuffled) == out
    assert out == sorted(out, key=lambda o: (o.material, o.lot))
    for m in {o.material for o in out}:
        assert sum(o.ppm for o in out if o.material == m) == PPM
    exact = exact_of(inputs)
    got = {(o.material, o.lot): o.ppm for o in out}
    assert set(got) == {k for k, v in exact.items() if v > 0}
    for k, v in exact.items():
        assert abs(got.get(k, 0) - v) < 1, (k, got.get(k), v)
    assert mix([(w * 7, o) for w, o in inputs]) == out  # only the proportions count
    assert mix([*inputs, (0, [Origin("cobalt", "cobalt-Z", "z", "CD", PPM)])]) == out  # weight 0: ignored
    rec = recycled_ppm(out)
    assert rec == {m: sum(o.ppm for o in out if o.material == m and o.recycled) for m in sorted({o.material
                                                                                              for o in out})}


def test_mix_gives_the_ppm_left_by_rounding_to_the_largest_remainders_then_the_first_key() -> None:
    third = [Origin("cobalt", k, "", "CD", PPM) for k in ("A", "B", "C")]
    # three equal thirds: 333,333 each and one ppm left, to the first key
    assert [o.ppm for o in mix([(1, [third[0]]), (1, [third[1]]), (1, [third[2]])])] == [333_334, 333_333, 333_333]
    # 2/3 and 1/3: remainders .67 and .33; the larger gets the ppm whatever the order
    assert [(o.lot, o.ppm) for o in mix([(1, [third[2]]), (2, [third[1]])])] == [("B", 666_667), ("C", 333_333)]
    # a material one input lacks is shared among the inputs that carry it only
    nickel = Origin("nickel", "N", "", "ID", PPM)
    out = mix([(3, [third[0]]), (1, [third[1], nickel])])
    assert [(o.material, o.lot, o.ppm) for o in out] == [("cobalt", "A", 750_000), ("cobalt", "B", 250_000),
                                                         ("nickel", "N", PPM)]
