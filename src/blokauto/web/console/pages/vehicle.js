/* A vehicle's page: its history report verified in this browser (the same rules as `blokauto verify`),
 * the timeline, an odometer chart (uPlot) with suspected rollbacks marked, the parts fitted and the
 * software it runs (each a state value proven against the anchor), its open recalls, and, for its
 * holder, a share link signed here. Read by the holder, its maker, lenders, consented organisations,
 * regulators and police: anyone else sees the node's refusal. */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, S = window.BlokautoSigning, el = C.el;
  const DAY_MS = 86400000, SHARE_MAX_DAYS = 90;
  const KIND_TEXT = {
    birth: (d) => `built ${d.build_date || ""} in ${d.plant || "?"}: ${d.make || ""} ${d.model || ""}`,
    title_transfer: (d) => `title ${short(d.from)} → ${short(d.to)}${d.usage ? ` (${d.usage})` : ""}`,
    odometer: (d) => `${km(d.km)}${d.flag ? " ⚠ " + d.flag.replace(/_/g, " ") : ""}`,
    service: (d) => `${km(d.km)}: ${(d.items || []).join(", ")}`,
    repair: (d) => `${km(d.km)}: ${(d.items || []).join(", ")}`,
    inspection: (d) => `${km(d.km)}: ${d.result || ""}`,
    accident: (d) => `${d.severity || ""} on ${d.date || "?"}${d.total_loss ? ", total loss" : ""}${d.airbags_deployed ? ", airbags deployed" : ""}`,
    parts_installed: (d) => (d.items || []).map((i) => i.part || `${i.qty}× ${i.batch}`).join(", "),
    parts_removed: (d) => (d.items || []).map((i) => i.part || `${i.qty}× ${i.batch}`).join(", "),
    recall_remedied: (d) => `recall ${d.number} (${d.method})`,
    ecus_fitted: (d) => (d.ecus || []).map((e) => `${e.ecu} ${e.path}`).join(", "),
    software_installed: (d) => (d.installed || []).map((e) => `${e.ecu} → ${e.path} (counter ${e.release_counter})`).join(", "),
  };
  const WARN = new Set(["accident", "theft", "title_brand", "end_of_life"]);

  function short(who) {
    if (typeof who !== "string") return "";
    return who.startsWith("did:key:") ? C.short(who, 22) : who;
  }
  function km(n) { return Number.isSafeInteger(n) ? n.toLocaleString("en") + " km" : ""; }

  function describe(e) {
    const f = KIND_TEXT[e.type];
    try { return f ? f(e.data || {}) : JSON.stringify(e.data || {}).slice(0, 160); } catch (err) { return ""; }
  }

  async function render(view, args) {
    const vin = (args[0] || "").toUpperCase();
    view.append(el("h1", {}, "Vehicle"), findForm(vin));
    if (!vin) {
      view.append(el("p", { class: "muted" }, "Enter a VIN to see its verified history, odometer, parts, software and recalls."));
      return;
    }
    if (!/^[A-HJ-NPR-Z0-9]{17}$/.test(vin)) throw new Error(`'${vin.slice(0, 20)}' is not a VIN: 17 letters and digits, without I, O or Q`);
    const badge = C.badge(`report of ${vin}`);
    const heading = el("h2", {}, `${vin} `, badge.el);
    view.append(heading);
    let report;
    const seen = C.seenHeight;  // the node answers as of at least the newest block this page verified
    const partsRead = C.provenState(window.BlokautoStateKeys.bom + vin);  // asked beside the report, shown after it
    const softwareRead = C.provenState(window.BlokautoStateKeys.software + vin);
    partsRead.catch(() => {}); softwareRead.catch(() => {});  // (their badges settle from them below)
    try { report = await C.api(`/v1/reports/${encodeURIComponent(vin)}${C.qs({ min_height: seen >= 0 ? seen : undefined })}`); } catch (e) {
      badge.unreadable(e.message);
      throw e;
    }
    let anchor = null;
    const verdict = await badge.follow((async () => {
      anchor = C.anchorAt(report && report.as_of ? report.as_of.height : 0);
      const verdict = await V.verifyReport(report, anchor, { minHeight: seen >= 0 ? seen : null });
      C.saw({ height: verdict.height });
      return verdict;
    })(),
      (v) => `${v.entries} entries · block ${v.height} · ${v.attestations} of ${Object.keys(anchor.nodes).length} node(s)`);
    if (!verdict) {
      view.append(el("p", { class: "bad-text", id: "unverified" },
        "This report did not verify, so nothing of it is shown: the node served something the ledger does not prove."));
      return;
    }
    const s = report.summary;
    const record = JSON.parse(report.evidence.vehicle.raw);
    const car = s.vehicle || {};
    view.append(el("div", { class: "box" }, C.kv([
      ["Vehicle", `${car.make || ""} ${car.model || ""} ${car.model_year || ""} · ${car.body || ""} · ${car.powertrain || ""}`],
      ["Status", s.status + (s.title_brands.length ? ` · brands: ${s.title_brands.join(", ")}` : "")],
      ["Maker", s.manufacturer], ["Owners", String(s.owners)], ["Liens", String(s.liens)],
      ["Accidents", String(s.accidents.length)],
      ["Odometer", `${s.odometer.status.replace(/_/g, " ")} · last ${km(s.odometer.last_km)} · highest ${km(s.odometer.max_km)}`],
      ["Holder", el("code", { id: "holder" }, record.holder || "")],
      ["As of", `block ${verdict.height}, ${C.time(verdict.time)}`],
    ])));
    if (verdict.warnings && verdict.warnings.length) {
      view.append(el("div", { class: "box warn-text", id: "warnings" }, el("strong", {}, "Warnings: "), verdict.warnings.join("; ")));
    }

    view.append(el("h2", {}, "Odometer"));
    odometer(view, s.odometer);

    view.append(el("h2", {}, `Recalls (${s.open_recalls.length})`));
    view.append(C.table(["Campaign", "Component", "Summary", "Remedied"], s.open_recalls.map((r) => [
      C.link(`#/recall/${r.campaign}`, r.number), r.component, r.summary,
      r.remedied ? el("span", { class: "status-ok" }, "yes") : el("span", { class: "status-failed" }, r.do_not_drive ? "no — do not drive" : "no"),
    ]), { id: "recalls" }));

    view.append(el("h2", {}, "Parts fitted"));
    view.append(await parts(vin, partsRead));
    view.append(el("h2", {}, "Software"));
    view.append(await software(vin, softwareRead));

    view.append(el("h2", {}, `History (${report.timeline.length} entries)`));
    view.append(el("div", { class: "box" }, el("ol", { class: "timeline", id: "timeline" }, report.timeline.map((e) =>
      el("li", { class: WARN.has(e.type) || (e.data && e.data.flag) ? "warn" : "" },
        el("strong", {}, e.type.replace(/_/g, " ")), " · ", C.time(e.time), " · ",
        e.org ? e.org : el("span", { class: "muted" }, "device or owner key"), " · ",
        C.link(`#/tx/${e.tx}`, `block ${e.height}`), el("div", {}, describe(e)))))));

    if (C.signer && record.holder === C.signer.did) view.append(shareForm(vin));
  }

  function findForm(vin) {
    const input = el("input", { type: "text", id: "vin", name: "vin", value: vin, maxlength: 17, "aria-label": "VIN",
      placeholder: "17-character VIN", autocomplete: "off" });
    return el("form", { class: "inline", role: "search", onsubmit: (e) => {
      e.preventDefault();
      C.go(`#/vehicle/${encodeURIComponent(input.value.trim().toUpperCase())}`);
    } }, input, el("button", { type: "submit" }, "Show"));
  }

  function odometer(view, o) {
    const series = o.series || [];
    if (!series.length) { view.append(el("p", { class: "muted" }, "No odometer readings on record.")); return; }
    const box = el("div", { class: "box" });
    const chart = el("div", { class: "chart", id: "odometer-chart", role: "img",
      "aria-label": `Odometer readings over time: ${series.length} readings, highest ${km(o.max_km)}` +
        (o.suspected_rollbacks.length ? `, ${o.suspected_rollbacks.length} suspected rollback(s)` : "") });
    box.append(chart);
    view.append(box);
    // Over time when the readings span a day or more; otherwise (a demo's minutes) by history entry, in order.
    const byTime = series[series.length - 1].time - series[0].time >= DAY_MS;
    const xs = series.map((p) => (byTime ? Math.floor(p.time / 1000) : p.seq));
    const ys = series.map((p) => p.km);
    const flagged = series.map((p) => (p.flag ? p.km : null));
    const width = Math.max(280, Math.min(chart.clientWidth || 800, 1100));
    new window.uPlot({
      width, height: 240,
      scales: { x: { time: byTime } },
      series: [{ label: byTime ? "time" : "history entry" },
        { label: "km", stroke: "#175cd3", width: 2, points: { show: true, size: 7 } },
        { label: "suspected rollback", stroke: "#b42318", width: 0, points: { show: true, size: 12, fill: "#b42318" } }],
      axes: [byTime ? {} : { label: "history entry", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, { values: (u, vals) => vals.map((v) => v.toLocaleString("en")), size: 70 }],
    }, [xs, ys, flagged], chart);
    box.append(el("details", {}, el("summary", {}, "Readings as a table"),
      C.table(["Time", "km", "Flag"], series.map((p) => [C.time(p.time), km(p.km), p.flag ? p.flag.replace(/_/g, " ") : ""]),
        { id: "odometer-table" })));
  }

  async function parts(vin, read) {
    const box = el("div", {});
    const badge = C.badge(`parts of ${vin}`);
    const proven = await badge.follow(read, (p) => C.proofText(p.header));
    box.append(el("p", {}, badge.el));
    if (!proven) return box;
    const bom = proven.value || { items: [], removed: [] };
    const ref = (i) => (i.kind === "part" ? C.link(`#/part/${encodeURIComponent(i.ref)}`, i.ref) : i.ref);
    box.append(C.table(["Part", "Kind", "Position", "Qty", "Fitted at"], bom.items.map((i) => [
      ref(i), i.kind, i.position || "", String(i.qty), C.link(`#/block/${i.height}`, `block ${i.height}`)]), { id: "parts" }));
    if (bom.removed && bom.removed.length) {
      box.append(el("details", {}, el("summary", {}, `Removed (${bom.removed.length})`),
        C.table(["Part", "Kind", "Qty", "Fitted", "Removed"], bom.removed.map((i) => [
          ref(i), i.kind, String(i.qty), `block ${i.installed}`, `block ${i.removed}`]))));
    }
    return box;
  }

  async function software(vin, read) {
    const box = el("div", {});
    const badge = C.badge(`software of ${vin}`);
    const proven = await badge.follow(read, (p) => C.proofText(p.header));
    box.append(el("p", {}, badge.el));
    if (!proven) return box;
    if (!proven.value) { box.append(el("p", { class: "muted" }, "No ECUs on record (proven absent).")); return box; }
    box.append(C.table(["ECU", "Hardware", "Image", "Release", "Since"], (proven.value.ecus || []).map((e) => [
      e.ecu, e.hardware_id, el("span", {}, e.path, " ", el("code", { title: e.image }, C.short(e.image))),
      String(e.release_counter), C.time(e.time)]), { id: "software" }));
    return box;
  }

  function shareForm(vin) {
    const days = el("input", { type: "number", id: "share-days", name: "days", min: 1, max: SHARE_MAX_DAYS, value: 7 });
    const claims = el("input", { type: "checkbox", id: "share-claims", name: "claims" });
    const out = el("div", { id: "share-link", "aria-live": "polite" });
    const form = el("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      out.replaceChildren();
      const n = Number(days.value);
      if (!Number.isInteger(n) || n < 1 || n > SHARE_MAX_DAYS) {
        out.append(el("p", { class: "bad-text" }, `A share link lives 1 to ${SHARE_MAX_DAYS} days.`));
        return;
      }
      const token = await S.shareToken(C.signer, C.genesis.chain, vin, Date.now() + n * DAY_MS, claims.checked);
      const url = `${location.origin}/reports/${encodeURIComponent(vin)}?share=${token}`;
      const field = el("input", { type: "text", readonly: true, value: url, "aria-label": "Share link", id: "share-url", size: 60 });
      out.append(el("p", {}, `Anyone with this link can open and verify the report for ${n} day(s), until you sell the car:`),
        field, " ", el("button", { type: "button", class: "secondary", onclick: () => {
          field.select();
          if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
        } }, "Copy"), " ", el("a", { href: url, target: "_blank", rel: "noopener" }, "Open"));
    } }, el("label", { for: "share-days" }, "Valid for (days)", days),
    el("label", { for: "share-claims" }, el("span", {}, claims, " show insurance claims")),
    el("button", { type: "submit" }, "Make a share link"));
    return el("section", { "aria-label": "Share" }, el("h2", {}, "Share the report"),
      el("div", { class: "box" }, el("p", { class: "muted" }, "You hold this vehicle: a link signed here with your key opens its report for a buyer, without an account."), form, out));
  }

  C.page("vehicle", { title: "Vehicle", render });
})();
