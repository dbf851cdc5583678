/* The console's framework: the user's key, the trust anchor, signed reads and writes, the badge that
 * says whether an answer verified, a hash router and a small DOM builder. Each page (pages/*.js)
 * registers itself with Console.page(name, {title, render}); start.js starts the router.
 *
 * Nothing here trusts the node: what carries a badge is checked in this page against the anchor
 * (verifier.js), and the anchor is either the user's own genesis.json or the one this node served,
 * pinned in this browser the first time it was seen (a node that later serves another is refused).
 */
(function (root) {
  "use strict";
  const V = root.BlokautoVerifier, S = root.BlokautoSigning;

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  const C = {
    signer: null,       // {did, name, key}
    anchors: null,      // genesis anchor then one per proven consensus change
    anchorSource: "",   // "pinned" (the user's file or the first one seen) | "file"
    genesis: null,
    status: null,
    pages: {},
    ApiError,
  };

  // ---------------------------------------------------------------- DOM

  /** el("a", {href: "#/x", class: "y"}, "text", child, ...): text is never parsed as HTML. */
  C.el = function (tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  };
  const el = C.el;

  C.table = function (headers, rows, attrs) {
    return el("div", { class: "box" }, el("table", attrs || {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.length ? rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))
        : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "nothing to show")))));
  };

  C.kv = (pairs) => el("dl", { class: "kv" }, pairs.filter((p) => p).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  C.short = (h, n) => (typeof h === "string" && h.length > (n || 12) ? h.slice(0, n || 12) + "…" : String(h));
  C.time = (ms) => (Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—");
  C.link = (hash, text) => el("a", { href: hash }, text);

  C.problem = function (text) {
    const p = document.getElementById("problem");
    p.textContent = text || "";
    p.hidden = !text;
  };

  /** A refusal or failure shown where the data would have been, with its code. */
  C.refusal = function (err) {
    if (err instanceof ApiError) {
      return el("div", { class: "box bad-text", role: "alert", dataset: { code: err.code } },
        el("strong", {}, err.status === 403 || err.status === 401 ? "Not yours to read: " : "Refused: "),
        err.message, " ", el("code", {}, err.code));
    }
    return el("div", { class: "box bad-text", role: "alert" }, String(err && err.message ? err.message : err));
  };

  // ---------------------------------------------------------------- badges

  /** A badge that starts "verifying…" and ends verified, failed (with the reason) or unreadable. */
  C.badge = function (what) {
    const b = el("span", { class: "badge", role: "status", dataset: { state: "pending", what: what || "" }, title: what || "" }, "verifying…");
    const set = (state, text, reason) => {
      b.dataset.state = state; b.textContent = text;
      if (reason) { b.title = reason; b.dataset.reason = reason; }
    };
    return {
      el: b,
      verified(text) { set("verified", "✓ verified" + (text ? " · " + text : "")); },
      failed(reason) { set("failed", "✗ not verified: " + reason, reason); },
      unreadable(reason) { set("unreadable", "cannot check: " + reason, reason); },
      /** Settle from a promise of a verification: resolves to its value (or null when it failed). */
      async follow(promise, describe) {
        try {
          const out = await promise;
          this.verified(describe ? describe(out) : "");
          return out;
        } catch (e) {
          if (e instanceof V.VerificationError) this.failed(e.message);
          else if (e instanceof ApiError) this.unreadable(`${e.message} (${e.code})`);
          else this.failed("the answer is malformed: " + (e && e.message ? e.message : String(e)));
          return null;
        }
      },
    };
  };

  /** "block 12, 3 of 4 attestations" for a verified header. */
  C.proofText = function (header, checkpoint) {
    const a = C.anchorAt(header.height);
    const n = checkpoint && Array.isArray(checkpoint.attestations) ? checkpoint.attestations.length : a.quorum;
    return `block ${header.height} · ${n} of ${Object.keys(a.nodes).length} node${Object.keys(a.nodes).length === 1 ? "" : "s"} (quorum ${a.quorum})`;
  };

  // ---------------------------------------------------------------- reads and writes

  async function answer(r) {
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!r.ok) {
      const err = body && body.error ? body.error : { code: "http_" + r.status, message: text.slice(0, 200) || r.statusText };
      throw new ApiError(r.status, err.code, err.message);
    }
    if (body === null && text) throw new ApiError(r.status, "not_json", "the node's answer is not JSON");
    return body;
  }

  /** GET (or POST with opts.body, an object) a JSON route, signed with the loaded key. */
  C.api = async function (path, opts) {
    opts = opts || {};
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return answer(await S.signedFetch(C.signer, path, { method: opts.method, body }));
  };

  const q = (params) => {
    const parts = Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    return parts.length ? "?" + parts.join("&") : "";
  };
  C.query = (module, name, params) => C.api(`/v1/q/${module}/${name}${q(params)}`);
  C.qs = q;

  /** The anchors, or a VerificationError saying why there are none (nothing verifies without one). */
  C.trusted = function () {
    if (!C.anchors) throw new V.VerificationError("no trust anchor: this node's genesis is not the one pinned in this browser; load your genesis.json");
    return C.anchors;
  };
  /** The anchor that judges a checkpoint at ``height``. */
  C.anchorAt = (height) => V.anchorFor(C.trusted(), height);
  /** A checkpoint ({header, attestations}) verified against the anchor: its header. */
  C.verifyCheckpoint = async (checkpoint) => C.saw(await V.verifyCheckpointObject(checkpoint, C.trusted()));

  /** The newest block this page verified: an answer proven at an older one may hide what came since
   * (a report is then asked for at least this height and refused as stale below it). */
  C.seenHeight = -1;
  C.saw = function (header) {
    if (header && Number.isSafeInteger(header.height) && header.height > C.seenHeight) C.seenHeight = header.height;
    return header;
  };

  /** A state value proven against the anchor: {header, value, evidence}. */
  C.provenState = async function (key, minHeight) {
    const evidence = await C.api("/v1/state/" + key.split("/").map(encodeURIComponent).join("/") + q({ min_height: minHeight }));
    if (!evidence || evidence.key !== key) {  // a genuine proof of another key proves nothing about this one
      throw new V.VerificationError(`asked for '${key}', the node proved '${evidence && evidence.key}'`);
    }
    const out = await V.verifyStateEvidence(evidence, C.trusted());
    C.saw(out.header);
    return Object.assign(out, { evidence });
  };

  /** A transaction with its receipt, proven: {header, tx, receipt, evidence}. */
  C.provenTx = async function (id, wait) {
    const evidence = await C.api(`/v1/txs/${encodeURIComponent(id)}${q({ wait })}`);
    const out = await V.verifyTxEvidence(evidence, C.trusted());
    if (evidence.id !== id) {  // a genuine proof of another transaction proves nothing about this one
      throw new V.VerificationError(`asked for transaction ${id.slice(0, 16)}…, the node proved ${String(evidence.id).slice(0, 16)}…`);
    }
    C.saw(out.header);
    return Object.assign(out, { evidence });
  };

  /** Sign ``msg`` (with its "type") with the loaded key, submit it and wait for its receipt (proven). */
  C.send = async function (msg) {
    if (!C.signer) throw new ApiError(401, "signature_required", "Load your key first: a transaction is signed by its sender.");
    const ttl = 10 * 60 * 1000;
    const signed = await S.signTx(C.signer, C.genesis.chain, msg, Date.now() + ttl);
    const receipt = await C.api("/v1/txs?wait=15", { body: signed.tx });
    const proven = await V.verifyTxEvidence(receipt, C.trusted());
    if (receipt.id !== signed.id || V.canonical(proven.tx.body) !== V.canonical(signed.tx.body)) {
      // a genuine receipt, but of another transaction: the node did not answer for the one signed here
      throw new V.VerificationError(`the node answered with the receipt of transaction ${String(receipt.id).slice(0, 16)}…, ` +
        `not of the one signed here (${signed.id.slice(0, 16)}…)`);
    }
    return Object.assign(proven, { id: signed.id, evidence: receipt });
  };

  // ---------------------------------------------------------------- the trust anchor

  const PIN = (chain) => "blokauto.anchor." + chain;

  async function setAnchor(genesis, source, changesRead) {
    const anchor = await V.anchorFromGenesis(genesis);
    const changes = await (changesRead || C.api("/v1/consensus/changes?after=0"));
    C.anchors = await V.followConsensus(anchor, changes.changes);
    C.genesis = genesis; C.anchorSource = source;
    const a = C.anchors[C.anchors.length - 1];
    const span = document.getElementById("anchor");
    span.className = source === "file" ? "ok-text" : "";
    span.textContent = `chain '${anchor.chain}' · genesis ${anchor.genesisHash.slice(0, 12)}… · ` +
      `${Object.keys(a.nodes).length} node key(s), quorum ${a.quorum}` +
      (C.anchors.length > 1 ? ` (after ${C.anchors.length - 1} proven change(s))` : "") +
      (source === "file" ? " · pinned: your genesis.json" : " · pinned in this browser when first seen (load your genesis.json to check it)");
    document.getElementById("chain").textContent = anchor.chain;
  }

  /** The anchor this node serves, refused if it is not the one this browser pinned for the chain. */
  C.loadServedAnchor = async function () {
    const changes = C.api("/v1/consensus/changes?after=0");  // asked at once, beside the genesis
    changes.catch(() => {});  // (judged once the genesis is: a refusal there comes first)
    const genesis = await C.api("/v1/genesis");
    const anchor = await V.anchorFromGenesis(genesis);
    const pinned = localStorage.getItem(PIN(anchor.chain));
    if (pinned && pinned !== anchor.genesisHash) {
      const span = document.getElementById("anchor");
      span.className = "bad-text";
      span.textContent = `this node serves genesis ${anchor.genesisHash.slice(0, 12)}… for chain '${anchor.chain}', ` +
        `but this browser pinned ${pinned.slice(0, 12)}…: nothing is verified until you load the right genesis.json`;
      throw new V.VerificationError("the node's trust anchor is not the one pinned in this browser");
    }
    localStorage.setItem(PIN(anchor.chain), anchor.genesisHash);
    await setAnchor(genesis, pinned ? "pinned" : "first-seen", changes);
  };

  C.loadAnchorFile = async function (text) {
    let genesis;
    try { genesis = JSON.parse(text); } catch (e) { throw new Error("the file is not JSON (genesis.json is)"); }
    const anchor = await V.anchorFromGenesis(genesis);
    const served = await V.anchorFromGenesis(await C.api("/v1/genesis"));
    if (served.genesisHash !== anchor.genesisHash) {
      throw new Error(`this node serves chain '${served.chain}' with genesis ${served.genesisHash.slice(0, 12)}…, ` +
        `not the one in your file (${anchor.genesisHash.slice(0, 12)}…): it is not a node of your consortium`);
    }
    localStorage.setItem(PIN(anchor.chain), anchor.genesisHash);
    await setAnchor(genesis, "file");
  };

  C.setSigner = function (signer) {
    C.signer = signer;
    const who = document.getElementById("who");
    who.textContent = signer ? `signing as ${signer.name ? signer.name + " · " : ""}${signer.did.slice(0, 24)}…`
      : "no key loaded: reads that need one are refused";
    who.className = signer ? "ok-text" : "muted";
    document.getElementById("forget").hidden = !signer;
  };

  // ---------------------------------------------------------------- pages and the router

  C.page = function (name, spec) { C.pages[name] = spec; };

  /** Load one of the console's scripts (``vendor/cytoscape.min.js``) the first time a page needs it. */
  const loading = {};
  C.needScript = function (name) {
    if (!loading[name]) {
      loading[name] = new Promise((resolve, reject) => {
        const s = el("script", { src: "/console/assets/" + name });
        s.addEventListener("load", resolve);
        s.addEventListener("error", () => { delete loading[name]; reject(new Error(`the console's ${name} did not load`)); });
        document.head.append(s);
      });
    }
    return loading[name];
  };

  C.route = function () {
    const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
    const [name, ...args] = raw.split("/").map((s) => { try { return decodeURIComponent(s); } catch (e) { return s; } });
    return { name: name || "explorer", args };
  };

  let rendering = 0;
  C.render = async function () {
    const { name, args } = C.route();
    const spec = C.pages[name] || C.pages.explorer;
    const turn = ++rendering;
    const view = document.getElementById("view");
    const pane = el("div", { class: "pane" }); // each render writes to its own pane: one overtaken writes to a detached one
    view.replaceChildren(pane);
    C.problem("");
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.nav === (spec.nav || name)) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    document.title = `${spec.title} · blokauto console`;
    view.dataset.page = name;
    view.dataset.ready = "false";
    try {
      await spec.render(pane, args, () => turn !== rendering);
    } catch (e) {
      pane.append(C.refusal(e));
    }
    if (turn === rendering) view.dataset.ready = "true";
  };

  C.go = function (hash) { if (location.hash === hash) C.render(); else location.hash = hash; };

  root.Console = C;
})(window);
