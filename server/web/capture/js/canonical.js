// RFC 8785 (JCS) canonical JSON for CaseTrail's float-free JSON — the same bytes as
// core/verify.py canonical_json: object keys sorted by UTF-16 code units, no
// whitespace, strings escaped as JSON.stringify does, integers within ±(2^53-1).
// Floats are refused: decimals (coordinates, accuracy) travel as strings.

export class CanonicalError extends Error {}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function encode(value, where, out) {
  if (value === null) {
    out.push("null");
  } else if (value === true || value === false) {
    out.push(String(value));
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new CanonicalError(`${where}: 签名 JSON 只允许 ±(2^53-1) 内的整数 / only safe integers (no floats): ${value}`);
    }
    out.push(String(value));
  } else if (typeof value === "string") {
    if (LONE_SURROGATE.test(value)) {
      throw new CanonicalError(`${where}: 字符串含孤立代理码元 / string contains a lone surrogate`);
    }
    out.push(JSON.stringify(value));
  } else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, i) => {
      if (i) out.push(",");
      encode(item, `${where}[${i}]`, out);
    });
    out.push("]");
  } else if (typeof value === "object") {
    // Array.prototype.sort compares strings by UTF-16 code units, as RFC 8785 asks.
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    out.push("{");
    keys.forEach((k, i) => {
      if (i) out.push(",");
      out.push(JSON.stringify(k), ":");
      encode(value[k], `${where}.${k}`, out);
    });
    out.push("}");
  } else {
    throw new CanonicalError(`${where}: ${typeof value} 不是 JSON 值 / is not a JSON value`);
  }
}

/** The canonical JSON text of `value`. */
export function canonicalText(value) {
  const out = [];
  encode(value, "$", out);
  return out.join("");
}

/** The canonical UTF-8 bytes of `value` (what is signed and hashed). */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalText(value));
}

export function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** `sha256:<hex>` of bytes. */
export async function sha256Digest(bytes) {
  return "sha256:" + toHex(await crypto.subtle.digest("SHA-256", bytes));
}
