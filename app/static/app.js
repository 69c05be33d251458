// The demo page: presign through GraphQL, send the file straight to storage, save it, list it, and
// watch its versions arrive through a GraphQL subscription (graphql-transport-ws over a plain
// WebSocket), or by polling where there is no WebSocket. Plain ES module, no build step. Every
// failure is shown in words next to the file it concerns.

const API = "/graphql";
const POLL_MS = 1500;

const TABLES = `{ tables { name properties { name type options } } }`;

const PRESIGN_FIELDS = "upload_url upload_url_payload method headers key url max_size content_types";
const IMAGE_PRESIGN = `mutation($type: String, $name: String) {
  image_presign_url(options: {model_property: {model_schema_name: "photos", property_name: "image"},
                              content_type: $type, file_name: $name}) { ${PRESIGN_FIELDS} } }`;
// platformOS serves attachments inline unless asked; the résumés of this demo download as files.
const ATTACHMENT_PRESIGN = `mutation($type: String, $name: String) {
  attachment_presign_url(options: {model_property: {model_schema_name: "documents", property_name: "resume"},
                                   content_type: $type, file_name: $name, content_disposition: download}) {
    ${PRESIGN_FIELDS} } }`;

const RECORD_CREATE = `mutation($table: String!, $props: [PropertyInputType]) {
  record_create(record: {table: $table, properties: $props}) { id } }`;

const PHOTO_UPLOAD = `url file_name width height content_type versions
    version_details { name status url width height error }`;
const PHOTOS = `{ records(filter: {table: {value: "photos"}}, sort: {created_at: {order: DESC}}, per_page: 20) {
  total_entries results {
  id created_at properties
  upload: property_upload(name: "image") { ${PHOTO_UPLOAD} } } } }`;
const PHOTO_CHANGED = `subscription($id: ID!) {
  property_upload_changed(record_id: $id, name: "image") { ${PHOTO_UPLOAD} } }`;
const DOCUMENTS = `{ records(filter: {table: {value: "documents"}}, sort: {created_at: {order: DESC}},
  per_page: 20) { total_entries results {
  id created_at properties
  upload: property_upload(name: "resume") { url file_name size content_type scan_status scan_result } } } }`;

// Where each kind of file goes; the limits come from the `tables` query.
const TARGETS = {
  image: { table: "photos", property: "image", mutation: IMAGE_PRESIGN, field: "image_presign_url",
           textProperty: "caption" },
  document: { table: "documents", property: "resume", mutation: ATTACHMENT_PRESIGN,
              field: "attachment_presign_url", textProperty: "title" },
};

/** An error the user should read: a sentence, and the API's code when there is one. */
class UploadError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch(API, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new UploadError("The API could not be reached; check that the server is running.", "NETWORK_ERROR");
  }
  const body = await response.json().catch(() => null);
  if (body && body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new UploadError(first.message, first.extensions && first.extensions.code);
  }
  if (!response.ok || !body) {
    throw new UploadError(`The API answered HTTP ${response.status}.`, "HTTP_ERROR");
  }
  return body.data;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// ---- limits ------------------------------------------------------------------------------------

const limits = {};

