// Ingest receipts (入库回执), verified in the page with only the log key pinned at
// enrolment — the same checks as field_client/receipts.py: the receipt's Ed25519
// signature, the signed checkpoint (C2SP signed note) and its origin, the custody
// event's hash and that it is about the captured SHA-256 and size, the event's
// inclusion in the checkpoint (RFC 9162), and that it is for this evidence and file.

import { canonicalBytes, fromBase64, sha256Digest, toHex } from "./canonical.js";

export const RECEIPT_TYPE = "casetrail.ingest-receipt/v1";

const enc = new TextEncoder();

async function sha256(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

async function ed25519Verify(publicKey, message, signature) {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

/** Parse a verifier key `<name>+<8 hex>+<base64(0x01 || key)>`; throws when malformed. */
export async function parseLogKey(text) {
  const parts = String(text).split("+");
  if (parts.length < 3 || !/^[0-9a-f]{8}$/.test(parts[1])) throw new Error("日志公钥格式错误 / malformed log key");
  const [name, hash] = parts;
  const raw = fromBase64(parts.slice(2).join("+"));
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("日志公钥不是 Ed25519 / log key is not Ed25519");
  const publicKey = raw.slice(1);
  const keyHash = (await sha256(enc.encode(name + "\n"), new Uint8Array([1]), publicKey)).slice(0, 4);
  if (toHex(keyHash) !== hash) throw new Error("日志公钥哈希不符 / log key hash mismatch");
  return { name, publicKey, keyHash };
}

async function openCheckpoint(text, key) {
  const cut = text.lastIndexOf("\n\n");
  if (cut < 0 || !text.endsWith("\n")) throw new Error("检查点格式错误 / malformed checkpoint");
  const body = text.slice(0, cut + 1);
  let verified = false;
  for (const line of text.slice(cut + 2, -1).split("\n")) {
    if (!line.startsWith("\u2014 ")) throw new Error("检查点签名行格式错误 / malformed signature line");
    const [name, b64] = line.slice(2).split(" ");
    const raw = fromBase64(b64);
    if (name !== key.name || toHex(raw.slice(0, 4)) !== toHex(key.keyHash)) continue;
    if (!(await ed25519Verify(key.publicKey, enc.encode(body), raw.slice(4)))) {
      throw new Error("检查点签名无效 / checkpoint signature invalid");
    }
    verified = true;
  }
  if (!verified) throw new Error("检查点没有受信密钥的签名 / checkpoint not signed by the pinned key");
  const lines = body.split("\n");
  if (lines.length < 4 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("检查点正文格式错误 / malformed checkpoint body");
  return { origin: lines[0], size: Number(lines[1]), root: fromBase64(lines[2]) };
}

// RFC 9162 §2.1.3.2 inclusion proof verification.
async function inclusionOk(leaf, index, size, proof, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(new Uint8Array([1]), p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha256(new Uint8Array([1]), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && toHex(r) === toHex(root);
}

/**
 * Every reason `receipt` does not prove `expected` ({evidence_id, manifest_id,
 * file_index, sha256, size}) arrived; an empty list means the receipt is valid.
 */
export async function receiptProblems(receipt, logKey, expected, origin = null) {
  const problems = [];
  let key;
  try {
    key = await parseLogKey(logKey);
  } catch (e) {
    return [`本机保存的日志公钥无效，请重新注册 / pinned log key invalid: ${e.message}`];
  }
  if (receipt.type !== RECEIPT_TYPE) problems.push(`回执类型 ${receipt.type} 不是 ${RECEIPT_TYPE}`);
  for (const field of ["evidence_id", "manifest_id", "file_index", "sha256", "size"]) {
    if (receipt[field] !== expected[field]) {
      problems.push(`${field}: 回执为 ${receipt[field]}，本机采集为 ${expected[field]} / receipt differs from capture`);
    }
  }
  const { signature, ...body } = receipt;
  let signed = false;
  try {
    signed = signature?.alg === "Ed25519" &&
      (await ed25519Verify(key.publicKey, canonicalBytes(body), fromBase64(signature.value)));
  } catch {
    signed = false;
  }
  if (!signed) problems.push("回执签名不是登记时记下的服务器密钥所签 / receipt not signed by the pinned server key");
  let checkpoint;
  try {
    checkpoint = await openCheckpoint(String(receipt.checkpoint || ""), key);
    if (origin && checkpoint.origin !== origin) throw new Error(`来源 ${checkpoint.origin} 不是 ${origin}`);
  } catch (e) {
    return [...problems, `检查点无效 / checkpoint invalid: ${e.message}`];
  }
  const info = receipt.custody_event;
  if (!info || typeof info.event !== "object") return [...problems, "缺少监管链事件 / custody_event missing"];
  const eventBytes = canonicalBytes(info.event);
  if ((await sha256Digest(eventBytes)) !== info.event_hash) {
    problems.push("事件哈希与事件内容不符 / event_hash does not match the event");
  }
  const obj = info.event.object;
  if (!obj || obj.sha256 !== expected.sha256 || obj.size !== expected.size) {
    problems.push("监管链事件所记对象不是本机采集的文件 / custody event is not about the captured file");
  }
  if (checkpoint.size !== receipt.tree_size) problems.push("检查点大小与 tree_size 不符 / checkpoint size differs");
  let proof;
  try {
    proof = (receipt.inclusion_proof || []).map(fromBase64);
  } catch {
    return [...problems, "包含证明不是 base64 / inclusion proof is not base64"];
  }
  const leaf = await sha256(new Uint8Array([0]), eventBytes);
  if (!Number.isInteger(info.log_index) || !(await inclusionOk(leaf, info.log_index, checkpoint.size, proof, checkpoint.root))) {
    problems.push("包含证明不成立 / inclusion proof does not place the event in the signed checkpoint");
  }
  return problems;
}
