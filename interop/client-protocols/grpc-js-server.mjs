// A grpc-js server (@grpc/grpc-js, the schema loaded at run time by
// @grpc/proto-loader from proto/connect.proto) implementing ConnectService as
// server.mjs does, for interop/client-protocols/run: connect-client calls it
// in gRPC, the one protocol grpc-js serves. Listens on 127.0.0.1, plaintext
// HTTP/2; prints "grpc-js PORT" once it does.
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [, , protoFile] = process.argv;
const definition = protoLoader.loadSync(protoFile, { defaults: true });
const { ConnectService } = grpc.loadPackageDefinition(definition);

const server = new grpc.Server();
server.addService(ConnectService.service, {
  UnaryRPC(call, callback) {
    if (call.request.requestData === "missing") {
      callback({ code: grpc.status.NOT_FOUND, details: "no such greeting" });
      return;
    }
    callback(null, { responseData: `Hello, ${call.request.requestData}` });
  },
  ServerStreamRPC(call) {
    const count = call.request.count || 10;
    for (let i = 1; i <= count; i++) {
      call.write({ responseData: `Hello, ${call.request.requestData}: server(${i}) ` });
    }
    const trailer = new grpc.Metadata();
    trailer.set("x-message-count", String(count));
    call.end(trailer);
  },
  ClientStreamRPC(call, callback) {
    const data = [];
    call.on("data", (request) => data.push(request.requestData));
    call.on("end", () => callback(null, { responseData: `Hello, ${data.join(", ")}` }));
  },
  BidiStreamRPC(call) {
    call.on("data", (request) => call.write({ responseData: `Hello, ${request.requestData}` }));
    call.on("end", () => call.end());
  },
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
  console.log(`grpc-js ${port}`);
});