function typeAllowed(type, allowed) {
  if (!allowed || allowed.length === 0) return true;
  return allowed.some((pattern) =>
    pattern.endsWith("/*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type);
}

async function loadLimits() {
  const data = await gql(TABLES);
  for (const [kind, target] of Object.entries(TARGETS)) {
    const table = data.tables.find((t) => t.name === target.table);
    const prop = table && table.properties.find((p) => p.name === target.property);
    if (!prop) continue;
    const range = prop.options.content_length || {};
    limits[kind] = {
      maxBytes: range.lte ? range.lte * 1024 : null,
      minBytes: range.gte ? range.gte * 1024 : 0,
      types: prop.options.content_types || [],
    };
  }
  const describe = (kind, label) => {
    const l = limits[kind];
    if (!l) return `${label}: not configured on this server`;
    const max = l.maxBytes ? `up to ${formatSize(l.maxBytes)}` : "any size";
    return `${label}: ${l.types.length ? l.types.join(", ") : "any type"}, ${max}`;
  };
  document.getElementById("limits").textContent =
    `${describe("image", "Images")}. ${describe("document", "Documents")}.`;
  const accept = [...(limits.image?.types || []), ...(limits.document?.types || [])];
  if (accept.length) document.getElementById("file-input").setAttribute("accept", accept.join(","));
}

/** Which target a file goes to, or an UploadError saying why it is refused before any upload. */
function targetFor(file) {
  const type = file.type || "application/octet-stream";
  const kind = type.startsWith("image/") ? "image" : "document";
  const l = limits[kind];
  if (l && !typeAllowed(type, l.types)) {
    const accepted = [...(limits.image?.types || []), ...(limits.document?.types || [])].join(", ");
    throw new UploadError(`This file type (${type}) is not accepted. Accepted types: ${accepted}.`,
      "CONTENT_TYPE_NOT_ALLOWED");
  }
  if (l && l.maxBytes !== null && file.size > l.maxBytes) {
    // Just over the limit both round to the same figure: then say it in bytes.
    const [size, max] = formatSize(file.size) === formatSize(l.maxBytes)
      ? [`${file.size} bytes`, `${l.maxBytes} bytes`] : [formatSize(file.size), formatSize(l.maxBytes)];
    throw new UploadError(`This file is too large (${size}); the limit is ${max}.`, "UPLOAD_TOO_LARGE");
  }
  if (l && file.size < l.minBytes) {
    throw new UploadError(`This file is too small (${formatSize(file.size)}); the minimum is ` +
      `${formatSize(l.minBytes)}.`, "UPLOAD_TOO_SMALL");
  }
  return { kind, ...TARGETS[kind] };
}

// ---- one file ----------------------------------------------------------------------------------

function queueItem(file) {
  const progress = el("progress", { max: "100", value: "0", "aria-label": `Upload progress of ${file.name}` });
  const message = el("p", { className: "message", text: "Waiting…" });
  const item = el("li", {}, el("span", { className: "name", text: `${file.name} (${formatSize(file.size)})` }),
    progress, message);
  document.getElementById("queue").prepend(item);
  return {
    item,
    say(text, state) {
      message.textContent = text;
      item.classList.remove("error", "done");
      if (state) item.classList.add(state);
      // A file refused before any byte was sent has no progress to show.
      progress.hidden = state === "error" && progress.value === 0;
    },
    progress(fraction) {
      progress.value = Math.round(fraction * 100);
    },
  };
}

/** The text of a storage error document (S3 and Azure both answer <Error><Code>…<Message>…), if the body is one. */
function storageError(xhr) {
  const doc = xhr.responseXML || new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
  const code = doc.querySelector("Error > Code")?.textContent;
  const detail = doc.querySelector("Error > Message")?.textContent;
  if (code === "EntityTooLarge" || code === "RequestBodyTooLarge") {
    return new UploadError("Storage refused the file: it is larger than allowed.", code);
  }
  if (code === "AccessDenied" || code === "AuthenticationFailed" || code === "AuthorizationPermissionMismatch") {
    return new UploadError("Storage refused the upload (the presigned URL was rejected or expired); try again.", code);
  }
  return new UploadError(`Storage answered HTTP ${xhr.status}${code ? `: ${code}` : ""}` +
    `${detail ? ` (${detail.split("\n")[0]})` : ""}.`, code || "STORAGE_ERROR");
}

/** Send the file as the presign says, with XMLHttpRequest (fetch has no upload progress): a form POST
 * (S3), or a PUT of the file itself with exactly the headers given (Azure, or a presigned S3 PUT).
 * Resolves to the value to save: S3's <Location> when it sends one, else the object's URL or key. */
function sendToStorage(presigned, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const put = (presigned.method || "POST").toUpperCase() === "PUT";
    xhr.open(put ? "PUT" : "POST", presigned.upload_url);
    let body = file;
    if (put) {
      for (const [name, value] of Object.entries(presigned.headers || {})) xhr.setRequestHeader(name, value);
    } else {
      body = new FormData();
      for (const [name, value] of Object.entries(presigned.upload_url_payload)) {
        // An empty Content-Type field means "send the file's own type" (include_content_type).
        body.append(name, name === "Content-Type" && value === "" ? file.type : value);
      }
      body.append("file", file); // last: S3 ignores fields after the file
    }
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(storageError(xhr));
        return;
      }
      onProgress(1);
      if (put) {
        resolve(presigned.url || presigned.key);
        return;
      }
      const doc = xhr.responseText
        ? new DOMParser().parseFromString(xhr.responseText, "application/xml") : null;
      const location = doc?.querySelector("Location")?.textContent;
      resolve(location || presigned.key.replace("${filename}", file.name));
    });
    xhr.addEventListener("error", () =>
      reject(new UploadError("The upload to storage failed (network error or CORS); try again.", "NETWORK_ERROR")));
    xhr.send(body);
  });
}

