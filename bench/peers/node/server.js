'use strict';
// ConnectService on @grpc/grpc-js: a benchmark peer for bench/run.py.
// Usage: node server.js HOST:PORT   (one process; Node runs the handlers on one thread)
const path = require('path');
const { setTimeout: sleep } = require('timers/promises');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.join(__dirname, '..', '..', '..', 'proto', 'connect.proto');

const addr = process.argv[2];
if (!addr) {
  console.error('usage: node server.js HOST:PORT');
  process.exit(2);
}

const def = protoLoader.loadSync(PROTO, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(def);

// Resolves once the stream can take more ('drain'), or when the call is over.
function drained(call) {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      call.off('error', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  });
}

function unaryRPC(call, callback) {
  callback(null, { response_data: 'Hello, ' + call.request.request_data });
}

async function serverStreamRPC(call) {
  const { request_data, count, interval_ms } = call.request;
  const n = count || 10;
  let over = false;
  call.on('cancelled', () => { over = true; });
  call.on('error', () => { over = true; });
  try {
    for (let i = 1; i <= n && !over; i++) {
      if (i > 1 && interval_ms > 0) await sleep(interval_ms);
      if (over) break;
      const more = call.write({ response_data: `Hello, ${request_data}: server(${i}) ` });
      if (!more) await drained(call);
    }
    if (!over) call.end();
  } catch (err) {
    if (!over) call.destroy(err);
  }
}

function clientStreamRPC(call, callback) {
  const parts = [];
  call.on('data', (req) => parts.push(req.request_data));
  call.on('end', () => callback(null, { response_data: 'Hello, ' + parts.join(', ') }));
  call.on('error', () => {});
}

function bidiStreamRPC(call) {
  call.on('data', (req) => {
    if (!call.write({ response_data: 'Hello, ' + req.request_data })) {
      call.pause();
      call.once('drain', () => call.resume());
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => {});
}

const server = new grpc.Server();
server.addService(proto.ConnectService.service, {
  UnaryRPC: unaryRPC,
  ServerStreamRPC: serverStreamRPC,
  ClientStreamRPC: clientStreamRPC,
  BidiStreamRPC: bidiStreamRPC,
});

server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`node peer: cannot bind ${addr}: ${err.message}`);
    process.exit(1);
  }
  console.error(`node peer: @grpc/grpc-js ${require('@grpc/grpc-js/package.json').version} on ${addr} (port ${port}), node ${process.version}`);
});

function stop() {
  const force = setTimeout(() => { server.forceShutdown(); process.exit(0); }, 2000);
  force.unref();
  server.tryShutdown(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
