// An independent verifier of fusionbus envelope version 2, written from docs/envelope.md
// ("Version 2: one signature per batch") alone, to show a second implementation agrees.
//
//   node verify-v2.mjs < request.json
//
// request: {"envelopes": [string], "signing_jwks": {kid: jwk},
//           "recipient_private_pem"?: pem, "evidence"?: [string]}
// answer:  {"envelopes": [result], "evidence": [result]} with
//   result = {"ok", "reason", "detail", "message_id", "root", "leaf", "commit",
//             "payload_b64u"?, "salt"?}   (hashes in lower-case hex)
//
// Node's crypto does the primitives (SHA-256, HMAC, Ed25519, X25519, AES key wrap,
// AES-GCM); jose's generalDecrypt decrypts the JWE a second time as a standard peer. The
// RFC 9162 inclusion proof, the Concat KDF and the strict JSON parser are written here.
import {
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  verify as cryptoVerify,
} from 'node:crypto';
import * as jose from 'jose';

const ENVELOPE_TYP = 'fusionbus-envelope+jwe';
const BATCH_TYP = 'fusionbus-batch+jws';
const SALT_LABEL = Buffer.from('fusionbus-salt-v2\x00', 'ascii');
const LEAF_LABEL = Buffer.from('fusionbus-leaf-v2\x00', 'ascii');
const MAX_SIZE = 256;
const ENVELOPE_MEMBERS = ['protected', 'unprotected', 'recipients', 'iv', 'ciphertext', 'tag'];
const BATCH_MEMBERS = ['sig', 'size', 'index', 'path', 'commit'];
const PROTECTED_MEMBERS = new Set(['enc', 'typ', 'fusionbus', 'alg', 'kid', 'epk']);
const RECIPIENT_HEADER_MEMBERS = new Set(['alg', 'kid', 'epk']);
const KID = /^[A-Za-z0-9_\-:/+]{1,128}$/;

class Refused extends Error {
  constructor(reason, detail) {
    super(detail);
    this.reason = reason;
  }
}
const refuse = (reason, detail) => {
  throw new Refused(reason, detail);
};

// --- strict JSON: duplicate members refused, integers told apart from 1.0 or 1e0 ---------

class JsonNumber {
  // A number not written as a JSON integer; never equal to an integer in the checks below.
  constructor(text) {
    this.text = text;
  }
}

