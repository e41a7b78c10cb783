// Continuous audio/video recording with MediaRecorder. Each stop-and-resume is an
// interruption (中断) with when, why and how it resumed, as the recording standard
// asks; switching away from the app interrupts the recording automatically.

import { rfc3339 } from "./manifest.js";

const $ = (id) => document.getElementById(id);

export class Recorder {
  /** `onDone({blob, name, type, interruptions})` receives the finished recording. */
  constructor(onDone, onMessage) {
    this.onDone = onDone;
    this.onMessage = onMessage;
    this.media = null;
    this.stream = null;
    this.interruptions = [];
    this.pausedAt = null;
    $("rec-pause").addEventListener("click", () => this.pause());
    $("rec-resume").addEventListener("click", () => this.resume());
    $("rec-stop").addEventListener("click", () => this.stop());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden && this.media?.state === "recording") this.pause("来电或切换应用");
    });
  }

  get active() {
    return this.media !== null;
  }

  async start(kind) {
    if (this.active) return;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia(kind === "video" ? { audio: true, video: { facingMode: "environment" } } : { audio: true });
    } catch (e) {
      this.onMessage(`无法打开${kind === "video" ? "摄像头" : "麦克风"}：${e.message}。可改用「拍照」「录像」按钮。`);
      return;
    }
    this.kind = kind;
    this.chunks = [];
    this.interruptions = [];
    this.startedAt = new Date();
    this.media = new MediaRecorder(this.stream);
    this.media.ondataavailable = (e) => e.data.size && this.chunks.push(e.data);
    this.media.onstop = () => this.finish();
    this.media.start(1000);
    const preview = $("rec-preview");
    preview.hidden = kind !== "video";
    if (kind === "video") {
      preview.srcObject = this.stream;
      preview.play().catch(() => {});
    }
    $("recorder").hidden = false;
    this.show();
  }

  show() {
    const paused = this.media?.state === "paused";
    $("rec-state").textContent = paused
      ? `已中断（${this.interruptions.length + 1}）— 选择原因后点「继续」`
      : `正在${this.kind === "video" ? "录像" : "录音"}… 中断 ${this.interruptions.length} 次`;
    $("rec-pause").hidden = paused;
    $("rec-resume").hidden = !paused;
    $("rec-reason-box").hidden = !paused;
  }

  pause(reason = null) {
    if (this.media?.state !== "recording") return;
    this.media.pause();
    this.pausedAt = rfc3339();
    if (reason) $("rec-reason").value = reason;
    this.show();
  }

  takeInterruption(resumed) {
    if (!this.pausedAt) return;
    this.interruptions.push({
      at: this.pausedAt,
      resumed_at: resumed ? rfc3339() : null,
      reason: $("rec-reason").value,
      resumption_note: $("rec-note").value.trim() || null,
    });
    this.pausedAt = null;
    $("rec-note").value = "";
  }

  resume() {
    if (this.media?.state !== "paused") return;
    this.takeInterruption(true);
    this.media.resume();
    this.show();
  }

  stop() {
    if (!this.media) return;
    if (this.media.state === "paused") this.takeInterruption(false);
    this.media.stop();
  }

  finish() {
    for (const track of this.stream.getTracks()) track.stop();
    const type = (this.media.mimeType || (this.kind === "video" ? "video/webm" : "audio/webm")).split(";")[0];
    const ext = type.includes("mp4") ? "mp4" : type.includes("ogg") ? "ogg" : "webm";
    const stamp = rfc3339(this.startedAt).slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
    const blob = new Blob(this.chunks, { type });
    const name = `${this.kind === "video" ? "录像" : "录音"}-${stamp}.${ext}`;
    const interruptions = this.interruptions;
    this.media = null;
    this.stream = null;
    $("rec-preview").srcObject = null;
    $("recorder").hidden = true;
    this.onDone({ blob, name, type, interruptions });
  }
}
