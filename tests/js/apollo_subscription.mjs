// Live upload status as a single-page app follows it with Apollo Client: queries and mutations over
// HTTP, the subscription over WebSocket (GraphQLWsLink on graphql-ws's client), split by operation:
//   node apollo_subscription.mjs http://127.0.0.1:8000
// upload and save an image, subscribe to property_upload_changed, and see every version the table
// declares arrive (each event as a version becomes ready), then the completion; and an unknown record
// refused with RECORD_NOT_FOUND where Apollo users look for codes. Exits non-zero on a broken expectation.
import assert from "node:assert/strict";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { CombinedGraphQLErrors } from "@apollo/client/errors";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import { png, sendToStorage } from "./upload.mjs";

const server = (process.argv[2] || "").replace(/\/$/, "");
if (!server) {
  console.error("usage: node apollo_subscription.mjs <server URL, e.g. http://127.0.0.1:8000>");
  process.exit(2);
}

// Node 20 has no global WebSocket (browsers and Node 22 do); GraphQLWsLink reads WebSocket.CLOSED
// from the global when it classifies an error, so the `ws` package stands in for it.
globalThis.WebSocket ??= WebSocket;

const closes = [];
const ws = createClient({
  url: `${server.replace(/^http/, "ws")}/graphql`,
  webSocketImpl: WebSocket,
  connectionParams: {}, // a signed-in app sends {Authorization: "Bearer <jwt>"} here
  on: { closed: (event) => closes.push(event.code) },
});
const client = new ApolloClient({
  link: ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === "OperationDefinition" && definition.operation === "subscription";
    },
    new GraphQLWsLink(ws),
    new HttpLink({ uri: `${server}/graphql` }),
  ),
  cache: new InMemoryCache(),
});

const TABLES = gql`query Tables { tables { name properties { name type options } } }`;
const PRESIGN = gql`
  mutation Presign($name: String) {
    image_presign_url(options: {model_property: {model_schema_name: "photos", property_name: "image"},
                                content_type: "image/png", file_name: $name}) {
      upload_url upload_url_payload method key
    }
  }`;
const SAVE = gql`
  mutation Save($value: String) {
    record_create(record: {table: "photos", properties: [{name: "image", value: $value}]}) { id }
  }`;
const CHANGED = gql`
  subscription Changed($id: ID!) {
    property_upload_changed(record_id: $id, name: "image") {
      url file_name versions version_details { name status url width height }
    }
  }`;

const steps = [];
const step = (name, detail) => {
  steps.push(name);
  console.log(`ok - ${name}${detail ? `: ${detail}` : ""}`);
};

/** Every result of a subscription until it completes (or fails), with what ended it. */
function collect(observable, within = 60_000) {
  return new Promise((resolve, reject) => {
    const results = [];
    const timer = setTimeout(() => reject(new Error(`no completion within ${within} ms: ${JSON.stringify(results)}`)),
      within);
    const subscription = observable.subscribe({
      next: (result) => results.push(result),
      error: (error) => { clearTimeout(timer); resolve({ results, error }); },
      complete: () => { clearTimeout(timer); resolve({ results, error: null }); },
    });
    collect.subscriptions.push(subscription);
  });
}
collect.subscriptions = [];

try {
  // 1. The versions the table declares.
  const { data: tables } = await client.query({ query: TABLES });
  const image = tables.tables.find((t) => t.name === "photos").properties.find((p) => p.name === "image");
  const declared = image.options.versions.map((v) => v.name);
  assert.ok(declared.length > 0);
  step("tables", `photos.image declares ${declared.join(", ")}`);

  // 2. Upload and save, then follow the record's image.
  const { data: presigned } = await client.mutate({ mutation: PRESIGN, variables: { name: "live.png" } });
  const value = await sendToStorage(presigned.image_presign_url, png(640, 480), "live.png", "image/png");
  const { data: saved } = await client.mutate({ mutation: SAVE, variables: { value } });
  const id = saved.record_create.id;
  step("record_create", `record ${id}`);

  const { results, error } = await collect(client.subscribe({ query: CHANGED, variables: { id } }));
  assert.equal(error, null, `the subscription failed: ${error}`);
  const states = results.map((r) => {
    assert.equal(r.error, undefined, `an event carried an error: ${r.error}`);
    return r.data.property_upload_changed;
  });
  assert.ok(states.length >= 2, `expected the pending state and then the versions: ${JSON.stringify(states)}`);
  assert.equal(states[0].file_name, "live.png");
  assert.ok(states[0].version_details.some((v) => v.status === "pending"), "the first event is the state at subscribe");
  const last = states.at(-1);
  assert.deepEqual(last.version_details.map((v) => v.name), declared);
  for (const v of last.version_details) {
    assert.equal(v.status, "ready", `${v.name} is ${v.status}`);
    assert.ok(v.url && v.width > 0 && v.height > 0, `${v.name}: url and size once ready`);
    assert.equal(last.versions[v.name], v.url);
  }
  // Versions arrive as they are built: the number of ready versions only grows, one event at a time.
  const ready = states.map((s) => s.version_details.filter((v) => v.status === "ready").length);
  assert.deepEqual([...ready].sort((a, b) => a - b), ready, `ready counts ${ready}`);
  assert.equal(new Set(ready).size, ready.length, `no event repeats a state: ${ready}`);
  const thumb = await fetch(last.versions.thumb);
  assert.equal(thumb.status, 200);
  assert.equal(thumb.headers.get("content-type"), "image/webp");
  step("subscription", `${states.length} events (ready versions: ${ready.join(" -> ")}), then complete`);

  // 3. An unknown record: the protocol's error message, with our code where Apollo puts it.
  const refused = await collect(client.subscribe({ query: CHANGED, variables: { id: "999999999" } }));
  const failure = refused.error || refused.results.find((r) => r.error)?.error;
  assert.ok(CombinedGraphQLErrors.is(failure), `expected CombinedGraphQLErrors, got ${failure}`);
  assert.deepEqual(failure.errors.map((e) => e.extensions?.code), ["RECORD_NOT_FOUND"]);
  step("error codes", "RECORD_NOT_FOUND in CombinedGraphQLErrors.errors[].extensions.code");

  // graphql-ws closes its socket (1000) once nothing is subscribed; the server closed none.
  assert.ok(closes.every((code) => code === 1000), `unexpected closes: ${closes}`);
  console.log(JSON.stringify({ ok: true, record: id, events: states.length, steps }));
} finally {
  for (const subscription of collect.subscriptions) subscription.unsubscribe();
  await ws.dispose();
}
