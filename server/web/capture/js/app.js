// The capture app's shell: service worker, screens (注册 / 采集 / 队列 / 设备), the
// network indicator and the sync status screen.

import { Offline } from "./api.js";
import { codeFromScan, enrol, pinLogKey, refreshCases } from "./enrol.js";
import { loadCases, setupCaptureForm } from "./form.js";
import { Scanner } from "./scan.js";
import * as store from "./store.js";
import { liveOffset, onChange, syncNow, syncProblem, syncing } from "./sync.js";

const $ = (id) => document.getElementById(id);
const SCREENS = ["enrol", "capture", "queue", "device"];

function show(name) {
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.screen === name);
  $("tabs").hidden = name === "enrol";
  document.body.dataset.screen = name;
  if (name === "queue") renderQueue();
  if (name === "device") renderDevice();
}

function renderNet() {
  const online = navigator.onLine;
  $("net").textContent = online ? "在线" : "离线";
  $("net").className = online ? "pill online" : "pill offline";
}

const STATE_TEXT = {
  waiting: "等待",
  uploaded: "已上传，正在核验回执",
  done: "已存证 ✓（回执已验证）",
  refused: "被拒绝",
};

function fileStatus(capture, file) {
  const percent = (n) => Math.floor((100 * n) / Math.max(1, file.size));
  const live = liveOffset(capture.manifest_id, file.index);
  if (live !== undefined && file.state !== "done" && file.state !== "refused") return `上传中 ${percent(live)} %`;
  if (file.state === "uploading") return `等待（已传 ${percent(file.offset || 0)} %，将断点续传）`;
  return STATE_TEXT[file.state] || file.state;
}

async function renderQueue() {
  const captures = await store.loadCaptures();
  const open = captures.flatMap((c) => c.files).filter((f) => f.state !== "done" && f.state !== "refused").length;
  $("queue-badge").hidden = open === 0;
  $("queue-badge").textContent = String(open);
  const refused = captures.flatMap((c) => c.files).filter((f) => f.state === "refused").length;
  const problem = syncProblem();
  $("sync-state").textContent = syncing()
    ? "正在同步…"
    : !navigator.onLine
      ? "离线：有网络时自动同步"
      : problem
        ? `同步暂停：${problem}（稍后自动重试）`
        : open
          ? `${open} 个文件待传`
          : refused
            ? `${refused} 个文件被拒绝，见下方说明；其余已存证`
            : captures.length
              ? "全部已存证"
              : "队列为空";
  if ($("screen-queue").hidden) return;
  const items = [...captures].reverse().map((capture) => {
    const m = capture.signed.manifest;
    const li = document.createElement("li");
    li.className = `capture ${capture.state}`;
    li.dataset.manifestId = capture.manifest_id;
    const head = document.createElement("div");
    head.className = "head";
    head.textContent = `#${m.device_seq} ${m.case_ref} · ${capture.labels?.record || m.record_type}`;
    const when = document.createElement("div");
    when.className = "hint";
    when.textContent = `${m.device_time.replace("T", " ").slice(0, 19)} · ${m.officers.join("、")}`;
    li.append(head, when);
    if (capture.chain === "gap") {
      const gap = document.createElement("p");
      gap.className = "advice";
      gap.textContent = "服务器记录：本清单之前的设备序号有缺口（有采集未送达或被删除）";
      li.append(gap);
    }
    if (capture.state === "refused") {
      const why = document.createElement("p");
      why.className = "refusal";
      why.textContent = `清单被拒绝：${capture.message}`;
      const todo = document.createElement("p");
      todo.className = "advice";
      todo.textContent = `怎么办：${capture.advice}`;
      li.append(why, todo);
    }
    const files = document.createElement("ul");
    files.className = "files";
    for (const f of capture.files) {
      const row = document.createElement("li");
      row.className = `file ${f.state}`;
      row.dataset.state = f.state;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = f.name;
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = fileStatus(capture, f);
      row.append(name, state);
      if (f.state === "refused" && capture.state !== "refused") {
        const why = document.createElement("p");
        why.className = "refusal";
        why.textContent = f.message;
        const todo = document.createElement("p");
        todo.className = "advice";
        todo.textContent = `怎么办：${f.advice}`;
        row.append(why, todo);
      }
      files.append(row);
    }
    li.append(files);
    return li;
  });
  $("queue-list").replaceChildren(...items);
}

