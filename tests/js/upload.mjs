// What both Apollo scripts need to put a file in storage the way a browser does.
import assert from "node:assert/strict";
import { deflateSync, crc32 } from "node:zlib";
import { randomBytes } from "node:crypto";

/** A real PNG (RGB noise, so it stays above the tables' 1 KiB minimum), built with zlib only. */
export function png(width, height) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) rows.push(Buffer.from([0]), randomBytes(width * 3));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** POST the presigned form the way a browser does: every payload field in order, the file last. */
export async function sendToStorage(presigned, bytes, name, type) {
  const form = new FormData();
  for (const [field, value] of Object.entries(presigned.upload_url_payload)) form.append(field, value);
  form.append("file", new Blob([bytes], { type }), name);
  const response = await fetch(presigned.upload_url, { method: presigned.method, body: form });
  const text = await response.text();
  assert.equal(response.status, 201, `storage answered ${response.status}: ${text}`);
  // Real S3 answers <PostResponse><Location>; moto answers 201 with no body: then the key is the value to save.
  const location = /<Location>([^<]+)<\/Location>/.exec(text)?.[1];
  return location || presigned.key.replace("${filename}", name);
}