function parseStrict(text, what) {
  let at = 0;
  const fail = (why) => refuse('malformed', `${what}: ${why} at offset ${at}`);
  const ws = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at += 1;
  };
  const value = (depth) => {
    if (depth > 64) fail('nested too deeply');
    ws();
    const c = text[at];
    if (c === '{') {
      at += 1;
      const out = {};
      const seen = new Set();
      ws();
      if (text[at] === '}') {
        at += 1;
        return out;
      }
      for (;;) {
        ws();
        if (text[at] !== '"') fail('expected a member name');
        const key = string();
        if (seen.has(key)) fail(`duplicate member "${key}"`);
        seen.add(key);
        ws();
        if (text[at] !== ':') fail("expected ':'");
        at += 1;
        Object.defineProperty(out, key, {
          value: value(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        ws();
        if (text[at] === ',') at += 1;
        else if (text[at] === '}') {
          at += 1;
          return out;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      at += 1;
      const out = [];
      ws();
      if (text[at] === ']') {
        at += 1;
        return out;
      }
      for (;;) {
        out.push(value(depth + 1));
        ws();
        if (text[at] === ',') at += 1;
        else if (text[at] === ']') {
          at += 1;
          return out;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 400));
    if (!m) fail('unexpected character');
    at += m[0].length;
    return m[2] === undefined && m[3] === undefined ? Number(m[0]) : new JsonNumber(m[0]);
  };
  const string = () => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(at));
    if (!m) fail('bad string');
    at += m[0].length;
    return JSON.parse(m[0]);
  };
  const out = value(0);
  ws();
  if (at !== text.length) fail('trailing characters');
  return out;
}

// --- small helpers -------------------------------------------------------------------------

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
const isInt = (v) => typeof v === 'number' && Number.isInteger(v);
const sameKeys = (obj, keys) => {
  const have = Object.keys(obj).sort();
  const want = [...keys].sort();
  return have.length === want.length && have.every((k, i) => k === want[i]);
};

function b64d(value, what, length) {
  // Unpadded, canonical base64url only (the one spelling of every byte string).
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(value) || value.length % 4 === 1)
    refuse('malformed', `${what} is not unpadded base64url`);
  const raw = Buffer.from(value, 'base64url');
  if (raw.toString('base64url') !== value) refuse('malformed', `${what} is not canonical base64url`);
  if (length !== undefined && raw.length !== length)
    refuse('malformed', `${what} has ${raw.length} bytes, expected ${length}`);
  return raw;
}

const ceilLog2 = (n) => {
  let bits = 0;
  while (2 ** bits < n) bits += 1;
  return bits;
};

// --- RFC 9162 §2.1.3.2: the root an inclusion path leads to, or null -----------------------

function rootFromInclusionPath(leafIndex, treeSize, leafHash, path) {
  if (leafIndex >= treeSize) return null; // 1.
  let fn = leafIndex; // 2.
  let sn = treeSize - 1;
  let r = leafHash; // 3.
  for (const p of path) {
    // 4.
    if (sn === 0) return null; // a.
    if (fn % 2 === 1 || fn === sn) {
      // b.
      r = sha256(Buffer.of(1), p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = sha256(Buffer.of(1), r, p);
    }
    fn >>= 1; // c.
    sn >>= 1;
  }
  return sn === 0 ? r : null; // 5. (the root is compared by verifying the signature over it)
}

// --- the envelope --------------------------------------------------------------------------

function parseEnvelope(text) {
  const jwe = parseStrict(text, 'envelope');
  if (!isObject(jwe) || !sameKeys(jwe, ENVELOPE_MEMBERS))
    refuse('malformed', `envelope members must be exactly ${ENVELOPE_MEMBERS.join(', ')}`);
  for (const name of ['protected', 'iv', 'ciphertext', 'tag']) b64d(jwe[name], name);
  const iv = b64d(jwe.iv, 'iv', 12);
  const tag = b64d(jwe.tag, 'tag', 16);
  const protectedHeader = parseStrict(b64d(jwe.protected, 'protected').toString('utf8'), 'protected header');
  if (!isObject(protectedHeader)) refuse('malformed', 'protected header is not an object');
  for (const k of Object.keys(protectedHeader))
    if (!PROTECTED_MEMBERS.has(k)) refuse('malformed', `protected header parameter "${k}" is not allowed`);
  if (protectedHeader.enc !== 'A256GCM') refuse('malformed', 'enc must be A256GCM');
  if (protectedHeader.typ !== ENVELOPE_TYP) refuse('malformed', `typ must be ${ENVELOPE_TYP}`);
  const routing = protectedHeader.fusionbus;
  if (!isObject(routing)) refuse('malformed', 'protected header has no fusionbus routing header');
  if (routing.version !== 2) refuse('unsupported_version', 'routing header version is not the integer 2');
  if (typeof routing.sender_kid !== 'string' || !KID.test(routing.sender_kid))
    refuse('malformed', 'sender_kid');
  if (!Array.isArray(routing.recipients) || routing.recipients.some((k) => typeof k !== 'string'))
    refuse('malformed', 'routing header recipients');

  if (!Array.isArray(jwe.recipients) || jwe.recipients.length === 0) refuse('malformed', 'recipients');
  const recipients = jwe.recipients.map((entry, i) => {
    if (!isObject(entry) || !Object.keys(entry).every((k) => k === 'header' || k === 'encrypted_key'))
      refuse('malformed', `recipient ${i} has members other than header and encrypted_key`);
    const own = entry.header ?? {};
    if (!isObject(own)) refuse('malformed', `recipient ${i} header is not an object`);
    for (const k of Object.keys(own)) {
      if (!RECIPIENT_HEADER_MEMBERS.has(k)) refuse('malformed', `recipient ${i} parameter "${k}"`);
      if (k in protectedHeader) refuse('malformed', `recipient ${i} parameter "${k}" is duplicated`);
    }
    const h = { ...protectedHeader, ...own };
    if (h.alg !== 'ECDH-ES+A256KW') refuse('malformed', `recipient ${i} alg`);
    if (typeof h.kid !== 'string' || !KID.test(h.kid)) refuse('malformed', `recipient ${i} kid`);
    const epk = h.epk;
    if (!isObject(epk) || !sameKeys(epk, ['kty', 'crv', 'x']) || epk.kty !== 'OKP' || epk.crv !== 'X25519')
      refuse('malformed', `recipient ${i} epk must be an OKP X25519 public key`);
    const x = b64d(epk.x, `recipient ${i} epk.x`, 32);
    if (x[31] & 0x80) refuse('malformed', `recipient ${i} epk has bit 255 set`);
    b64d(entry.encrypted_key, `recipient ${i} encrypted_key`, 40);
    return { kid: h.kid, epkX: epk.x, encryptedKey: entry.encrypted_key };
  });
  const kids = recipients.map((r) => r.kid);
  if (kids.length !== routing.recipients.length || kids.some((k, i) => k !== routing.recipients[i]))
    refuse('header_mismatch', "the JWE's recipient kids differ from the routing header's recipients");

  const unprotected = jwe.unprotected;
  if (!isObject(unprotected) || !sameKeys(unprotected, ['fusionbus_batch']))
    refuse('malformed', 'unprotected header must hold exactly fusionbus_batch');
  const batch = unprotected.fusionbus_batch;
  if (!isObject(batch) || !sameKeys(batch, BATCH_MEMBERS))
    refuse('malformed', `fusionbus_batch members must be exactly ${BATCH_MEMBERS.join(', ')}`);
  if (!isInt(batch.size) || batch.size < 1 || batch.size > MAX_SIZE) refuse('malformed', 'size');
  if (!isInt(batch.index) || batch.index < 0 || batch.index >= batch.size) refuse('malformed', 'index');
  if (!Array.isArray(batch.path) || batch.path.length > ceilLog2(batch.size))
    refuse('malformed', 'path is not a list of at most ceil(log2 size) hashes');
  const path = batch.path.map((p, i) => {
    if (typeof p !== 'string' || p.length !== 43) refuse('malformed', `path[${i}] is not 43 characters`);
    return b64d(p, `path[${i}]`, 32);
  });
  if (typeof batch.commit !== 'string' || batch.commit.length !== 43) refuse('malformed', 'commit');
  const commit = b64d(batch.commit, 'commit', 32);
  if (typeof batch.sig !== 'string') refuse('malformed', 'sig');

  let d = [jwe.protected, jwe.iv, jwe.ciphertext, jwe.tag].join('.');
  for (const r of recipients) d += `.${r.kid}.${r.epkX}.${r.encryptedKey}`;
  const leaf = sha256(Buffer.of(0), LEAF_LABEL, sha256(Buffer.from(d, 'ascii')), commit);
  return { jwe, protectedHeader, routing, recipients, iv, tag, batch, path, commit, leaf };
}

function verifyBatchSignature(env, signingJwks) {
  const { routing, batch } = env;
  const jwk = Object.hasOwn(signingJwks, routing.sender_kid) ? signingJwks[routing.sender_kid] : undefined;
  if (jwk === undefined) refuse('unknown_key', `no signing key ${routing.sender_kid}`);
  const thumb = sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).toString('base64url');
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || thumb !== routing.sender_kid)
    refuse('unknown_key', 'the signing JWK is not an Ed25519 key whose thumbprint is sender_kid');
  const root = rootFromInclusionPath(batch.index, batch.size, env.leaf, env.path);
  if (root === null) refuse('bad_signature', 'the inclusion path does not fit index and size');
  const parts = batch.sig.split('.');
  if (parts.length !== 3 || parts[1] !== '') refuse('malformed', 'sig is not a detached compact JWS');
  const [headerB64, , sigB64] = parts;
  const header = parseStrict(b64d(headerB64, 'batch JWS header').toString('utf8'), 'batch JWS header');
  const signature = b64d(sigB64, 'batch JWS signature');
  if (!isObject(header) || !sameKeys(header, ['alg', 'kid', 'typ']))
    refuse('bad_signature', 'batch JWS header must be exactly alg, kid, typ');
  if (header.alg !== 'Ed25519') refuse('bad_signature', `batch JWS alg ${header.alg}`);
  if (header.typ !== BATCH_TYP) refuse('bad_signature', `batch JWS typ ${header.typ}`);
  if (header.kid !== routing.sender_kid) refuse('header_mismatch', 'batch JWS kid is not sender_kid');
  const treeHead = `{"root":"${root.toString('base64url')}","size":${batch.size}}`;
  const input = Buffer.from(`${headerB64}.${Buffer.from(treeHead, 'ascii').toString('base64url')}`, 'ascii');
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
  if (signature.length !== 64 || !cryptoVerify(null, input, key, signature))
    refuse('bad_signature', 'the batch signature does not verify over the tree head');
  return root;
}

// --- RFC 7518 §4.6: ECDH-ES+A256KW, unwrapped by hand to learn the CEK ----------------------

function concatKdf(z) {
  const field = (buf) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
  };
  const keydatalen = Buffer.alloc(4);
  keydatalen.writeUInt32BE(256);
  const otherInfo = Buffer.concat([
    field(Buffer.from('ECDH-ES+A256KW', 'ascii')), // AlgorithmID
    field(Buffer.alloc(0)), // PartyUInfo (no apu)
    field(Buffer.alloc(0)), // PartyVInfo (no apv)
    keydatalen, // SuppPubInfo
  ]);
  return sha256(Buffer.of(0, 0, 0, 1), z, otherInfo); // one round gives the 256 bits
}

