// Device keys in WebCrypto: non-extractable Ed25519 (fallback ECDSA P-256 = ES256).
// Public keys are exported as core/keys.py does: Ed25519 → base64 of the 32 raw
// bytes; P-256 → base64 of the SubjectPublicKeyInfo DER. key_id = sha256:<hex> of
// those bytes. Signatures: Ed25519 (64 bytes) or ES256 raw r||s (WebCrypto's form).

import { canonicalBytes, fromBase64, sha256Digest, toBase64 } from "./canonical.js";

const ALGS = {
  Ed25519: { gen: { name: "Ed25519" }, sign: { name: "Ed25519" }, format: "raw" },
  ES256: {
    gen: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" },
    format: "spki",
  },
};

/** A fresh device key pair; the private key can never leave the browser. */
export async function createDeviceKey(preferred = "Ed25519") {
  const order = preferred === "ES256" ? ["ES256"] : ["Ed25519", "ES256"];
  let lastError = null;
  for (const alg of order) {
    try {
      const pair = await crypto.subtle.generateKey(ALGS[alg].gen, false, ["sign", "verify"]);
      const raw = await crypto.subtle.exportKey(ALGS[alg].format, pair.publicKey);
      return {
        alg,
        privateKey: pair.privateKey,
        publicKey: toBase64(raw),
        keyId: await sha256Digest(raw),
      };
    } catch (e) {
      lastError = e; // this browser lacks the algorithm: try the next one
    }
  }
  throw new Error(`浏览器不支持 Ed25519 或 P-256 签名 / no Ed25519 or P-256 in this browser: ${lastError}`);
}

/** Base64 signature of bytes with a device private key. */
export async function signBytes(alg, privateKey, bytes) {
  return toBase64(await crypto.subtle.sign(ALGS[alg].sign, privateKey, bytes));
}

async function importPublic(alg, publicKey) {
  const usage = alg === "Ed25519" ? ALGS.Ed25519.gen : ALGS.ES256.gen;
  return crypto.subtle.importKey(ALGS[alg].format, fromBase64(publicKey), usage, false, ["verify"]);
}

/** True when `signature` (base64) is `alg`/`publicKey`'s signature of `bytes`. */
export async function verifyBytes(alg, publicKey, bytes, signature) {
  if (!ALGS[alg]) return false;
  try {
    const key = await importPublic(alg, publicKey);
    return await crypto.subtle.verify(ALGS[alg].sign, key, fromBase64(signature), bytes);
  } catch {
    return false;
  }
}

/** Sign a capture manifest object: the wire form {manifest, signature}. */
export async function signManifest(manifest, device) {
  const value = await signBytes(device.alg, device.privateKey, canonicalBytes(manifest));
  return { manifest, signature: { alg: device.alg, key_id: device.keyId, value } };
}

/** Verify a signed manifest (wire form) as core.manifest.verify_manifest does. */
export async function verifyManifest(signed, alg, publicKey) {
  const { manifest, signature } = signed;
  if (!manifest || !signature) return false;
  if (signature.alg !== manifest.alg || signature.key_id !== manifest.key_id || signature.alg !== alg) {
    return false;
  }
  const fmt = ALGS[alg]?.format;
  if (!fmt) return false;
  if ((await sha256Digest(fromBase64(publicKey))) !== signature.key_id) return false;
  return verifyBytes(alg, publicKey, canonicalBytes(manifest), signature.value);
}