async function uploadOne(file) {
  const ui = queueItem(file);
  try {
    const target = targetFor(file);
    ui.say("Asking the API where to upload…");
    const data = await gql(target.mutation, { type: file.type, name: file.name });
    const presigned = data[target.field];
    ui.say("Uploading to storage…");
    const value = await sendToStorage(presigned, file, (f) => {
      ui.progress(f);
      ui.say(`Uploading to storage… ${Math.round(f * 100)}%`);
    });
    ui.say("Checking and saving…");
    const saved = await gql(RECORD_CREATE, {
      table: target.table,
      props: [{ name: target.property, value }, { name: target.textProperty, value: file.name }],
    });
    ui.say(`Saved as ${target.table} record ${saved.record_create.id}.`, "done");
    if (target.kind === "image") await refreshPhotos();
    else await refreshDocuments();
  } catch (error) {
    const code = error instanceof UploadError && error.code ? ` (${error.code})` : "";
    ui.say(`Not uploaded: ${error.message}${code}`, "error");
  }
}

// ---- records -----------------------------------------------------------------------------------

const VERSION_WORDS = {
  pending: "pending: being generated",
  ready: "ready",
  failed: "failed",
};

function versionItem(v) {
  const words = v.status === "ready" && v.width
    ? `ready, ${v.width} × ${v.height}` : v.status === "failed" ? `failed: ${v.error || "unknown reason"}`
      : VERSION_WORDS[v.status] || v.status;
  const item = el("li", { "data-version": v.name, "data-status": v.status },
    el("strong", { text: v.name }), el("span", { className: `badge ${v.status}`, text: words }));
  if (v.status === "ready" && v.url) {
    item.append(el("a", { href: v.url, text: "open", "aria-label": `Open the ${v.name} version` }));
    if (v.name === "thumb") {
      item.append(el("img", { src: v.url, alt: `${v.name} version`, className: "thumb-preview", "data-version-img": v.name }));
    }
  }
  return item;
}

function photoItem(record) {
  const u = record.upload;
  const item = el("li", { "data-record-id": record.id });
  if (!u) return item;
  const caption = record.properties.caption || u.file_name;
  item.append(el("figure", {},
    el("img", { src: u.url, alt: caption, className: "original", loading: "lazy",
                width: u.width ?? undefined, height: u.height ?? undefined }),
    el("figcaption", { text: `${caption}${u.width ? ` — original ${u.width} × ${u.height}` : ""}` })));
  const versions = el("ul", { className: "versions", "aria-label": `Versions of ${caption}` });
  for (const v of u.version_details) versions.append(versionItem(v));
  item.append(versions);
  return item;
}

function documentItem(record) {
  const u = record.upload;
  const item = el("li", { "data-record-id": record.id });
  const title = record.properties.title || (u && u.file_name) || `record ${record.id}`;
  item.append(el("strong", { text: title }));
  if (!u) return item;
  item.dataset.scanStatus = u.scan_status || "";
  // Résumés are scanned for viruses before they are served: no link until the scan finds the file clean.
  if (u.url) {
    item.append(" — ", el("a", { href: u.url, className: "download", text: `Download ${u.file_name}` }),
      el("span", { className: "status", text: ` (${formatSize(u.size)}, private: the link is signed and expires)` }));
  } else if (u.scan_status === "pending") {
    item.append(" — ", el("span", { className: "status scan-pending",
      text: `${u.file_name}: being scanned for viruses; the link appears once it is found clean.` }));
  } else if (u.scan_status === "infected") {
    item.append(" — ", el("span", { className: "status error-text scan-infected",
      text: `${u.file_name}: a virus was found (${u.scan_result}); the file was deleted and is never served.` }));
  } else if (u.scan_status === "failed") {
    item.append(" — ", el("span", { className: "status error-text scan-failed",
      text: `${u.file_name}: could not be scanned (${u.scan_result}); it is not served. Upload it again.` }));
  }
  return item;
}

