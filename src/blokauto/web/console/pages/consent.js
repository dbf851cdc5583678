/* Consent manager: the vehicles the loaded key holds (itself, or its organisation), each vehicle's
 * consent grants, and the holder's grant and revoke, signed in this page and sent as transactions
 * whose proven receipts are shown (ok, or the failure's code and sentence).
 *
 * Badges. A holding: the vehicle's record (veh/v/VIN), proven against the anchor, names this holder
 * since the same time. A grant: its record (consent/g/ID) proven, where the node lets the key read it
 * (regulators, police, nodes); for a holder, whom the node does not let read that key, the
 * transaction that made the grant (and the one that revoked it) proven in the block the grant names,
 * so what a grant says is proven; that no revocation followed one that shows none is then the
 * node's word, and the badge's title says so.
 */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, el = C.el;

  /** blokauto.modules.consent.state.CATEGORIES, in its order (tests/web/test_console_consent.py checks they agree). */
  const CATEGORIES = [
    ["history", "record, history, parts, recalls and report"],
    ["odometer", "odometer readings"],
    ["location", "positions"],
    ["driving", "trip summaries, speeds and crashes"],
    ["identity", "who the holder is"],
  ];
  const DAY_MS = 86_400_000, VEHICLES_SHOWN = 50, GRANTS_SHOWN = 100, TXS_SEARCHED = 100;
  const DIGITS = (window.BlokautoStateKeys && window.BlokautoStateKeys.numberDigits) || 16;
  // blokauto.modules.consent.keys and vehicles.keys (not in the generated state_keys.js yet)
  const KEY = {
    vehicle: (vin) => ((window.BlokautoStateKeys && window.BlokautoStateKeys.vehicle) || "veh/v/") + vin,
    grant: (id) => "consent/g/" + String(id).padStart(DIGITS, "0"),
  };
  const GRANT_FIELDS = ["id", "vin", "org", "categories", "purpose", "until", "holder", "holder_since", "granted_by",
    "granted", "height", "revoked", "revoked_by"];
  const GRANT_DEFAULTS = { revoked: 0, revoked_by: "" };
  const VIN_RE = /^[A-HJ-NPR-Z0-9]{17}$/;

  const fail = (msg) => { throw new V.VerificationError(msg); };
  const same = (a, b) => V.canonical(a) === V.canonical(b);
  const show = (v) => (typeof v === "string" ? `'${C.short(v, 40)}'` : JSON.stringify(v));
  const refusedRead = (e) => e instanceof C.ApiError && (e.status === 401 || e.status === 403);

  // ---------------------------------------------------------------- who the key is

  /** {did, org}: org is the loaded key's organisation if it is an active member key, else null. */
  async function whoAmI() {
    const did = C.signer.did;
    try {
      const m = (await C.query("governance", "member", { did })).result;
      return { did, org: m && m.status === "active" ? m.org : null };
    } catch (e) {
      if (e instanceof C.ApiError && (e.status === 404 || e.status === 401 || e.status === 403)) return { did, org: null };
      throw e;
    }
  }

  const holderText = (me, holder) => {
    if (holder === me.did) return el("span", {}, "you ", el("code", { title: holder }, C.short(holder, 24)));
    if (me.org && holder === "org:" + me.org) return el("span", {}, "your organisation ", C.link(`#/organisation/${me.org}`, me.org));
    if (holder.startsWith("org:")) return el("span", {}, "organisation ", C.link(`#/organisation/${holder.slice(4)}`, holder.slice(4)));
    return el("code", { title: holder }, C.short(holder, 24));
  };
  const speaksFor = (me, holder) => holder === me.did || (!!me.org && holder === "org:" + me.org);

  // ---------------------------------------------------------------- proofs

  /** The vehicle record, proven; ``listed`` ({holder, since} from vehicles_of) must agree with it. */
  async function proveHolding(vin, listed) {
    const p = await C.provenState(KEY.vehicle(vin));
    if (!p.value) fail(`the ledger holds no vehicle ${vin}`);
    if (p.value.vin !== vin) fail(`the proven record is of ${show(p.value.vin)}, not ${vin}`);
    if (listed && p.value.holder !== listed.holder) fail(`the node lists it as held by ${show(listed.holder)}; the proven record says ${show(p.value.holder)}`);
    if (listed && p.value.holder_since !== listed.since) fail(`the node lists it as held since ${listed.since}; the proven record says ${p.value.holder_since}`);
    return p;
  }

  /** What status a grant has at block time ``at`` given the proven vehicle record (consent.state.status). */
  function statusOf(g, record, at) {
    if (g.revoked) return "revoked";
    if (!record || record.holder !== g.holder || record.holder_since !== g.holder_since) return "holder_changed";
    return at >= g.until ? "expired" : "active";
  }

  /** The first transaction of block ``height`` this key may read whose proven receipt ``match``es. */
  async function findTx(height, match, what) {
    const b = await C.api(`/v1/blocks/${height}`);
    const cp = { header: b.header, attestations: b.attestations };
    const header = await (C.verifyCheckpoint ? C.verifyCheckpoint(cp) : V.verifyCheckpointObject(cp, C.anchors));
    if (header.height !== height) fail(`the node gave block ${header.height} for block ${height}`);
    const ids = Array.isArray(b.tx_ids) ? b.tx_ids : [];
    if (ids.length !== header.tx_count) fail(`block ${height} lists ${ids.length} transactions; its header counts ${header.tx_count}`);
    for (const id of ids.slice(0, TXS_SEARCHED)) {
      let p;
      try { p = await C.provenTx(id); } catch (e) { if (refusedRead(e)) continue; throw e; }
      if (p.header.height !== height) fail(`transaction ${C.short(id)} is proven in block ${p.header.height}, not ${height}`);
      const ev = p.receipt.ok && Array.isArray(p.receipt.events) ? p.receipt.events.find((e) => match(e)) : undefined;
      if (ev) return { proven: p, ev };
    }
    return fail(`block ${height} holds no transaction this key may read that ${what}`);
  }

  /** Proves grant ``g`` (a row of grants_of read at block time ``at``); ``holding`` is the proven vehicle record (or null). */
  async function proveGrant(g, at, holding) {
    let record = null;
    try { record = await C.provenState(KEY.grant(g.id)); } catch (e) { if (!refusedRead(e)) throw e; }
    const title = holding ? holding.value : null;
    if (record) {
      const r = record.value;
      if (!r) fail(`the ledger holds no grant ${g.id}`);
      for (const f of GRANT_FIELDS) {
        const proven = r[f] === undefined ? GRANT_DEFAULTS[f] : r[f];
        if (!same(proven, g[f])) fail(`the node's list says ${f} ${show(g[f])}; the proven record says ${show(proven)}`);
      }
      const status = statusOf(r, title, at);
      if (holding && g.status !== status) fail(`the node says ${g.status}; the proven records say ${status}`);
      return { text: "its record, " + C.proofText(record.header, record.evidence.checkpoint), note: "" };
    }
    const made = await findTx(g.height, (e) => e.type === "consent.granted" && e.grant === g.id, `made grant ${g.id}`);
    const { ev } = made, tx = made.proven.tx;
    const checks = [["vin", ev.vin], ["org", ev.org], ["categories", ev.categories], ["until", ev.until],
      ["purpose", tx.body.msg && tx.body.msg.purpose], ["granted_by", tx.body.sender], ["granted", made.proven.header.time]];
    for (const [f, proven] of checks) {
      if (!same(proven, g[f])) fail(`the node's list says ${f} ${show(g[f])}; the proven transaction says ${show(proven)}`);
    }
    if (title && title.holder !== g.holder && g.status !== "holder_changed") fail(`the node says ${g.status}, but the proven record's holder is ${show(title.holder)}`);
    let text = `its transaction, block ${g.height}`, note = "";
    if (g.revoked) {
      const gone = await findTx(g.revoked, (e) => e.type === "consent.revoked" && e.grant === g.id, `revoked grant ${g.id}`);
      if (gone.proven.tx.body.sender !== g.revoked_by) fail(`the node's list says revoked by ${show(g.revoked_by)}; the proven transaction's sender is ${show(gone.proven.tx.body.sender)}`);
      text += `; revoked, block ${g.revoked}`;
    } else {
      note = "The grant's transaction is proven here; that no revocation followed it is the node's word " +
        "(the grant's own record, consent/g/, is read by regulators, police and nodes only).";
    }
    const status = statusOf(g, title, at);
    if (holding && g.status !== status) fail(`the node says ${g.status}; the proven records say ${status}`);
    return { text, note };
  }

  // ---------------------------------------------------------------- a transaction's outcome

  /** The outcome of C.send: ok, the ledger's refusal (code and sentence), or why nothing was recorded. */
  function outcome(res, sent) {
    const badge = C.badge("the receipt");
    if (res.evidence.id !== res.id) {
      badge.failed(`the node answered with the receipt of transaction ${C.short(res.evidence.id)}, not ${C.short(res.id)}`);
      return el("div", { class: "box bad-text", role: "alert", dataset: { outcome: "unverified" } },
        "The node's answer is not the receipt of this transaction. ", badge.el);
    }
    if (!same(res.tx.body.msg, sent)) {
      badge.failed("the proven transaction is not the one this page signed");
      return el("div", { class: "box bad-text", role: "alert", dataset: { outcome: "unverified" } },
        "The node's answer is not the receipt of this transaction. ", badge.el);
    }
    badge.verified(C.proofText(res.header, res.evidence.checkpoint));
    const tx = el("span", {}, ` (block ${res.header.height}, transaction `, C.link(`#/tx/${res.id}`, el("code", {}, C.short(res.id, 16))), ") ");
    if (res.receipt.ok) {
      const ev = (res.receipt.events || []).find((e) => e.type === "consent.granted" || e.type === "consent.revoked") || {};
      const said = ev.type === "consent.granted" ? `grant ${ev.grant} to ${ev.org} is on the ledger` : `grant ${ev.grant} is revoked`;
      return el("div", { class: "box ok-text", role: "status", dataset: { outcome: "ok", grant: ev.grant } },
        el("strong", {}, "Done: "), said, tx, badge.el);
    }
    return el("div", { class: "box bad-text", role: "alert", dataset: { outcome: "failed", code: res.receipt.code } },
      el("strong", {}, "Refused by the ledger: "), el("span", { class: "sentence" }, res.evidence.message || res.receipt.code),
      " ", el("code", {}, res.receipt.code),
      el("p", { class: "muted" }, "Nothing changed: the transaction is on record with its failure", tx, badge.el));
  }

  function sendFailure(e) {
    if (e instanceof V.VerificationError) {
      const badge = C.badge("the receipt");
      badge.failed(e.message);
      return el("div", { class: "box bad-text", role: "alert", dataset: { outcome: "unverified" } },
        "The node's answer to this transaction does not verify, so this page cannot say what happened. ", badge.el);
    }
    const r = C.refusal(e);
    r.dataset.outcome = "refused";
    return r;
  }

  /** Sends ``msg``, shows its outcome in ``place``; the height of its block (to read after it), or undefined. */
  async function send(msg, place) {
    let node, height;
    try {
      const res = await C.send(msg);
      node = outcome(res, msg);
      height = res.header.height;
    } catch (e) { node = sendFailure(e); }
    place.replaceChildren(node);
    return height;
  }

  // ---------------------------------------------------------------- one vehicle

  const statusCell = (g) => {
    if (g.status === "active") return el("span", { class: "status-ok" }, "active");
    if (g.status === "revoked") return el("span", { class: "status-failed" }, `revoked (block ${g.revoked})`);
    if (g.status === "expired") return el("span", { class: "warn-text" }, "expired");
    if (g.status === "holder_changed") return el("span", { class: "muted" }, "holder changed");
    return el("span", {}, String(g.status));
  };

  function table(headers, rows, attrs) {
    const t = C.table(headers, rows.map((r) => r.cells), attrs);
    const trs = t.querySelectorAll("tbody tr");
    rows.forEach((r, i) => { if (trs[i]) Object.assign(trs[i].dataset, r.data || {}); });
    return t;
  }

  /** A vehicle's section: its holding (badge) and grants, revocable by its holder; ``refresh`` reloads the grants. */
  function vehicleSection(vin, listed, ctx) {
    const holdingBadge = C.badge(`the holding of ${vin}`);
    const heldBy = el("span", {}, listed ? holderText(ctx.me, listed.holder) : "…");
    const since = el("span", {}, listed ? C.time(listed.since) : "…");
    const grants = el("div", {}), said = el("div", { "aria-live": "polite" });
    const id = `vehicle-${vin}`;
    const section = el("section", { class: "vehicle", "aria-labelledby": id, dataset: { vin, state: "loading" } },
      el("h2", { id }, "Vehicle ", C.link(`#/vehicle/${vin}`, vin)),
      C.kv([["Held by", heldBy], ["Since", since], ["Holding", holdingBadge.el]]),
      el("h3", {}, "Consent grants"), grants, said);

    const holding = proveHolding(vin, listed).then((p) => {
      if (!listed) { heldBy.replaceChildren(holderText(ctx.me, p.value.holder)); since.textContent = C.time(p.value.holder_since); }
      return p;
    });
    const state = { vin, el: section, mine: listed ? speaksFor(ctx.me, listed.holder) : false, holding };
    holdingBadge.follow(holding.catch((e) => {
      if (!listed) { heldBy.textContent = refusedRead(e) ? "not yours to read" : "—"; since.textContent = "—"; }
      throw e;
    }), (p) => `held since ${C.time(p.value.holder_since)} · ` + C.proofText(p.header, p.evidence.checkpoint));
    const provenHolding = holding.catch(() => null);
    state.ready = listed ? Promise.resolve() : provenHolding.then((p) => { if (p) state.mine = speaksFor(ctx.me, p.value.holder); });

    function revokeCell(g) {
      const cell = el("span", {});
      const ask = el("button", { type: "button", class: "secondary", "aria-label": `Revoke grant ${g.id} to ${g.org}`,
        dataset: { revoke: g.id }, onclick: () => {
          const yes = el("button", { type: "button", dataset: { confirm: g.id }, onclick: async () => {
            yes.disabled = true; no.disabled = true;
            section.dataset.state = "sending";
            await state.refresh(await send({ type: "consent.revoke", vin, grant: g.id }, said));
          } }, `Yes, revoke grant ${g.id}`);
          const no = el("button", { type: "button", class: "secondary", onclick: () => { cell.replaceChildren(ask); ask.focus(); } }, "Cancel");
          cell.replaceChildren(el("span", {}, "Revoke for good? "), yes, " ", no);
          yes.focus();
        } }, "Revoke");
      cell.append(ask);
      return cell;
    }

    state.refresh = async function (minHeight) {
      section.dataset.state = "loading";
      try {
        await state.ready;
        const ans = await C.query("consent", "grants_of", { vin, limit: GRANTS_SHOWN, min_height: minHeight });
        const r = ans.result;
        const rows = r.grants.map((g) => {
          const badge = C.badge(`grant ${g.id}`);
          badge.follow(provenHolding.then((h) => proveGrant(g, r.at, h)).then((p) => {
            if (p.note) badge.el.title = p.note;
            return p;
          }), (p) => p.text);
          const name = ctx.orgNames[g.org];
          return { data: { grant: g.id, status: g.status }, cells: [
            String(g.id),
            el("span", {}, name ? name + " " : "", "(", C.link(`#/organisation/${g.org}`, g.org), ")"),
            g.categories.join(", "), g.purpose, C.time(g.until), statusCell(g), badge.el,
            state.mine && g.status !== "revoked" ? revokeCell(g) : "",
          ] };
        });
        const parts = [table(["Grant", "Organisation", "Categories", "Purpose", "Until", "Status", "Verified", ""], rows,
          { class: "grants", "aria-label": `Consent grants on ${vin}` })];
        if (r.total > r.grants.length) parts.push(el("p", { class: "muted" }, `The first ${r.grants.length} of ${r.total} grants are shown.`));
        grants.replaceChildren(...parts);
      } catch (e) {
        grants.replaceChildren(C.refusal(e));
      }
      section.dataset.state = "ready";
    };
    return state;
  }

  // ---------------------------------------------------------------- the grant form

  function grantForm(vehicles, ctx, sections) {
    const vinSel = el("select", { id: "grant-vin", name: "vin", required: true },
      vehicles.map((v) => el("option", { value: v }, v)));
    const orgSel = el("select", { id: "grant-org", name: "org", required: true },
      el("option", { value: "" }, "choose an organisation"),
      ctx.orgs.map((o) => el("option", { value: o.id }, `${o.name} (${o.id})`)));
    const boxes = CATEGORIES.map(([c, what]) => el("label", { class: "category" },
      el("input", { type: "checkbox", name: "category", value: c }), ` ${c} `, el("span", { class: "muted" }, `(${what})`)));
    const purpose = el("input", { type: "text", id: "grant-purpose", name: "purpose", required: true, maxlength: 200, size: 40 });
    const until = el("input", { type: "date", id: "grant-until", name: "until", required: true,
      "aria-describedby": "grant-until-hint" });
    const submit = el("button", { type: "submit" }, "Grant consent");
    const said = el("div", { id: "grant-outcome", "aria-live": "polite" });
    const form = el("form", { id: "grant-form", "aria-labelledby": "grant-title", dataset: { state: "idle" }, onsubmit: async (e) => {
      e.preventDefault();
      const categories = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      if (!categories.length) {
        said.replaceChildren(el("div", { class: "box bad-text", role: "alert", dataset: { outcome: "invalid" } },
          "Choose at least one data category: nothing was sent."));
        boxes[0].querySelector("input").focus();
        return;
      }
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(until.value);
      if (!m) { said.replaceChildren(el("div", { class: "box bad-text", role: "alert", dataset: { outcome: "invalid" } }, "Give the day the consent ends.")); return; }
      const msg = { type: "consent.grant", vin: vinSel.value, org: orgSel.value, categories, purpose: purpose.value.trim(),
        until: Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + DAY_MS };
      form.dataset.state = "sending";
      submit.disabled = true;
      said.replaceChildren(el("p", { class: "muted" }, "Signing and sending, waiting for its block…"));
      const section = sections[msg.vin];
      if (section) section.el.dataset.state = "sending";
      const height = await send(msg, said);
      submit.disabled = false;
      if (section) await section.refresh(height);
      form.dataset.state = "done";
    } },
      el("div", { class: "inline-fields" },
        el("p", {}, el("label", { for: "grant-vin" }, "Vehicle "), vinSel),
        el("p", {}, el("label", { for: "grant-org" }, "Organisation "), orgSel),
        el("fieldset", {}, el("legend", {}, "Data categories"), boxes.map((b) => el("div", {}, b))),
        el("p", {}, el("label", { for: "grant-purpose" }, "Purpose "), purpose),
        el("p", {}, el("label", { for: "grant-until" }, "Until "), until, " ",
          el("span", { id: "grant-until-hint", class: "muted" }, "the consent ends when this day ends (UTC)")),
        el("p", {}, submit)),
      said);
    return el("section", { "aria-labelledby": "grant-title" },
      el("h2", { id: "grant-title" }, "Grant consent"),
      el("p", { class: "muted" }, "The grant is a transaction signed here with your key; the ledger checks that you hold the vehicle."),
      form);
  }

  function openByVin() {
    const input = el("input", { type: "search", id: "consent-vin", name: "vin", "aria-label": "VIN", placeholder: "VIN" });
    return el("form", { class: "inline", role: "search", onsubmit: (e) => {
      e.preventDefault();
      const v = input.value.trim().toUpperCase();
      if (VIN_RE.test(v)) C.go(`#/consent/${v}`);
      else C.problem(`'${v.slice(0, 40)}' is not a VIN (17 characters, no I, O or Q)`);
    } }, input, el("button", { type: "submit" }, "Open a vehicle's consent"));
  }

  // ---------------------------------------------------------------- the page

  async function render(view, args, stale) {
    view.append(el("h1", {}, "Consent"),
      el("p", { class: "muted" }, "Which organisation may read which data of the vehicles you hold, for what and until when. " +
        "Grants and revocations are transactions signed in this page with your key."));
    if (!C.signer) {
      view.append(el("div", { class: "box", role: "note" }, "Load your key above: this page shows the vehicles your key (or your organisation) holds."));
      return;
    }
    // the directory is read by known keys; a key that holds nothing is not one yet, and has nothing to grant
    const orgsRead = C.query("governance", "organisations").then((a) => a.result, (e) => { if (refusedRead(e)) return []; throw e; });
    const [me, orgs] = await Promise.all([whoAmI(), orgsRead]);
    if (stale()) return;
    const ctx = { me, orgs, orgNames: Object.fromEntries(orgs.map((o) => [o.id, o.name])) };
    const sections = {};
    const vin = (args[0] || "").toUpperCase();

    if (vin) {
      if (!VIN_RE.test(vin)) throw new Error("a vehicle is named by its VIN (17 characters, no I, O or Q), e.g. #/consent/WZZ3E5C22NM400117");
      view.append(el("p", {}, C.link("#/consent", "← all the vehicles you hold")));
      const s = vehicleSection(vin, null, ctx);
      sections[vin] = s;
      view.append(s.el);
      await s.refresh();
      await s.ready;
      if (s.mine) view.append(grantForm([vin], ctx, sections));
      else view.append(el("p", { class: "muted", id: "not-holder" }, "Your key does not hold this vehicle: only its holder grants or revokes consent."));
      return;
    }

    const holders = [me.did].concat(me.org ? ["org:" + me.org] : []);
    const held = await Promise.all(holders.map((h) => C.query("vehicles", "vehicles_of", { holder: h, limit: VEHICLES_SHOWN }).then((a) => a.result)));
    if (stale()) return;
    view.append(el("p", { id: "holdings" }, holders.map((h, i) => el("span", {}, i ? "; " : "",
      holderText(me, h), ` ${i ? "holds" : "hold"} ${held[i].total} vehicle${held[i].total === 1 ? "" : "s"}`,
      held[i].total > held[i].vehicles.length ? ` (the first ${held[i].vehicles.length} are shown)` : ""))),
      el("p", { class: "muted" }, "Each holding is proven against the trust anchor from the vehicle's record; the list itself is the node's index."),
      openByVin());
    const listed = [];
    holders.forEach((h, i) => held[i].vehicles.forEach((v) => listed.push({ vin: v.vin, holder: h, since: v.since })));
    if (!listed.length) {
      view.append(el("div", { class: "box", role: "note" }, "Your key holds no vehicle, so it has no consent to manage."));
      return;
    }
    for (const v of listed) {
      const s = vehicleSection(v.vin, v, ctx);
      sections[v.vin] = s;
      view.append(s.el);
    }
    await Promise.all(Object.values(sections).map((s) => s.refresh()));
    if (stale()) return;
    view.append(grantForm(listed.map((v) => v.vin), ctx, sections));
  }

  C.page("consent", { title: "Consent", render });
})();
