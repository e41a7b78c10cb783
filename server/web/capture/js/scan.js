// Scanning the enrolment QR code with the camera: BarcodeDetector where the browser has
// it, else the vendored jsQR decoder on video frames.

export class Scanner {
  constructor(video, onCode, onMessage) {
    this.video = video;
    this.onCode = onCode;
    this.onMessage = onMessage;
    this.stream = null;
  }

  async start() {
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (e) {
      this.onMessage(`无法打开摄像头（${e.message}），请手动输入注册码`);
      return false;
    }
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => {});
    let detector = null;
    if ("BarcodeDetector" in window) {
      try {
        detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      } catch {
        detector = null;
      }
    }
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const frame = async () => {
      if (!this.stream) return;
      let text = null;
      if (this.video.videoWidth) {
        if (detector) {
          const found = await detector.detect(this.video).catch(() => []);
          text = found[0]?.rawValue ?? null;
        } else if (window.jsQR) {
          canvas.width = this.video.videoWidth;
          canvas.height = this.video.videoHeight;
          context.drawImage(this.video, 0, 0);
          const image = context.getImageData(0, 0, canvas.width, canvas.height);
          text = window.jsQR(image.data, image.width, image.height)?.data ?? null;
        }
      }
      if (text) {
        this.stop();
        this.onCode(text);
      } else {
        setTimeout(frame, 200);
      }
    };
    frame();
    return true;
  }

  stop() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }
}
