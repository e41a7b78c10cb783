// Sync (同步): register each queued manifest, upload each file with tus-js-client,
// verify each receipt in the page — the field client's steps, in the browser.
//
// * runs when the network comes back, when the app opens, on a timer with backoff, and
//   when the inspector taps 立即同步; one pass at a time;
// * every PATCH carries `Upload-Checksum: sha256 <base64>` of its chunk (a damaged
//   chunk is refused by the server and sent again, never stored);
// * an upload resumes from the offset the server reports (HEAD), so a dropped link
//   costs at most one chunk; the upload URL and offset live in IndexedDB;
// * 423 Locked waits as long as the server's Retry-After says; 5xx and network errors
//   back off; a refusal (4xx) marks the item refused with the server's message.

import { API, Offline, Refused, advice, request, serverMessage } from "./api.js";
import { toBase64 } from "./canonical.js";
import { pinLogKey } from "./enrol.js";
import { receiptProblems } from "./receipt.js";
import * as store from "./store.js";

export const CHUNK_SIZE = 4 * 1024 * 1024;
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
// 409: offsets disagree (tus re-reads the server's); 460: a chunk damaged on the way
const RETRIED = [408, 409, 423, 425, 429, 460];
const BACKOFF_CAP = 300;

const listeners = new Set();
const live = new Map(); // "<manifest_id>/<index>" → bytes the server holds (while uploading)
let running = null;
let again = false;
let failures = 0;
let timer = null;
let lastProblem = null;

/** Why the last pass stopped early (no network, server busy), or null. */
export function syncProblem() {
  return lastProblem;
}

/** True while a pass runs. */
export function syncing() {
  return running !== null;
}

/** `fn()` is called whenever the queue changes. */
export function onChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn();
}

/** Bytes of a file the server holds right now (live during an upload). */
export function liveOffset(manifestId, index) {
  return live.get(`${manifestId}/${index}`);
}

/** Start a pass (or run one more after the current one); resolves when it ends. */
export function syncNow() {
  if (running) {
    again = true;
    return running;
  }
  clearTimeout(timer);
  running = (async () => {
    do {
      again = false;
      await pass();
    } while (again);
  })().finally(() => {
    running = null;
    changed();
  });
  return running;
}

function later(seconds) {
  clearTimeout(timer);
  timer = setTimeout(syncNow, seconds * 1000);
}

async function pass() {
  let device = await store.loadDevice();
  if (!device) return;
  try {
    device = await pinLogKey(device);
    for (const capture of await store.loadCaptures()) {
      if (capture.state === "captured") await register(capture, device);
    }
    for (const capture of await store.loadCaptures()) {
      if (capture.state !== "registered") continue;
      for (const file of capture.files) {
        if (file.state !== "done" && file.state !== "refused") await send(capture, file, device);
      }
    }
    failures = 0;
    lastProblem = null;
  } catch (e) {
    if (!(e instanceof Offline)) throw e;
    failures += 1;
    const wait = e.retryAfter ?? Math.min(BACKOFF_CAP, 2 ** failures) * (0.5 + Math.random() / 2);
    lastProblem = e.message;
    if (navigator.onLine) later(wait); // offline: the "online" event starts the next pass
    return;
  }
}

async function register(capture, device) {
  let body;
  try {
    ({ body } = await request("POST", `${API}/manifests`, { token: device.token, json: capture.signed }));
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    await store.updateCapture(capture.manifest_id, (c) => {
      c.state = "refused";
      c.message = e.message;
      c.advice = /签名|signature/i.test(e.message)
        ? "清单在本机签名后被改动，或不是本设备密钥所签：不要重新提交，请保留手机并报告管理员 (altered after signing: do not resubmit; keep the phone and tell your admin)"
        : advice(e.status);
      for (const f of c.files) f.state = "refused";
    });
    changed();
    return;
  }
  const byIndex = new Map(body.files.map((f) => [f.file_index, f]));
  await store.updateCapture(capture.manifest_id, (c) => {
    c.state = "registered";
    c.chain = body.verification?.chain ?? null;
    for (const f of c.files) {
      const evidence = byIndex.get(f.index);
      f.evidence_id = evidence?.evidence_id ?? null;
      if (evidence?.status === "stored") f.state = "uploaded";
      if (!f.evidence_id) {
        f.state = "refused";
        f.message = "服务器登记清单时没有列出该文件 / the server did not list this file";
        f.advice = advice(0);
      }
    }
  });
  changed();
}

