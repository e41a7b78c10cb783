// The capture screen (采集): case, stage and record type from the pinned standard,
// officers present (≥ 2 执法证号), 亮证, location and device time, files hashed as
// they are added (streaming SHA-256), then signed and queued.

import { sha256OfBlob } from "./hashing.js";
import { queueCapture, rfc3339 } from "./manifest.js";
import { Recorder } from "./recorder.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);
const MANUAL = "__manual__";
const MIN_OFFICERS = 2;

let cases = [];
let pending = []; // {id, name, type, blob, sha256, hashed}
let interruptions = [];
let location = null;
let locating = false;
let capturedAt = null;
let extraOfficers = [];
let nextId = 1;
let onQueued = () => {};

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function formatSize(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

function standards() {
  const byCategory = new Map();
  for (const c of cases) if (c.standard && !byCategory.has(c.category)) byCategory.set(c.category, c.standard);
  return byCategory;
}

function selectedCase() {
  return cases.find((c) => c.id === $("case-select").value) || null;
}

function currentStandard() {
  const c = selectedCase();
  if (c) return c.standard;
  return standards().get($("category-select").value) || null;
}

function currentStage() {
  return currentStandard()?.stages.find((s) => s.id === $("stage-select").value) || null;
}

/** Fill the case list from the cache. */
export async function loadCases() {
  const cached = await store.loadCases();
  cases = cached?.cases || [];
  const select = $("case-select");
  const previous = select.value;
  select.replaceChildren(...cases.map((c) => option(c.id, `${c.case_no} · ${c.title}`)), option(MANUAL, "其他案件（手动输入案号）"));
  if (cases.some((c) => c.id === previous)) select.value = previous;
  else if (cases.length) select.value = cases[0].id;
  $("category-select").replaceChildren(...[...standards()].map(([cat, s]) => option(cat, s.name_zh)));
  caseChanged();
}

function caseChanged() {
  const manual = $("case-select").value === MANUAL;
  $("manual-case").hidden = !manual;
  const standard = currentStandard();
  const c = selectedCase();
  const stages = standard ? standard.stages : [];
  $("stage-select").replaceChildren(...stages.map((s) => option(s.id, s.name_zh)));
  if (c?.current_stage && stages.some((s) => s.id === c.current_stage)) $("stage-select").value = c.current_stage;
  stageChanged();
  renderOfficers();
}

function stageChanged() {
  const stage = currentStage();
  $("record-select").replaceChildren(...(stage ? stage.records : []).map((r) => option(r.id, r.name_zh)));
}

function renderOfficers() {
  const known = selectedCase()?.officers || [];
  const all = [...known.map((o) => ({ cert: o.cert_no, label: `${o.display_name}（${o.cert_no}）` })), ...extraOfficers.map((cert) => ({ cert, label: cert }))];
  $("officer-list").replaceChildren(
    ...all.map(({ cert, label }) => {
      const l = document.createElement("label");
      l.className = "check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = cert;
      box.name = "officer";
      l.append(box, " ", label);
      return l;
    }),
  );
}

function officers() {
  return [...document.querySelectorAll("#officer-list input:checked")].map((b) => b.value);
}

function renderFiles() {
  $("file-list").replaceChildren(
    ...pending.map((f) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `${f.name}（${formatSize(f.blob.size)}）`;
      const state = document.createElement("span");
      state.className = f.sha256 ? "state ok" : "state";
      state.textContent = f.sha256 ? `SHA-256 ${f.sha256.slice(7, 19)}…` : `计算哈希 ${Math.floor((100 * f.hashed) / Math.max(1, f.blob.size))} %`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "移除";
      remove.addEventListener("click", () => {
        pending = pending.filter((p) => p !== f);
        renderFiles();
      });
      li.append(name, state, remove);
      return li;
    }),
  );
}

async function addFiles(list) {
  capturedAt ??= new Date();
  if (!location && !locating) locate(); // where the capture happens, not where the last one did
  const added = [...list].map((blob) => ({ id: nextId++, name: blob.name || "file", type: blob.type, blob, sha256: null, hashed: 0 }));
  pending.push(...added);
  renderFiles();
  for (const f of added) {
    f.sha256 = await sha256OfBlob(f.blob, (n) => {
      f.hashed = n;
      renderFiles();
    });
    renderFiles();
  }
}

