// The CaseTrail JSON API as the capture app uses it (same endpoints as field_client).
// Failures become: Offline (no answer, 5xx, 408/423/425/429 → retried later) or
// Refused (other 4xx → the server's own message and what the inspector can do).

export const API = "/api/v1";

export class Offline extends Error {
  constructor(message, retryAfter = null) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

export class Refused extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const TRANSIENT = new Set([408, 423, 425, 429]);

const ADVICE = {
  400: "请检查采集内容后重新采集 (check the capture and capture again)",
  401: "设备令牌无效或已吊销：请管理员重新登记设备，然后在「设备」页重新注册 (token revoked: re-enrol)",
  403: "本设备无权执行此操作，请联系管理员 (not allowed for this device: contact your admin)",
  404: "服务器上找不到该案件或您未被指派：请核对案号，或请管理员指派 (case not found or not assigned)",
  409: "与服务器记录冲突，请勿重复提交，请联系管理员核查 (conflict: ask your admin to check)",
  413: "文件超过服务器允许的大小，请联系管理员 (too large: contact your admin)",
  422: "清单未通过服务器校验：请按提示修正后重新采集；原文件仍保存在本机 (fix as told and capture again; the original stays on this phone)",
};

export function advice(status) {
  return ADVICE[status] || "请联系管理员 (contact your admin)";
}

/** The server's message (and field errors) from its JSON error shape. */
export async function serverMessage(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    let message = String(body.message || response.statusText);
    if (body.errors && typeof body.errors === "object") {
      const flat = (v) => (Array.isArray(v) ? v.map(flat).join(" ") : typeof v === "object" && v ? Object.entries(v).map(([k, x]) => `${k}: ${flat(x)}`).join("; ") : String(v));
      const details = Object.entries(body.errors).map(([k, v]) => `${k}: ${flat(v)}`).join("; ");
      if (details) message += ` — ${details}`;
    }
    return message;
  } catch {
    return text.trim().slice(0, 300) || response.statusText;
  }
}

/** JSON request; returns {status, body}; throws Offline or Refused. */
export async function request(method, path, { token = null, json = undefined } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path.startsWith("/") ? path : API + "/" + path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: "no-store",
    });
  } catch (e) {
    throw new Offline(`无法连接服务器 / cannot reach the server (${e.message})`);
  }
  if (response.status >= 500 || TRANSIENT.has(response.status)) {
    const after = Number(response.headers.get("Retry-After"));
    throw new Offline(`服务器繁忙 HTTP ${response.status}: ${await serverMessage(response)}`, Number.isFinite(after) && after > 0 ? after : null);
  }
  if (response.status >= 400) {
    throw new Refused(`HTTP ${response.status} — ${await serverMessage(response)}`, response.status);
  }
  return { status: response.status, body: await response.json() };
}
