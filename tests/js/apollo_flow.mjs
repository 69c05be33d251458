// The upload flow as a single-page app runs it with Apollo Client, against a running server:
//   node apollo_flow.mjs http://127.0.0.1:8000
// presign (image_presign_url) -> POST the form to storage with fetch/FormData -> record_create ->
// query the record's versions; then the error cases, read the way Apollo Client 4 exposes them:
// a thrown (or, with errorPolicy "all", returned) CombinedGraphQLErrors whose `.errors[i].extensions.code`
// carries our code. Exits non-zero, with the reason, on the first broken expectation.
import assert from "node:assert/strict";

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { CombinedGraphQLErrors } from "@apollo/client/errors";

import { png, sendToStorage } from "./upload.mjs";

const server = (process.argv[2] || "").replace(/\/$/, "");
if (!server) {
  console.error("usage: node apollo_flow.mjs <server URL, e.g. http://127.0.0.1:8000>");
  process.exit(2);
}

const client = new ApolloClient({
  link: new HttpLink({ uri: `${server}/graphql` }),
  cache: new InMemoryCache(),
});

const TABLES = gql`query Tables { tables { name properties { name type options } } }`;
const IMAGE_PRESIGN = gql`
  mutation ImagePresign($table: String!, $prop: String!, $type: String, $name: String) {
    image_presign_url(options: {model_property: {model_schema_name: $table, property_name: $prop},
                                content_type: $type, file_name: $name}) {
      upload_url upload_url_payload method key url max_size content_types
    }
  }`;
const RECORD_CREATE = gql`
  mutation Save($props: [PropertyInputType]) {
    record_create(record: {table: "photos", properties: $props}) {
      id
      upload: property_upload(name: "image") { url file_name size content_type versions
        version_details { name status url width height } }
    }
  }`;
const RECORD = gql`
  query Photo($ids: [ID!]) {
    records(filter: {table: {value: "photos"}, id: {value_in: $ids}}, per_page: 20) {
      results { id upload: property_upload(name: "image") { url versions version_details { name status url } } }
    }
  }`;

/** The codes of a failed operation, as Apollo Client 4 hands them to application code. */
async function errorCodes(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(CombinedGraphQLErrors.is(error), `expected CombinedGraphQLErrors, got ${error?.name}: ${error}`);
    return error.errors.map((e) => e.extensions?.code);
  }
  assert.fail("expected the operation to fail");
}

const steps = [];
const step = (name, detail) => {
  steps.push(name);
  console.log(`ok - ${name}${detail ? `: ${detail}` : ""}`);
};

// 1. Limits, as a client shows them before uploading.
const { data: tables } = await client.query({ query: TABLES });
const image = tables.tables.find((t) => t.name === "photos").properties.find((p) => p.name === "image");
assert.ok(image.options.content_types.includes("image/png"));
step("tables", `photos.image accepts ${image.options.content_types.join(", ")}`);

// 2. Presign, upload, save.
const bytes = png(320, 200);
const { data: presignData } = await client.mutate({
  mutation: IMAGE_PRESIGN,
  variables: { table: "photos", prop: "image", type: "image/png", name: "apollo cat.png" },
});
const presigned = presignData.image_presign_url;
assert.equal(presigned.method, "POST");
assert.ok(!("file" in presigned.upload_url_payload), "the file is ours to append, last");
step("image_presign_url", presigned.key);

const value = await sendToStorage(presigned, bytes, "apollo cat.png", "image/png");
step("POST to storage", value);

const { data: saved } = await client.mutate({
  mutation: RECORD_CREATE,
  variables: { props: [{ name: "caption", value: "from Apollo" }, { name: "image", value }] },
});
const record = saved.record_create;
assert.equal(record.upload.file_name, "apollo cat.png");
assert.equal(record.upload.size, bytes.length);
assert.equal(record.upload.content_type, "image/png");
const original = await fetch(record.upload.url);
assert.equal(original.status, 200);
assert.deepEqual(Buffer.from(await original.arrayBuffer()), bytes);
step("record_create", `record ${record.id}, original downloads byte for byte`);

// 3. Versions, read back through a network query.
const { data: listed } = await client.query({ query: RECORD, variables: { ids: [record.id] }, fetchPolicy: "network-only" });
const details = listed.records.results[0].upload.version_details;
assert.deepEqual(details.map((v) => v.name), ["thumb", "medium", "large"]);
for (const v of details) {
  assert.ok(["pending", "ready", "failed"].includes(v.status), v.status);
  assert.equal(v.url === null, v.status !== "ready", `${v.name}: url only when ready`);
}
step("versions", details.map((v) => `${v.name} ${v.status}`).join(", "));

// 4. Error codes where Apollo users look for them.
assert.deepEqual(
  await errorCodes(client.mutate({ mutation: IMAGE_PRESIGN, variables: { table: "documents", prop: "resume" } })),
  ["PROPERTY_TYPE_MISMATCH"],
);
assert.deepEqual(
  await errorCodes(client.mutate({
    mutation: IMAGE_PRESIGN, variables: { table: "photos", prop: "image", type: "application/pdf" },
  })),
  ["CONTENT_TYPE_NOT_ALLOWED"],
);
assert.deepEqual(
  await errorCodes(client.mutate({ mutation: IMAGE_PRESIGN, variables: { table: "nope", prop: "image" } })),
  ["TABLE_NOT_FOUND"],
);
// Presigned but never uploaded: nothing in storage at that key.
const { data: unused } = await client.mutate({
  mutation: IMAGE_PRESIGN, variables: { table: "photos", prop: "image", type: "image/png", name: "never.png" },
});
assert.deepEqual(
  await errorCodes(client.mutate({
    mutation: RECORD_CREATE,
    variables: { props: [{ name: "image", value: unused.image_presign_url.key.replace("${filename}", "never.png") }] },
  })),
  ["UPLOAD_NOT_FOUND"],
);
// The same upload saved into a second record is refused.
assert.deepEqual(
  await errorCodes(client.mutate({ mutation: RECORD_CREATE, variables: { props: [{ name: "image", value }] } })),
  ["UPLOAD_ALREADY_ATTACHED"],
);
// With errorPolicy "all" the same CombinedGraphQLErrors comes back as `result.error` instead of being thrown.
const soft = await client.mutate({
  mutation: IMAGE_PRESIGN, variables: { table: "photos", prop: "nope" }, errorPolicy: "all",
});
assert.ok(CombinedGraphQLErrors.is(soft.error));
assert.equal(soft.error.errors[0].extensions.code, "PROPERTY_NOT_FOUND");
assert.match(soft.error.message, /nope/);
step("error codes", "PROPERTY_TYPE_MISMATCH, CONTENT_TYPE_NOT_ALLOWED, TABLE_NOT_FOUND, UPLOAD_NOT_FOUND, " +
  "UPLOAD_ALREADY_ATTACHED, PROPERTY_NOT_FOUND in CombinedGraphQLErrors.errors[].extensions.code");

console.log(JSON.stringify({ ok: true, record: record.id, steps }));
