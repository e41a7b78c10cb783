// Enrolment (设备注册) exactly like field_client/enrolment.py: make a non-extractable
// key pair, present its public key with the one-time code, keep the device token, pin
// the log's verifier key (every later receipt must be signed by it).

import { API, request } from "./api.js";
import { createDeviceKey } from "./keys.js";
import { parseLogKey } from "./receipt.js";
import * as store from "./store.js";

/** The code inside a scanned QR text: the text itself, or `enrol=<code>` of a link. */
export function codeFromScan(text) {
  const match = /[?#&]enrol(?:ment_code)?=([^&#\s]+)/.exec(text);
  return decodeURIComponent(match ? match[1] : text).trim();
}

/** Fetch and pin the log key if the device has none yet. */
export async function pinLogKey(device) {
  if (device.logKey) return device;
  const { body } = await request("GET", `${API}/log/public-key`);
  await parseLogKey(body.verifier_key);
  const pinned = { ...device, logKey: body.verifier_key, logOrigin: body.origin || null };
  await store.saveDevice(pinned);
  return pinned;
}

/** Enrol with `code`; returns the stored device. */
export async function enrol(code) {
  const key = await createDeviceKey();
  const { body } = await request("POST", `${API}/devices/enrol`, {
    json: { enrolment_code: code, alg: key.alg, public_key: key.publicKey },
  });
  const device = {
    deviceId: body.device.id,
    deviceName: body.device.name,
    token: body.token,
    alg: key.alg,
    keyId: key.keyId,
    publicKey: key.publicKey,
    privateKey: key.privateKey,
    logKey: null,
    logOrigin: null,
    seq: 0,
    prev: null,
    enrolledAt: new Date().toISOString(),
  };
  await store.saveDevice(device); // the code is spent: keep the token before anything else
  return pinLogKey(device);
}

/** Download the assigned cases (with their standards) into the cache. */
export async function refreshCases(device) {
  const { body } = await request("GET", "/capture/api/assignments", { token: device.token });
  await store.saveCases({ cases: body.cases, fetched_at: new Date().toISOString() });
  return body.cases;
}
