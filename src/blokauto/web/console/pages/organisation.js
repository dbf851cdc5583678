/* Organisations: the consortium's directory (governance): its organisations, the consensus (node keys
 * and quorum) and open proposals; one organisation's roles, member keys (revoked and rotated ones
 * marked), node keys and votes; which organisation is the loaded key's own.
 *
 * Badges: what the node's queries answered is compared with the state it comes from, proven against
 * the anchor: each organisation's record (gov/org/ID), the list of active ones (gov/active-orgs), each
 * member key's record (gov/member/DID), each proposal's (gov/proposal/N) and the consensus record
 * (gov/consensus). Every known key reads them.
 */
(function () {
  "use strict";
  const C = window.Console, V = window.BlokautoVerifier, el = C.el;

  const DIGITS = (window.BlokautoStateKeys && window.BlokautoStateKeys.numberDigits) || 16;
  // blokauto.modules.governance.keys (only gov/consensus is in the generated state_keys.js yet)
  const KEY = {
    org: (id) => "gov/org/" + id,
    member: (did) => "gov/member/" + did,
    proposal: (id) => "gov/proposal/" + String(id).padStart(DIGITS, "0"),
    activeOrgs: "gov/active-orgs",
    consensus: (window.BlokautoStateKeys && window.BlokautoStateKeys.consensus) || "gov/consensus",
  };
  const MEMBERS_CHECKED = 100, DECIDED_SHOWN = 10;
  const ORG_FIELDS = ["id", "name", "roles", "nodes", "status", "since"];
  const MEMBER_FIELDS = ["org", "roles", "status", "since"];
  const PROPOSAL_FIELDS = ["id", "action", "proposer", "opened", "expires", "votes", "status", "note"];
  const DEFAULTS = { status: "active", since: 0, note: "", successor: "", version: 0 };

  const fail = (msg) => { throw new V.VerificationError(msg); };
  const same = (a, b) => V.canonical(a) === V.canonical(b);
  const show = (v) => (typeof v === "string" ? `'${C.short(v, 40)}'` : JSON.stringify(v));
  const sorted = (a) => (Array.isArray(a) ? a.slice().sort() : a);

  /** The state value at ``key``, proven; ``fields`` of ``shown`` (what a query answered) must agree with it. */
  async function provenAgrees(key, shown, fields, what, norm) {
    const p = await C.provenState(key);
    if (!p.value) fail(`the ledger holds no ${what}`);
    for (const f of fields) {
      let proven = p.value[f] === undefined ? DEFAULTS[f] : p.value[f], said = shown[f];
      if (norm && norm[f]) { proven = norm[f](proven); said = norm[f](said); }
      if (!same(proven, said)) fail(`the node's answer says ${f} ${show(said)}; the proven record says ${show(proven)}`);
    }
    return p;
  }
  const proofText = (p) => C.proofText(p.header, p.evidence.checkpoint);

  function table(headers, rows, attrs) {
    const t = C.table(headers, rows.map((r) => r.cells), attrs);
    const trs = t.querySelectorAll("tbody tr");
    rows.forEach((r, i) => { if (trs[i]) Object.assign(trs[i].dataset, r.data || {}); });
    return t;
  }

  // ---------------------------------------------------------------- who the key is

  /** {did, org, member, node}: the loaded key's organisation as a member key or a node key (null if neither). */
  async function whoAmI(consensus) {
    if (!C.signer) return { did: null, org: null };
    const did = C.signer.did;
    let member = null;
    try { member = (await C.query("governance", "member", { did })).result; } catch (e) {
      if (!(e instanceof C.ApiError && (e.status === 404 || e.status === 401 || e.status === 403))) throw e;
    }
    const node = consensus && Array.isArray(consensus.nodes) ? consensus.nodes.find((n) => n.did === did) : undefined;
    const org = member && member.status === "active" ? member.org : node ? node.org : null;
    return { did, org, member, node };
  }

  function meText(me) {
    if (!me.did) return "No key loaded: load yours above to see which organisation is yours.";
    if (me.member && me.member.status === "active") return el("span", {}, "Your key is a member key of ",
      C.link(`#/organisation/${me.member.org}`, me.member.org), ` (roles: ${me.member.roles.join(", ")}).`);
    if (me.member) return el("span", { class: "bad-text" }, `Your key was a member key of ${me.member.org}; it is ${me.member.status}.`);
    if (me.node) return el("span", {}, "Your key is a node key of ", C.link(`#/organisation/${me.node.org}`, me.node.org), ".");
    return "Your key is not a key of any organisation (a holder's, or a device's).";
  }

  // ---------------------------------------------------------------- proposals

  function actionText(a) {
    if (!a || typeof a !== "object") return "—";
    switch (a.action) {
      case "admit_organisation": return `admit ${a.id} (${a.name}) as ${(a.roles || []).join(", ")}`;
      case "remove_organisation": return `remove ${a.id}`;
      case "set_parameter": return `set ${a.name} to ${a.value}`;
      case "set_node_keys": return `node keys of ${a.org}: ${(a.nodes || []).length}`;
      case "set_quorum": return `quorum ${a.quorum}`;
      default: return String(a.action);
    }
  }

  function votesText(p) {
    const votes = Object.entries(p.votes || {});
    const yes = votes.filter(([, v]) => v).map(([o]) => o), no = votes.filter(([, v]) => !v).map(([o]) => o);
    return el("span", {}, `${yes.length} yes, ${no.length} no`,
      yes.length ? el("span", { class: "muted" }, ` · yes: ${yes.join(", ")}`) : "",
      no.length ? el("span", { class: "muted" }, ` · no: ${no.join(", ")}`) : "");
  }

  function voteOf(p, org) {
    if (!(org in (p.votes || {}))) return el("span", { class: "muted" }, "not yet");
    return p.votes[org] ? el("span", { class: "status-ok" }, "yes") : el("span", { class: "status-failed" }, "no");
  }

  /** A table of proposals, each checked against its proven record; ``org``: add that organisation's vote. */
  function proposalsTable(items, org, label) {
    const rows = items.map((p) => {
      const badge = C.badge(`proposal ${p.id}`);
      badge.follow(provenAgrees(KEY.proposal(p.id), p, PROPOSAL_FIELDS, `proposal ${p.id}`), proofText);
      const cells = [String(p.id), actionText(p.action), C.link(`#/organisation/${p.proposer}`, p.proposer),
        C.time(p.expires) + (p.status === "open" && p.expires < Date.now() ? " (expired)" : ""), votesText(p)];
      if (org) cells.push(voteOf(p, org));
      cells.push(badge.el);
      return { data: { proposal: p.id, status: p.status }, cells };
    });
    const headers = ["#", "Action", "Proposed by", "Expires", "Votes"].concat(org ? [`${org}'s vote`] : [], ["Verified"]);
    return table(headers, rows, { class: "proposals", "aria-label": label });
  }

  async function proposals(view, org) {
    const open = (await C.query("governance", "proposals", { status: "open", limit: 50 })).result;
    view.append(el("h2", { id: "proposals-title" }, `Open proposals (${open.total})`),
      proposalsTable(open.items, org, "Open proposals"));
    if (open.total > open.items.length) view.append(el("p", { class: "muted" }, `The newest ${open.items.length} are shown.`));
    const [passed, rejected] = await Promise.all(["passed", "rejected"].map((s) =>
      C.query("governance", "proposals", { status: s, limit: DECIDED_SHOWN }).then((a) => a.result)));
    const decided = passed.items.concat(rejected.items).sort((a, b) => b.id - a.id).slice(0, DECIDED_SHOWN);
    view.append(el("details", { id: "decided" },
      el("summary", {}, `Decided proposals (${passed.total} passed, ${rejected.total} rejected; the newest ${decided.length})`),
      proposalsTable(decided, org, "Decided proposals")));
  }

  // ---------------------------------------------------------------- the consensus

  function consensusSection(consensus) {
    const badge = C.badge("the consensus record");
    badge.follow(provenAgrees(KEY.consensus, consensus, ["nodes", "quorum", "version", "since"], "consensus record"), proofText);
    const nodes = consensus.nodes || [];
    return el("section", { id: "consensus", "aria-labelledby": "consensus-title" },
      el("h2", { id: "consensus-title" }, "Consensus ", badge.el),
      C.kv([["Quorum", `${consensus.quorum} of ${nodes.length} node key${nodes.length === 1 ? "" : "s"} attest each checkpoint`],
        ["Version", String(consensus.version || 0)], ["Since", consensus.since ? `block ${consensus.since}` : "genesis"]]),
      table(["Node key", "Organisation"], nodes.map((n) => ({ data: { node: n.did }, cells: [
        el("code", {}, n.did), C.link(`#/organisation/${n.org}`, n.org)] })), { "aria-label": "Node keys that attest blocks" }));
  }

  // ---------------------------------------------------------------- the directory

  async function directory(view) {
    const [orgs, consensus] = await Promise.all([C.query("governance", "organisations").then((a) => a.result),
      C.query("governance", "consensus").then((a) => a.result)]);
    const me = await whoAmI(consensus);
    view.append(el("h1", {}, "Organisations"), el("p", { id: "me" }, meText(me)));
    const listBadge = C.badge("the list of active organisations");
    listBadge.follow(C.provenState(KEY.activeOrgs).then((p) => {
      const ids = orgs.map((o) => o.id);
      if (!Array.isArray(p.value)) fail("the ledger holds no list of active organisations");
      if (!same(p.value, ids)) {
        const missing = p.value.filter((i) => !ids.includes(i)), extra = ids.filter((i) => !p.value.includes(i));
        fail(`the node's list differs from the proven one` + (missing.length ? `; it leaves out ${missing.join(", ")}` : "") +
          (extra.length ? `; it adds ${extra.join(", ")}` : ""));
      }
      return p;
    }), proofText);
    const rows = orgs.map((o) => {
      const badge = C.badge(`organisation ${o.id}`);
      badge.follow(provenAgrees(KEY.org(o.id), o, ORG_FIELDS, `organisation ${o.id}`, { roles: sorted }), proofText);
      const mine = me.org === o.id;
      return { data: { org: o.id, mine: mine ? "true" : "false" }, cells: [
        el("span", {}, C.link(`#/organisation/${o.id}`, o.name), mine ? el("strong", { class: "ok-text" }, " (yours)") : ""),
        el("code", {}, o.id), o.roles.join(", "), String((o.nodes || []).length),
        o.since ? `block ${o.since}` : "genesis", badge.el] };
    });
    view.append(el("section", { "aria-labelledby": "orgs-title" },
      el("h2", { id: "orgs-title" }, `Active organisations (${orgs.length}) `, listBadge.el),
      table(["Organisation", "Id", "Roles", "Node keys", "Admitted", "Verified"], rows, { id: "organisations", "aria-label": "Active organisations" })));
    view.append(consensusSection(consensus));
    await proposals(view, null);
  }

  // ---------------------------------------------------------------- one organisation

  async function organisation(view, id) {
    const [org, consensus] = await Promise.all([C.query("governance", "organisation", { id }).then((a) => a.result),
      C.query("governance", "consensus").then((a) => a.result)]);
    const me = await whoAmI(consensus);
    const badge = C.badge(`organisation ${id}`);
    const mine = me.org === org.id;
    view.append(el("p", {}, C.link("#/organisation", "← all organisations")),
      el("h1", { dataset: { org: org.id } }, org.name, " ", badge.el),
      el("p", { id: "me" }, meText(me)),
      el("div", { class: "box" }, C.kv([
        ["Id", el("code", {}, org.id)],
        ["Status", org.status === "active" ? el("span", { class: "status-ok" }, "active") : el("span", { class: "status-failed" }, org.status)],
        ["Roles", org.roles.join(", ")],
        ["Admitted", org.since ? `block ${org.since}` : "genesis"],
        ["Yours", el("span", { id: "yours" }, mine ? "yes: your key is one of its keys" : "no")],
      ])));
    badge.follow(provenAgrees(KEY.org(id), org, ORG_FIELDS, `organisation ${id}`, { roles: sorted }), proofText);

    const members = org.members || [];
    const rows = members.map((m, i) => {
      const mb = C.badge(`member key ${m.did}`);
      const status = el("span", { class: m.status === "active" ? "status-ok" : "status-failed" }, m.status);
      if (i < MEMBERS_CHECKED) {
        mb.follow(provenAgrees(KEY.member(m.did), Object.assign({ org: org.id }, m), MEMBER_FIELDS, `member key ${m.did}`, { roles: sorted })
          .then((p) => {
            if (p.value.successor) status.append(" → ", el("code", { title: p.value.successor }, C.short(p.value.successor, 24)));
            return p;
          }), proofText);
      } else {
        mb.unreadable(`only the first ${MEMBERS_CHECKED} keys are checked on this page`);
      }
      const you = me.did === m.did ? el("strong", { class: "ok-text" }, ` (you${C.signer && C.signer.name ? ": " + C.signer.name : ""})`) : "";
      return { data: { member: m.did, status: m.status }, cells: [el("span", {}, el("code", {}, m.did), you),
        m.roles.join(", "), status, m.since ? `block ${m.since}` : "genesis", mb.el] };
    });
    const active = members.filter((m) => m.status === "active").length;
    view.append(el("h2", { id: "members-title" }, `Member keys (${active} active of ${members.length})`),
      el("p", { class: "muted" }, "The ledger names keys, not people: who holds a key is the organisation's own record."),
      table(["Key", "Roles", "Status", "Since", "Verified"], rows, { id: "members", "aria-label": "Member keys" }));

    const attesting = new Set((consensus.nodes || []).filter((n) => n.org === org.id).map((n) => n.did));
    const cbadge = C.badge("the consensus record");
    cbadge.follow(provenAgrees(KEY.consensus, consensus, ["nodes", "quorum", "version", "since"], "consensus record"), proofText);
    const nodes = Array.from(new Set((org.nodes || []).concat(Array.from(attesting))));
    view.append(el("h2", { id: "nodes-title" }, `Node keys (${nodes.length}) `, cbadge.el),
      el("p", { class: "muted" }, `The consortium's quorum: ${consensus.quorum} of ${(consensus.nodes || []).length} node keys attest each checkpoint.`),
      table(["Node key", "Attests blocks"], nodes.map((d) => ({ data: { node: d }, cells: [el("code", {}, d),
        attesting.has(d) ? el("span", { class: "status-ok" }, "yes") : el("span", { class: "muted" }, "no")] })),
      { id: "nodes", "aria-label": "Node keys" }));
    await proposals(view, org.id);
  }

  C.page("organisation", { title: "Organisation", render: async (view, args) => {
    if (args[0]) return organisation(view, args[0]);
    return directory(view);
  } });
})();
