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

async function calls(client) {
  const opts = { timeoutMs: 10000 };
  const unary = await attempt(async () =>
    (await client.unaryRPC({ requestData: "browser" }, opts)).responseData);
  const stream = await attempt(async () => {
    const got = [];
    for await (const m of client.serverStreamRPC({ requestData: "browser", count: 3 }, opts)) {
      got.push(m.responseData);
    }
    return got;
  });
  return { unary, stream };
}

const results = {
  connectJson: await calls(createClient(ConnectService,
    createConnectTransport({ baseUrl: server, useBinaryFormat: false }))),
  grpcWeb: await calls(createClient(ConnectService, createGrpcWebTransport({ baseUrl: server }))),
};
const out = document.getElementById("results");
out.textContent = JSON.stringify(results);
out.dataset.done = "1";
