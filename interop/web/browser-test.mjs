// A real browser (Debian's Chromium, driven by playwright-core) calls connect-server
// from another origin with @connectrpc/connect-web.
//
// Usage: node browser-test.mjs /path/to/connect-server [/path/to/chromium]
//
// Serves browser/index.html and browser/app.js (bundled here with esbuild) from two
// static servers on 127.0.0.1: "allowed" (whose origin connect-server is started with,
// via --cors-allow-origin) and "denied" (another port, so another origin). The allowed
// page must show the exact responses over Connect JSON and gRPC-Web; on the denied page
// every call must fail because Chromium blocked it by CORS.
// Prints one PASS/FAIL line per check; exits 1 if any check failed.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const serverBin = process.argv[2];
const chromiumBin = process.argv[3] ?? "/usr/bin/chromium";
if (!serverBin) {
  console.error("usage: node browser-test.mjs /path/to/connect-server [/path/to/chromium]");
  process.exit(2);
}

let failed = 0;
function check(name, expected, actual) {
  const [e, a] = [JSON.stringify(expected), JSON.stringify(actual)];
  if (e === a) {
    console.log(`PASS browser ${name}`);
  } else {
    failed++;
    console.log(`FAIL browser ${name}\n  expected: ${e}\n  actual:   ${a}`);
  }
}

const cleanups = [];
async function cleanup() {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch {
      // best effort
    }
  }
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await cleanup();
    process.exit(1);
  });
}
// Bound the whole test: a hung browser or server must not hang CI.
const overall = setTimeout(async () => {
  console.log("FAIL browser: the browser test took over 90 s");
  await cleanup();
  process.exit(1);
}, 90_000);

// The page's script, bundled now from node_modules: no CDN.
const bundle = await esbuild.build({
  entryPoints: [join(here, "browser", "app.js")],
  bundle: true,
  format: "esm",
  target: "es2022",
  write: false,
  logLevel: "error",
});
const files = {
  "/": ["text/html; charset=utf-8", readFileSync(join(here, "browser", "index.html"))],
  "/app.js": ["text/javascript; charset=utf-8", bundle.outputFiles[0].contents],
};

function staticServer() {
  const server = http.createServer((req, res) => {
    const file = files[new URL(req.url, "http://x").pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
  });
  cleanups.push(() => new Promise((r) => server.close(r)));
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`)));
}
const allowedOrigin = await staticServer();
const deniedOrigin = await staticServer();

// connect-server, allowing only the first page's origin.
async function startServer() {
  const child = spawn(serverBin,
    ["--addr", "127.0.0.1:0", "--metrics-addr", "off", "--cors-allow-origin", allowedOrigin,
      "--server-id", "web-interop-browser"],
    { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(() => child.kill("SIGKILL"));
  const lines = createInterface({ input: child.stdout });
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect-server not ready within 15 s")), 15_000);
    child.on("exit", (code) => reject(new Error(`connect-server exited (${code}) before it was ready`)));
    lines.on("line", (line) => {
      const m = /^Server listening on (127\.0\.0\.1:\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
  });
}
const serverUrl = await startServer();

const userDataDir = mkdtempSync(join(tmpdir(), "web-interop-chromium-"));
cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumBin,
  headless: true,
  timeout: 30_000,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
cleanups.push(() => context.close());
console.log(`browser: ${chromiumBin} ${context.browser()?.version() ?? ""}`.trimEnd());

async function visit(origin) {
  const page = await context.newPage();
  const console_ = [];
  page.on("console", (msg) => console_.push(msg.text()));
  await page.goto(`${origin}/?server=${encodeURIComponent(serverUrl)}`, { timeout: 15_000 });
  await page.waitForSelector("#results[data-done='1']", { state: "attached", timeout: 30_000 });
  const results = JSON.parse(await page.textContent("#results"));
  if (process.env.WEB_SCREENSHOT_DIR) {
    await page.screenshot({ path: join(process.env.WEB_SCREENSHOT_DIR, `${origin.split(":").pop()}.png`) });
  }
  await page.close();
  return { results, console: console_ };
}

try {
  const items = ["Hello, browser: server(1) ", "Hello, browser: server(2) ", "Hello, browser: server(3) "];
  const unary = (id) => ({ responseData: "Hello, browser", requestId: id, servedBy: "web-interop-browser" });
  const stream = { items, messageCount: "3" };
  const allowed = await visit(allowedOrigin);
  check("allowed origin: Connect JSON unary (x-request-id sent and echoed, x-served-by)",
    unary("browser-connect"), allowed.results.connectJson.unary);
  check("allowed origin: Connect JSON server stream of 3 (x-message-count trailer)",
    stream, allowed.results.connectJson.stream);
  check("allowed origin: gRPC-Web unary (x-request-id sent and echoed, x-served-by)",
    unary("browser-grpc-web"), allowed.results.grpcWeb.unary);
  check("allowed origin: gRPC-Web server stream of 3 (x-message-count trailer)",
    stream, allowed.results.grpcWeb.stream);
  const invalid = { error: { code: 3, rawMessage: "count must be at most 1000000" } }; // InvalidArgument
  check("allowed origin: Connect JSON count 5000000 is InvalidArgument", invalid, allowed.results.connectJson.error);
  check("allowed origin: gRPC-Web count 5000000 is InvalidArgument", invalid, allowed.results.grpcWeb.error);

  // Chromium reports a CORS block to the page as a bare "Failed to fetch" TypeError
  // (connect-web: Code.Unknown = 2), and explains it on the console.
  const blocked = { error: { code: 2, rawMessage: "Failed to fetch" } };
  const denied = await visit(deniedOrigin);
  check("denied origin: Connect JSON unary blocked", blocked, denied.results.connectJson.unary);
  check("denied origin: Connect JSON stream blocked", blocked, denied.results.connectJson.stream);
  check("denied origin: gRPC-Web unary blocked", blocked, denied.results.grpcWeb.unary);
  check("denied origin: gRPC-Web stream blocked", blocked, denied.results.grpcWeb.stream);
  check("denied origin: Connect JSON error call blocked", blocked, denied.results.connectJson.error);
  check("denied origin: gRPC-Web error call blocked", blocked, denied.results.grpcWeb.error);
  const corsLines = denied.console.filter((l) =>
    l.includes(`from origin '${deniedOrigin}' has been blocked by CORS policy`));
  check("denied origin: Chromium logs 6 CORS blocks", 6, corsLines.length);
} catch (e) {
  failed++;
  console.log(`FAIL browser: ${e.stack ?? e}`);
}

clearTimeout(overall);
await cleanup();
process.exit(failed ? 1 : 0);
