/* Parts: find a part, a batch or a material lot; a part's custody and assembly graph (Cytoscape) down to its
 * batch's material lots and their attestations, with the same facts as a table (the canvas is not accessible);
 * each page's route and material origins (pages/sourcing.js, Console.sourcing), a pack's battery passport.
 *
 * A part's badge proves its record (parts/p/ID) and checks that the history the node lists hashes to the head
 * the record commits to, so the custody, assembly and installations drawn are the ledger's; a vehicle the part
 * sits in is checked against that vehicle's proven bill of parts. A batch's and a lot's badge proves its record
 * (parts/b/ID, parts/lot/ID) and checks the node's answer against it (the lots' mines and attestations a batch
 * page lists are the node's). Who may read what: the part's supplier, custodians and everyone its history names;
 * a batch's supplier and custodians; a lot's producer, custodians, auditors and the suppliers that used it (and
 * regulators, police): others see the refusal with its code. */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, K = window.BlokautoStateKeys, el = C.el;
  const TRACE_PAGE = 500, TRACE_MAX = 5000;
  // TODO(verifier.js): export the history-chain check (as verifyReport does it for a vehicle) instead of this copy.
  const HISTORY_TAG = "blokauto/history/v1\0";
  const te = new TextEncoder();



  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  }

  /** The head a record commits to for these history entries, oldest first. */
  async function historyHead(entries) {
    let head = new Uint8Array(32);
    for (const e of entries) head = await V.sha256(concat(te.encode(HISTORY_TAG), head, te.encode(V.canonical(e))));
    return V.hex(head);
  }

  function differs(shown, proven) {
    for (const k of new Set([...Object.keys(shown || {}), ...Object.keys(proven || {})])) {
      if (V.canonical(shown[k] === undefined ? null : shown[k]) !== V.canonical(proven[k] === undefined ? null : proven[k])) return k;
    }
    return "";
  }

  const enc = encodeURIComponent;
  const sourcingKey = (kind) => C.sourcing.KEY[kind];
  const partHash = (id) => `#/part/${enc(id)}`, batchHash = (id) => `#/batch/${enc(id)}`, lotHash = (id) => `#/lot/${enc(id)}`;
  const block = (h) => C.link(`#/block/${h}`, `block ${h}`);
  const kg = (g) => (g >= 1000 ? `${(g / 1000).toLocaleString("en")} kg` : `${g} g`);
  /** A holder string (org:<id>, vin:<VIN>, part:<id>, did:key) as a graph node. */
  function holderNode(h) {
    if (h.startsWith("vin:")) return { id: h, label: `vehicle ${h.slice(4)}`, kind: "vehicle", href: `#/vehicle/${h.slice(4)}` };
    if (h.startsWith("part:")) return { id: h, label: `assembly ${h.slice(5)}`, kind: "part", href: partHash(h.slice(5)) };
    if (h.startsWith("org:")) return { id: h, label: h.slice(4), kind: "holder" };
    return { id: h, label: C.short(h, 20), kind: "holder" };
  }

  // ---------------------------------------------------------------- the graph and its table

  /** Nodes and edges collected once, drawn by Cytoscape and listed as a table. */
  class Facts {
    constructor() { this.nodes = new Map(); this.edges = []; }
    node(n) { if (!this.nodes.has(n.id)) this.nodes.set(n.id, n); return n.id; }
    /** ``label`` says it in the table; ``short`` (if given) on the graph, where space is scarce. */
    edge(from, to, label, height, extra) { this.edges.push(Object.assign({ from: this.node(from), to: this.node(to), label, height }, extra || {})); }
  }

  const COLOURS = { part: "#f79009", holder: "#475467", vehicle: "#067647", batch: "#7a5af8", lot: "#93370d", auditor: "#0e7090" };
  const SHAPES = { part: "round-rectangle", holder: "ellipse", vehicle: "rectangle", batch: "diamond", lot: "hexagon", auditor: "ellipse" };

  async function drawGraph(box, facts, root, what) {
    const holder = el("div", { class: "graph", id: "graph", role: "img",
      "aria-label": `${what}: ${facts.nodes.size} nodes, ${facts.edges.length} links. The same facts are in the table below the graph.` });
    box.append(holder);
    await C.needScript("vendor/cytoscape.min.js");  // 440 KB the other pages never load
    const cy = window.cytoscape({
      container: holder,
      elements: [
        ...[...facts.nodes.values()].map((n) => ({ data: { id: n.id, label: n.label, kind: n.kind, href: n.href || "" } })),
        ...facts.edges.map((e, i) => ({ data: { id: `e${i}`, source: e.from, target: e.to, label: e.short || e.label, bad: e.bad ? "yes" : "no" } })),
      ],
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 11, color: "#1d2939", "text-wrap": "wrap", "text-max-width": "150px",
          "text-valign": "bottom", "text-margin-y": 4, width: 20, height: 20 } },
        ...Object.keys(COLOURS).map((k) => ({ selector: `node[kind = "${k}"]`, style: { "background-color": COLOURS[k], shape: SHAPES[k] } })),
        { selector: `node[id = ${JSON.stringify(root)}]`, style: { width: 32, height: 32, "font-weight": "bold", "border-width": 3, "border-color": "#1d2939" } },
        { selector: "edge", style: { label: "data(label)", "font-size": 9, color: "#475467", "curve-style": "bezier", width: 1.5,
          "line-color": "#98a2b3", "target-arrow-color": "#98a2b3", "target-arrow-shape": "triangle", "text-wrap": "wrap",
          "text-max-width": "140px", "text-background-color": "#ffffff", "text-background-opacity": 0.85 } },
        { selector: 'edge[bad = "yes"]', style: { "line-color": "#b42318", "target-arrow-color": "#b42318", color: "#b42318" } },
      ],
      layout: { name: "grid" },
      minZoom: 0.2, maxZoom: 3,
    });
    cy.layout({ name: "breadthfirst", directed: false, roots: cy.getElementById(root), spacingFactor: 1.3, padding: 24 }).run();
    cy.on("tap", "node", (evt) => { const h = evt.target.data("href"); if (h) C.go(h); });
    holder.dataset.nodes = String(facts.nodes.size);
    holder.dataset.edges = String(facts.edges.length);
    return cy;
  }

  function factsTable(facts) {
    const cell = (id) => { const n = facts.nodes.get(id); return n.href ? C.link(n.href, n.label) : n.label; };
    return C.table(["From", "Relation", "To", "Block"], facts.edges.map((e) => [
      cell(e.from), e.bad ? el("span", { class: "bad-text" }, e.label) : e.label, cell(e.to), e.height ? block(e.height) : "—"]), { id: "facts" });
  }

  /** Where a lot came from, in a few words: its mine, or recovered (recycled) in a country, or made from other lots. */
  const lotSource = (m) => (m.mine ? `${m.mine}, ${m.country}` : m.country ? `recovered, ${m.country}` : "made from other lots");

  /** A batch and its material lots with their attestations, into ``facts``. */
  function materialFacts(facts, batchNode, materials) {
    for (const m of materials || []) {
      const lot = facts.node({ id: `lot:${m.lot}`, label: `lot ${m.lot}\n${m.material} · ${lotSource(m)}`, kind: "lot", href: lotHash(m.lot) });
      facts.edge(batchNode, { id: lot }, `made with ${kg(m.mass_g)} of`, 0);
      attestationFacts(facts, lot, m.attestations);
    }
  }

  /** An attestation's expiry: "valid until 2027-12-08" (the day, UTC), or none on record (made before expiries existed). */
  const expiry = (a) => (a.valid_until ? `valid until ${C.time(a.valid_until).slice(0, 10)}` : "no expiry on record");

  function attestationFacts(facts, lotId, attestations) {
    for (const a of attestations || []) {
      const ok = a.result === "conformant";
      facts.edge({ id: `auditor:${a.auditor}`, label: `auditor ${a.auditor}`, kind: "auditor" }, { id: lotId },
        `attested ${ok ? "conformant" : "NOT conformant"} (${a.standard}, report ${a.report}; ${expiry(a)})`, a.height,
        { bad: !ok, short: `${ok ? "conformant" : "NOT conformant"} · ${a.standard}` });
    }
  }

  function attestationTable(rows) {
    return C.table(["Lot", "Auditor", "Standard", "Result", "Report", "Attested", "Expires"], rows.map(([lot, a]) => [
      C.link(lotHash(lot), lot), a.auditor, a.standard,
      a.result === "conformant" ? el("span", { class: "status-ok" }, "conformant") : el("span", { class: "status-failed" }, "not conformant"),
      a.report, block(a.height), a.valid_until ? expiry(a) : el("span", { class: "muted" }, expiry(a))]), { id: "attestations" });
  }

  // ---------------------------------------------------------------- the search form

  function finder(values) {
    values = values || {};
    const field = (id, label, hint, value) => el("label", { for: id }, label,
      el("input", { type: "search", id, name: id, placeholder: hint, value: value || "", autocomplete: "off" }));
    return el("form", { class: "inline", role: "search", id: "parts-find", "aria-label": "Find a part, batch or lot", onsubmit: (e) => {
      e.preventDefault();
      const v = (id) => e.target.querySelector("#" + id).value.trim();
      const part = v("find-part"), batch = v("find-batch"), lot = v("find-lot");
      if (part) C.go(partHash(part));
      else if (batch) C.go(batchHash(batch));
      else if (lot) C.go(lotHash(lot));
      else C.problem("Type a part id (part number:serial), a batch id (part number:batch) or a lot id.");
    } },
    field("find-part", "Part id", "e.g. VP-83:VP83-0001", values.part),
    field("find-batch", "Batch id", "e.g. VP-83:P1", values.batch),
    field("find-lot", "Lot id", "e.g. CO-KAM-0042", values.lot),
    el("button", { type: "submit" }, "Find"));
  }

  async function search(view) {
    view.append(el("h1", {}, "Parts"), finder(),
      el("p", { class: "muted" }, "A serialized part is named <part number>:<serial>, a batch <part number>:<batch>. ",
        "A part's page draws its custody and assembly down to the material lots of its batch and their attestations. ",
        "Its supplier, custodians and everyone its history names read it; a batch its supplier and custodian; a lot its producer, auditors and the suppliers that used it."));
  }

  // ---------------------------------------------------------------- a part

  async function trace(id) {
    const first = (await C.query("parts", "trace", { id, limit: TRACE_PAGE })).result;
    const history = first.history.slice();
    while (history.length < Math.min(first.part.history.count, TRACE_MAX)) {
      const more = (await C.query("parts", "trace", { id, limit: TRACE_PAGE, offset: history.length })).result.history;
      if (!more.length) break;
      history.push(...more);
    }
    return Object.assign(first, { history });
  }

  function partFacts(p, t) {
    const facts = new Facts();
    const me = facts.node({ id: `part:${p.id}`, label: `${p.id}${t.type ? "\n" + t.type.name : ""}`, kind: "part" });
    const pending = new Map();  // shipments not yet received: "from>to" -> edge
    let custodian = null, step = 0;
    const custody = (to, how, height) => {
      step += 1;
      const n = facts.nodes.get(to) || Object.assign(holderNode(to), {});
      if (!facts.nodes.has(to)) n.label = `${step}. ${n.label}`;
      facts.edge(custodian === null ? { id: me } : { id: custodian }, n, `${how} (custodian ${step})`, height);
      custodian = n.id;
    };
    for (const e of t.history) {
      const d = e.data || {};
      if (e.type === "minted") custody(d.custodian || `org:${p.supplier}`, `minted by ${e.org || p.supplier}`, e.height);
      else if (e.type === "shipped") pending.set(`${d.from}>${d.to}`, e.height);
      else if (e.type === "received") {
        const sent = pending.get(`${d.from}>${d.by}`);
        pending.delete(`${d.from}>${d.by}`);
        custody(d.by, sent !== undefined ? `shipped at block ${sent}, received` : "received", e.height);
      } else if (e.type === "assembled") custody(`part:${d.into}`, "assembled into", e.height);
      else if (e.type === "installed") custody(`vin:${d.vin}`, `installed${d.position ? " (" + d.position + ")" : ""} in`, e.height);
      else if (e.type === "removed") custody(`org:${e.org}`, `removed from vehicle ${d.vin} by`, e.height);
      else if (e.type === "components_added") {
        for (const c of d.components || []) facts.edge({ id: `part:${c}`, label: c, kind: "part", href: partHash(c) }, { id: me }, "component of", e.height);
      }
    }
    for (const [k, h] of pending) {
      const [, to] = k.split(">");
      facts.edge(facts.nodes.get(custodian) || holderNode(custodian || `org:${p.supplier}`), holderNode(to), "shipped, not yet received", h);
    }
    for (const c of p.components || []) {
      if (!facts.nodes.has(`part:${c}`)) facts.edge({ id: `part:${c}`, label: c, kind: "part", href: partHash(c) }, { id: me }, "component of", 0);
    }
    if (p.batch) {
      const bid = `${p.part_number}:${p.batch}`;
      const b = facts.node({ id: `batch:${bid}`, label: `batch ${bid}`, kind: "batch", href: batchHash(bid) });
      facts.edge({ id: me }, { id: b }, "made in", 0);
      materialFacts(facts, { id: b }, t.materials);
    }
    return { facts, me };
  }

  async function part(view, args, stale) {
    const id = (args[0] || "").trim();
    if (!id) throw new Error("a part is named by its id, <part number>:<serial>, e.g. #/part/VP-83:VP83-0001");
    const badge = C.badge(`part ${id}`);
    view.append(el("h1", {}, "Part ", el("code", {}, id), " ", badge.el), finder({ part: id }));
    let t;
    try { t = await trace(id); } catch (e) {
      badge.unreadable(e instanceof C.ApiError ? `the node refused the part (${e.code})` : String(e.message || e));
      throw e;
    }
    if (stale()) return;
    const proven = await badge.follow((async () => {
      const p = await C.provenState(K.part + id);
      if (p.value === null) throw new V.VerificationError(`part ${id} is proven absent`);
      if (p.value.id !== id) throw new V.VerificationError(`the proven record is part ${p.value.id}, not ${id}`);
      const field = differs(t.part, p.value);
      if (field) throw new V.VerificationError(`the node's '${field}' of the part is not what its proven record says`);
      const rec = p.value.history;
      if (t.history.length !== rec.count) throw new V.VerificationError(`the node listed ${t.history.length} history entries; the proven record counts ${rec.count}`);
      t.history.forEach((e, i) => { if (e.seq !== i + 1) throw new V.VerificationError(`history entry ${i + 1} carries sequence number ${e.seq}`); });
      if (await historyHead(t.history) !== rec.head) throw new V.VerificationError("the history is incomplete or altered: its entries do not hash to the head the proven record commits to");
      return p;
    })(), (p) => `part record and its ${p.value.history.count} history entries · ${C.proofText(p.header, p.evidence.checkpoint)}`);
    if (stale()) return;
    const p = proven ? proven.value : t.part;
    const facts = el("div", { class: "box", id: "part" }, C.kv([
      ["Part number", t.type ? `${p.part_number} · ${t.type.name} (${t.type.category}${t.type.assembly ? ", assembly" : ""})` : p.part_number],
      ["Serial", p.serial], ["Supplier", p.supplier], ["Produced", `${p.produced} at ${p.plant}`],
      ["Status", p.status.replace(/_/g, " ")], ["Custodian", p.custodian],
      ["Location", p.location.startsWith("vin:") ? C.link(`#/vehicle/${p.location.slice(4)}`, `vehicle ${p.location.slice(4)}`)
        : p.location.startsWith("part:") ? C.link(partHash(p.location.slice(5)), `assembly ${p.location.slice(5)}`) : (p.location || "—")],
      p.transit_to ? ["In transit to", p.transit_to] : null,
      ["Batch", p.batch ? C.link(batchHash(`${p.part_number}:${p.batch}`), `${p.part_number}:${p.batch}`) : "—"],
      ["Components", p.components.length ? el("span", {}, p.components.map((c, i) => [i ? ", " : "", C.link(partHash(c), c)])) : "—"],
      ["Condition breaches", p.breaches ? el("strong", { class: "bad-text" }, String(p.breaches)) : "0"],
      passportRow(id, t),
      ["Supply chain", C.link(`#/supply/part_number/${enc(p.part_number)}`, `lanes, legs and stock in transit of ${p.part_number}`)],
    ]));
    if (!proven) facts.prepend(el("p", { class: "warn-text", role: "note" }, "Not verified: the part and its history are shown as the node answered."));
    view.append(facts);

    if (p.location.startsWith("vin:")) {
      const vin = p.location.slice(4);
      const fitted = C.badge(`${id} in ${vin}`);
      view.append(el("p", { id: "installed-in" }, `Installed in vehicle `, C.link(`#/vehicle/${vin}`, vin), ", by its bill of parts: ", fitted.el));
      fitted.follow(C.provenState(K.bom + vin).then((b) => {
        const items = b.value ? b.value.items : [];
        if (!items.some((it) => it.kind === "part" && it.ref === id)) throw new V.VerificationError(`the proven bill of parts of ${vin} does not list ${id}`);
        return b;
      }), (b) => C.proofText(b.header, b.evidence.checkpoint));
    }

    const { facts: graph, me } = partFacts(p, t);
    const box = el("div", { class: "box" });
    view.append(el("h2", {}, "Custody and assembly"), box);
    await drawGraph(box, graph, me, `Custody and assembly graph of part ${id}`);
    box.append(el("p", { class: "muted" }, "Select a node to open it. The graph as a table, for keyboard and screen-reader use:"), factsTable(graph));

    if (t.materials && t.materials.length) {
      view.append(el("h2", {}, "Material lots of its batch"),
        C.table(["Lot", "Material", "Used", "Mine", "Country", "Producer"], t.materials.map((m) => [
          C.link(lotHash(m.lot), m.lot), m.material, kg(m.mass_g), m.mine || "—", m.country || "—", m.producer]), { id: "lots" }),
        el("h3", {}, "Attestations"), attestationTable(t.materials.flatMap((m) => m.attestations.map((a) => [m.lot, a]))));
    }

    await sections(view, "part", id, proven, proven ? t.history : null);

    view.append(el("h2", {}, `History (${t.history.length})`), C.table(["#", "What", "Block", "By", "Details"], t.history.map((e) => [
      String(e.seq), e.type.replace(/_/g, " "), block(e.height), e.org || C.short(e.by, 20),
      el("code", {}, Object.entries(e.data || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; "))]), { id: "history" }));
    if (t.history.length < p.history.count) view.append(el("p", { class: "warn-text" }, `The first ${t.history.length} of ${p.history.count} entries are shown.`));
  }

  /** A battery pack's passport, when its history says one was issued (the passport page proves it). */
  function passportRow(id, t) {
    const issued = t.history.filter((e) => e.type === "passport_issued");
    if (issued.length) {
      const last = issued[issued.length - 1];
      return ["Battery passport", el("span", { id: "passport-link" }, C.link(`#/passport/${enc(id)}`, `version ${(last.data || {}).version || issued.length}`),
        ` · issued at block ${last.height}`)];
    }
    return t.type && t.type.category.toLowerCase() === "battery" && t.type.assembly ? ["Battery passport", el("span", { class: "muted" }, "none issued")] : null;
  }

  /** The Route and Origins sections (pages/sourcing.js), one after the other, filled at once. */
  async function sections(view, kind, id, proven, history) {
    const routeBox = el("section", { id: "route", "aria-labelledby": "route-heading" });
    const originBox = el("section", { id: "origins", "aria-labelledby": "origins-heading" });
    view.append(routeBox, originBox);
    await Promise.all([C.sourcing.route(routeBox, kind, id, proven, history), C.sourcing.origins(originBox, id)]);
  }

  /** A batch's or lot's record proven, and the node's answer checked against it (``compare`` names the first field that differs). */
  async function provenRecord(badge, key, answer, compare) {
    return badge.follow((async () => {
      const r = await C.provenState(key);
      if (r.value === null) throw new V.VerificationError(`${key} is proven absent`);
      const field = compare(answer, r.value);
      if (field) throw new V.VerificationError(`the node's '${field}' is not what the proven record says`);
      return r;
    })(), (r) => `record · ${C.proofText(r.header, r.evidence.checkpoint)}`);
  }

  const without = (o, ...keys) => Object.fromEntries(Object.entries(o || {}).filter(([k]) => !keys.includes(k)));

  // ---------------------------------------------------------------- a batch and a lot

  async function batch(view, args, stale) {
    const id = (args[0] || "").trim();
    if (!id) throw new Error("a batch is named by its id, <part number>:<batch>, e.g. #/batch/VP-83:P1");
    const badge = C.badge(`batch ${id}`);
    view.append(el("h1", {}, "Batch ", el("code", {}, id), " ", badge.el), finder({ batch: id }));
    let b;
    try { b = (await C.query("parts", "batch", { id })).result; } catch (e) {
      badge.unreadable(e instanceof C.ApiError ? `the node refused the batch (${e.code})` : String(e.message || e));
      throw e;
    }
    if (stale()) return;
    const proven = await provenRecord(badge, sourcingKey("batch") + id, b, (shown, rec) => differs(without(shown, "materials"), without(rec, "materials")) ||
      (V.canonical((shown.materials || []).map((m) => [m.lot, m.mass_g])) !== V.canonical((rec.materials || []).map((m) => [m.lot, m.mass_g])) ? "materials" : ""));
    if (stale()) return;
    view.append(proven ? el("p", { class: "muted", role: "note" }, "The record is proven; the mines and attestations of its lots are the node's (each lot's page proves its own).")
      : el("p", { class: "warn-text", role: "note" }, "Not verified: the batch is shown as the node answered."),
      el("div", { class: "box", id: "batch" }, C.kv([
        ["Part number", b.part_number], ["Batch", b.batch], ["Supplier", b.supplier], ["Produced", `${b.produced} at ${b.plant}`],
        ["Quantity", String(b.quantity)], ["In stock", String(b.in_stock)], ["Installed", String(b.installed)], ["Custodian", b.custodian],
      ])));
    const facts = new Facts();
    const me = facts.node({ id: `batch:${b.id}`, label: `batch ${b.id}`, kind: "batch" });
    facts.edge({ id: me }, holderNode(b.custodian), "custodian", 0);
    materialFacts(facts, { id: me }, b.materials);
    const box = el("div", { class: "box" });
    view.append(el("h2", {}, "Materials"), box);
    await drawGraph(box, facts, me, `Materials of batch ${id}`);
    box.append(factsTable(facts));
    if (b.materials.length) view.append(el("h3", {}, "Attestations"), attestationTable(b.materials.flatMap((m) => m.attestations.map((a) => [m.lot, a]))));
    await sections(view, "batch", id, proven, null);
  }

  async function lot(view, args, stale) {
    const id = (args[0] || "").trim();
    if (!id) throw new Error("a material lot is named by its id, e.g. #/lot/CO-KAM-0042");
    const badge = C.badge(`lot ${id}`);
    view.append(el("h1", {}, "Material lot ", el("code", {}, id), " ", badge.el), finder({ lot: id }));
    let l;
    try { l = (await C.query("parts", "lot", { id })).result; } catch (e) {
      badge.unreadable(e instanceof C.ApiError ? `the node refused the lot (${e.code})` : String(e.message || e));
      throw e;
    }
    if (stale()) return;
    const proven = await provenRecord(badge, sourcingKey("lot") + id, l, (shown, rec) => differs(without(shown, "used_by"), rec));
    if (stale()) return;
    const made = l.process && l.process !== "mined";
    view.append(proven ? el("p", { class: "muted", role: "note" }, "The record is proven; the batches and lots that used it are the node's index.")
      : el("p", { class: "warn-text", role: "note" }, "Not verified: the lot is shown as the node answered."),
      el("div", { class: "box", id: "lot" }, C.kv([
        ["Material", l.material], ["Mass", kg(l.mass_g)], ["Consumed", kg(l.consumed_g)],
        made ? ["Made by", (l.process || "").replace(/^transform:/, "transformation: ")] : ["Mine", `${l.mine} (${l.country})`],
        made && l.made_from && l.made_from.length ? ["Made from", el("span", {}, l.made_from.map((m, i) => [i ? ", " : "", C.link(lotHash(m.lot), m.lot), ` (${kg(m.mass_g)})`]))] : null,
        l.recovered_from && l.recovered_from.length ? ["Recovered from", el("span", {}, l.recovered_from.map((r, i) => [i ? ", " : "", C.link(partHash(r), r)]))] : null,
        ["Producer", l.producer], l.custodian ? ["Custodian", l.custodian] : null, l.transit_to ? ["In transit to", l.transit_to] : null,
        ["Supply chain", C.link(`#/supply/supplier/${enc(l.producer)}`, `lanes, legs and stock in transit of ${l.producer}`)],
      ])));
    const facts = new Facts();
    const me = facts.node({ id: `lot:${l.id}`, label: `lot ${l.id} (${l.material})`, kind: "lot" });
    facts.edge({ id: `org:${l.producer}`, label: `producer ${l.producer}`, kind: "holder" }, { id: me }, "registered", 0);
    attestationFacts(facts, me, l.attestations);
    for (const u of l.used_by) facts.edge({ id: me }, { id: `batch:${u.batch}`, label: `batch ${u.batch}`, kind: "batch", href: batchHash(u.batch) }, `${kg(u.mass_g)} used by`, 0);
    const box = el("div", { class: "box" });
    view.append(el("h2", {}, "Attestations and use"), box);
    await drawGraph(box, facts, me, `Attestations and use of lot ${id}`);
    box.append(factsTable(facts));
    view.append(el("h3", {}, "Attestations"), attestationTable(l.attestations.map((a) => [l.id, a])));
    await sections(view, "lot", id, proven, null);
  }

  C.page("parts", { title: "Parts", render: search });
  C.page("part", { title: "Part", nav: "parts", render: part });
  C.page("batch", { title: "Batch", nav: "parts", render: batch });
  C.page("lot", { title: "Material lot", nav: "parts", render: lot });
})();
