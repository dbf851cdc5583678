/* blokauto browser verifier: the rules of blokauto.verify (Python) for reports, in JavaScript.
 *
 * Trusts only a genesis document (the consortium's trust anchor). Uses WebCrypto for SHA-256
 * and Ed25519, and applies libsodium's extra rules first (canonical S, no small-order R or key,
 * canonical key encoding), so a signature is accepted here exactly when the nodes accept it.
 * The state keys it checks proofs for come from state_keys.js (generated from the modules'
 * declarations by `python -m blokauto.docgen`), which must be loaded first.
 * Exposes window.BlokautoVerifier (and module.exports under Node).
 */
(function (root) {
  "use strict";

  class VerificationError extends Error {}
  const fail = (msg) => { throw new VerificationError(msg); };

  const te = new TextEncoder();
  const utf8 = (s) => te.encode(s);
  const TAG = {
    header: "blokauto/header/v1\0", attest: "blokauto/attest/v1\0", genesis: "blokauto/genesis/v1\0",
    stateKey: "blokauto/state-key/v1\0", stateValue: "blokauto/state-value/v1\0",
    smtLeaf: "blokauto/smt-leaf/v1\0", smtNode: "blokauto/smt-node/v1\0", history: "blokauto/history/v1\0",
    txId: "blokauto/tx/v1\0",
  };
  const FORMAT = "blokauto-report/1";
  const KEYS = root.BlokautoStateKeys ||
    (typeof require === "function" ? require("./state_keys.js") : undefined);
  if (!KEYS) throw new Error("blokauto verifier: load state_keys.js before verifier.js");

  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  function hex(bytes) { return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""); }
  function unhex(s) {
    if (typeof s !== "string" || s.length % 2 || /[^0-9a-f]/.test(s)) fail("not lowercase hex: " + String(s).slice(0, 20));
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
    return out;
  }
  function equalBytes(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }
  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  async function tagged(tag, bytes) { return sha256(concat(utf8(tag), bytes)); }

  // ---------------------------------------------------------------- canonical JSON

  function canonical(v) {
    if (v === null) return "null";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) fail("canonical JSON holds safe integers only, not " + v);
      return String(v);
    }
    if (typeof v === "string") return JSON.stringify(v);
    if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
    if (typeof v === "object") {
      return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
    }
    fail("not JSON: " + typeof v);
  }

  // ---------------------------------------------------------------- keys and signatures

  const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  function base58(s) {
    let n = 0n;
    for (const c of s) {
      const d = B58.indexOf(c);
      if (d < 0) fail("not base58btc");
      n = n * 58n + BigInt(d);
    }
    const bytes = [];
    while (n > 0n) { bytes.unshift(Number(n & 255n)); n >>= 8n; }
    for (const c of s) { if (c === "1") bytes.unshift(0); else break; }
    return new Uint8Array(bytes);
  }
  function keyOfDid(did) {
    if (typeof did !== "string" || !did.startsWith("did:key:z")) fail("not a did:key: " + String(did).slice(0, 40));
    const raw = base58(did.slice(9));
    if (raw.length !== 34 || raw[0] !== 0xed || raw[1] !== 0x01) fail("not an Ed25519 did:key");
    return raw.slice(2);
  }

  const P = 2n ** 255n - 19n;
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  const le = (bytes) => bytes.reduceRight((a, b) => (a << 8n) | BigInt(b), 0n);
  // libsodium's ge25519_has_small_order blocklist (sign bit ignored).
  const SMALL_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  ].map(unhex);
  function smallOrder(p) {
    return SMALL_ORDER.some((b) => {
      for (let i = 0; i < 31; i++) if (p[i] !== b[i]) return false;
      return (p[31] & 0x7f) === b[31];
    });
  }
  function canonicalPoint(p) {
    const y = le(p.slice(0, 31)) | (BigInt(p[31] & 0x7f) << 248n);
    return y < P;
  }

  async function ed25519Verify(pub, sig, msg) {
    if (pub.length !== 32 || sig.length !== 64) return false;
    if (!canonicalPoint(pub) || smallOrder(pub)) return false;
    if (smallOrder(sig.slice(0, 32))) return false;
    if (le(sig.slice(32)) >= L) return false;
    try {
      const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, sig, msg);
    } catch (e) {
      return false;
    }
  }

  // ---------------------------------------------------------------- trust anchor and checkpoints

  async function anchorFromGenesis(genesis) {
    if (!genesis || typeof genesis.chain !== "string") fail("not a blokauto genesis document");
    const g = Object.assign({}, genesis);
    delete g.hash;
    const nodes = {};
    for (const org of g.organisations || []) for (const n of org.nodes || []) nodes[n] = org.id;
    return { chain: g.chain, genesisHash: hex(await tagged(TAG.genesis, utf8(canonical(g)))), nodes, quorum: g.quorum };
  }

  // Field sets are exact, as in the Python verifier (its Structs forbid unknown fields).
  const HEADER_FIELDS = ["chain", "height", "prev", "receipt_root", "state_root", "time", "tx_count", "tx_root"];
  function exactKeys(obj, required, optional, what) {
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) fail(`the report is malformed: the ${what} is not an object`);
    const keys = Object.keys(obj);
    for (const k of required) if (!keys.includes(k)) fail(`the report is malformed: the ${what} lacks field '${k}'`);
    for (const k of keys) {
      if (!required.includes(k) && !optional.includes(k)) fail(`the report is malformed: the ${what} has an unknown field '${k}'`);
    }
  }

  async function verifyCheckpoint(headerRaw, attestations, anchor) {
    let header;
    try { header = JSON.parse(headerRaw); } catch (e) { fail("the checkpoint header is not JSON"); }
    exactKeys(header, HEADER_FIELDS, [], "checkpoint header");
    if (canonical(header) !== headerRaw) fail("the checkpoint header is not in canonical form");
    if (!Array.isArray(attestations)) fail("the attestations are not a list");
    for (const att of attestations) {
      exactKeys(att, ["node", "sig"], [], "attestation");
      if (typeof att.node !== "string" || typeof att.sig !== "string" || !/^[0-9a-f]{128}$/.test(att.sig)) {
        fail("an attestation is malformed");
      }
    }
    if (header.chain !== anchor.chain) fail(`the checkpoint is for chain '${header.chain}', not '${anchor.chain}'`);
    if (header.height === 0 && header.prev !== anchor.genesisHash) fail("block 0 does not commit to this genesis document");
    const message = concat(utf8(TAG.attest), await tagged(TAG.header, utf8(headerRaw)));
    const signers = new Set();
    for (const att of attestations) {
      if (signers.has(att.node)) fail(`node ${att.node} attested twice`);
      if (!(att.node in anchor.nodes)) fail(`attestation by ${att.node}, which is not a node key of the consortium`);
      if (!(await ed25519Verify(keyOfDid(att.node), unhex(att.sig), message))) {
        fail(`attestation by ${att.node} does not verify for block ${header.height}`);
      }
      signers.add(att.node);
    }
    if (signers.size < anchor.quorum) fail(`block ${header.height} has ${signers.size} valid attestations; the quorum is ${anchor.quorum}`);
    return header;
  }

  // ---------------------------------------------------------------- state proofs

  async function stateRoot(key, valueRaw, proof) {
    exactKeys(proof, ["levels", "terminal"], ["other_kh", "other_vh"], "state proof");
    if (!proof.levels.every((l) => Array.isArray(l) && l.every((x) => typeof x === "string"))) fail("the state proof levels are malformed");
    const kh = await tagged(TAG.stateKey, utf8(key));
    const hx = hex(kh);
    const levels = proof.levels;
    if (!Array.isArray(levels) || levels.length < 1 || levels.length > 64) fail("a state proof has between 1 and 64 levels");
    const last = levels.length - 1;
    let current = null;
    if (valueRaw !== null) {
      if (proof.terminal !== "leaf") fail("the proof shows the key absent, not holding the value");
      current = await tagged(TAG.smtLeaf, concat(kh, await tagged(TAG.stateValue, utf8(valueRaw))));
    } else if (proof.terminal === "other") {
      const okh = unhex(proof.other_kh || ""), ovh = unhex(proof.other_vh || "");
      if (okh.length !== 32 || ovh.length !== 32 || equalBytes(okh, kh)) fail("the other leaf is malformed or is the key itself");
      if (hex(okh).slice(0, last + 1) !== hx.slice(0, last + 1)) fail("the other leaf does not sit on the key's path");
      current = await tagged(TAG.smtLeaf, concat(okh, ovh));
    } else if (proof.terminal !== "empty") {
      fail("the proof shows the key present; a value is needed");
    }
    for (let depth = last; depth >= 0; depth--) {
      const nib = parseInt(hx[depth], 16);
      const entries = levels[depth].map((s) => {
        const e = unhex(s);
        if (e.length !== 33 || e[0] > 15 || e[0] === nib) fail("a proof entry is malformed or sits in the key's own slot");
        return e;
      });
      if (current !== null) entries.push(concat(new Uint8Array([nib]), current));
      entries.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < entries.length; i++) if (entries[i][0] === entries[i - 1][0]) fail("two proof entries claim the same slot");
      current = await tagged(TAG.smtNode, concat(...entries));
    }
    return hex(current);
  }

  // ---------------------------------------------------------------- the summary rules (same as Python)

  const READING_TYPES = ["odometer", "service", "inspection", "repair", "cluster_replaced"];
  const WARNING_BRANDS = ["salvage", "total_loss", "junk", "flood", "fire", "hail", "lemon", "rebuilt", "stolen"];

  // ---------------------------------------------------------------- recalls (same rules as Python)

  function coversPart(scope, pn, batch, serial) {
    if (scope.part_numbers.includes(pn)) return true;
    if (batch && scope.batches.some((b) => b.part_number === pn && b.batch === batch)) return true;
    return !!serial && scope.serial_ranges.some((r) => r.part_number === pn && r.first <= serial && serial <= r.last);
  }
  function coversVehicle(scope, vin, manufacturer, buildDate) {
    if (scope.manufacturer && manufacturer !== scope.manufacturer) return false;
    const d = scope.build_dates;
    if (d !== null && d !== undefined && !(d.first <= buildDate && buildDate <= d.last)) return false;
    return !scope.vin_ranges.length || scope.vin_ranges.some((r) => r.first <= vin && vin <= r.last);
  }
  function carried(bom, parts, height) {
    const refs = bom.items.filter((i) => i.height <= height).map((i) => [i.ref, i.kind, i.part_number, null])
      .concat(bom.removed.filter((r) => r.installed <= height && height < r.removed)
        .map((r) => [r.ref, r.kind, r.part_number, r.nested]));
    const out = [];
    for (const [ref, kind, pn, inside] of refs) {
      if (kind === "batch") { out.push([pn, ref.slice(ref.indexOf(":") + 1), ""]); continue; }
      const stack = [ref];
      while (stack.length) {
        const p = parts[stack.pop()];
        if (!p) continue;
        out.push([p.part_number, p.batch, p.serial]);
        if (inside === null) for (const c of p.components) if (c in parts) stack.push(c);
      }
      if (inside !== null) for (const c of inside) if (c in parts) out.push([parts[c].part_number, parts[c].batch, parts[c].serial]);
    }
    return out;
  }
  function openRecalls(record, ev) {
    const openIds = ev.open.raw ? JSON.parse(ev.open.raw) : [];
    const bom = ev.bom.raw ? JSON.parse(ev.bom.raw) : { items: [], removed: [] };
    const parts = {};
    for (const x of ev.parts) if (x.raw) { const p = JSON.parse(x.raw); parts[p.id] = p; }
    const out = [];
    openIds.forEach((cid, i) => {
      const c = JSON.parse(ev.campaigns[i].raw), scope = c.scope;
      if (record.registered > c.opened || !coversVehicle(scope, record.vin, record.manufacturer, record.birth.build_date)) return;
      const hasParts = scope.part_numbers.length || scope.batches.length || scope.serial_ranges.length;
      if (hasParts && !carried(bom, parts, c.opened).some((it) => coversPart(scope, it[0], it[1], it[2]))) return;
      out.push({ campaign: cid, number: c.number, component: c.component, summary: c.summary, remedy: c.remedy,
        do_not_drive: c.do_not_drive, remedied: ev.remedies[i].raw !== null });
    });
    return out;
  }
  // As Python's verify_state: every failure says which key was not proven, then why.
  async function verifyState(header, key, raw, proof) {
    const what = `'${key}' is not proven ${raw === null ? "absent" : "holding that value"} at height ${header.height}: `;
    let root;
    try { root = await stateRoot(key, raw, proof); } catch (e) {
      if (e instanceof VerificationError) fail(what + e.message);
      throw e;
    }
    if (root !== header.state_root) fail(what + "the state proof leads to a different root");
  }
  async function provenValue(header, item, key, what) {
    exactKeys(item, ["key", "raw", "proof"], [], what);
    if (item.key !== key) fail(`the report is malformed: the ${what} is for '${item.key}', not '${key}'`);
    await verifyState(header, key, item.raw, item.proof);
    return item.raw === null ? null : JSON.parse(item.raw);
  }
  const number = (n) => String(n).padStart(KEYS.numberDigits, "0");
  async function verifyRecallEvidence(header, vin, ev) {
    exactKeys(ev, ["open", "campaigns", "bom", "parts", "remedies"], [], "recall evidence");
    const openIds = (await provenValue(header, ev.open, KEYS.openCampaigns, "open campaign list")) || [];
    if (ev.campaigns.length !== openIds.length || ev.remedies.length !== openIds.length) {
      fail("the recall evidence does not cover every open campaign");
    }
    const named = new Set();
    for (let i = 0; i < openIds.length; i++) {
      const cid = openIds[i];
      const c = await provenValue(header, ev.campaigns[i], KEYS.campaign + number(cid), `campaign ${cid}`);
      if (c === null) fail(`the report is malformed: open campaign ${cid} is proven absent`);
      for (const pn of c.scope.part_numbers) named.add(pn);
      for (const b of c.scope.batches) named.add(b.part_number);
      for (const r of c.scope.serial_ranges) named.add(r.part_number);
      await provenValue(header, ev.remedies[i], `${KEYS.remedy}${number(cid)}/${vin}`, `remedy of campaign ${cid}`);
    }
    const bom = await provenValue(header, ev.bom, KEYS.bom + vin, "bill of parts");
    const given = {};
    for (const p of ev.parts) {
      const id = p && typeof p.key === "string" && p.key.startsWith(KEYS.part) ? p.key.slice(KEYS.part.length) : "";
      given[id] = await provenValue(header, p, KEYS.part + id, `part ${id}`);
    }
    const need = bom ? bom.items.filter((i) => i.kind === "part").map((i) => i.ref)
      .concat(bom.removed.filter((r) => r.kind === "part").map((r) => r.ref))
      .concat(bom.removed.flatMap((r) => r.nested).filter((x) => named.has(x.slice(0, x.indexOf(":"))))) : [];
    const seen = new Set();
    while (need.length) {
      const ref = need.pop();
      if (seen.has(ref)) continue;
      seen.add(ref);
      if (!(ref in given)) fail(`the recall evidence lacks part ${ref} of the vehicle`);
      const p = given[ref];
      if (p !== null) for (const x of p.components) if (named.has(x.slice(0, x.indexOf(":")))) need.push(x);
    }
  }

  function summarize(record, entries, recalls) {
    recalls = recalls || [];
    const odo = record.odometer;
    const usages = [], accidents = [], series = [], rollbacks = [], beyond = [], implausible = [];
    let services = 0, inspections = 0, lastService = null, lastInspection = null;
    const software = new Map();  // ECU -> what it runs, in the order ECUs first appear (as in Python)
    for (const e of entries) {
      const d = e.data, kind = e.type;
      if (kind === "ecus_fitted") {
        for (const x of d.ecus) {
          software.set(x.ecu, { ecu: x.ecu, hardware_id: x.hardware_id, path: x.path, image: "image" in x ? x.image : "",
            release_counter: "release_counter" in x ? x.release_counter : 0, seq: e.seq, time: e.time });
        }
      }
      if (kind === "software_installed") {
        for (const x of d.installed) {
          const before = software.get(x.ecu) || { ecu: x.ecu, hardware_id: "" };
          software.set(x.ecu, Object.assign({}, before, { path: x.path, image: x.image,
            release_counter: x.release_counter, seq: e.seq, time: e.time }));
        }
      }
      const usage = (kind === "title_transfer" || kind === "registration") ? d.usage : (kind === "birth" ? "private" : null);
      if (usage && !usages.includes(usage)) usages.push(usage);
      if (kind === "accident") {
        accidents.push({ seq: e.seq, date: d.date, severity: d.severity, impact_areas: d.impact_areas,
          airbags_deployed: d.airbags_deployed || false, structural_damage: d.structural_damage || false,
          total_loss: d.total_loss || false });
      }
      if (READING_TYPES.includes(kind)) {
        const km = kind !== "cluster_replaced" && "km" in d ? d.km : null;
        const flag = d.flag || "";
        if (km !== null) series.push({ seq: e.seq, time: e.time, km, flag });
        if (flag === "suspected_rollback") rollbacks.push({ seq: e.seq, time: e.time, km, by: e.by, org: e.org });
        else if (flag === "exceeds_mechanical_limits") beyond.push({ seq: e.seq, time: e.time, km, by: e.by, org: e.org });
        else if (flag === "implausible_jump") implausible.push({ seq: e.seq, time: e.time, km, by: e.by, org: e.org });
      }
      if (kind === "service") { services++; lastService = { seq: e.seq, time: e.time, km: "km" in d ? d.km : 0 }; }
      if (kind === "inspection") { inspections++; lastInspection = { seq: e.seq, time: e.time, result: d.result }; }
    }
    const brands = record.brands.slice();
    const warnings = [];
    if (odo.status !== "actual" || rollbacks.length) warnings.push("odometer_" + (rollbacks.length ? "rollback" : odo.status));
    if (implausible.length) warnings.push("odometer_implausible_jump");
    for (const b of WARNING_BRANDS) if (brands.includes(b)) warnings.push(b);
    if (record.status === "stolen" && !warnings.includes("stolen")) warnings.push("stolen");
    if (record.status === "scrapped") warnings.push("scrapped");
    if (record.liens && record.liens.length) warnings.push("lien");
    if (recalls.some((r) => !r.remedied)) warnings.push("open_recall");
    if (recalls.some((r) => !r.remedied && r.do_not_drive)) warnings.push("do_not_drive");
    const odometer = { status: odo.status, last_km: odo.km, max_km: odo.max_km, readings: series.length, series,
      suspected_rollbacks: rollbacks, beyond_limits: beyond };
    if (implausible.length) odometer.implausible_jumps = implausible;  // only where there are any (as in Python)
    const out = {
      vin: record.vin, vehicle: Object.assign({}, record.birth), manufacturer: record.manufacturer,
      country: record.country, status: record.status, certificate: record.certificate || "",
      title_brands: brands, holder_kind: record.holder.startsWith("org:") ? "organisation" : "person",
      owners: record.owners, usage_types: usages, liens: (record.liens || []).length, accidents, odometer,
      services: { count: services, last: lastService }, inspections: { count: inspections, last: lastInspection },
      entries: entries.length, open_recalls: recalls, warnings,
    };
    if (software.size) out.software = Array.from(software.values());  // only where ECUs are on record (as in Python)
    return out;
  }

  function diffPath(a, b, path) {
    if (a && b && typeof a === "object" && typeof b === "object" && Array.isArray(a) === Array.isArray(b)) {
      if (Array.isArray(a)) {
        for (let i = 0; i < Math.min(a.length, b.length); i++) {
          if (canonical(a[i]) !== canonical(b[i])) return diffPath(a[i], b[i], `${path}[${i}]`);
        }
        return `${path} (length ${a.length} vs ${b.length})`;
      }
      for (const k of Array.from(new Set([...Object.keys(a), ...Object.keys(b)])).sort()) {
        if (canonical(k in a ? a[k] : "<missing>") !== canonical(k in b ? b[k] : "<missing>")) {
          return diffPath(k in a ? a[k] : "<missing>", k in b ? b[k] : "<missing>", `${path}.${k}`);
        }
      }
      return path;
    }
    return `${path} (${JSON.stringify(a)} vs ${JSON.stringify(b)})`;
  }

  // ---------------------------------------------------------------- insurance claims (same rules as Python)

  function claimView(c) {
    return { claim: c.id, policy: c.policy, insurer: c.insurer, source: c.source, incident: c.incident,
      status: c.status, flags: c.flags, reason: c.reason, approved: c.approved, payout: c.payout, currency: c.currency };
  }
  async function verifyClaimEvidence(header, vin, since, ev) {
    exactKeys(ev, ["list", "claims"], [], "claim evidence");
    const ids = (await provenValue(header, ev.list, KEYS.vehicleClaims + vin + "/" + number(since), "claim list")) || [];
    if (!Array.isArray(ev.claims) || ev.claims.length !== ids.length) fail("the claim evidence does not cover every claim on the vehicle");
    const out = [];
    for (let i = 0; i < ids.length; i++) {
      const c = await provenValue(header, ev.claims[i], KEYS.claim + number(ids[i]), `claim ${ids[i]}`);
      if (c === null || c.vin !== vin) fail(`the report is malformed: claim ${ids[i]} is not proven for ${vin}`);
      out.push(claimView(c));
    }
    return out;
  }

  // ---------------------------------------------------------------- reports

  async function verifyReport(report, anchor, opts) {
    opts = opts || {};
    try {
      if (!report || report.format !== FORMAT) fail("not a " + FORMAT + " report");
      const trust = report.trust;
      if (trust.chain !== anchor.chain || trust.genesis_hash !== anchor.genesisHash) {
        fail("the report is for another chain or genesis than the trust anchor");
      }
      const ev = report.evidence;
      exactKeys(ev, ["entries", "vehicle", "checkpoint", "recalls"], ["claims"], "evidence");
      exactKeys(ev.checkpoint, ["header_raw", "attestations"], [], "checkpoint");
      exactKeys(ev.vehicle, ["key", "raw", "proof"], [], "vehicle evidence");
      const header = await verifyCheckpoint(ev.checkpoint.header_raw, ev.checkpoint.attestations, anchor);
      await verifyState(header, ev.vehicle.key, ev.vehicle.raw, ev.vehicle.proof);
      const record = JSON.parse(ev.vehicle.raw);
      if (ev.vehicle.key !== KEYS.vehicle + report.vin || record.vin !== report.vin) fail("the proven vehicle record is not the report's VIN");
      let head = new Uint8Array(32);
      for (const raw of ev.entries) head = await tagged(TAG.history, concat(head, utf8(raw)));
      if (ev.entries.length !== record.history.count || hex(head) !== record.history.head) {
        fail(`the history is incomplete or altered: the entries hash to ${hex(head).slice(0, 16)}… over ${ev.entries.length} entries, ` +
             `the proven record commits to ${record.history.head.slice(0, 16)}… over ${record.history.count}`);
      }
      const entries = ev.entries.map((r) => JSON.parse(r));
      entries.forEach((e, i) => { if (e.seq !== i + 1) fail(`entry ${i + 1} carries sequence number ${e.seq}`); });
      const asOf = { height: header.height, time: header.time };
      if (canonical(report.as_of === undefined ? null : report.as_of) !== canonical(asOf)) {
        fail(`the report claims to be as of ${JSON.stringify(report.as_of)}, but its checkpoint is block ${header.height} at time ${header.time}`);
      }
      if (canonical(report.timeline) !== canonical(entries)) {
        const t = report.timeline || [];
        const bad = t.findIndex((x, i) => i >= entries.length || canonical(x) !== canonical(entries[i]));
        fail(`the timeline differs from the proven entries (at entry ${bad >= 0 ? bad + 1 : "count"})`);
      }
      await verifyRecallEvidence(header, report.vin, ev.recalls);
      if (ev.claims !== undefined) {
        const claims = await verifyClaimEvidence(header, report.vin, record.holder_since, ev.claims);
        const shown = report.insurance_claims === undefined ? null : report.insurance_claims;
        if (canonical(shown) !== canonical(claims)) {
          fail("the insurance claims are not what the proven records say: " + diffPath(shown, claims, "insurance_claims"));
        }
      } else if (report.insurance_claims !== undefined) {
        fail("the report shows insurance claims without the evidence that proves them");
      }
      const expected = summarize(record, entries, openRecalls(record, ev.recalls));
      if (canonical(report.summary) !== canonical(expected)) {
        fail("the summary is not what the entries say: " + diffPath(report.summary, expected, "summary"));
      }
      if (opts.minHeight != null && header.height < opts.minHeight) {
        fail(`the report is stale: its checkpoint is block ${header.height}, a newer checkpoint (block ${opts.minHeight}) is known`);
      }
      if (opts.maxAgeMs != null && opts.nowMs != null && opts.nowMs - header.time > opts.maxAgeMs) {
        fail(`the report is stale: its checkpoint is ${Math.floor((opts.nowMs - header.time) / 86400000)} days old`);
      }
      return { vin: report.vin, entries: entries.length, height: header.height, time: header.time,
        attestations: ev.checkpoint.attestations.length, quorum: anchor.quorum, chain: anchor.chain,
        warnings: expected.warnings };
    } catch (e) {
      if (e instanceof VerificationError) throw e;
      throw new VerificationError("the report is malformed: " + (e && e.message ? e.message : String(e)));
    }
  }

  // ---------------------------------------------------------------- consensus changes (blokauto.verify._anchor)

  // An anchor judges checkpoints above its height; each proven change of node keys or quorum gives the next.
  async function advanceAnchor(anchor, checkpoint, consensusRaw, proof) {
    const header = checkpoint.header;
    if (header.height <= (anchor.height || 0)) fail(`the consensus change at block ${header.height} is not after the anchor's height ${anchor.height || 0}`);
    const known = checkpoint.attestations.filter((a) => a && a.node in anchor.nodes); // others' keys are set aside
    await verifyCheckpoint(canonical(header), known, anchor);
    await verifyState(header, KEYS.consensus, consensusRaw, proof);
    let record;
    try { record = JSON.parse(consensusRaw); } catch (e) { fail("the proven consensus record cannot be read"); }
    if (!record || !Array.isArray(record.nodes)) fail("the proven consensus record cannot be read");
    const nodes = {};
    for (const n of record.nodes) nodes[n.did] = n.org;
    if (!Number.isSafeInteger(record.version) || record.version <= (anchor.version || 0)) fail("the consensus record is not newer than the anchor");
    if (!Number.isSafeInteger(record.quorum) || record.quorum < 1 || record.quorum > Object.keys(nodes).length) {
      fail(`the consensus record's quorum ${record.quorum} is not between 1 and its ${Object.keys(nodes).length} node keys`);
    }
    return { chain: anchor.chain, genesisHash: anchor.genesisHash, nodes, quorum: record.quorum, height: header.height,
      version: record.version };
  }

  /** The anchors in force over the chain's life: ``anchor`` (from genesis) then one per proven change
   * (a GET /v1/consensus/changes answer's ``changes``), each proven with the keys before it. */
  async function followConsensus(anchor, changes) {
    const out = [Object.assign({ height: 0, version: 0 }, anchor)];
    const sorted = (changes || []).slice().sort((a, b) => a.height - b.height);
    for (const change of sorted) {
      const last = out[out.length - 1];
      if (change.height <= last.height) continue;
      if (!change.checkpoint || !change.checkpoint.header || change.checkpoint.header.height !== change.height) {
        fail(`the consensus change listed at block ${change.height} does not carry that block's checkpoint`);
      }
      out.push(await advanceAnchor(last, change.checkpoint, change.raw, change.proof));
    }
    return out;
  }

  /** Of the anchors (genesis first), the one that judges a checkpoint at ``height``. */
  function anchorFor(anchors, height) {
    let chosen = anchors[0];
    for (const a of anchors.slice(1)) if (a.height < height) chosen = a;
    return chosen;
  }

  /** A checkpoint as the API serves it ({header, attestations}), judged by the anchor in force at its height. */
  async function verifyCheckpointObject(checkpoint, anchors) {
    if (!checkpoint || typeof checkpoint !== "object") fail("the answer carries no checkpoint");
    exactKeys(checkpoint, ["header", "attestations"], [], "checkpoint");
    exactKeys(checkpoint.header, HEADER_FIELDS, [], "checkpoint header");
    return verifyCheckpoint(canonical(checkpoint.header), checkpoint.attestations, anchorFor(anchors, checkpoint.header.height));
  }

  /** A header's hash (hex), as attestations sign it. */
  async function headerHash(header) { return hex(await tagged(TAG.header, utf8(canonical(header)))); }

  // ---------------------------------------------------------------- Merkle inclusion (RFC 9162 2.1.3.2)

  async function rootFromInclusion(index, size, leafData, proofHex) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) fail(`leaf ${index} is outside a tree of ${size}`);
    let fn = index, sn = size - 1;
    let r = await sha256(concat(new Uint8Array([0]), leafData));
    for (const p of proofHex) {
      const h = unhex(p);
      if (h.length !== 32) fail("a proof hash is not 32 bytes");
      if (sn === 0) fail("the proof is longer than the tree is deep");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(new Uint8Array([1]), h, r));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(concat(new Uint8Array([1]), r, h));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail("the proof is shorter than the tree is deep");
    return hex(r);
  }

  async function verifyInclusion(rootHex, size, leafData, index, proofHex, what) {
    if (!Array.isArray(proofHex)) fail(`the ${what} proof is not a list`);
    if (await rootFromInclusion(index, size, leafData, proofHex) !== rootHex) fail(`the ${what} is not in the block: its proof leads to another root than the header's`);
  }

  // A decoded convenience field must say exactly what the proven bytes say.
  function agrees(evidence, field, proven) {
    if (field in evidence && canonical(evidence[field]) !== canonical(proven)) fail(`the answer's '${field}' is not what its proven bytes say`);
  }

  /** A GET /v1/txs/{id} answer: checkpoint, transaction and receipt inclusion, id and receipt match.
   * Returns {header, tx, receipt}. */
  async function verifyTxEvidence(evidence, anchors) {
    try {
      const header = await verifyCheckpointObject(evidence.checkpoint, anchors);
      if (typeof evidence.tx_raw !== "string" || typeof evidence.receipt_raw !== "string") fail("the answer lacks the transaction's bytes");
      const index = evidence.index;
      await verifyInclusion(header.tx_root, header.tx_count, utf8(evidence.tx_raw), index, evidence.proof && evidence.proof.tx, "transaction");
      await verifyInclusion(header.receipt_root, header.tx_count, utf8(evidence.receipt_raw), index, evidence.proof && evidence.proof.receipt, "receipt");
      const tx = JSON.parse(evidence.tx_raw), receipt = JSON.parse(evidence.receipt_raw);
      const id = hex(await tagged(TAG.txId, utf8(canonical(tx.body))));
      if (id !== evidence.id) fail("the transaction does not have the claimed id");
      if (receipt.tx !== id) fail("the receipt belongs to another transaction");
      agrees(evidence, "tx", tx); agrees(evidence, "receipt", receipt); agrees(evidence, "height", header.height);
      return { header, tx, receipt };
    } catch (e) {
      if (e instanceof VerificationError) throw e;
      throw new VerificationError("the answer is malformed: " + (e && e.message ? e.message : String(e)));
    }
  }

  /** A GET /v1/state/{key} answer: the value (or its absence) proven against a verified checkpoint.
   * Returns {header, value}. */
  async function verifyStateEvidence(evidence, anchors) {
    try {
      const header = await verifyCheckpointObject(evidence.checkpoint, anchors);
      const raw = evidence.raw === undefined ? null : evidence.raw;
      if (raw !== null && typeof raw !== "string") fail("the value's bytes are not a string");
      await verifyState(header, evidence.key, raw, evidence.proof);
      const value = raw === null ? null : JSON.parse(raw);
      agrees(evidence, "value", value); agrees(evidence, "height", header.height);
      return { header, value };
    } catch (e) {
      if (e instanceof VerificationError) throw e;
      throw new VerificationError("the answer is malformed: " + (e && e.message ? e.message : String(e)));
    }
  }

  const api = { VerificationError, anchorFromGenesis, verifyReport, verifyCheckpoint, stateRoot, summarize, openRecalls,
    canonical, ed25519Verify, keyOfDid, sha256, hex, unhex, followConsensus, anchorFor, verifyCheckpointObject,
    rootFromInclusion, verifyTxEvidence, verifyStateEvidence, headerHash };
  root.BlokautoVerifier = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);
