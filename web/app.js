// The upload page: sign in with the user pool, upload files with the API's presigned forms, show outcomes.
// Plain browser JavaScript, no build step and nothing from a CDN: config.json (written by Terraform, or by
// the local page server) says where the user pool and the API are.
"use strict";

const POLL_MS = 1500;
const POLL_LIMIT = 400; // about ten minutes per file; the page says so instead of polling forever
const TOKEN_KEY = "pipeline.idToken";
// The one content type the API takes for each kind of file (pipeline.ingest.uploads.CONTENT_TYPES).
const CONTENT_TYPES = [
  [".csv", "text/csv"],
  [".jsonl", "application/x-ndjson"],
  [".ndjson", "application/x-ndjson"],
  [".json", "application/json"],
];
const FINAL = new Set(["loaded", "partial", "quarantined", "failed"]);

const $ = (id) => document.getElementById(id);
let config = null;

function contentTypeOf(name) {
  const lower = name.toLowerCase();
  if (lower.endsWith(".gz")) {
    return contentTypeOf(lower.slice(0, -3)) ? "application/gzip" : null;
  }
  const found = CONTENT_TYPES.find(([extension]) => lower.endsWith(extension));
  return found ? found[1] : null;
}

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

function claims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

function currentToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const payload = token && claims(token);
  // A minute of slack: a token that expires mid-upload would be refused by the authorizer.
  if (!payload || typeof payload.exp !== "number" || payload.exp * 1000 < Date.now() + 60000) {
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return token;
}

function show() {
  const token = currentToken();
  $("sign-in").hidden = Boolean(token);
  $("uploader").hidden = !token;
  $("who").hidden = !token;
  if (token) {
    const payload = claims(token);
    $("who-name").textContent = `Signed in as ${payload.email || payload["cognito:username"] || payload.sub}`;
  }
}

// Cognito's InitiateAuth, as the AWS SDK would send it (the user pool answers browsers with CORS).
async function signIn(username, password) {
  const response = await fetch(config.cognitoEndpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
    },
    body: JSON.stringify({
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: config.userPoolClientId,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const kind = String(body.__type || "").split("#").pop();
    if (kind === "NotAuthorizedException" || kind === "UserNotFoundException") {
      throw new Error("Wrong email or password.");
    }
    throw new Error(`Sign-in failed: ${body.message || body.Message || response.status}`);
  }
  if (body.ChallengeName) {
    throw new Error(`This account needs ${body.ChallengeName} first; ask your administrator.`);
  }
  return body.AuthenticationResult.IdToken;
}

async function api(method, path, body) {
  const token = currentToken();
  if (!token) {
    show();
    throw new Error("Your session expired: sign in again.");
  }
  const response = await fetch(config.apiEndpoint.replace(/\/$/, "") + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(describeError(response.status, answer));
    error.status = response.status;
    throw error;
  }
  return answer;
}

function describeError(status, answer) {
  if (answer && Array.isArray(answer.detail)) {
    return answer.detail.map((item) => `${item.loc.join(".")}: ${item.msg}`).join("; ");
  }
  if (answer && answer.message) {
    return answer.message;
  }
  return status === 401 ? "Not signed in (or the session expired)." : `HTTP ${status}`;
}

function row(file) {
  const tr = document.createElement("tr");
  const name = document.createElement("td");
  name.textContent = file.name;
  const upload = document.createElement("td");
  const progress = document.createElement("progress");
  progress.max = 100;
  progress.value = 0;
  progress.setAttribute("aria-label", `upload of ${file.name}`);
  upload.append(progress);
  const outcome = document.createElement("td");
  outcome.className = "outcome";
  outcome.textContent = "waiting";
  tr.append(name, upload, outcome);
  $("files").querySelector("tbody").prepend(tr);
  return { tr, progress, outcome };
}

function showOutcome(cell, status, text, reasons = []) {
  cell.replaceChildren();
  const label = document.createElement("span");
  label.className = `status status-${status}`;
  label.textContent = status;
  cell.append(label, document.createTextNode(text ? ` ${text}` : ""));
  if (reasons.length) {
    const list = document.createElement("ul");
    list.className = "reasons";
    for (const reason of reasons) {
      const item = document.createElement("li");
      item.textContent = reason;
      list.append(item);
    }
    cell.append(list);
  }
  cell.closest("tr").dataset.status = status;
}

// The presigned form goes straight to the landing bucket; XHR, not fetch, for its upload progress events.
function postForm(form, file, progress) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [name, value] of Object.entries(form.fields)) {
      data.append(name, value);
    }
    data.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", form.url);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        progress.value = Math.round((100 * event.loaded) / event.total);
      }
    };
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) {
        progress.value = 100;
        resolve();
      } else {
        const code = /<Code>([^<]+)<\/Code>/.exec(request.responseText || "");
        reject(new Error(`The bucket refused the upload: ${code ? code[1] : `HTTP ${request.status}`}`));
      }
    };
    request.onerror = () => reject(new Error("The upload was interrupted (network error)."));
    request.send(data);
  });
}