async function send(capture, file, device) {
  const key = `${capture.manifest_id}/${file.index}`;
  try {
    if (file.state !== "uploaded") {
      const blob = await store.loadBlob(capture.manifest_id, file.index);
      if (!blob || blob.size !== file.size) {
        throw new Refused("本机保存的文件缺失或大小不符 / the local copy is missing or changed", 0);
      }
      await upload(capture, file, blob, device);
      await store.updateCapture(capture.manifest_id, (c) => {
        c.files[file.index].state = "uploaded";
      });
    }
    const { body: receipt } = await request("GET", `${API}/evidence/${file.evidence_id}/receipt`, { token: device.token });
    const problems = await receiptProblems(receipt, device.logKey, {
      evidence_id: file.evidence_id,
      manifest_id: capture.manifest_id,
      file_index: file.index,
      sha256: file.sha256,
      size: file.size,
    }, device.logOrigin);
    await store.updateCapture(capture.manifest_id, (c) => {
      const f = c.files[file.index];
      if (problems.length) {
        f.state = "refused";
        f.message = `回执验证失败，不能视为已安全入库：${problems.join("；")}`;
        f.advice = "保留手机上的原文件，并告知管理员 (keep the original on this phone and tell your admin)";
      } else {
        f.state = "done";
        f.receipt = receipt;
        f.receipt_verified = true;
        f.message = null;
      }
    });
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    await store.updateCapture(capture.manifest_id, (c) => {
      const f = c.files[file.index];
      f.state = "refused";
      f.message = `文件被服务器拒绝：${e.message}`;
      f.advice = advice(e.status);
    });
  } finally {
    live.delete(key);
    changed();
  }
}

// tus-js-client's XHR stack, with the SHA-256 of each chunk in Upload-Checksum.
class ChecksumHttpStack {
  constructor() {
    this.inner = new window.tus.DefaultHttpStack();
  }

  createRequest(method, url) {
    const req = this.inner.createRequest(method, url);
    const send = req.send.bind(req);
    req.send = async (body = null) => {
      if (body instanceof Blob && body.size > 0) {
        const digest = await crypto.subtle.digest("SHA-256", await body.arrayBuffer());
        req.setHeader("Upload-Checksum", `sha256 ${toBase64(digest)}`);
      }
      return send(body);
    };
    return req;
  }

  getName() {
    return "CaseTrailChecksumHttpStack";
  }
}

function upload(capture, file, blob, device) {
  const key = `${capture.manifest_id}/${file.index}`;
  const delays = [...RETRY_DELAYS];
  return new Promise((resolve, reject) => {
    const tusUpload = new window.tus.Upload(blob, {
      endpoint: `${API}/uploads`,
      uploadUrl: file.upload_url || null,
      chunkSize: CHUNK_SIZE,
      retryDelays: delays,
      metadata: { evidence_id: file.evidence_id, filename: file.name },
      headers: { Authorization: `Bearer ${device.token}` },
      storeFingerprintForResuming: false,
      httpStack: new ChecksumHttpStack(),
      onUploadUrlAvailable: () => {
        store.updateCapture(capture.manifest_id, (c) => {
          c.files[file.index].upload_url = tusUpload.url;
          c.files[file.index].state = "uploading";
        });
      },
      onProgress: (sent) => {
        live.set(key, Math.max(live.get(key) ?? 0, sent));
        changed();
      },
      onChunkComplete: (_chunk, accepted) => {
        live.set(key, accepted);
        store.updateCapture(capture.manifest_id, (c) => {
          c.files[file.index].offset = accepted;
        });
        changed();
      },
      onShouldRetry: (err, attempt) => {
        const res = err.originalResponse;
        const status = res ? res.getStatus() : 0;
        // 423 Locked (another request holds the upload), 429, 503: wait as long as asked
        const after = res ? Number(res.getHeader("Retry-After")) : NaN;
        if (after > 0) delays[attempt] = Math.min(after, 60) * 1000;
        return (!status || status >= 500 || RETRIED.includes(status)) && navigator.onLine;
      },
      onSuccess: () => resolve(),
      onError: async (err) => {
        const res = err.originalResponse;
        const status = res ? res.getStatus() : 0;
        if ((status === 404 || status === 410) && err.originalRequest?.getMethod() !== "POST") {
          // the upload expired on the server: the next pass starts a new one
          await store.updateCapture(capture.manifest_id, (c) => {
            c.files[file.index].upload_url = null;
            c.files[file.index].offset = 0;
          });
          reject(new Offline("上传已过期，稍后重新上传 / the upload expired; starting again later"));
        } else if (status >= 400 && status < 500 && !RETRIED.includes(status)) {
          let message = res.getBody() || "";
          try {
            message = await serverMessage(new Response(message, { status }));
          } catch {
            /* keep the raw body */
          }
          reject(new Refused(`HTTP ${status} — ${message}`, status));
        } else {
          reject(new Offline(`上传中断，稍后继续 / upload interrupted: ${err.message}`));
        }
      },
    });
    tusUpload.start();
  });
}
