// The demo page: presign through GraphQL, send the file straight to storage, save it, list it.
// Plain ES module, no build step. Every failure is shown in words next to the file it concerns.

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

const PHOTOS = `{ records(filter: {table: {value: "photos"}}, sort: {created_at: {order: DESC}}, per_page: 20) {
  total_entries results {
  id created_at properties
  upload: property_upload(name: "image") {
    url file_name width height content_type versions
    version_details { name status url width height error } } } } }`;
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

let lastPhotos = "";
let pollTimer = null;
// Poll quickly while versions are being built, slower the longer nothing changes (a stopped worker).
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
  const pending = results.flatMap((r) => r.upload?.version_details || []).filter((v) => v.status === "pending");
  const snapshot = JSON.stringify(results);
  if (snapshot !== lastPhotos) {
    // Only re-render on change, so polling does not reload images or move keyboard focus.
    lastPhotos = snapshot;
    pollDelay = POLL_MS;
    document.getElementById("photos").replaceChildren(...results.map(photoItem));
  }
  status.textContent = total === 0 ? "No photos yet." : `${total} photo${total === 1 ? "" : "s"}` +
    (pending.length ? `; ${pending.length} version${pending.length === 1 ? "" : "s"} still being generated.` : ".");
  if (pending.length) {
    pollTimer = setTimeout(refreshPhotos, pollDelay);
    pollDelay = Math.min(pollDelay * 1.5, 15000);
  }
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