// ---- live versions -----------------------------------------------------------------------------

/** A graphql-transport-ws client on one WebSocket, opened when first needed. `follow` calls
 * `next(data)` per event and then `done()`; `lost(reason)` if the subscription cannot go on (the
 * socket failed or was refused), after which `available` is false and the page polls instead. */
class LiveStatus {
  constructor(path) {
    this.url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
    this.socket = null;
    this.acknowledged = false;
    this.failed = typeof WebSocket !== "function";
    this.operations = new Map();
    this.lastId = 0;
  }

  get available() {
    return !this.failed;
  }

  follow(query, variables, handlers) {
    const id = String(++this.lastId);
    this.operations.set(id, handlers);
    this.open();
    if (this.acknowledged) this.send({ id, type: "subscribe", payload: { query, variables } });
    else handlers.waiting = { query, variables };
    return id;
  }

  send(message) {
    this.socket.send(JSON.stringify(message));
  }

  open() {
    if (this.socket) return;
    this.socket = new WebSocket(this.url, "graphql-transport-ws");
    this.socket.addEventListener("open", () => this.send({ type: "connection_init", payload: {} }));
    this.socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    this.socket.addEventListener("close", (event) => this.closed(event));
  }

  receive(message) {
    const handlers = this.operations.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        for (const [id, h] of this.operations) {
          if (h.waiting) this.send({ id, type: "subscribe", payload: h.waiting });
          h.waiting = null;
        }
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        if (!handlers) break;
        if (message.payload.errors?.length) {
          this.operations.delete(message.id);
          handlers.lost(message.payload.errors[0].message);
        } else {
          handlers.next(message.payload.data);
        }
        break;
      case "error":
        this.operations.delete(message.id);
        handlers?.lost(message.payload[0]?.message || "refused");
        break;
      case "complete":
        this.operations.delete(message.id);
        handlers?.done();
        break;
    }
  }

  closed(event) {
    this.socket = null;
    this.acknowledged = false;
    // 1000 is the server closing an idle connection: the next `follow` opens a new one.
    if (event.code !== 1000 || this.operations.size) this.failed = true;
    const orphans = [...this.operations.values()];
    this.operations.clear();
    for (const h of orphans) h.lost(`the connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`);
  }
}

const live = new LiveStatus(API);
const photoRecords = new Map(); // id -> the record as last seen (query or subscription)
const following = new Set();

function pendingVersions() {
  return [...photoRecords.values()].flatMap((r) => r.upload?.version_details || [])
    .filter((v) => v.status === "pending").length;
}

function showPhotosStatus(total) {
  const status = document.getElementById("photos-status");
  const pending = pendingVersions();
  const how = live.available ? "they appear here as they are ready" : "this page checks every few seconds";
  status.textContent = total === 0 ? "No photos yet." : `${total} photo${total === 1 ? "" : "s"}` +
    (pending ? `; ${pending} version${pending === 1 ? "" : "s"} still being generated (${how}).` : ".");
  document.getElementById("photos").dataset.updates = live.available ? "subscription" : "polling";
}

/** Versions of `record` arrive through the subscription; each event replaces its upload. */
function followPhoto(record) {
  following.add(record.id);
  live.follow(PHOTO_CHANGED, { id: record.id }, {
    next(data) {
      const seen = photoRecords.get(record.id);
      if (!seen) return;
      seen.upload = data.property_upload_changed.file_name ? data.property_upload_changed : null;
      document.querySelector(`#photos > li[data-record-id="${CSS.escape(record.id)}"]`)
        ?.replaceWith(photoItem(seen));
      showPhotosStatus(photoRecords.size);
    },
    done() {
      following.delete(record.id);
    },
    lost() {
      following.delete(record.id);
      showPhotosStatus(photoRecords.size);
      pollTimer = setTimeout(refreshPhotos, POLL_MS);
    },
  });
}

