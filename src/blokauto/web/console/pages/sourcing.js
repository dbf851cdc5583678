/* Sourcing and logistics: a part's, batch's or lot's route (handoffs, stays, legs, where it is now) and
 * its material origins, for the parts pages (Console.sourcing); a battery pack's passport (#/passport/ID);
 * the supply chain of a part number or a supplier: its slowest lanes and legs and the stock in transit
 * (#/supply/part_number/PN, #/supply/supplier/ORG).
 *
 * What is checked here: a route against the proven record of its item (the number of handoffs and the
 * latest one, whether it is on the way; for a part every handoff against its proven history, which the
 * part page checks against the record's head) and the stays and legs against the handoffs; the origins
 * by proving each state value the answer lists in ``keys`` and computing the same shares here (exact
 * rationals, as the ledger does) when the reader may read them all, each key the reader may not read
 * said so; a passport as a proven state value. Lanes, legs and stock in transit are index answers (no
 * proof covers them): shown as the node answered, and marked so. Charts are uPlot images; each has the
 * same facts in a table beside it. Shares are parts per million, shown as % with integer arithmetic. */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, K = window.BlokautoStateKeys, el = C.el;
  // TODO(state_keys.js): generated from blokauto.verify._keys.STATE_KEYS, which lists no batch, lot or passport prefix yet.
  const KEY = { part: K.part, batch: K.batch || "parts/b/", lot: K.lot || "parts/lot/", passport: K.passport || "parts/passport/" };
  /** Most state values an origins answer is proven from in the page (a pack of thousands of cells is not). */
  const MAX_PROVEN = 300;
  const LIMITS = { legs: 50, lanes: 20, transit: 500 };
  const enc = encodeURIComponent;
  const partHash = (id) => `#/part/${enc(id)}`, batchHash = (id) => `#/batch/${enc(id)}`, lotHash = (id) => `#/lot/${enc(id)}`;
  const block = (h) => C.link(`#/block/${h}`, `block ${h}`);

  // ---------------------------------------------------------------- numbers, exactly

  /** ``n`` thousandths (or any 10^digits-ths) as a decimal, without floats: decimal(83500, 3) = "83.5". */
  function decimal(n, digits) {
    if (!Number.isSafeInteger(n) || n < 0) return "?";
    const scale = 10 ** digits, whole = Math.floor(n / scale), frac = n % scale;
    return frac ? `${whole.toLocaleString("en")}.${String(frac).padStart(digits, "0").replace(/0+$/, "")}` : whole.toLocaleString("en");
  }
  /** Parts per million as a percentage: 555556 → "55.5556 %". */
  const pct = (ppm) => `${decimal(ppm, 4)} %`;
  const kg = (g) => `${decimal(g, 3)} kg`;
  /** A duration: "493 ms", "12.3 s", "4 min 5 s", "3 h 12 min", "2 d 4 h". */
  function dur(ms) {
    if (!Number.isSafeInteger(ms) || ms < 0) return "?";
    if (ms < 1000) return `${ms} ms`;
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s}.${Math.floor((ms % 1000) / 100)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }
  /** The unit a chart of durations up to ``maxMs`` plots in. */
  function durUnit(maxMs) {
    for (const [name, ms] of [["days", 86_400_000], ["hours", 3_600_000], ["minutes", 60_000], ["seconds", 1000]]) {
      if (maxMs >= 2 * ms) return { name, ms };
    }
    return { name: "milliseconds", ms: 1 };
  }

  /** Exact non-negative rationals (BigInt), for the mass-balance shares. */
  const gcd = (a, b) => { a = a < 0n ? -a : a; b = b < 0n ? -b : b; while (b) [a, b] = [b, a % b]; return a; };
  const Q = {
    of(n, d) { d = d === undefined ? 1n : d; const g = gcd(n, d) || 1n; return { n: n / g, d: d / g }; },
    add(a, b) { return Q.of(a.n * b.d + b.n * a.d, a.d * b.d); },
    mul(a, k) { return Q.of(a.n * k, a.d); },
    cmp(a, b) { const l = a.n * b.d, r = b.n * a.d; return l < r ? -1 : l > r ? 1 : 0; },
  };
  const PPM = 1_000_000n;

  // ---------------------------------------------------------------- places, holders

  function place(loc) {
    if (!loc) return el("span", { class: "muted" }, "—");
    if (loc.startsWith("geo:")) {
      const [lat, lon] = loc.slice(4).split(",");
      return el("span", { title: "coordinates (latitude, longitude)" }, `${lat}, ${lon}`);
    }
    return el("code", { title: "UN/LOCODE" }, loc);
  }
  const placeText = (loc) => (!loc ? "—" : loc.startsWith("geo:") ? loc.slice(4).replace(",", ", ") : loc);

  function holder(h) {
    if (!h) return el("span", { class: "muted" }, "—");
    if (h.startsWith("org:")) return h.slice(4);
    if (h.startsWith("vin:")) return C.link(`#/vehicle/${h.slice(4)}`, `vehicle ${h.slice(4)}`);
    if (h.startsWith("part:")) return C.link(partHash(h.slice(5)), `assembly ${h.slice(5)}`);
    return el("code", { title: h }, C.short(h, 20));
  }
  const holderText = (h) => (h.startsWith("org:") ? h.slice(4) : C.short(h, 16));

  /** A refusal in a section: a read the key may not make says so, with its code. */
  function unreadableText(e) {
    if (e instanceof C.ApiError) return e.status === 403 || e.status === 401 ? `not yours to read (${e.code})` : `${e.message} (${e.code})`;
    return String(e && e.message ? e.message : e);
  }

  /** Settle ``badge`` from a proven state value's promise, saying a refusal briefly (its code). */
  async function settleProof(badge, promise, describe) {
    try {
      const p = await promise;
      badge.verified(describe ? describe(p) : C.proofText(p.header, p.evidence.checkpoint));
      return p;
    } catch (e) {
      if (e instanceof V.VerificationError) badge.failed(e.message);
      else if (e instanceof C.ApiError) badge.unreadable(unreadableText(e));
      else badge.failed("the answer is malformed: " + (e && e.message ? e.message : String(e)));
      return null;
    }
  }

  // ---------------------------------------------------------------- charts

  /** A bar chart (uPlot) of ``series`` over ``labels``, into ``box``: role img, labelled, resized with its box. */
  function bars(box, { id, label, labels, xLabel, series, yLabel, yFormat, yMax, integer }) {
    const holderEl = el("div", { class: "chart", id, role: "img", "aria-label": label });
    box.append(holderEl);
    const xs = labels.map((_, i) => i);
    const grouped = series.length > 1 && series.every((s) => s.values.filter((v) => v !== null).length === labels.length);
    const width = grouped ? 0.8 / series.length : 0.7;
    const size = () => ({ width: Math.max(220, holderEl.clientWidth || 560), height: 240 });
    const top = yMax !== undefined ? yMax : Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null))) * 1.15;
    const plot = new window.uPlot({
      ...size(),
      legend: { show: true },
      cursor: { points: { show: false } },
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] }, y: { range: [0, top] } },
      series: [{ label: xLabel, value: (u, v) => (v === null || v === undefined ? "" : labels[v] || "") },
        ...series.map((s, i) => ({
          label: s.label, stroke: s.colour, fill: s.colour, width: 1, points: { show: false },
          value: (u, v) => (v === null || v === undefined ? "—" : yFormat(v)),
          paths: window.uPlot.paths.bars({ size: [width, 120], align: grouped ? (i === 0 ? -1 : 1) : 0 }),
        }))],
      axes: [{ splits: () => xs, values: (u, vals) => vals.map((v) => labels[v] || ""), gap: 4, size: 40 },
        Object.assign({ label: yLabel, values: (u, vals) => vals.map(yFormat), size: 60 }, integer ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000] } : {})],
    }, [xs, ...series.map((s) => s.values)], holderEl);
    if (window.ResizeObserver) {
      const ro = new ResizeObserver(() => { if (!holderEl.isConnected) { ro.disconnect(); return; } plot.setSize(size()); });
      ro.observe(holderEl);
    }
    holderEl.dataset.bars = String(labels.length);
    return holderEl;
  }

  /** A chart and its table side by side (one above the other on a narrow screen). */
  const pair = (chartBox, table) => el("div", { class: "pair" }, chartBox, table);

  // ---------------------------------------------------------------- the route

  /** Stays, legs and where it is now, from the handoffs (as the ledger's route query computes them). */
  function derive(handoffs) {
    const stays = [], legs = [];
    let transit = null;
    for (const r of handoffs) {
      if (r.kind === "made" || r.kind === "received") {
        if (transit) {
          legs.push(Object.assign(transit, { destination: r.location, received: r.time, duration_ms: r.time - transit.shipped }));
          transit = null;
        }
        stays.push({ custodian: r.party, location: r.location, from: r.time, until: 0 });
      } else if (r.kind === "shipped") {
        const last = stays[stays.length - 1];
        if (last && last.until === 0) Object.assign(last, { until: r.time, dwell_ms: r.time - last.from });
        transit = { sender: r.party, receiver: r.receiver, origin: r.location, shipped: r.time };
      }
    }
    return { stays, legs, transit };
  }

  /** The first field where ``a`` and ``b`` differ over ``fields``, or "". */
  const differs = (a, b, fields) => fields.find((f) => V.canonical(a[f] === undefined ? null : a[f]) !== V.canonical(b[f] === undefined ? null : b[f])) || "";

  /** Check a route answer against its item's proven record (and, for a part, its proven history). */
  function checkRoute(r, kind, record, history) {
    const fail = (why) => { throw new V.VerificationError(why); };
    const hs = r.handoffs;
    hs.forEach((h, i) => { if (h.seq !== i + 1) fail(`handoff ${i + 1} carries number ${h.seq}`); });
    const ho = record.handoff || {};
    if (hs.length !== ho.count) fail(`the node listed ${hs.length} handoffs; the proven record counts ${ho.count}`);
    const last = hs[hs.length - 1];
    if (last.time !== ho.since || last.location !== ho.location) {
      fail(`the latest handoff listed (${C.time(last.time)}, ${placeText(last.location)}) is not the proven record's (${C.time(ho.since)}, ${placeText(ho.location)})`);
    }
    const to = kind === "part" ? (record.status === "in_transit" ? record.transit_to : "")
      : kind === "batch" ? (String(record.custodian).startsWith("transit:") ? record.custodian.slice(8) : "") : (record.transit_to || "");
    if ((last.kind === "shipped") !== Boolean(to) || (to && last.receiver !== to)) {
      fail(to ? `the proven record is on the way to ${to}; the route's latest handoff is '${last.kind}'` : `the route says it is on the way; the proven record says it is not`);
    }
    const mine = derive(hs);
    if (mine.stays.length !== r.stays.length || mine.legs.length !== r.legs.length) fail(`the stays and legs listed are not those of the handoffs listed`);
    mine.stays.forEach((s, i) => {
      const f = differs(s, r.stays[i], ["custodian", "location", "from", "until"].concat(s.until ? ["dwell_ms"] : []));
      if (f || (!s.until && !(r.stays[i].dwell_ms >= 0))) fail(`stay ${i + 1}'s ${f || "dwell"} is not what the handoffs say`);
    });
    mine.legs.forEach((l, i) => {
      const f = differs(l, r.legs[i], ["sender", "receiver", "origin", "destination", "shipped", "received", "duration_ms"]);
      if (f) fail(`leg ${i + 1}'s ${f} is not what the handoffs say`);
    });
    const now = r.now || {};
    if (mine.transit ? !(now.in_transit && !differs(mine.transit, now, ["sender", "receiver", "origin", "shipped"]))
      : (now.in_transit || now.custodian !== last.party || now.location !== last.location)) fail("where it is now is not what the handoffs say");
    if (history) {  // every handoff of a part is in its proven history
      const steps = history.filter((e) => e.type === "minted" || e.type === "shipped" || e.type === "received");
      if (steps.length !== hs.length) fail(`the proven history records ${steps.length} handoffs; the node listed ${hs.length}`);
      steps.forEach((e, i) => {
        const h = hs[i], d = e.data || {}, at = d.at === undefined ? e.time : d.at;
        const want = e.type === "minted" ? { kind: "made", party: d.custodian, time: e.time, height: e.height }
          : e.type === "shipped" ? { kind: "shipped", party: d.from, receiver: d.to, location: d.location, time: at, height: e.height }
            : { kind: "received", party: d.by, location: d.location, time: at, height: e.height };
        const f = differs(want, h, Object.keys(want));
        if (f) fail(`handoff ${i + 1}'s ${f} is not what the proven history entry ${e.seq} (${e.type}) says`);
      });
    }
  }

  /** The steps along a route (each stay, then the leg that left it), for the chart and its table. */
  function routeSteps(r) {
    const steps = [];
    r.stays.forEach((s, i) => {
      steps.push({ kind: "stay", short: holderText(s.custodian), what: el("span", {}, "with ", holder(s.custodian), " at ", place(s.location)),
        from: s.from, until: s.until, ms: s.dwell_ms, open: !s.until });
      const l = r.legs[i];
      if (l) steps.push({ kind: "leg", short: `→ ${holderText(l.receiver)}`, from: l.shipped, until: l.received, ms: l.duration_ms,
        what: el("span", {}, holder(l.sender), " → ", holder(l.receiver), ", ", place(l.origin), " → ", place(l.destination)) });
    });
    const now = r.now;
    if (now && now.in_transit) {
      steps.push({ kind: "transit", short: `→ ${holderText(now.receiver)}`, from: now.shipped, until: 0, ms: now.for_ms, open: true,
        what: el("span", {}, holder(now.sender), " → ", holder(now.receiver), ", from ", place(now.origin), ", not yet received") });
    }
    return steps;
  }

  /** Where it is now; how long so far is measured (by the node) to the time of block ``height``. A part's
   * proven record says more than its handoffs when it was installed, assembled, removed or scrapped since. */
  function nowText(r, height, record) {
    const now = r.now;
    if (!now) return el("span", { class: "muted" }, "no handoff on record");
    if (now.in_transit) {
      return el("span", { id: "route-now", dataset: { state: "in_transit" } }, el("strong", {}, "In transit"), " from ", holder(now.sender), " at ",
        place(now.origin), " to ", holder(now.receiver), ` since ${C.time(now.shipped)}: ${dur(now.for_ms)} by block ${height}`);
    }
    const stay = r.stays[r.stays.length - 1];
    const loc = record && typeof record.location === "string" ? record.location : "";
    const since = record && (loc.startsWith("vin:") ? [el("strong", {}, "Installed in "), holder(loc), "; its last handoff: "]
      : loc.startsWith("part:") ? [el("strong", {}, "Inside "), holder(loc), "; its last handoff: "]
        : record.status === "removed" ? [el("strong", {}, "Removed"), " from a vehicle, held by ", holder(record.custodian), "; its last handoff: "]
          : record.status === "scrapped" ? [el("strong", {}, "Scrapped"), " (its material recovered); its last handoff: "] : null);
    return el("span", { id: "route-now", dataset: { state: since ? "after-handoffs" : "held" } }, since || "", el("strong", {}, since ? "with " : "With "),
      holder(now.custodian), " at ", place(now.location), stay ? ` since ${C.time(stay.from)}: ${dur(stay.dwell_ms)} by block ${height}` : "");
  }

  /**
   * The Route section of a part, batch or lot page, into ``box``. ``proven`` is the item's proven record
   * ({value, header, evidence}, or null when it is not proven) and ``history`` a part's proven history.
   */
  async function route(box, kind, id, proven, history) {
    box.append(el("h2", { id: "route-heading" }, "Route"));
    let answer;
    try { answer = await C.query("parts", "route", { id }); } catch (e) {
      box.append(e instanceof C.ApiError && e.status === 404
        ? el("p", { class: "muted", id: "route-none" }, "No handoffs are on record for it (made before the ledger recorded places and times).")
        : C.refusal(e));
      return;
    }
    const r = answer.result;
    const badge = C.badge(`route of ${id}`);
    if (!proven) badge.unreadable(`the ${kind}'s record is not proven here, so its route cannot be checked`);
    else {
      try {
        checkRoute(r, kind, proven.value, history);
        badge.verified((kind === "part" ? `${r.handoffs.length} handoffs, each in the proven history` : `${r.handoffs.length} handoffs, the latest the proven record's`) +
          ` · ${C.proofText(proven.header, proven.evidence.checkpoint)}`);
      } catch (e) { badge.failed(e.message); }
    }
    box.append(el("p", {}, "Every handoff with its place and time, as the node lists them, checked against the proven record: ", badge.el),
      el("p", { class: "box" }, nowText(r, answer.height, kind === "part" && proven ? proven.value : null)));

    const steps = routeSteps(r);
    const unit = durUnit(Math.max(0, ...steps.map((s) => s.ms)));
    const chartBox = el("div", { class: "box" });
    const table = C.table(["#", "Step", "From", "Until", "Duration"], steps.map((s, i) => [
      String(i + 1), el("span", {}, s.kind === "stay" ? "stay " : s.kind === "leg" ? "leg " : "in transit ", s.what),
      C.time(s.from), s.until ? C.time(s.until) : el("em", {}, "now"), s.open ? `${dur(s.ms)} by block ${answer.height}` : dur(s.ms)]), { id: "route-steps" });
    box.append(pair(chartBox, table));
    const nStays = steps.filter((s) => s.kind === "stay").length, nLegs = steps.length - nStays;
    const series = [
      { label: `dwell (${unit.name})`, colour: "#175cd3", values: steps.map((s) => (s.kind === "stay" ? s.ms / unit.ms : null)) },
      { label: `leg (${unit.name})`, colour: "#f79009", values: steps.map((s) => (s.kind === "stay" ? null : s.ms / unit.ms)) },
    ];
    bars(chartBox, { id: "route-chart", xLabel: "step", labels: steps.map((s, i) => (steps.length > 10 ? String(i + 1) : `${i + 1}. ${s.short}`.slice(0, 18))), series,
      label: `Route of ${id}: the dwell at each of ${nStays} custodian stays and the duration of ${nLegs} legs, in ${unit.name}, in order along the route. ` +
        "The same facts are in the table beside the chart.",
      yLabel: unit.name, yFormat: (v) => `${Math.round(v * 10) / 10}` });

    box.append(el("h3", {}, `Handoffs (${r.handoffs.length})`), C.table(["#", "What", "By", "To", "Place", "Time", "Block"], r.handoffs.map((h) => [
      String(h.seq), h.kind, holder(h.party), h.receiver ? holder(h.receiver) : "", place(h.location), C.time(h.time), block(h.height)]), { id: "handoffs" }));
  }

  // ---------------------------------------------------------------- origins

  /** The origins of ``item`` computed from state values (read with ``get(key)``): the ledger's
   * ``provenance.origins_of`` and ``describe``, in exact arithmetic. */
  async function computeOrigins(item, get) {
    const weights = new Map();  // lot id -> rational weight
    const addWeight = (lot, w) => weights.set(lot, weights.has(lot) ? Q.add(weights.get(lot), w) : w);
    let kind = "lot";
    if (!item.includes(":")) {
      if (item.includes("/") || (await get(KEY.lot + item)) === null) throw new V.VerificationError(`lot ${item} is proven absent`);
      weights.set(item, Q.of(1n));
    } else {
      const part = item.includes("/") ? null : await get(KEY.part + item);
      const batches = new Map();
      if (part !== null) {
        kind = "part";
        const stack = [part];
        while (stack.length) {
          const p = stack.pop();
          if (p.batch) { const bid = `${p.part_number}:${p.batch}`; batches.set(bid, (batches.get(bid) || 0n) + 1n); }
          for (const c of p.components || []) { const child = await get(KEY.part + c); if (child !== null) stack.push(child); }
        }
      } else {
        const b = item.includes("/") ? null : await get(KEY.batch + item);
        if (b === null) throw new V.VerificationError(`${item} is proven to be neither a part nor a batch`);
        kind = "batch";
        batches.set(item, BigInt(b.quantity));
      }
      for (const bid of [...batches.keys()].sort()) {
        const b = await get(KEY.batch + bid);
        if (b === null) continue;
        for (const use of b.materials || []) addWeight(use.lot, Q.of(BigInt(use.mass_g) * batches.get(bid), BigInt(b.quantity)));
      }
    }
    const lots = [];
    for (const id of [...weights.keys()].sort()) { const lot = await get(KEY.lot + id); if (lot !== null) lots.push(lot); }
    const origins = mix(lots.map((lot) => [weights.get(lot.id), lot.origins && lot.origins.length ? lot.origins
      : [{ material: lot.material, lot: lot.id, mine: lot.mine, country: lot.country, ppm: 1_000_000, recycled: false }]]));
    const materials = new Map();
    for (const o of origins) {
      const root = await get(KEY.lot + o.lot);
      const m = materials.get(o.material) || { material: o.material, origins: [], recycled_ppm: 0 };
      materials.set(o.material, m);
      m.origins.push({ lot: o.lot, mine: o.mine, country: o.country, ppm: o.ppm, recycled: o.recycled, producer: root ? root.producer : "",
        attestations: (root ? root.attestations || [] : []).map((a) => ({ auditor: a.auditor, standard: a.standard, result: a.result,
          report: a.report, valid_until: a.valid_until || 0, height: a.height })) });
      if (o.recycled) m.recycled_ppm += o.ppm;
    }
    return { id: item, kind, materials: [...materials.values()],
      lots: lots.map((l) => ({ lot: l.id, material: l.material, process: l.process || "mined", step: l.step || 0,
        attestations: (l.attestations || []).map((a) => ({ auditor: a.auditor, standard: a.standard, result: a.result,
          report: a.report, valid_until: a.valid_until || 0, height: a.height })) })),
      steps: Math.max(0, ...lots.map((l) => l.step || 0)) };
  }

  /** ``origins.mix``: per material, each input's shares weighted by its weight, to exactly 1,000,000 ppm
   * by largest remainder (ties to the origin lot that sorts first). ``inputs``: [[weight, origins]]. */
  function mix(inputs) {
    const materials = new Set(), share = new Map(), about = new Map();
    const key = (o) => `${o.material}\u0000${o.lot}`;
    for (const [w, origins] of inputs) {
      if (w.n <= 0n) continue;
      for (const o of origins) {
        materials.add(o.material);
        const k = key(o), add = Q.mul(w, BigInt(o.ppm));
        share.set(k, share.has(k) ? Q.add(share.get(k), add) : add);
        if (!about.has(k)) about.set(k, o);
      }
    }
    const byKey = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    const out = [];
    for (const material of [...materials].sort()) {
      const keys = [...share.keys()].filter((k) => about.get(k).material === material && share.get(k).n > 0n).sort(byKey);
      if (!keys.length) continue;
      const total = keys.reduce((t, k) => Q.add(t, share.get(k)), Q.of(0n));
      const floors = new Map(), rest = new Map();
      let left = PPM;
      for (const k of keys) {
        const s = share.get(k);  // floor(s * PPM / total) and what the floor left, on one scale
        const f = (s.n * PPM * total.d) / (s.d * total.n);
        floors.set(k, f);
        rest.set(k, Q.add(Q.mul(s, PPM), Q.of(-f * total.n, total.d)));
        left -= f;
      }
      const order = keys.slice().sort((a, b) => -Q.cmp(rest.get(a), rest.get(b)) || byKey(a, b));
      for (const k of order.slice(0, Number(left))) floors.set(k, floors.get(k) + 1n);
      for (const k of keys) {
        const o = about.get(k);
        out.push({ material, lot: o.lot, mine: o.mine, country: o.country, ppm: Number(floors.get(k)), recycled: Boolean(o.recycled) });
      }
    }
    return out;
  }

  /** Where the computed and the listed origins first differ, said plainly. */
  function originDifference(mine, theirs) {
    if (mine.kind !== theirs.kind) return `the node calls it a ${theirs.kind}; the proven state makes it a ${mine.kind}`;
    for (const m of mine.materials) {
      const t = (theirs.materials || []).find((x) => x.material === m.material);
      if (!t) return `the node lists no ${m.material}; the proven state has it`;
      for (const o of m.origins) {
        const u = (t.origins || []).find((x) => x.lot === o.lot);
        if (!u) return `the node lists no origin lot ${o.lot} in ${m.material}; the proven state gives it ${pct(o.ppm)}`;
        if (V.canonical(u) !== V.canonical(o)) {
          return u.ppm !== o.ppm ? `the node gives origin lot ${o.lot} ${pct(u.ppm)} of the ${m.material}; the proven state gives ${pct(o.ppm)}`
            : `the node's origin lot ${o.lot} (${m.material}) is not as the proven state has it (its ${differs(o, u, Object.keys(o))})`;
        }
      }
      if (t.origins.length !== m.origins.length) return `the node lists ${t.origins.length} origins of ${m.material}; the proven state gives ${m.origins.length}`;
      if (t.recycled_ppm !== m.recycled_ppm) return `the node gives ${pct(t.recycled_ppm)} recycled ${m.material}; the proven state gives ${pct(m.recycled_ppm)}`;
    }
    if ((theirs.materials || []).length !== mine.materials.length) return "the node lists materials the proven state does not give";
    if (V.canonical(mine.lots) !== V.canonical(theirs.lots) || mine.steps !== theirs.steps) return "the lots it consumed are not those the proven state gives";
    return "";
  }

  function attestationText(a) {
    return `${a.standard} ${a.result === "conformant" ? "conformant" : "NOT conformant"} by ${a.auditor}` +
      (a.valid_until ? `, until ${C.time(a.valid_until).slice(0, 10)}` : ", no expiry on record") + ` (report ${a.report}, block ${a.height})`;
  }

  function originLabel(o) {
    return o.recycled ? `recycled (${o.country || "?"})` : `${o.mine || o.lot} (${o.country || "?"})`;
  }

  /**
   * Per material: a bar chart of each origin's share beside the same as a table, and the origin lots'
   * attestations. ``materials``: [{material, origins: [{lot, mine, country, ppm, recycled, producer?,
   * attestations?}], recycled_ppm}]. Ids are prefixed with ``prefix``.
   */
  function materialsView(box, materials, prefix) {
    if (!materials.length) { box.append(el("p", { class: "muted", id: `${prefix}-none` }, "No material origins: it was made from no recorded material lot.")); return; }
    for (const m of materials) {
      const section = el("div", { class: "box", dataset: { material: m.material } });
      box.append(section);
      section.append(el("h3", {}, `${m.material} `, el("span", { class: "muted" }, `· recycled ${pct(m.recycled_ppm)} · ${m.origins.length} origin${m.origins.length === 1 ? "" : "s"}`)));
      const chartBox = el("div", {});
      const table = C.table(["Origin lot", "Mine", "Country", "Share", "Recycled"], m.origins.map((o) => [
        C.link(lotHash(o.lot), o.lot), o.mine || el("span", { class: "muted" }, o.recycled ? "(recovered)" : "—"), o.country,
        pct(o.ppm), o.recycled ? "recycled" : "mined"]), { id: `${prefix}-${m.material}`, class: "origins" });
      section.append(pair(chartBox, table));
      bars(chartBox, { id: `${prefix}-${m.material}-chart`, xLabel: "origin", labels: m.origins.map((o) => originLabel(o).slice(0, 22)),
        series: [{ label: `share of the ${m.material} (%)`, colour: "#93370d", values: m.origins.map((o) => o.ppm / 10_000) }],
        label: `Origins of the ${m.material}: ${m.origins.map((o) => `${originLabel(o)} ${pct(o.ppm)}`).join("; ")}. The same facts are in the table beside the chart.`,
        yLabel: "%", yFormat: (v) => `${Math.round(v)} %`, yMax: 100 });
      const atts = m.origins.flatMap((o) => (o.attestations || []).map((a) => [o.lot, a]));
      if (m.origins.some((o) => o.attestations !== undefined)) {
        section.append(el("h4", {}, "Attestations of its origin lots"), atts.length
          ? C.table(["Origin lot", "Producer", "Attestation", "Result"], atts.map(([lot, a]) => {
            const o = m.origins.find((x) => x.lot === lot);
            return [C.link(lotHash(lot), lot), o.producer || "", attestationText(a),
              a.result === "conformant" ? el("span", { class: "status-ok" }, "conformant") : el("span", { class: "status-failed" }, "not conformant")];
          }), { id: `${prefix}-${m.material}-attestations` })
          : el("p", { class: "muted" }, "No attestation of these origin lots is on record."));
      }
    }
  }

  const keyKind = (k) => (k.startsWith(KEY.part) ? "part" : k.startsWith(KEY.batch) ? "batch" : k.startsWith(KEY.lot) ? "material lot" : "state");
  const keyHash = (k) => (k.startsWith(KEY.part) ? partHash(k.slice(KEY.part.length)) : k.startsWith(KEY.batch) ? batchHash(k.slice(KEY.batch.length))
    : k.startsWith(KEY.lot) ? lotHash(k.slice(KEY.lot.length)) : "");

  /** The Origins section of a part, batch or lot page, into ``box``. */
  async function origins(box, id) {
    box.append(el("h2", { id: "origins-heading" }, "Origins"));
    let answer;
    try { answer = await C.query("parts", "origin", { id }); } catch (e) { box.append(C.refusal(e)); return; }
    const o = answer.result;
    const keys = Array.isArray(o.keys) ? o.keys.slice(0, MAX_PROVEN) : [];
    const proofs = new Map();
    const prove = (key) => {
      if (!proofs.has(key)) { const p = C.provenState(key, answer.height); p.catch(() => {}); proofs.set(key, p); }
      return proofs.get(key);
    };
    const badge = C.badge(`origins of ${id}`);
    box.append(el("p", {}, `Per material, where it came from by mass balance (${o.steps} processing step${o.steps === 1 ? "" : "s"} from the mine at most), `,
      "as the node computed it; recomputed here from the state values it is computed from when you may read them all: ", badge.el));
    materialsView(box, o.materials || [], "origins");
    if (o.lots && o.lots.length) {
      box.append(el("details", {}, el("summary", {}, `The lots it consumed directly (${o.lots.length})`),
        C.table(["Lot", "Material", "Made by", "Steps from the mine"], o.lots.map((l) => [C.link(lotHash(l.lot), l.lot), l.material,
          l.process.replace(/^transform:/, "transformation: "), String(l.step)]), { id: "origin-lots" })));
    }

    const rows = keys.map((k) => {
      const b = C.badge(`state ${k}`);
      const p = settleProof(b, prove(k), (v) => (v.value === null ? "proven absent · " : "") + C.proofText(v.header, v.evidence.checkpoint));
      const href = keyHash(k);
      return { k, b, p, cells: [href ? C.link(href, k) : el("code", {}, k), keyKind(k), b.el] };
    });
    box.append(el("h3", {}, `The state values it is computed from (${o.keys.length})`),
      el("p", { class: "muted" }, "Each is proven here against the trust anchor if your key may read it. Upstream lots and parts belong to the parties that ",
        "produced and handled them: a key you may not read is said so, and that is expected."),
      C.table(["State key", "What", "Proof"], rows.map((r) => r.cells), { id: "origin-keys" }));

    await badge.follow((async () => {
      if (o.keys.length > MAX_PROVEN) throw new C.ApiError(200, "too_many", `it is computed from ${o.keys.length} state values, more than the ${MAX_PROVEN} this page proves: the shares are the node's computation`);
      const settled = await Promise.all(rows.map((r) => prove(r.k).then((v) => ({ v }), (e) => ({ e }))));
      const bad = settled.find((s) => s.e && !(s.e instanceof C.ApiError));
      if (bad) throw bad.e instanceof V.VerificationError ? new V.VerificationError(`a state value it is computed from does not verify: ${bad.e.message}`) : bad.e;
      const refused = settled.filter((s) => s.e);
      if (refused.length) {
        throw new C.ApiError(403, refused[0].e.code, `${refused.length} of ${keys.length} state values it is computed from are not yours to read, ` +
          "so the shares are the node's computation");
      }
      const get = async (key) => {
        const v = await prove(key);
        if (!keys.includes(key)) throw new V.VerificationError(`the node's answer does not list the state value ${key} it is computed from`);
        return v.value;
      };
      const mine = await computeOrigins(id, get);
      const diff = originDifference(mine, o);
      if (diff) throw new V.VerificationError(diff);
      const top = settled.reduce((best, s) => (!best || s.v.header.height > best.header.height ? s.v : best), null);
      return { n: keys.length, top };
    })(), (r) => `recomputed here from ${r.n} proven state values` + (r.top ? ` · ${C.proofText(r.top.header, r.top.evidence.checkpoint)}` : ""));
    await Promise.all(rows.map((r) => r.p));
  }

  // ---------------------------------------------------------------- the battery passport

  const CATEGORY = { ev: "electric vehicle battery", lmt: "light means of transport battery", industrial: "industrial battery",
    sli: "starting, lighting and ignition battery" };

  /** Group a passport's flat shares per material. */
  function passportMaterials(p) {
    const out = new Map();
    for (const s of p.materials || []) {
      const m = out.get(s.material) || { material: s.material, origins: [], recycled_ppm: 0 };
      out.set(s.material, m);
      m.origins.push({ lot: s.lot, mine: s.mine, country: s.country, ppm: s.ppm, recycled: Boolean(s.recycled) });
    }
    for (const r of p.recycled || []) { const m = out.get(r.material); if (m) m.recycled_ppm = r.ppm; }
    return [...out.values()];
  }

  async function passport(view, args, stale) {
    const id = (args[0] || "").trim();
    if (!id) throw new Error("a battery passport is named by its pack's part id, e.g. #/passport/VP-83:VP83-0001");
    const badge = C.badge(`passport of ${id}`);
    view.append(el("h1", {}, "Battery passport ", el("code", {}, id), " ", badge.el),
      el("p", {}, "The passport its maker issued, proven here as a state value against the trust anchor. ", C.link(partHash(id), `The pack's page`), "."));
    const proven = await badge.follow((async () => {
      const p = await C.provenState(KEY.passport + id);
      if (p.value !== null && p.value.id !== id) throw new V.VerificationError(`the proven passport is of ${p.value.id}, not ${id}`);
      return p;
    })(), (p) => (p.value === null ? "proven absent · " : `version ${p.value.version} · `) + C.proofText(p.header, p.evidence.checkpoint));
    if (stale()) return;
    if (!proven) {
      view.append(el("p", { class: "bad-text", id: "passport-unverified" }, "The node's answer does not prove this passport, so nothing of it is shown."));
      return;
    }
    if (proven.value === null) {
      view.append(el("p", { id: "passport-none" }, `No battery passport is recorded for ${id}: its maker has not issued one.`));
      return;
    }
    const p = proven.value;
    view.append(el("h2", {}, "Declared by its maker"), el("div", { class: "box", id: "passport-declared" }, C.kv([
      ["Pack", C.link(partHash(p.id), p.id)], ["Manufacturer", p.manufacturer], ["Issued by", el("code", { title: p.issuer }, C.short(p.issuer, 28))],
      ["Category", `${CATEGORY[p.category] || p.category} (${p.category})`], ["Chemistry", p.chemistry],
      ["Rated capacity", `${decimal(p.capacity_wh, 3)} kWh`], ["Nominal voltage", `${decimal(p.nominal_voltage_mv, 3)} V`], ["Mass", kg(p.mass_g)],
      ["Carbon footprint", `${decimal(p.carbon_footprint_g_per_kwh, 3)} kg CO₂e per kWh`], ["Carbon footprint study", p.carbon_footprint_report],
      ["Due diligence report", p.due_diligence_report], ["Produced", `${p.produced} at ${p.plant}`],
      ["Issued", el("span", {}, block(p.height), ` · ${C.time(p.time)} · version ${p.version}`)],
    ])));
    view.append(el("h2", {}, "Computed by the ledger when issued"),
      el("p", { class: "muted" }, `Material origins and recycled content from the pack's cells, their batches and lots at block ${p.height}, by mass balance.`),
      C.table(["Material", "Recycled content"], (p.recycled || []).map((r) => [r.material, pct(r.ppm)]), { id: "passport-recycled" }));
    const box = el("div", {});
    view.append(box);
    materialsView(box, passportMaterials(p), "passport");
    const atts = p.attestations || [];
    view.append(el("h3", {}, `Attestations it records (${atts.length})`), C.table(["Lot", "Auditor", "Standard", "Result", "Report", "Valid until", "Attested"],
      atts.map((a) => [C.link(lotHash(a.lot), a.lot), a.auditor, a.standard,
        a.result === "conformant" ? el("span", { class: "status-ok" }, "conformant") : el("span", { class: "status-failed" }, "not conformant"),
        a.report, a.valid_until ? C.time(a.valid_until).slice(0, 10) : el("span", { class: "muted" }, "no expiry on record"), block(a.height)]),
    { id: "passport-attestations" }));
  }

  // ---------------------------------------------------------------- the supply chain

  /** How long stock has been on the way: [the table's words, the chart's, up to (ms)]. */
  const AGES = [["under 1 hour", "< 1 h", 3_600_000], ["1 to 24 hours", "1–24 h", 86_400_000], ["1 to 3 days", "1–3 d", 3 * 86_400_000],
    ["3 to 7 days", "3–7 d", 7 * 86_400_000], ["7 to 14 days", "7–14 d", 14 * 86_400_000], ["14 days or more", "≥ 14 d", Infinity]];

  function supplyForm(by, value) {
    const field = (id, label, hint, v) => el("label", { for: id }, label, el("input", { type: "search", id, name: id, placeholder: hint, value: v || "", autocomplete: "off" }));
    return el("form", { class: "inline", role: "search", id: "supply-find", "aria-label": "Supply chain of a part number or a supplier", onsubmit: (e) => {
      e.preventDefault();
      const pn = e.target.querySelector("#supply-pn").value.trim(), sup = e.target.querySelector("#supply-supplier").value.trim();
      if (pn) C.go(`#/supply/part_number/${enc(pn)}`);
      else if (sup) C.go(`#/supply/supplier/${enc(sup)}`);
      else C.problem("Type a part number or a supplier's organisation id.");
    } },
    field("supply-pn", "Part number", "e.g. VP-83", by === "part_number" ? value : ""),
    field("supply-supplier", "Supplier", "e.g. voltcell", by === "supplier" ? value : ""),
    el("button", { type: "submit" }, "Show"));
  }

  const itemLink = (kind, item) => C.link(kind === "lot" ? lotHash(item) : kind === "batch" ? batchHash(item) : partHash(item), item);
  const laneText = (l) => `${holderText(l.sender)} → ${holderText(l.receiver)}`;

  function unitsText(kind, qty) {
    return kind === "lot" ? kg(qty) : kind === "batch" ? `${qty} unit${qty === 1 ? "" : "s"}` : `${qty} part${qty === 1 ? "" : "s"}`;
  }

  async function supply(view, args, stale) {
    const by = args[0], value = (args[1] || "").trim();
    view.append(el("h1", {}, "Supply chain", value ? [" of ", el("code", {}, value)] : ""), supplyForm(by, value));
    if (!value || (by !== "part_number" && by !== "supplier")) {
      view.append(el("p", { class: "muted" }, "Where a part number's (or everything a supplier makes) shipments wait: its lanes (sender to receiver, ",
        "place to place) ranked by how long their legs take, the slowest legs, and what is on the way now, by age. ",
        "Read by the part number's supplier (or the supplier itself), regulators and police."));
      return;
    }
    const params = { [by]: value };
    const [lanes, legs, transit] = await Promise.all([C.query("parts", "lanes", { ...params, limit: LIMITS.lanes }),
      C.query("parts", "legs", { ...params, limit: LIMITS.legs }), C.query("parts", "in_transit", { ...params, limit: LIMITS.transit })]);
    if (stale()) return;
    view.append(el("p", { class: "muted", role: "note", id: "supply-note" }, `As the node answered at block ${lanes.height}: lanes, legs and stock in transit are `,
      "the ledger's index of handoffs, which no proof covers; each item's page checks its own route against its proven record."));

    // the slowest lanes
    const L = lanes.result.lanes;
    view.append(el("h2", {}, `Slowest lanes (${L.length}${L.length === LIMITS.lanes ? ", the slowest shown" : ""})`));
    if (!L.length) view.append(el("p", { class: "muted", id: "lanes-none" }, "No leg has been completed yet (nothing shipped was received)."));
    else {
      const unit = durUnit(Math.max(...L.map((l) => l.max_ms)));
      const chartBox = el("div", { class: "box" });
      view.append(pair(chartBox, C.table(["#", "Lane", "Places", "Legs", "Mean", "Shortest", "Longest"], L.map((l, i) => [
        String(i + 1), el("span", {}, holder(l.sender), " → ", holder(l.receiver)), el("span", {}, place(l.origin), " → ", place(l.destination)),
        String(l.legs), dur(l.mean_ms), dur(l.min_ms), dur(l.max_ms)]), { id: "lanes" })));
      bars(chartBox, { id: "lanes-chart", xLabel: "lane", labels: L.map((l, i) => (L.length > 8 ? String(i + 1) : `${i + 1}. ${laneText(l)}`.slice(0, 22))),
        series: [{ label: `mean (${unit.name})`, colour: "#175cd3", values: L.map((l) => l.mean_ms / unit.ms) },
          { label: `longest (${unit.name})`, colour: "#b42318", values: L.map((l) => l.max_ms / unit.ms) }],
        label: `The ${L.length} slowest lanes, slowest mean first: the mean and longest duration of their legs, in ${unit.name}. ` +
          "The same facts are in the table beside the chart.", yLabel: unit.name, yFormat: (v) => `${Math.round(v * 10) / 10}` });
    }

    // stock in transit by age
    const T = transit.result;
    const byKind = (list) => {
      const out = {};
      for (const t of list) out[t.kind] = (out[t.kind] || 0) + t.qty;
      return Object.entries(out).map(([k, q]) => unitsText(k, q)).join(", ");
    };
    view.append(el("h2", {}, "In transit now"), el("p", { id: "transit-total" },
      `${T.items} item${T.items === 1 ? "" : "s"} on the way` + (T.in_transit.length < T.items
        ? `; the ${T.in_transit.length} longest on the way are listed (all together: ${Object.entries(T.units).map(([k, q]) => unitsText(k, q)).join(", ")}).`
        : T.items ? `: ${byKind(T.in_transit)}.` : ".")));
    if (T.in_transit.length) {
      const buckets = AGES.map(([label, short]) => ({ label, short, list: [] }));
      for (const t of T.in_transit) buckets[AGES.findIndex(([, , upTo]) => t.for_ms < upTo)].list.push(t);
      const chartBox = el("div", { class: "box" });
      view.append(pair(chartBox, C.table(["On the way for", "Items", "Units"], buckets.map((b) => [b.label, String(b.list.length),
        byKind(b.list) || "—"]), { id: "transit-ages" })));
      bars(chartBox, { id: "transit-chart", xLabel: "on the way for", labels: buckets.map((b) => b.short),
        series: [{ label: "items on the way", colour: "#7a5af8", values: buckets.map((b) => b.list.length) }],
        label: `Stock in transit by how long it has been on the way (by block ${transit.height}): ${buckets.map((b) => `${b.label}: ${b.list.length}`).join("; ")}. ` +
          "The same facts are in the table beside the chart.",
        yLabel: "items", yFormat: (v) => String(v), yMax: Math.max(...buckets.map((b) => b.list.length)) + 1, integer: true });
      view.append(C.table(["Item", "Kind", "Product", "From", "To", "Shipped", "On the way for", "Quantity"], T.in_transit.map((t) => [
        itemLink(t.kind, t.item), t.kind, t.product, el("span", {}, holder(t.sender), " at ", place(t.origin)), holder(t.receiver),
        C.time(t.since), dur(t.for_ms), unitsText(t.kind, t.qty)]), { id: "transit" }));
    }

    // the slowest legs
    const G = legs.result.legs;
    view.append(el("h2", {}, `Slowest legs (${G.length}${G.length === LIMITS.legs ? ", the slowest shown" : ""})`),
      C.table(["Item", "Kind", "Product", "From", "To", "Shipped", "Received", "Took", "Block"], G.map((g) => [
        itemLink(g.kind, g.item), g.kind, g.product, el("span", {}, holder(g.sender), " at ", place(g.origin)),
        el("span", {}, holder(g.receiver), " at ", place(g.destination)), C.time(g.shipped), C.time(g.received), dur(g.duration_ms), block(g.height)]), { id: "legs" }));
  }

  C.sourcing = { route, origins, computeOrigins, mix, Q, pct, dur, KEY };
  C.page("passport", { title: "Battery passport", nav: "parts", render: passport });
  C.page("supply", { title: "Supply chain", nav: "supply", render: supply });
})();
