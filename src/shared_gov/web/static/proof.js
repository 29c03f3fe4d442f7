// shared-gov console: an audit event's inclusion proof, checked by the browser itself.
//
// The event page (templates/audit/event.html) shows the proof the server checked; this
// file checks it again with the browser's own SHA-256 and Ed25519 (WebCrypto), so an
// auditor need not trust the server's word. No inline script (the Content Security
// Policy allows only the console's own files): the data are in the section's data-*
// attributes, the sentences too (in the page's language).
//
// Hashing is RFC 6962 / RFC 9162 §2.1, as in src/shared_gov/audit/merkle.py: a leaf is
// SHA-256(0x00 || data), a node SHA-256(0x01 || left || right). When the page gives the
// event's canonical bytes (docs/audit.md; not for an event masked by rule 1), the leaf
// is hashed from them and must name the page's event. The root and tree size
// are read from the signed checkpoint body (C2SP tlog-checkpoint: origin, size, base64
// root, "time …"), so a path that leads anywhere but the signed root fails.
"use strict";

(function () {
  const fromB64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));
  const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

  // RFC 9162 §2.1.3.2, step by step (merkle.verify_inclusion in Python).
  async function verifyInclusion(leaf, index, size, path, root) {
    if (leaf.length !== 32 || root.length !== 32 || path.some((p) => p.length !== 32)) {
      return false;
    }
    if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size))) return false;
    if (index < 0 || index >= size) return false;
    // Numbers stay below 2^53 here; BigInt keeps the bit operations exact beyond 2^31.
    let fn = BigInt(index);
    let sn = BigInt(size - 1);
    let r = leaf;
    for (const p of path) {
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equal(r, root);
  }

  // The signed checkpoint body: "<origin>\n<size>\n<base64 root>\ntime <signed_at>\n".
  function parseBody(body) {
    const lines = body.split("\n");
    if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) return null;
    return { size: Number(lines[1]), root: fromB64(lines[2]) };
  }

  // true, false, or null when this browser has no Ed25519 in WebCrypto.
  async function verifySignature(body, publicKey, signature) {
    let key;
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
        "verify",
      ]);
    } catch (e) {
      return null;
    }
    try {
      return await crypto.subtle.verify(
        { name: "Ed25519" },
        key,
        signature,
        new TextEncoder().encode(body),
      );
    } catch (e) {
      return false;
    }
  }

  async function check(section) {
    const d = section.dataset;
    const result = section.querySelector(".browser-proof-result");
    const signatureResult = section.querySelector(".browser-proof-signature");
    const show = (state, text, sigText) => {
      section.dataset.state = state;
      result.textContent = text;
      result.className = "browser-proof-result " + (state === "ok" ? "ok" : state === "bad" ? "bad" : "");
      signatureResult.textContent = sigText || "";
    };
    show("checking", d.textChecking);
    if (!(window.crypto && crypto.subtle)) {
      show("unsupported", d.textUnsupported);
      return;
    }
    try {
      const head = parseBody(d.body);
      if (head === null) {
        show("bad", d.textBad);
        return;
      }
      const path = d.path.trim() === "" ? [] : d.path.trim().split(/\s+/).map(fromB64);
      const leaf = fromB64(d.leafHash);
      if (d.canonical !== undefined) {
        // The leaf is this event: its canonical bytes hash to it, and name it.
        const bytes = fromB64(d.canonical);
        const event = JSON.parse(new TextDecoder().decode(bytes));
        const hashed = await sha256(concat(Uint8Array.of(0), bytes));
        if (!equal(hashed, leaf) || event.event_id !== d.eventId) {
          show("bad", d.textBad);
          return;
        }
      }
      const included = await verifyInclusion(
        leaf,
        Number(d.seq),
        head.size,
        path,
        head.root,
      );
      const signed = await verifySignature(d.body, fromB64(d.publicKey), fromB64(d.signature));
      if (!included) {
        show("bad", d.textBad);
      } else if (signed === false) {
        show("bad", d.textSigBad);
      } else {
        show("ok", d.textOk, signed === null ? d.textSigUnsupported : d.textSigOk);
      }
    } catch (e) {
      // Malformed data (base64 that is not, …): the proof does not verify.
      show("bad", d.textBad);
    }
  }

  for (const section of document.querySelectorAll("section.browser-proof")) {
    section.hidden = false;
    const again = section.querySelector("button.browser-proof-again");
    if (again) again.addEventListener("click", () => check(section));
    check(section);
  }
})();
