// Bundled by esbuild at test time (interop/web/browser-test.mjs): calls
// connect-server from another origin with @connectrpc/connect-web, over the
// Connect protocol (JSON) and gRPC-Web, and writes what it got into the page.
import { createClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { ConnectService } from "../gen/es/connect_pb.js";

const server = new URLSearchParams(location.search).get("server");
document.getElementById("server").textContent = server;

async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    const err = ConnectError.from(e);
    return { error: { code: err.code, rawMessage: err.rawMessage } };
  }
}

async function calls(client, id) {
  const opts = { timeoutMs: 10000 };
  // A custom request header (so CORS must allow it) and response headers that CORS
  // must expose: connect-server echoes x-request-id and names itself in x-served-by.
  const unary = await attempt(async () => {
    let headers;
    const res = await client.unaryRPC({ requestData: "browser" },
      { ...opts, headers: { "x-request-id": id }, onHeader: (h) => (headers = h) });
    return { responseData: res.responseData, requestId: headers?.get("x-request-id"),
      servedBy: headers?.get("x-served-by") };
  });
  const stream = await attempt(async () => {
    const items = [];
    let trailers;
    for await (const m of client.serverStreamRPC({ requestData: "browser", count: 3 },
      { ...opts, onTrailer: (t) => (trailers = t) })) {
      items.push(m.responseData);
    }
    return { items, messageCount: trailers?.get("x-message-count") };
  });
  // An error: over gRPC-Web a trailers-only response, whose grpc-status and
  // grpc-message headers CORS must expose.
  const error = await attempt(async () => {
    for await (const m of client.serverStreamRPC({ requestData: "x", count: 5000000 }, opts)) {
      return { unexpectedMessage: m.responseData };
    }
    return { unexpected: "stream ended without an error" };
  });
  return { unary, stream, error };
}

const results = {
  connectJson: await calls(createClient(ConnectService,
    createConnectTransport({ baseUrl: server, useBinaryFormat: false })), "browser-connect"),
  grpcWeb: await calls(createClient(ConnectService, createGrpcWebTransport({ baseUrl: server })), "browser-grpc-web"),
};
const out = document.getElementById("results");
out.textContent = JSON.stringify(results);
out.dataset.done = "1";
