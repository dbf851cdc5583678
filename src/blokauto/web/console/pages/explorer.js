/* Explorer: the newest blocks, one block's transactions with their receipts, one transaction.
 * A block's badge checks its header's attestations against the anchor; a transaction's checks its
 * and its receipt's inclusion in a verified block. Receipts are read by the transaction's signers,
 * their organisations, nodes, regulators and police: others see the id and "not yours to read". */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, el = C.el;
  const PAGE = 20, TXS_SHOWN = 50;

  function search() {
    const input = el("input", { type: "search", id: "find", name: "find", "aria-label": "Block height, transaction id or VIN",
      placeholder: "block height, transaction id or VIN" });
    return el("form", { class: "inline", role: "search", onsubmit: (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (/^\d+$/.test(v)) C.go(`#/block/${v}`);
      else if (/^[0-9a-fA-F]{64}$/.test(v)) C.go(`#/tx/${v.toLowerCase()}`);
      else if (/^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$/.test(v)) C.go(`#/vehicle/${v.toUpperCase()}`);
      else C.problem(`'${v.slice(0, 40)}' is not a block height, a transaction id (64 hex digits) or a VIN (17 characters)`);
    } }, input, el("button", { type: "submit" }, "Find"));
  }

  async function blocks(view, args) {
    const before = args[0] !== undefined && /^\d+$/.test(args[0]) ? Number(args[0]) : -1;
    view.append(el("h1", {}, "Explorer"), search());
    const page = await C.api(`/v1/blocks${C.qs({ before: before >= 0 ? before : undefined, limit: PAGE })}`);
    const rows = page.blocks.map((b) => {
      const badge = C.badge(`block ${b.height}`);
      badge.follow((async () => {
        const header = await C.verifyCheckpoint({ header: b.header, attestations: b.attestations });
        if (header.height !== b.height) throw new V.VerificationError(`the header is of block ${header.height}, listed as ${b.height}`);
        return header;
      })(), (h) => C.proofText(h, b));
      return [C.link(`#/block/${b.height}`, String(b.height)), C.time(b.header.time), String(b.header.tx_count),
        el("code", { title: b.header.state_root }, C.short(b.header.state_root)), badge.el];
    });
    view.append(el("p", { class: "muted" }, `Head: block ${page.head}. Each block's header is checked against the trust anchor here.`),
      C.table(["Block", "Time", "Transactions", "State root", "Verified"], rows, { id: "blocks" }));
    const last = page.blocks.length ? page.blocks[page.blocks.length - 1].height : 0;
    const pager = el("div", { class: "pager" });
    if (before >= 0) pager.append(C.link("#/explorer", "Newest"));
    if (last > 0) pager.append(C.link(`#/explorer/${last}`, "Older blocks"));
    view.append(pager);
  }

  async function block(view, args) {
    const height = Number(args[0]);
    if (!/^\d+$/.test(args[0] || "")) throw new Error("a block is named by its height, e.g. #/block/12");
    const b = await C.api(`/v1/blocks/${height}`);
    const badge = C.badge(`block ${height}`);
    view.append(el("h1", {}, `Block ${height} `, badge.el));
    const header = await badge.follow((async () => {
      const proven = await C.verifyCheckpoint({ header: b.header, attestations: b.attestations });
      if (proven.height !== height) throw new V.VerificationError(`the node answered with block ${proven.height}, not block ${height}`);
      return proven;
    })(), (h) => C.proofText(h, b));
    if (!header) {
      view.append(el("p", { class: "bad-text", id: "unverified" }, "This block did not verify, so nothing of it is shown."));
      return;
    }
    const h = header;
    view.append(el("div", { class: "box" }, C.kv([
      ["Time", C.time(h.time)], ["Chain", h.chain], ["Hash", el("code", { id: "block-hash" }, await V.headerHash(h))],
      ["Previous", height > 0 ? C.link(`#/block/${height - 1}`, C.short(h.prev, 16)) : el("code", {}, h.prev)],
      ["State root", el("code", {}, h.state_root)], ["Transactions root", el("code", {}, h.tx_root)],
      ["Receipts root", el("code", {}, h.receipt_root)],
      ["Attested by", el("span", {}, b.attestations.map((a) => el("code", { title: a.node }, C.short(a.node, 28) + " ")))],
    ])));
    if (b.tx_ids.length !== header.tx_count) {
      badge.failed(`the block lists ${b.tx_ids.length} transactions; its header counts ${header.tx_count}`);
    }
    const nav = el("div", { class: "pager" });
    if (height > 0) nav.append(C.link(`#/block/${height - 1}`, "← previous block"));
    nav.append(C.link(`#/block/${height + 1}`, "next block →"));
    view.append(nav, el("h2", {}, `Transactions (${b.tx_ids.length})`));
    const shown = b.tx_ids.slice(0, TXS_SHOWN);
    const rows = shown.map((id) => {
      const status = el("span", { class: "muted" }, "…"), type = el("span", {}, ""), badgeTx = C.badge(`transaction ${id}`);
      badgeTx.follow(C.provenTx(id).then((p) => {
        if (p.header.height !== height) throw new V.VerificationError(`listed in block ${height}, proven in block ${p.header.height}`);
        type.textContent = p.tx.body.msg && p.tx.body.msg.type ? p.tx.body.msg.type : "";
        status.replaceWith(receiptStatus(p.receipt));
        return p;
      }).catch((e) => {
        if (e instanceof C.ApiError && (e.status === 401 || e.status === 403)) status.textContent = "not yours to read";
        throw e;
      }), (p) => `in block ${p.header.height}`);
      return [C.link(`#/tx/${id}`, el("code", {}, C.short(id, 16))), type, status, badgeTx.el];
    });
    view.append(C.table(["Transaction", "Type", "Receipt", "Verified"], rows, { id: "txs" }));
    if (b.tx_ids.length > shown.length) view.append(el("p", { class: "muted" }, `The first ${shown.length} of ${b.tx_ids.length} are shown.`));
  }

  function receiptStatus(r) {
    return r.ok ? el("span", { class: "status-ok" }, "ok")
      : el("span", { class: "status-failed" }, "failed: ", el("code", {}, r.code));
  }

  async function tx(view, args) {
    const id = (args[0] || "").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error("a transaction is named by its id, 64 hex digits");
    const badge = C.badge(`transaction ${id}`);
    view.append(el("h1", {}, "Transaction ", badge.el), el("p", {}, el("code", {}, id)));
    let proven;
    try { proven = await C.provenTx(id); } catch (e) {
      if (e instanceof V.VerificationError) { badge.failed(e.message); return; }
      badge.unreadable(e.message);
      throw e;
    }
    badge.verified(`in block ${proven.header.height}, transaction ${proven.evidence.index + 1} of ${proven.header.tx_count}`);
    const { tx: t, receipt: r } = proven;
    view.append(el("div", { class: "box" }, C.kv([
      ["Block", C.link(`#/block/${proven.header.height}`, String(proven.header.height))],
      ["Time", C.time(proven.header.time)], ["Type", el("code", {}, t.body.msg && t.body.msg.type)],
      ["Sender", el("code", {}, t.body.sender)], ["Signed by", el("span", {}, t.sigs.map((s) => el("code", {}, C.short(s.signer, 28) + " ")))],
      ["Receipt", receiptStatus(r)],
      r.ok ? null : ["Why", el("span", {}, el("span", { id: "failure" }, proven.evidence.message || ""),
        el("span", { class: "muted" }, ` (the node's words for the proven code ${r.code})`))],
    ])));
    view.append(el("h2", {}, "Message"), el("pre", { class: "box mono", id: "message" }, JSON.stringify(t.body.msg, null, 2)));
    if (Array.isArray(r.events) && r.events.length) {
      view.append(el("h2", {}, "Events"), el("pre", { class: "box mono" }, JSON.stringify(r.events, null, 2)));
    }
  }

  C.page("explorer", { title: "Explorer", render: blocks });
  C.page("block", { title: "Block", nav: "explorer", render: block });
  C.page("tx", { title: "Transaction", nav: "explorer", render: tx });
})();