function describeOutcome(outcome) {
  const stage = outcome.database || outcome.datalake;
  if (!stage) {
    return ["", []];
  }
  if (stage.error) {
    return [stage.error, stage.first_reasons];
  }
  if (stage.dataset === "unclassified") {
    return ["copied to the lake as it is: its name matches no dataset (users*.csv, events*.jsonl, ...)", []];
  }
  const counts = `${stage.records_loaded} of ${stage.records_read} records loaded, ${stage.records_rejected} rejected`;
  return [`(${stage.dataset}): ${counts}`, stage.first_reasons];
}

async function watch(uploadId, cell) {
  for (let attempt = 0; attempt < POLL_LIMIT; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let versions;
    try {
      versions = await api("GET", `/files/${encodeURIComponent(uploadId)}`);
    } catch (error) {
      if (error.status === 404) {
        continue; // landed, not processed yet
      }
      throw error;
    }
    const latest = versions[0];
    if (latest && FINAL.has(latest.status)) {
      const [text, reasons] = describeOutcome(latest);
      showOutcome(cell, latest.status, text, reasons);
      return;
    }
    showOutcome(cell, "processing", latest ? `(${latest.status})` : "");
  }
  showOutcome(cell, "processing", "still running: check again later with `pipeline status`");
}

async function upload(file) {
  const { progress, outcome } = row(file);
  try {
    const contentType = contentTypeOf(file.name);
    if (!contentType) {
      throw new Error("not a file the pipeline reads (.csv, .jsonl, .ndjson, .json, optionally .gz)");
    }
    if (config.maxUploadBytes && file.size > config.maxUploadBytes) {
      throw new Error(`larger than the ${config.maxUploadBytes}-byte limit`);
    }
    const form = await api("POST", "/uploads", {
      file_name: file.name,
      content_type: contentType,
      size: file.size,
    });
    showOutcome(outcome, "uploading", "");
    await postForm(form, file, progress);
    showOutcome(outcome, "processing", "");
    await watch(form.upload_id, outcome);
  } catch (error) {
    showOutcome(outcome, "error", error.message);
  }
}

function take(files) {
  notice("");
  for (const file of files) {
    upload(file);
  }
}

function wire() {
  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    notice("");
    $("sign-in-button").disabled = true;
    try {
      const token = await signIn($("username").value.trim(), $("password").value);
      sessionStorage.setItem(TOKEN_KEY, token);
      $("password").value = "";
      show();
    } catch (error) {
      notice(error.message);
    } finally {
      $("sign-in-button").disabled = false;
    }
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    show();
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    take(event.dataTransfer.files);
  });
  $("file-input").addEventListener("change", (event) => {
    take(event.target.files);
    event.target.value = "";
  });
}

async function start() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) {
      throw new Error(`config.json: HTTP ${response.status}`);
    }
    config = await response.json();
  } catch (error) {
    notice(`The page is not configured: ${error.message}`);
    return;
  }
  $("accepted").textContent = config.maxUploadBytes
    ? `up to ${Math.floor(config.maxUploadBytes / 1048576)} MiB each`
    : "any size the API allows";
  wire();
  show();
  document.body.dataset.ready = "true";
}

start();
