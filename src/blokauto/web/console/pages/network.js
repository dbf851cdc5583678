/* Network: this node and each peer it names, their heights, lag and state roots; each node's
 * checkpoint at the highest height all reached, checked here against the anchor, so two verified
 * checkpoints of different headers at one height prove a divergence; and the newest blocks'
 * attestations against the quorum. What a peer says of itself (height, health) is its claim;
 * what carries a badge is proven by node signatures, whoever relayed it. */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, el = C.el;
  const RECENT = 20;

  async function render(view) {
    view.append(el("h1", {}, "Network"));
    const net = await C.api("/v1/network");
    const nodes = [{ url: location.origin + " (this node)", status: net.self.status, checkpoint: net.self.checkpoint }, ...net.peers];
    const head = Math.max(...nodes.filter((n) => n.status).map((n) => n.status.height));
    const verdicts = await Promise.all(nodes.map(async (n) => {
      const badge = C.badge(`checkpoint of ${n.url}`);
      if (!n.checkpoint) {
        badge.unreadable(n.error || n.checkpoint_error || "no checkpoint at the common height");
        return { badge, header: null };
      }
      const header = await badge.follow((async () => {
        const proven = await C.verifyCheckpoint(n.checkpoint);
        if (proven.height !== net.common_height) {
          throw new V.VerificationError(`a checkpoint of block ${proven.height}, not of the common height ${net.common_height}`);
        }
        return proven;
      })(), (h) => C.proofText(h, n.checkpoint));
      return { badge, header };
    }));
    const hashes = new Set();
    for (const v of verdicts) if (v.header) hashes.add(V.canonical(v.header));
    const diverged = hashes.size > 1;
    view.append(el("div", { class: diverged ? "box bad-text" : "box", id: "agreement", role: diverged ? "alert" : "status" },
      net.common_height < 0 ? "No node has committed a block yet."
        : diverged ? `Divergence at block ${net.common_height}: ${hashes.size} different headers, each attested by node keys of the consortium. ` +
          "The nodes committed different histories; stop and investigate (docs/operations.md)."
          : `All ${verdicts.filter((v) => v.header).length} node(s) that answered agree on block ${net.common_height}.`));
    view.append(C.table(["Node", "Ordering", "Height", "Lag", "Healthy", "State root (claimed)", `Checkpoint at ${net.common_height}`],
      nodes.map((n, i) => {
        const s = n.status;
        if (!s) return [n.url, "", "", "", el("span", { class: "status-failed" }, "no answer"), el("span", { class: "muted" }, n.error || ""), verdicts[i].badge.el];
        const root = verdicts[i].header ? verdicts[i].header.state_root : "";
        return [el("span", {}, n.url, el("br"), el("code", { title: s.node }, C.short(s.node, 24))), s.ordering || "", String(s.height),
          String(head - s.height), s.healthy ? el("span", { class: "status-ok" }, "yes") : el("span", { class: "status-failed", title: s.error || "" }, "no"),
          el("code", { title: s.state_root }, C.short(s.state_root)) , el("span", {}, verdicts[i].badge.el, root ? el("br") : "",
            root ? el("code", { title: root }, "proven root " + C.short(root)) : "")];
      }), { id: "nodes" }));

    view.append(el("h2", {}, "Attestations of the newest blocks"));
    const page = await C.api(`/v1/blocks?limit=${RECENT}`);
    const rows = page.blocks.map((b) => {
      const a = C.anchorAt(b.height);
      const badge = C.badge(`block ${b.height}`);
      badge.follow(C.verifyCheckpoint({ header: b.header, attestations: b.attestations }), (h) => C.proofText(h, b));
      const n = b.attestations.length;
      return [C.link(`#/block/${b.height}`, String(b.height)), C.time(b.header.time),
        el("span", { class: n >= a.quorum ? "status-ok" : "status-failed" }, `${n} of ${Object.keys(a.nodes).length}`),
        String(a.quorum), b.attestations.map((x) => el("code", { title: x.node }, C.short(x.node, 20) + " ")), badge.el];
    });
    view.append(C.table(["Block", "Time", "Attestations", "Quorum", "Attested by", "Verified"], rows, { id: "quorum" }));
  }

  C.page("network", { title: "Network", render });
})();
