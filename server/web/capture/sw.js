// Service worker of the capture app (scope /capture/): keeps the app's files so it
// opens with no network after the first visit. The cache name carries a digest of
// every app file (filled in by the server), so a new version replaces the old copy.
// API calls (/api/…, /capture/api/…) always go to the network: the queue in IndexedDB,
// not this cache, holds the inspector's work.

const CACHE = "casetrail-capture-__APP_VERSION__";
const SHELL = [
  "/capture/",
  "/capture/app.css",
  "/capture/manifest.webmanifest",
  "/capture/icon-192.png",
  "/capture/icon-512.png",
  "/capture/js/api.js",
  "/capture/js/app.js",
  "/capture/js/canonical.js",
  "/capture/js/enrol.js",
  "/capture/js/form.js",
  "/capture/js/hashing.js",
  "/capture/js/keys.js",
  "/capture/js/manifest.js",
  "/capture/js/receipt.js",
  "/capture/js/recorder.js",
  "/capture/js/scan.js",
  "/capture/js/store.js",
  "/capture/js/sync.js",
  "/capture/vendor/tus-js-client@4.3.1/dist/tus.js",
  "/capture/vendor/hash-wasm@4.13.0/dist/sha256.umd.min.js",
  "/capture/vendor/jsqr@1.4.0/dist/jsQR.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("casetrail-capture-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/capture/") || url.pathname.startsWith("/capture/api/")) return;
  // The app shell: from the cache (works offline, instantly on a bad network); the
  // page itself ignores its query string and fragment.
  const key = event.request.mode === "navigate" ? "/capture/" : url.pathname;
  event.respondWith(caches.match(key, { cacheName: CACHE }).then((hit) => hit || fetch(event.request)));
});
