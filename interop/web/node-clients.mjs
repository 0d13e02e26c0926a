// Connect-ES clients (@connectrpc/connect-node) against connect-server.
// Usage: node node-clients.mjs http://127.0.0.1:PORT
// Prints one PASS/FAIL line per check; exits 1 if any check failed.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcWebTransport,
  createGrpcTransport,
  compressionGzip,
} from "@connectrpc/connect-node";
import { ConnectService } from "./gen/es/connect_pb.js";

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error("usage: node node-clients.mjs http://127.0.0.1:PORT");
  process.exit(2);
}

// The google.rpc.BadRequest the server attaches to a too-large count, as its bytes
// (field_violations { field: "count" description: "count must be at most 1000000" }).
const BAD_REQUEST_B64 = "CiYKBWNvdW50Eh1jb3VudCBtdXN0IGJlIGF0IG1vc3QgMTAwMDAwMA";

let failed = 0;
const show = (v) => JSON.stringify(v);
function check(name, expected, actual) {
  if (show(expected) === show(actual)) {
    console.log(`PASS node ${name}`);
  } else {
    failed++;
    console.log(`FAIL node ${name}\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`);
  }
}
async function run(name, expected, fn) {
  let actual;
  try {
    actual = await fn();
  } catch (e) {
    actual = { threw: String(e) };
  }
  check(name, expected, actual);
}

const withTimeout = { timeoutMs: 10000 };
const streamItems = (data, n) =>
  Array.from({ length: n }, (_, i) => `Hello, ${data}: server(${i + 1}) `);

const transports = [
  ["connect json http/1.1", createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }), false],
  ["connect proto http/1.1", createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }), false],
  ["connect json http/2", createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false }), true],
  ["connect proto http/2", createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }), true],
  ["grpc-web proto http/1.1", createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }), false],
  ["grpc-web proto http/2", createGrpcWebTransport({ baseUrl, httpVersion: "2" }), true],
  ["grpc http/2", createGrpcTransport({ baseUrl }), true],
];

for (const [tname, transport, fullDuplex] of transports) {
  const client = createClient(ConnectService, transport);

  // connect-server echoes x-request-id and names itself in x-served-by (--server-id).
  await run(`${tname} unary (and x-request-id, x-served-by)`,
    { responseData: "Hello, node", requestId: "node-req-1", servedBy: "web-interop" }, async () => {
      let headers;
      const res = await client.unaryRPC({ requestData: "node" },
        { ...withTimeout, headers: { "x-request-id": "node-req-1" }, onHeader: (h) => (headers = h) });
      return { responseData: res.responseData, requestId: headers?.get("x-request-id"),
        servedBy: headers?.get("x-served-by") };
    });

  await run(`${tname} server stream of 3 (and x-message-count trailer)`,
    { items: streamItems("node", 3), messageCount: "3" }, async () => {
      const items = [];
      let trailers;
      for await (const m of client.serverStreamRPC({ requestData: "node", count: 3 },
        { ...withTimeout, onTrailer: (t) => (trailers = t) })) {
        items.push(m.responseData);
      }
      return { items, messageCount: trailers?.get("x-message-count") };
    });

  await run(
    `${tname} count 5000000 is InvalidArgument`,
    { code: Code.InvalidArgument, rawMessage: "count must be at most 1000000",
      details: [{ type: "google.rpc.BadRequest", value: BAD_REQUEST_B64 }] },
    async () => {
      try {
        for await (const m of client.serverStreamRPC({ requestData: "x", count: 5000000 }, withTimeout)) {
          return { unexpectedMessage: m.responseData };
        }
        return { unexpected: "stream ended without an error" };
      } catch (e) {
        const err = ConnectError.from(e);
        return {
          code: err.code,
          rawMessage: err.rawMessage,
          details: err.details.map((d) => ({
            type: d.type ?? d.desc?.typeName,
            value: Buffer.from(d.value).toString("base64").replace(/=+$/, ""),
          })),
        };
      }
    },
  );

  if (fullDuplex) {
    // Client and bidi streaming need HTTP/2 in connect-node.
    async function* requests(...items) {
      for (const requestData of items) yield { requestData };
    }
    await run(`${tname} client stream`, "Hello, a, b", async () =>
      (await client.clientStreamRPC(requests("a", "b"), withTimeout)).responseData);
    await run(`${tname} bidi stream`, ["Hello, a", "Hello, b"], async () => {
      const got = [];
      for await (const m of client.bidiStreamRPC(requests("a", "b"), withTimeout)) got.push(m.responseData);
      return got;
    });
  }
}

// Deadlines: connect-timeout-ms / grpc-timeout against a stream paced 1 s apart.
for (const [tname, transport] of [transports[0], transports[3], transports[4], transports[6]]) {
  const client = createClient(ConnectService, transport);
  await run(`${tname} deadline 300 ms on a 1 s paced stream is DeadlineExceeded`,
    { code: Code.DeadlineExceeded }, async () => {
      try {
        for await (const m of client.serverStreamRPC(
          { requestData: "slow", count: 3, intervalMs: 1000 }, { timeoutMs: 300 })) {
          void m;
        }
        return { unexpected: "stream ended without an error" };
      } catch (e) {
        return { code: ConnectError.from(e).code };
      }
    });
}

// Compression both ways: gzip requests (even tiny ones) and gzip accepted for responses.
const gzip = { sendCompression: compressionGzip, acceptCompression: [compressionGzip], compressMinBytes: 0 };
for (const [tname, transport] of [
  ["connect json http/1.1 gzip", createConnectTransport({ baseUrl, httpVersion: "1.1", ...gzip })],
  ["connect proto http/2 gzip", createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, ...gzip })],
  ["grpc-web proto http/1.1 gzip", createGrpcWebTransport({ baseUrl, httpVersion: "1.1", ...gzip })],
  ["grpc http/2 gzip", createGrpcTransport({ baseUrl, ...gzip })],
]) {
  const client = createClient(ConnectService, transport);
  const big = "z".repeat(2000);
  await run(`${tname} unary`, `Hello, ${big}`, async () =>
    (await client.unaryRPC({ requestData: big }, withTimeout)).responseData);
  await run(`${tname} server stream of 3`, streamItems("gz", 3), async () => {
    const got = [];
    for await (const m of client.serverStreamRPC({ requestData: "gz", count: 3 }, withTimeout)) got.push(m.responseData);
    return got;
  });
}

process.exit(failed ? 1 : 0);