function unwrapCek(env, privateKey, myKid) {
  const mine = env.recipients.find((r) => r.kid === myKid);
  if (mine === undefined) refuse('not_recipient', `${myKid} is not among the recipients`);
  const epk = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: mine.epkX }, format: 'jwk' });
  try {
    const kek = concatKdf(diffieHellman({ privateKey, publicKey: epk }));
    const unwrap = createDecipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
    return Buffer.concat([unwrap.update(Buffer.from(mine.encryptedKey, 'base64url')), unwrap.final()]);
  } catch (err) {
    throw new Refused('decrypt_failed', `key unwrap: ${err.message}`);
  }
}

function gcmDecrypt(env, cek) {
  try {
    const d = createDecipheriv('aes-256-gcm', cek, env.iv);
    d.setAAD(Buffer.from(env.jwe.protected, 'ascii'));
    d.setAuthTag(env.tag);
    return Buffer.concat([d.update(Buffer.from(env.jwe.ciphertext, 'base64url')), d.final()]);
  } catch (err) {
    throw new Refused('decrypt_failed', `AES-GCM: ${err.message}`);
  }
}

async function openAsRecipient(env, recipient) {
  const cek = unwrapCek(env, recipient.key, recipient.kid);
  const payload = gcmDecrypt(env, cek);
  // A standard JOSE peer must read the same plaintext.
  let viaJose;
  try {
    viaJose = await jose.generalDecrypt(env.jwe, recipient.joseKey, {
      keyManagementAlgorithms: ['ECDH-ES+A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
  } catch (err) {
    throw new Refused('decrypt_failed', `jose generalDecrypt: ${err.code ?? err.message}`);
  }
  if (!Buffer.from(viaJose.plaintext).equals(payload))
    refuse('decrypt_failed', 'jose and the hand-unwrapped CEK decrypt to different plaintexts');
  const salt = createHmac('sha256', cek).update(SALT_LABEL).update(env.iv).digest();
  if (!sha256(salt, payload).equals(env.commit))
    refuse('bad_signature', 'commit is not H(salt || payload) under my CEK');
  return { payload, salt };
}

// --- driver ----------------------------------------------------------------------------------

function report(env, extra) {
  return {
    ok: true,
    reason: 'ok',
    detail: '',
    message_id: env.routing.message_id,
    leaf: env.leaf.toString('hex'),
    commit: env.commit.toString('hex'),
    ...extra,
  };
}

async function checkEnvelope(text, signingJwks, recipient) {
  const env = parseEnvelope(text);
  let opened = {};
  if (recipient !== null) {
    const { payload, salt } = await openAsRecipient(env, recipient);
    opened = { payload_b64u: payload.toString('base64url'), salt: salt.toString('hex') };
  }
  const root = verifyBatchSignature(env, signingJwks);
  return report(env, { root: root.toString('hex'), ...opened });
}

function checkEvidence(text, signingJwks) {
  const parts = text.split('.');
  if (parts.length !== 3) refuse('malformed', 'evidence is not B64(envelope).B64(payload).B64(salt)');
  const envelopeText = b64d(parts[0], 'evidence envelope').toString('utf8');
  const payload = b64d(parts[1], 'evidence payload');
  const salt = b64d(parts[2], 'evidence salt', 32);
  const env = parseEnvelope(envelopeText);
  if (!sha256(salt, payload).equals(env.commit))
    refuse('bad_signature', "H(salt || payload) is not the envelope's commit");
  const root = verifyBatchSignature(env, signingJwks);
  return report(env, {
    root: root.toString('hex'),
    payload_b64u: payload.toString('base64url'),
    salt: salt.toString('hex'),
  });
}

async function guarded(check) {
  try {
    return await check();
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    return { ok: false, reason: err.reason, detail: err.message, message_id: null, root: null, leaf: null };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const signingJwks = request.signing_jwks ?? {};
  let recipient = null;
  if (request.recipient_private_pem) {
    const key = createPrivateKey(request.recipient_private_pem);
    const { crv, kty, x } = createPublicKey(key).export({ format: 'jwk' });
    const kid = sha256(JSON.stringify({ crv, kty, x })).toString('base64url');
    recipient = { key, kid, joseKey: await jose.importPKCS8(request.recipient_private_pem, 'ECDH-ES+A256KW') };
  }
  const envelopes = [];
  for (const text of request.envelopes ?? [])
    envelopes.push(await guarded(() => checkEnvelope(text, signingJwks, recipient)));
  const evidence = [];
  for (const text of request.evidence ?? []) evidence.push(await guarded(() => checkEvidence(text, signingJwks)));
  process.stdout.write(JSON.stringify({ envelopes, evidence }));
}

await main();