async function renderDevice() {
  const device = await store.loadDevice();
  const cached = await store.loadCases();
  const facts = [
    ["设备", `${device?.deviceName || ""}（${device?.deviceId || "未注册"}）`],
    ["签名算法", device?.alg || ""],
    ["密钥标识", device?.keyId || ""],
    ["已签清单", String(device?.seq || 0)],
    ["日志公钥", device?.logKey || "尚未取得"],
    ["案件列表", cached ? `${cached.cases.length} 件，更新于 ${new Date(cached.fetched_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" })}` : "尚未下载"],
  ];
  $("device-info").replaceChildren(
    ...facts.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }),
  );
}

async function refresh(device) {
  try {
    await pinLogKey(device);
    await refreshCases(device);
    await loadCases();
    return null;
  } catch (e) {
    return e instanceof Offline ? "离线，使用已缓存的案件列表" : e.message;
  }
}

function setupEnrol() {
  const scanner = new Scanner(
    $("scan-video"),
    (text) => {
      $("scan-box").hidden = true;
      $("enrol-code").value = codeFromScan(text);
      $("enrol-message").className = "message ok";
      $("enrol-message").textContent = "已识别二维码，请点「注册本设备」";
    },
    (message) => ($("enrol-message").textContent = message),
  );
  $("scan-start").addEventListener("click", async () => {
    $("scan-box").hidden = false;
    if (!(await scanner.start())) $("scan-box").hidden = true;
  });
  $("scan-stop").addEventListener("click", () => {
    scanner.stop();
    $("scan-box").hidden = true;
  });
  $("enrol-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = $("enrol-code").value.trim();
    if (!code) return;
    $("enrol-submit").disabled = true;
    $("enrol-message").className = "message ok";
    $("enrol-message").textContent = "正在注册…";
    try {
      const device = await enrol(code);
      await refresh(device);
      $("enrol-message").textContent = "";
      show("capture");
    } catch (e) {
      $("enrol-message").className = "message";
      $("enrol-message").textContent = `注册失败：${e.message}`;
    } finally {
      $("enrol-submit").disabled = false;
    }
  });
}

async function main() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/capture/sw.js", { scope: "/capture/" }).catch((e) => console.warn("service worker", e));
  }
  // Ask the browser not to evict the queue under storage pressure (granted to installed apps).
  navigator.storage?.persist?.().catch(() => {});
  renderNet();
  window.addEventListener("online", () => {
    renderNet();
    syncNow();
    renderQueue();
  });
  // phones suspend background pages: catch up when the app is looked at again
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && navigator.onLine) syncNow();
  });
  window.addEventListener("offline", () => {
    renderNet();
    renderQueue();
  });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.screen));
  $("sync-now").addEventListener("click", () => syncNow());
  $("refresh-cases").addEventListener("click", async () => {
    const device = await store.loadDevice();
    const problem = await refresh(device);
    $("device-message").className = problem ? "message" : "message ok";
    $("device-message").textContent = problem || "案件列表已更新";
    renderDevice();
  });
  $("prune").addEventListener("click", async () => {
    const freed = await store.pruneStored();
    $("device-message").className = "message ok";
    $("device-message").textContent = freed.files
      ? `已清理 ${freed.files} 个已存证文件，释放 ${(freed.bytes / 1048576).toFixed(1)} MiB`
      : "没有可清理的文件（只清理回执已验证的文件）";
    renderDevice();
  });
  let drawing = false;
  onChange(() => {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => {
      drawing = false;
      renderQueue();
    });
  });
  setupEnrol();
  setupCaptureForm(() => {
    renderQueue();
    if (navigator.onLine) syncNow();
  });
  await loadCases();
  const device = await store.loadDevice();
  if (!device) {
    const fromLink = codeFromScan(location.hash.replace(/^#/, "?"));
    if (/enrol/.test(location.hash) && fromLink) $("enrol-code").value = fromLink;
    show("enrol");
  } else {
    show("capture");
    if (navigator.onLine) {
      refresh(device).then(() => syncNow());
    }
  }
  renderQueue();
  document.body.dataset.ready = "1";
}

main();
