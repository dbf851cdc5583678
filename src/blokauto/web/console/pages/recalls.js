/* Recalls: the open campaigns, and one campaign with its progress over time, the vehicles it affected,
 * the owners notified and the remedies.
 *
 * What carries a badge is proven here: each campaign's record (recall/c/ID: its fields and the number
 * remedied), the list of open campaigns (recall/open), each remedy (recall/remedy/ID/VIN). What the node
 * computes from its indexes (the vehicles a campaign affected, the remedies over time) is shown as its
 * answer, with what can be checked against the proven record (the last count equals the record's).
 * The affected vehicles, the progress and the remedies are read by the campaign's manufacturer and
 * opener (and regulators, police): others see the refusal with its code. */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, K = window.BlokautoStateKeys, el = C.el;
  const PAGE = 50;

  const number = (n) => String(n).padStart(K.numberDigits, "0");
  const campaignKey = (id) => K.campaign + number(id);
  const remedyKey = (id, vin) => `${K.remedy}${number(id)}/${vin}`;



  /** The first field where the node's answer differs from the proven record, or "". */
  function differs(shown, proven) {
    for (const k of new Set([...Object.keys(shown || {}), ...Object.keys(proven || {})])) {
      if (V.canonical(shown[k] === undefined ? null : shown[k]) !== V.canonical(proven[k] === undefined ? null : proven[k])) return k;
    }
    return "";
  }

  const refused = (e) => e instanceof C.ApiError && (e.status === 401 || e.status === 403);
  const who = (s) => (typeof s === "string" && s.startsWith("did:") ? el("code", { title: s }, C.short(s, 24)) : (s || "—"));
  const block = (h) => C.link(`#/block/${h}`, `block ${h}`);

  // ---------------------------------------------------------------- the open campaigns

  function finder() {
    const input = el("input", { type: "search", id: "recall-find", name: "campaign", placeholder: "e.g. 1" });
    return el("form", { class: "inline", role: "search", "aria-label": "Open a campaign", onsubmit: (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (/^\d+$/.test(v)) C.go(`#/recall/${Number(v)}`);
      else C.problem(`'${v.slice(0, 40)}' is not a campaign id (a number, e.g. 1)`);
    } }, el("label", { for: "recall-find" }, "Campaign id", input), el("button", { type: "submit" }, "Open"));
  }

  async function list(view, args, stale) {
    view.append(el("h1", {}, "Recalls"), finder());
    const answer = await C.query("recalls", "open");
    if (stale()) return;
    const open = answer.result;
    const listBadge = C.badge("the list of open campaigns");
    const rows = open.map((c) => {
      const badge = C.badge(`campaign ${c.id}`);
      badge.follow(C.provenState(campaignKey(c.id)).then((p) => {
        if (p.value === null) throw new V.VerificationError(`campaign ${c.id} is proven absent`);
        const field = differs(c, p.value);
        if (field) throw new V.VerificationError(`the list's '${field}' of campaign ${c.id} is not what its proven record says`);
        return p;
      }), (p) => `block ${p.header.height}`);
      return [C.link(`#/recall/${c.id}`, c.number), c.component, c.manufacturer || "(all makers)",
        el("span", {}, block(c.opened), " · ", C.time(c.opened_time)), String(c.remedied),
        c.do_not_drive ? el("strong", { class: "bad-text" }, "do not drive") : "", badge.el];
    });
    view.append(el("p", {}, `${open.length} open campaign${open.length === 1 ? "" : "s"} at block ${answer.height}. `,
      "Each row is checked against its proven campaign record; the list itself against the proven set of open campaigns: ", listBadge.el),
    C.table(["Campaign", "Component", "Manufacturer", "Opened", "Remedied", "", "Verified"], rows, { id: "campaigns" }));
    listBadge.follow(C.provenState(K.openCampaigns).then((p) => {
      const ids = p.value || [];
      if (V.canonical(ids) !== V.canonical(open.map((c) => c.id))) {
        throw new V.VerificationError(`the proven open campaigns are ${ids.join(", ") || "none"}, the list shows ${open.map((c) => c.id).join(", ") || "none"}`);
      }
      return p;
    }), (p) => `${(p.value || []).length} open · ${C.proofText(p.header, p.evidence.checkpoint)}`);
  }

  // ---------------------------------------------------------------- one campaign

  function fields(c) {
    const scope = c.scope || {};
    const parts = [
      ...(scope.part_numbers || []).map((pn) => `part number ${pn}`),
      ...(scope.batches || []).map((b) => el("span", {}, "batch ", C.link(`#/batch/${encodeURIComponent(`${b.part_number}:${b.batch}`)}`, `${b.part_number}:${b.batch}`))),
      ...(scope.serial_ranges || []).map((r) => `serials ${r.part_number} ${r.first}…${r.last}`),
      ...(scope.vin_ranges || []).map((r) => `VINs ${r.first}…${r.last}`),
      scope.build_dates ? `built ${scope.build_dates.first}…${scope.build_dates.last}` : null,
    ].filter((x) => x);
    return C.kv([
      ["Number", c.number], ["Status", c.status === "open" ? "open" : `closed at block ${c.closed}`],
      ["Component", c.component], ["Summary", c.summary], ["Consequence", c.consequence], ["Remedy", c.remedy],
      ["Do not drive", c.do_not_drive ? el("strong", { class: "bad-text" }, "yes") : "no"],
      ["Over the air", c.ota_remedy ? (c.software_fix ? `yes: ${c.software_fix.hardware_id} at release ${c.software_fix.min_release_counter} or later` : "yes") : "no"],
      ["Manufacturer", c.manufacturer || "(all makers)"], ["Opened by", c.opened_by],
      ["Opened", el("span", {}, block(c.opened), " · ", C.time(c.opened_time))],
      ["Scope", el("span", {}, parts.map((p, i) => [i ? "; " : "", p]))],
      ["Units estimated", String(c.units)],
    ]);
  }

  /** The remedies over time as a step chart (uPlot), x = block height, with its data as a table. */
  function chart(box, p, head) {
    const xs = [p.opened], remedied = [0];
    for (const pt of p.points) { xs.push(pt.height); remedied.push(pt.remedied); }
    const end = Math.max(head, xs[xs.length - 1]);
    if (end > xs[xs.length - 1]) { xs.push(end); remedied.push(remedied[remedied.length - 1]); }
    if (xs.length === 1) { xs.push(p.opened + 1); remedied.push(0); }
    const affected = xs.map(() => p.affected);
    const holder = el("div", { class: "chart", id: "progress-chart", role: "img",
      "aria-label": `Vehicles remedied by block height, from block ${p.opened} (opened) to block ${end}: ` +
        `${p.remedied} of ${p.affected} remedied. The same data is in the table below.` });
    box.append(holder);
    const size = () => ({ width: Math.max(200, holder.clientWidth || 600), height: 240 });
    const plot = new window.uPlot({
      ...size(),
      scales: { x: { time: false } },
      series: [{ label: "block height" },
        { label: "remedied", stroke: "#067647", width: 2, fill: "rgba(6,118,71,0.08)", paths: window.uPlot.paths.stepped({ align: 1 }) },
        { label: "affected", stroke: "#b42318", width: 1, dash: [6, 4], points: { show: false } }],
      axes: [{ label: "block height" }, { label: "vehicles", size: 60 }],
    }, [xs, remedied, affected], holder);
    if (window.ResizeObserver) {
      const ro = new ResizeObserver(() => { if (!holder.isConnected) { ro.disconnect(); return; } plot.setSize(size()); });
      ro.observe(holder);
    }
    box.append(el("p", { class: "muted" }, `x axis: block height (the ledger's clock; block ${p.opened} is when the campaign opened). ` +
      (p.changes > p.points.length ? `${p.changes} changes, ${p.points.length} of them shown (evenly spaced, the last included).` : `${p.changes} change${p.changes === 1 ? "" : "s"}.`)),
    el("details", {}, el("summary", {}, "Progress as a table"),
      C.table(["Block", "Remedied so far"], p.points.map((pt) => [block(pt.height), String(pt.remedied)]), { id: "progress-table" })));
  }

  async function progressOverTime(box, id, proven) {
    let answer;
    try { answer = await C.query("recalls", "progress", { campaign: id }); } catch (e) { box.append(C.refusal(e)); return; }
    const p = answer.result;
    const check = C.badge("the progress against the proven record");
    box.append(el("p", {}, "Remedies over time, as the node's index lists them; its count is checked against the proven campaign record: ", check.el));
    chart(box, p, answer.height);
    if (!proven) check.unreadable("the campaign record is not proven");
    else if (p.remedied !== proven.remedied) check.failed(`the node counts ${p.remedied} remedies over time; the proven record says ${proven.remedied}`);
    else check.verified(`${p.remedied} remedied, as the proven record says`);
  }

  async function affectedVehicles(box, id, offset, remedyOffset) {
    let answer;
    try { answer = await C.query("recalls", "affected", { campaign: id, limit: PAGE, offset }); } catch (e) { box.append(C.refusal(e)); return null; }
    const r = answer.result;
    box.append(C.table(["VIN", "Holder when it opened (notified)", "Remedied"], r.vehicles.map((v) => [
      C.link(`#/vehicle/${v.vin}`, v.vin), who(v.holder),
      v.remedied ? el("span", { class: "status-ok" }, "remedied") : el("span", { class: "warn-text" }, "outstanding")]), { id: "affected" }));
    const total = r.progress.affected;
    const pager = el("div", { class: "pager" });
    if (offset > 0) pager.append(C.link(`#/recall/${id}/${Math.max(0, offset - PAGE)}/${remedyOffset}`, "← previous vehicles"));
    if (offset + r.vehicles.length < total) pager.append(C.link(`#/recall/${id}/${offset + PAGE}/${remedyOffset}`, "next vehicles →"));
    box.append(el("p", { class: "muted" }, r.vehicles.length ? `Vehicles ${offset + 1}–${offset + r.vehicles.length} of ${total}.` : `${total} vehicles.`), pager);
    return r;
  }

  async function remedyRows(box, id, offset, affectedOffset) {
    let answer;
    try { answer = await C.query("recalls", "remedies", { campaign: id, limit: PAGE, offset }); } catch (e) { box.append(C.refusal(e)); return; }
    const list = answer.result.remedies;
    const badges = list.map((r) => C.badge(`remedy of ${r.vin}`));
    box.append(C.table(["VIN", "By", "How", "Block", "Notes", "Verified"], list.map((r, i) => [
      C.link(`#/vehicle/${r.vin}`, r.vin), who(r.by), r.method, block(r.height), r.notes || "", badges[i].el]), { id: "remedies" }));
    const pager = el("div", { class: "pager" });
    if (offset > 0) pager.append(C.link(`#/recall/${id}/${affectedOffset}/${Math.max(0, offset - PAGE)}`, "← previous remedies"));
    if (offset + list.length < answer.result.remedied) pager.append(C.link(`#/recall/${id}/${affectedOffset}/${offset + PAGE}`, "next remedies →"));
    box.append(pager);
    // Each remedy record is proven (recall/remedy/ID/VIN): the first alone, since a node that refuses this reader
    // one of these keys refuses them all; then the rest at once.
    const prove = (i) => badges[i].follow(C.provenState(remedyKey(id, list[i].vin)).then((p) => {
      if (p.value === null) throw new V.VerificationError(`no remedy of ${list[i].vin} is on record (proven absent)`);
      const field = differs(list[i], p.value);
      if (field) throw new V.VerificationError(`the listed '${field}' is not what the proven remedy says`);
      return p;
    }).catch((e) => {
      if (refused(e)) refusal = `${e.message} (${e.code})`;
      throw e;
    }), (p) => `block ${p.header.height}`);
    let refusal = null;
    if (!list.length) return;
    await prove(0);
    if (refusal) badges.slice(1).forEach((b) => b.unreadable(refusal));
    else await Promise.all(list.slice(1).map((_, i) => prove(i + 1)));
  }

  async function campaign(view, args, stale) {
    if (!/^\d+$/.test(args[0] || "")) throw new Error("a campaign is named by its id, e.g. #/recall/1");
    const id = Number(args[0]);
    const offset = /^\d+$/.test(args[1] || "") ? Number(args[1]) : 0;
    const remedyOffset = /^\d+$/.test(args[2] || "") ? Number(args[2]) : 0;
    const badge = C.badge(`campaign ${id}`);
    const title = el("span", {}, `Campaign ${id}`);
    view.append(el("h1", {}, "Recall ", title, " ", badge.el), el("p", {}, C.link("#/recalls", "← open campaigns")));
    const [answer, proven] = await Promise.all([
      C.query("recalls", "campaign", { id }),
      badge.follow(C.provenState(campaignKey(id)).then((p) => {
        if (p.value !== null && p.value.id !== id) throw new V.VerificationError(`the proven record is campaign ${p.value.id}, not ${id}`);
        return p;
      }), (p) => `${p.value === null ? `no campaign ${id} (proven absent)` : "campaign record"} · ${C.proofText(p.header, p.evidence.checkpoint)}`),
    ]);
    if (stale()) return;
    const shown = answer.result;
    if (proven && proven.value === null) badge.failed(`the node answers campaign ${id}, whose record is proven absent`);
    const record = proven ? proven.value : null;  // null: not proven (the badge says why), or proven absent
    const c = record || shown;
    title.textContent = c.number;
    const facts = el("div", { class: "box", id: "campaign" }, fields(c));
    if (!record) facts.prepend(el("p", { class: "warn-text", role: "note" }, "Not verified: these fields are as the node's query answered, not its proven record."));
    else {
      const field = differs(Object.fromEntries(Object.entries(shown).filter(([k]) => k !== "progress")), record);
      if (field) facts.prepend(el("p", { class: "bad-text", role: "alert" }, `The node's campaign query differs from the proven record in '${field}': the proven record is shown.`));
    }
    view.append(facts);

    const prog = shown.progress;
    const remedied = record ? record.remedied : prog.remedied;
    view.append(el("h2", {}, "Progress"), el("div", { class: "box", id: "progress" }, C.kv([
      ["Affected", el("span", {}, String(prog.affected), el("span", { class: "muted" }, " (resolved by the node from what the vehicles carried at block " + c.opened + ")"))],
      ["Remedied", el("span", {}, String(remedied), el("span", { class: record ? "ok-text" : "muted" }, record ? " (proven record)" : " (the node's answer)"))],
      ["Outstanding", String(prog.affected - remedied)],
      ["Done", el("progress", { max: String(Math.max(1, prog.affected)), value: String(remedied), "aria-label": "share remedied" })],
    ])));
    const over = el("div", { class: "box", id: "progress-over-time" });
    view.append(el("h2", {}, "Progress over time"), over);
    await progressOverTime(over, id, record);
    if (stale()) return;

    const aff = el("div", { id: "affected-vehicles" });
    view.append(el("h2", {}, "Affected vehicles"), aff);
    const affected = await affectedVehicles(aff, id, offset, remedyOffset);
    if (stale()) return;

    // The node derives one recalls.owner_notified event per affected vehicle when a campaign opens, addressed to
    // the holder at that block (the event stream; nothing of it is written on the ledger): what can be shown
    // honestly and cheaply is how many there were and to whom, which the affected list already says.
    const n = prog.affected;
    view.append(el("h2", {}, "Notifications"), el("div", { class: "box", id: "notifications" }, el("p", {},
      n ? `When the campaign opened (block ${c.opened}, ${C.time(c.opened_time)}) every node derived ${n} owner notification${n === 1 ? "" : "s"} ` +
          "(recalls.owner_notified on the event stream), one per affected vehicle, addressed to its holder at that block" +
          (affected ? ": the holders listed above." : "; who they are is read by the campaign's manufacturer and opener.")
        : `The scope matched no vehicle when the campaign opened (block ${c.opened}): no owner was notified, and the node flagged ` +
          "it to its opener (recalls.scope_matched_nothing)."),
    el("p", { class: "muted" }, "Notifications are derived by each node from the ledger, not written on it: they carry no proof of their own.")));

    const rem = el("div", { id: "remedy-list" });
    view.append(el("h2", {}, "Remedies"), rem);
    await remedyRows(rem, id, remedyOffset, offset);
  }

  C.page("recalls", { title: "Recalls", render: list });
  C.page("recall", { title: "Recall", nav: "recalls", render: campaign });
})();
