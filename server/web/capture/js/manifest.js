// Capture manifests (采集清单) as core/manifest.py defines them: every field present
// (null when absent), decimals as strings, RFC 3339 times with offset; signed over
// the RFC 8785 canonical bytes; device_seq/device_prev chain this device's manifests.

import { canonicalBytes, sha256Digest } from "./canonical.js";
import { signManifest } from "./keys.js";
import * as store from "./store.js";

export const SCHEMA_VERSION = 1;

/** Local time as RFC 3339 with the device's offset, e.g. 2025-03-01T09:30:00+08:00. */
export function rfc3339(date = new Date()) {
  const pad = (n) => String(Math.abs(Math.trunc(n))).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(offset / 60)}:${pad(offset % 60)}`
  );
}

/** A media type as core accepts it: lower case, without parameters. */
export function mediaType(type) {
  const base = String(type || "").split(";")[0].trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(base) ? base : "application/octet-stream";
}

/** File names made unique within one manifest (cameras often name every photo image.jpg). */
export function uniqueNames(names) {
  const seen = new Set();
  return names.map((name) => {
    let candidate = (name || "file").slice(0, 200);
    const dot = candidate.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [candidate.slice(0, dot), candidate.slice(dot)] : [candidate, ""];
    for (let n = 2; seen.has(candidate); n++) candidate = `${stem}(${n})${ext}`;
    seen.add(candidate);
    return candidate;
  });
}

/** The manifest object (key order is irrelevant: signing canonicalises). */
export function buildManifest(fields) {
  return {
    schema_version: SCHEMA_VERSION,
    manifest_id: fields.manifest_id,
    device_id: fields.device_id,
    key_id: fields.key_id,
    alg: fields.alg,
    case_ref: fields.case_ref,
    category: fields.category,
    stage: fields.stage,
    record_type: fields.record_type,
    officers: [...fields.officers],
    device_time: fields.device_time,
    gnss_time: fields.gnss_time ?? null,
    timezone: fields.timezone,
    location: fields.location ?? null,
    files: fields.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, media_type: f.media_type })),
    interruptions: (fields.interruptions || []).map((i) => ({
      at: i.at,
      resumed_at: i.resumed_at ?? null,
      reason: i.reason,
      resumption_note: i.resumption_note ?? null,
    })),
    av_reason: fields.av_reason ?? null,
    credentials_shown: Boolean(fields.credentials_shown),
    device_seq: fields.device_seq,
    device_prev: fields.device_prev ?? null,
    note: fields.note ?? null,
  };
}

/** `sha256:<hex>` of the manifest's canonical bytes: the next manifest's device_prev. */
export function manifestHash(manifest) {
  return sha256Digest(canonicalBytes(manifest));
}

/**
 * Sign a capture and queue it with its files, continuing the device chain. Serialised
 * with a Web Lock so two tabs can never give two captures the same device_seq.
 */
export async function queueCapture(details, files) {
  const exclusive = (work) => (navigator.locks ? navigator.locks.request("casetrail-device-chain", work) : work());
  return exclusive(async () => {
    const device = await store.loadDevice();
    const names = uniqueNames(files.map((f) => f.name));
    const manifest = buildManifest({
      ...details,
      manifest_id: `m-${crypto.randomUUID()}`,
      device_id: device.deviceId,
      key_id: device.keyId,
      alg: device.alg,
      device_seq: (device.seq || 0) + 1,
      device_prev: device.prev || null,
      files: files.map((f, i) => ({ name: names[i], size: f.blob.size, sha256: f.sha256, media_type: mediaType(f.type) })),
    });
    const signed = await signManifest(manifest, device);
    const capture = {
      manifest_id: manifest.manifest_id,
      created_at: manifest.device_time,
      state: "captured",
      message: null,
      labels: details.labels || {},
      signed,
      files: manifest.files.map((f, i) => ({
        index: i,
        ...f,
        state: "waiting",
        evidence_id: null,
        upload_url: null,
        offset: 0,
        message: null,
      })),
    };
    const next = { ...device, seq: manifest.device_seq, prev: await manifestHash(manifest) };
    await store.addCapture(capture, files.map((f) => f.blob), next);
    return capture;
  });
}
