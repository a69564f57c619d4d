// A standard JOSE peer (panva/jose) that opens and produces fusionbus envelopes.
//
//   node peer.mjs open < request.json   -> {"payload_b64u", "routing", "outer_ok"}
//   node peer.mjs seal < request.json   -> the envelope (JWE General JSON)
//
// Only public jose APIs are used: generalDecrypt, compactVerify, flattenedVerify,
// GeneralEncrypt, CompactSign, FlattenedSign. The fusionbus-specific parts are the
// routing header (a JOSE header parameter "fusionbus") and the outer detached signature
// in the shared unprotected header "fusionbus_sig"; see docs/envelope.md.
import { createHash } from 'node:crypto';
import * as jose from 'jose';

const TYP = 'fusionbus-envelope+jwe';
const INNER_TYP = 'fusionbus-report+jws';
const OUTER_TYP = 'fusionbus-envelope-sig+jws';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function outerDigest(jwe) {
  // SHA-256 over protected.iv.ciphertext.tag, then .kid.epk_x.encrypted_key per recipient.
  const shared = JSON.parse(new TextDecoder().decode(jose.base64url.decode(jwe.protected)));
  let input = [jwe.protected, jwe.iv, jwe.ciphertext, jwe.tag].join('.');
  for (const r of jwe.recipients) {
    const h = { ...shared, ...(r.header ?? {}) };
    input += `.${h.kid}.${h.epk.x}.${r.encrypted_key}`;
  }
  return createHash('sha256').update(input, 'ascii').digest();
}

async function open(req) {
  const { envelope, recipient_pkcs8, sender_jwk } = req;
  const mine = await jose.importPKCS8(recipient_pkcs8, 'ECDH-ES+A256KW');
  const sender = await jose.importJWK(sender_jwk, 'Ed25519');
  const { plaintext, protectedHeader } = await jose.generalDecrypt(envelope, mine, {
    keyManagementAlgorithms: ['ECDH-ES+A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  if (protectedHeader.typ !== TYP) throw new Error(`unexpected typ ${protectedHeader.typ}`);
  const inner = await jose.compactVerify(new TextDecoder().decode(plaintext), sender, {
    algorithms: ['Ed25519'],
  });
  if (inner.protectedHeader.typ !== INNER_TYP) throw new Error('inner typ');
  if (JSON.stringify(inner.protectedHeader.fusionbus) !== JSON.stringify(protectedHeader.fusionbus))
    throw new Error('header_mismatch: clear routing header differs from the signed copy');
  const [sigHeader, empty, signature] = envelope.unprotected.fusionbus_sig.split('.');
  if (empty !== '') throw new Error('outer signature is not detached');
  await jose.flattenedVerify(
    { protected: sigHeader, payload: jose.base64url.encode(outerDigest(envelope)), signature },
    sender,
    { algorithms: ['Ed25519'] },
  );
  return {
    payload_b64u: jose.base64url.encode(inner.payload),
    routing: inner.protectedHeader.fusionbus,
    outer_ok: true,
  };
}

async function seal(req) {
  const { routing, payload_b64u, sender_pkcs8, sender_kid, recipients } = req;
  const signer = await jose.importPKCS8(sender_pkcs8, 'Ed25519');
  const jws = await new jose.CompactSign(jose.base64url.decode(payload_b64u))
    .setProtectedHeader({ alg: 'Ed25519', kid: sender_kid, typ: INNER_TYP, fusionbus: routing })
    .sign(signer);
  const enc = new jose.GeneralEncrypt(new TextEncoder().encode(jws)).setProtectedHeader({
    enc: 'A256GCM',
    typ: TYP,
    cty: 'JOSE',
    fusionbus: routing,
  });
  for (const r of recipients) {
    const key = await jose.importJWK(r.jwk, 'ECDH-ES+A256KW');
    enc.addRecipient(key).setUnprotectedHeader({ alg: 'ECDH-ES+A256KW', kid: r.kid });
  }
  const jwe = await enc.encrypt();
  const outer = await new jose.FlattenedSign(outerDigest(jwe))
    .setProtectedHeader({ alg: 'Ed25519', kid: sender_kid, typ: OUTER_TYP })
    .sign(signer);
  jwe.unprotected = { fusionbus_sig: `${outer.protected}..${outer.signature}` };
  return jwe;
}

const commands = { open, seal };
const command = commands[process.argv[2]];
if (!command) {
  console.error('usage: node peer.mjs open|seal < request.json');
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(await command(await readStdin())));
} catch (err) {
  console.error(`${err.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