let lastPhotos = "";
let pollTimer = null;
// Without a WebSocket: poll quickly while versions are being built, slower the longer nothing
// changes (a stopped worker).
let pollDelay = POLL_MS;

async function refreshPhotos() {
  clearTimeout(pollTimer);
  const status = document.getElementById("photos-status");
  let data;
  try {
    data = await gql(PHOTOS);
  } catch (error) {
    status.textContent = `Could not load photos: ${error.message}`;
    status.classList.add("error-text");
    pollTimer = setTimeout(refreshPhotos, POLL_MS * 4);
    return;
  }
  status.classList.remove("error-text");
  const { results, total_entries: total } = data.records;
  for (const record of results) {
    // A followed record's last event is at least as new as this answer (every later change is an event).
    const seen = photoRecords.get(record.id);
    if (seen && following.has(record.id)) record.upload = seen.upload;
  }
  photoRecords.clear();
  for (const record of results) photoRecords.set(record.id, record);
  const snapshot = JSON.stringify(results);
  if (snapshot !== lastPhotos) {
    // Only re-render on change, so polling does not reload images or move keyboard focus.
    lastPhotos = snapshot;
    pollDelay = POLL_MS;
    document.getElementById("photos").replaceChildren(...results.map(photoItem));
  }
  const waiting = results.filter((r) => (r.upload?.version_details || []).some((v) => v.status === "pending"));
  if (live.available) {
    for (const record of waiting) if (!following.has(record.id)) followPhoto(record);
  } else if (waiting.length) {
    pollTimer = setTimeout(refreshPhotos, pollDelay);
    pollDelay = Math.min(pollDelay * 1.5, 15000);
  }
  showPhotosStatus(total);
}

let lastDocuments = "";
let documentsTimer = null;
let documentsDelay = POLL_MS;

async function refreshDocuments() {
  clearTimeout(documentsTimer);
  const status = document.getElementById("documents-status");
  let results;
  let total;
  try {
    ({ results, total_entries: total } = (await gql(DOCUMENTS)).records);
  } catch (error) {
    status.textContent = `Could not load documents: ${error.message}`;
    status.classList.add("error-text");
    documentsTimer = setTimeout(refreshDocuments, POLL_MS * 4);
    return;
  }
  status.classList.remove("error-text");
  const scanning = results.filter((r) => r.upload?.scan_status === "pending").length;
  const snapshot = JSON.stringify(results.map((r) => [r.id, r.upload?.scan_status, Boolean(r.upload?.url)]));
  if (snapshot !== lastDocuments) {
    // Re-render on change only: signed links are new at every query, and a click must not lose its target.
    lastDocuments = snapshot;
    documentsDelay = POLL_MS;
    document.getElementById("documents").replaceChildren(...results.map(documentItem));
  }
  status.textContent = total === 0 ? "No documents yet." : `${total} document${total === 1 ? "" : "s"}` +
    (scanning ? `; ${scanning} being scanned for viruses.` : ".");
  if (scanning) {
    // Poll while scans are pending, slower the longer nothing changes (a scanner that is down).
    documentsTimer = setTimeout(refreshDocuments, documentsDelay);
    documentsDelay = Math.min(documentsDelay * 1.5, 15000);
  }
}

// ---- wiring ------------------------------------------------------------------------------------

function handleFiles(files) {
  return Promise.all([...files].map(uploadOne));
}

function wire() {
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  input.addEventListener("change", () => {
    handleFiles(input.files).finally(() => { input.value = ""; });
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    handleFiles(event.dataTransfer.files);
  });
}

wire();
loadLimits().catch((error) => {
  const limitsText = document.getElementById("limits");
  limitsText.textContent = `Could not load the limits: ${error.message}`;
  limitsText.classList.add("error-text");
});
refreshPhotos();
refreshDocuments();
