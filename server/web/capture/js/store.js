// The durable local state in IndexedDB (survives reloads, killed tabs, phone restarts):
//   device    "self" → enrolment: device id, token, non-extractable key, log key, chain head
//   cases     "assignments" → the cached list of assigned cases with their standards
//   captures  manifest_id → the signed manifest and each file's sync state
//   blobs     "<manifest_id>/<index>" → the captured file's bytes (the local vault copy)

const DB_NAME = "casetrail-capture";
const DB_VERSION = 1;
let opened = null;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("IndexedDB 事务中止 / transaction aborted"));
  });
}

export function openDb() {
  if (!opened) {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("device");
      db.createObjectStore("cases");
      db.createObjectStore("captures", { keyPath: "manifest_id" });
      db.createObjectStore("blobs");
    };
    opened = promised(request);
  }
  return opened;
}

async function get(store, key) {
  const db = await openDb();
  return promised(db.transaction(store).objectStore(store).get(key));
}

async function put(store, value, key) {
  const db = await openDb();
  const tx = db.transaction(store, "readwrite");
  tx.objectStore(store).put(value, key);
  return done(tx);
}

export const loadDevice = () => get("device", "self");
export const saveDevice = (device) => put("device", device, "self");
export const loadCases = () => get("cases", "assignments");
export const saveCases = (cases) => put("cases", cases, "assignments");
export const loadCapture = (id) => get("captures", id);
export const loadBlob = (manifestId, index) => get("blobs", `${manifestId}/${index}`);

/** Every capture, oldest first (device_seq order). */
export async function loadCaptures() {
  const db = await openDb();
  const all = await promised(db.transaction("captures").objectStore("captures").getAll());
  return all.sort((a, b) => a.signed.manifest.device_seq - b.signed.manifest.device_seq);
}

/** Apply `change(capture)` to the stored capture in one transaction; returns it. */
export async function updateCapture(id, change) {
  const db = await openDb();
  const tx = db.transaction("captures", "readwrite");
  const store = tx.objectStore("captures");
  const capture = await promised(store.get(id));
  change(capture);
  store.put(capture);
  await done(tx);
  return capture;
}

/** Store a new capture, its files and the advanced device chain head atomically. */
export async function addCapture(capture, blobs, device) {
  const db = await openDb();
  const tx = db.transaction(["captures", "blobs", "device"], "readwrite");
  tx.objectStore("captures").add(capture);
  blobs.forEach((blob, i) => tx.objectStore("blobs").put(blob, `${capture.manifest_id}/${i}`));
  tx.objectStore("device").put(device, "self");
  return done(tx);
}

/**
 * Delete the local copies of files whose receipt was verified (the server holds them,
 * provably); the queue records and receipts stay. Returns {files, bytes} freed.
 */
export async function pruneStored() {
  const db = await openDb();
  const tx = db.transaction(["captures", "blobs"], "readwrite");
  const captures = await promised(tx.objectStore("captures").getAll());
  let files = 0;
  let bytes = 0;
  for (const capture of captures) {
    let changed = false;
    for (const f of capture.files) {
      if (f.state === "done" && f.receipt_verified && !f.pruned) {
        tx.objectStore("blobs").delete(`${capture.manifest_id}/${f.index}`);
        f.pruned = true;
        files += 1;
        bytes += f.size;
        changed = true;
      }
    }
    if (changed) tx.objectStore("captures").put(capture);
  }
  await done(tx);
  return { files, bytes };
}
