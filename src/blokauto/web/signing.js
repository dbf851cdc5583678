/* blokauto request and transaction signing in the browser, with WebCrypto Ed25519.
 *
 * A key file (DATA/keys/NAME.json: did and seed) is read into a non-extractable CryptoKey: the
 * seed never leaves the page and is never sent. Requests are signed as RFC 9421 HTTP Message
 * Signatures in the profile blokauto.http_signatures describes (Ed25519 over method, authority,
 * path and query, and the Content-Digest of a body, with created, keyid = the did:key, a nonce and
 * the tag); transactions as blokauto.core.tx signs them (the id is SHA-256 of the id tag and the
 * canonical body; each signer signs the signature tag and the id). Share links as
 * blokauto.share_tokens makes them. Exposes window.BlokautoSigning.
 */
(function (root) {
  "use strict";
  const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  const te = new TextEncoder();
  const TAG = { txId: "blokauto/tx/v1\0", txSig: "blokauto/tx-sig/v1\0", share: "blokauto/share/1\0" };

  function base58(s) {
    let n = 0n;
    for (const c of s) { const d = B58.indexOf(c); if (d < 0) throw new Error("not base58btc"); n = n * 58n + BigInt(d); }
    const out = [];
    while (n > 0n) { out.unshift(Number(n % 256n)); n /= 256n; }
    for (const c of s) { if (c !== "1") break; out.unshift(0); }
    return new Uint8Array(out);
  }
  const unhex = (s) => new Uint8Array(s.match(/../g).map((b) => parseInt(b, 16)));
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const b64 = (b) => { let s = ""; for (const x of b) s += String.fromCharCode(x); return btoa(s); };
  const b64url = (b) => b64(b).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const concat = (a, b) => { const out = new Uint8Array(a.length + b.length); out.set(a); out.set(b, a.length); return out; };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const nonce = () => hex(crypto.getRandomValues(new Uint8Array(16)));

  // Canonical JSON as blokauto.core.encoding writes it: keys sorted, no whitespace, integers only.
  function canonical(v) {
    if (v === null || typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new Error("canonical JSON holds integers only, not " + v);
      return String(v);
    }
    if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }

  /** A signer from a key file's text: {did, name, key}; throws a sentence a person can act on. */
  async function loadKey(text) {
    let file;
    try { file = JSON.parse(text); } catch (e) { throw new Error("the file is not JSON (a blokauto key file is)"); }
    if (!file || typeof file.did !== "string" || !file.did.startsWith("did:key:z") || !/^[0-9a-f]{64}$/.test(file.seed || ""))
      throw new Error("this is not a blokauto key file (it needs did and seed)");
    const raw = base58(file.did.slice(9));
    if (raw.length !== 34 || raw[0] !== 0xed || raw[1] !== 0x01) throw new Error("not an Ed25519 did:key");
    const jwk = { kty: "OKP", crv: "Ed25519", d: b64url(unhex(file.seed)), x: b64url(raw.slice(2)) };
    const mismatch = "the seed does not belong to the did in this file";
    const key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"])
      .catch(() => { throw new Error(mismatch); }); // WebCrypto refuses a private key whose public half differs
    const pub = await crypto.subtle.importKey("raw", raw.slice(2), { name: "Ed25519" }, false, ["verify"]);
    const probe = te.encode("blokauto key check");
    if (!await crypto.subtle.verify({ name: "Ed25519" }, pub, await crypto.subtle.sign({ name: "Ed25519" }, key, probe), probe))
      throw new Error(mismatch);
    return { did: file.did, name: typeof file.name === "string" ? file.name : "", key };
  }

  const sign = async (signer, bytes) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer.key, bytes));

  /** fetch(path), signed by ``signer`` when there is one; ``opts.body`` (a string) is sent as JSON with its digest. */
  async function signedFetch(signer, path, opts) {
    opts = opts || {};
    const url = new URL(path, location.href);
    const method = (opts.method || (opts.body !== undefined ? "POST" : "GET")).toUpperCase();
    const headers = {};
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (!signer) return fetch(url, { method, headers, body: opts.body });
    const created = Math.floor(Date.now() / 1000);
    const components = ['"@method"', '"@authority"', '"@path"', '"@query"'];
    const lines = [`"@method": ${method}`, `"@authority": ${url.host.toLowerCase()}`, `"@path": ${url.pathname}`,
                   `"@query": ${url.search || "?"}`];
    if (opts.body !== undefined) {
      const digest = `sha-256=:${b64(await sha256(te.encode(opts.body)))}:`;
      headers["Content-Digest"] = digest;
      components.push('"content-digest"');
      lines.push(`"content-digest": ${digest}`);
    }
    const params = `(${components.join(" ")});created=${created};keyid="${signer.did}";alg="ed25519";` +
                   `nonce="${nonce()}";tag="blokauto/1"`;
    lines.push(`"@signature-params": ${params}`);
    const sig = await sign(signer, te.encode(lines.join("\n")));
    headers["Signature-Input"] = `blokauto=${params}`;
    headers["Signature"] = `blokauto=:${b64(sig)}:`;
    return fetch(url, { method, headers, body: opts.body });
  }

  /** A transaction {body, sigs} sending ``msg`` (with its "type") on ``chain``, signed by ``signer``, expiring at ``expires`` (ms). */
  async function signTx(signer, chain, msg, expires) {
    const body = { chain, sender: signer.did, msg, nonce: nonce(), expires };
    const id = await sha256(concat(te.encode(TAG.txId), te.encode(canonical(body))));
    const sig = await sign(signer, concat(te.encode(TAG.txSig), id));
    return { id: hex(id), tx: { body, sigs: [{ signer: signer.did, sig: hex(sig) }] } };
  }

  /** A share link's token for ``vin`` signed by its holder (blokauto.share_tokens). */
  async function shareToken(signer, chain, vin, expires, claims) {
    const grant = { v: 1, chain, vin, holder: signer.did, expires, nonce: nonce() };
    if (claims) grant.claims = true;
    const text = canonical(grant);
    const sig = await sign(signer, await sha256(concat(te.encode(TAG.share), te.encode(text))));
    return b64url(te.encode(text)) + "." + b64url(sig);
  }

  const api = { loadKey, signedFetch, signTx, shareToken, canonical };
  root.BlokautoSigning = api;
})(typeof window !== "undefined" ? window : globalThis);