function locate() {
  if (!navigator.geolocation) {
    $("where").textContent = "本浏览器不能定位";
    return;
  }
  $("where").textContent = "正在定位…";
  locating = true;
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      locating = false;
      location = {
        lat: pos.coords.latitude.toFixed(6),
        lon: pos.coords.longitude.toFixed(6),
        accuracy: pos.coords.accuracy == null ? null : pos.coords.accuracy.toFixed(1),
      };
      $("where").textContent = `纬度 ${location.lat}，经度 ${location.lon}，精度 ±${location.accuracy ?? "?"} 米`;
    },
    (err) => {
      locating = false;
      location = null;
      $("where").textContent = `无法定位（${err.message}）；可不带位置保存`;
    },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
  );
}

function tick() {
  const now = rfc3339();
  $("when").textContent = `设备时间 ${now.slice(0, 10)} ${now.slice(11, 19)}（UTC${now.slice(19)}，${Intl.DateTimeFormat().resolvedOptions().timeZone}）`;
}

function problems() {
  const out = [];
  const c = selectedCase();
  if (!c && !$("case-ref").value.trim()) out.push("请选择案件或输入案号");
  if (!currentStandard()) out.push("没有缓存的执法类别：请先联网打开一次以下载案件列表");
  if (!$("record-select").value) out.push("请选择环节和记录类型");
  if (officers().length < MIN_OFFICERS) out.push(`请勾选至少 ${MIN_OFFICERS} 名在场执法人员`);
  if (currentStage()?.on_site && !$("credentials-shown").checked) out.push("现场执法须先亮证，并勾选「已出示执法证件」");
  if (!pending.length) out.push("请至少拍摄或选择一个文件");
  if (pending.some((f) => !f.sha256)) out.push("请等待哈希计算完成");
  return out;
}

async function save(event) {
  event.preventDefault();
  const found = problems();
  $("capture-message").classList.remove("ok");
  if (found.length) {
    $("capture-message").textContent = found.join("；");
    return;
  }
  const c = selectedCase();
  $("capture-save").disabled = true;
  try {
    const capture = await queueCapture(
      {
        case_ref: c ? c.case_no : $("case-ref").value.trim(),
        category: c ? c.category : $("category-select").value,
        stage: $("stage-select").value,
        record_type: $("record-select").value,
        officers: officers(),
        device_time: rfc3339(capturedAt || new Date()),
        timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Shanghai",
        location,
        interruptions,
        credentials_shown: $("credentials-shown").checked,
        note: $("note").value.trim() || null,
        labels: {
          stage: $("stage-select").selectedOptions[0]?.textContent || "",
          record: $("record-select").selectedOptions[0]?.textContent || "",
        },
      },
      pending,
    );
    pending = [];
    interruptions = [];
    capturedAt = null;
    location = null;
    $("where").textContent = "下一次采集将重新定位";
    $("note").value = "";
    renderFiles();
    $("capture-message").classList.add("ok");
    $("capture-message").textContent = `已签名并加入待传队列（第 ${capture.signed.manifest.device_seq} 号清单，${capture.files.length} 个文件）`;
    onQueued(capture);
  } catch (e) {
    $("capture-message").textContent = `保存失败：${e.message}`;
  } finally {
    $("capture-save").disabled = false;
  }
}

/** Wire the capture screen; `queued(capture)` runs after each capture is queued. */
export function setupCaptureForm(queued) {
  onQueued = queued;
  const recorder = new Recorder(
    ({ blob, name, type, interruptions: stops }) => {
      interruptions.push(...stops);
      addFiles([new File([blob], name, { type })]);
    },
    (message) => ($("capture-message").textContent = message),
  );
  $("case-select").addEventListener("change", caseChanged);
  $("category-select").addEventListener("change", caseChanged);
  $("stage-select").addEventListener("change", stageChanged);
  $("officer-add").addEventListener("click", () => {
    const cert = $("officer-extra").value.trim();
    if (cert && !extraOfficers.includes(cert)) extraOfficers.push(cert);
    $("officer-extra").value = "";
    const checked = officers();
    renderOfficers();
    for (const box of document.querySelectorAll("#officer-list input")) box.checked = checked.includes(box.value) || box.value === cert;
  });
  $("locate").addEventListener("click", locate);
  for (const id of ["take-photo", "take-video", "pick-files"]) {
    $(id).addEventListener("change", (e) => {
      addFiles(e.target.files);
      e.target.value = "";
    });
  }
  // device_time is when the capture began: the first file, or the start of a recording
  $("rec-audio").addEventListener("click", () => recorder.start("audio").then(() => (capturedAt ??= recorder.active ? recorder.startedAt : null)));
  $("rec-video").addEventListener("click", () => recorder.start("video").then(() => (capturedAt ??= recorder.active ? recorder.startedAt : null)));
  $("capture-form").addEventListener("submit", save);
  tick();
  setInterval(tick, 1000);
}
