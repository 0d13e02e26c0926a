// A Connect-ES server (@connectrpc/connect-node) implementing ConnectService,
// for interop/client-protocols/run: connect-client calls it in gRPC, gRPC-Web
// and Connect. One handler, two listeners on 127.0.0.1: HTTP/2 without TLS
// (prior knowledge) and HTTP/1.1. Prints "h2 PORT" and "h1 PORT" once both listen.
import http from "node:http";
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ConnectService } from "./gen/es/connect_pb.js";

const handler = connectNodeAdapter({
  routes(router) {
    router.service(ConnectService, {
      unaryRPC(request, context) {
        if (request.requestData === "missing") {
          throw new ConnectError("no such greeting", Code.NotFound);
        }
        context.responseHeader.set("x-served-by", "connect-node");
        return { responseData: `Hello, ${request.requestData}` };
      },
      async *serverStreamRPC(request, context) {
        const count = request.count || 10;
        for (let i = 1; i <= count; i++) {
          yield { responseData: `Hello, ${request.requestData}: server(${i}) ` };
        }
        context.responseTrailer.set("x-message-count", String(count));
      },
      async clientStreamRPC(requests) {
        const data = [];
        for await (const request of requests) data.push(request.requestData);
        return { responseData: `Hello, ${data.join(", ")}` };
      },
      async *bidiStreamRPC(requests) {
        for await (const request of requests) yield { responseData: `Hello, ${request.requestData}` };
      },
    });
  },
});

const listen = (server) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
const h2 = await listen(http2.createServer(handler));
const h1 = await listen(http.createServer(handler));
console.log(`h2 ${h2}\nh1 ${h1}`);
