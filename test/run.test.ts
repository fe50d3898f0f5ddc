// `skein run`: the app starts only after its sidecar is ready, gets the mesh environment, its exit code
// is passed through, SIGTERM reaches it and the sidecar drains, and a sidecar crash stops the app.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";

const root = new URL("..", import.meta.url).pathname;
let cp: ControlPlane;
let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "skein-run-"));
  const config = join(work, "config");
  execFileSync("mkdir", ["-p", config]);
  writeFileSync(
    join(config, "svc.yaml"),
    `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: batch, namespace: jobs }
spec:
  selector: { app: batch }
  ports: [{ name: http, port: 8080 }]
`,
  );
  cp = new ControlPlane({
    configDir: config,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("cp", "error"),
  });
  await cp.start();
});

after(async () => {
  await cp.stop();
});

/** Runs `skein run` with a small Node program as the app. */
function run(app: string, extra: string[] = []) {
  const file = join(work, `app-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, app);
  const child = spawn(
    process.execPath,
    [
      join(root, "dist/cli/main.js"),
      "run",
      "--service",
      "batch",
      "--version",
      "v1",
      "-n",
      "jobs",
      "--drain",
      "500",
      "--control-plane",
      `http://127.0.0.1:${cp.ports.http}`,
      ...extra,
      "--",
      process.execPath,
      file,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const done = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, done, out: () => stdout, err: () => stderr };
}

async function until(what: string, pred: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("the app starts after its sidecar is ready, with the mesh environment; its exit code is passed through", async () => {
  const r = run(`
const ready = await fetch(process.env.SKEIN_ADMIN + "/ready");
console.log(JSON.stringify({ ready: ready.status, proxy: process.env.HTTP_PROXY, noProxy: process.env.NO_PROXY, port: process.env.PORT, ns: process.env.SKEIN_NAMESPACE }));
process.exit(7);
`);
  const code = await r.done;
  assert.equal(code, 7, r.err());
  const line = JSON.parse(r.out().trim().split("\n").at(-1) ?? "{}") as Record<string, string | number>;
  assert.equal(line.ready, 200, "the sidecar was ready before the app ran");
  assert.match(String(line.proxy), /^http:\/\/127\.0\.\d+\.\d+:15001$/);
  assert.match(String(line.noProxy), /127\.0\.0\.1/);
  assert.ok(Number(line.port) > 0);
  assert.equal(line.ns, "jobs");
});

test("inbound traffic reaches the app through its sidecar; SIGTERM reaches the app and the sidecar drains", async () => {
  const marker = join(work, "terminated");
  const r = run(`
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";
createServer((req, res) => res.end("hello from the app")).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening " + process.env.SKEIN_ADDRESS));
process.on("SIGTERM", () => { writeFileSync(${JSON.stringify(marker)}, "yes"); process.exit(0); });
`);
  await until("the app listens", () => r.out().includes("listening"));
  const address = /listening (\S+)/.exec(r.out())?.[1];
  const res = await fetch(`http://${address}:8080/`);
  assert.equal(await res.text(), "hello from the app");
  r.child.kill("SIGTERM");
  assert.equal(await r.done, 0);
  assert.equal(readFileSync(marker, "utf8"), "yes");
  await assert.rejects(fetch(`http://${address}:15000/ready`), "the sidecar is gone");
});

test("a crash of the sidecar is reported and the app is stopped, not left running unmeshed", async () => {
  const r = run(`
setInterval(() => {}, 1000);
console.log("app up " + process.env.SKEIN_ADDRESS);
process.on("SIGTERM", () => { console.log("app stopping"); process.exit(0); });
`);
  await until("the app runs", () => r.out().includes("app up"));
  const address = /app up (\S+)/.exec(r.out())?.[1];
  const pid = execFileSync("pgrep", ["-f", `proxy --xds \\S+ --address ${address} `])
    .toString()
    .trim()
    .split("\n")[0];
  process.kill(Number(pid), "SIGKILL");
  const code = await r.done;
  assert.equal(code, 70);
  assert.match(r.err(), /the sidecar stopped unexpectedly/);
  assert.match(r.out(), /app stopping/);
});

test("a sidecar that cannot get ready keeps the app from starting", async () => {
  const r = run(`console.log("APP RAN")`, ["--ready-timeout", "1"]);
  assert.equal(await r.done, 70);
  assert.match(r.err(), /the sidecar was not ready within 1 ms/);
  assert.ok(!r.out().includes("APP RAN"));
  const bad = run(`console.log("APP RAN")`, ["--port", "http=notaport"]);
  assert.equal(await bad.done, 2, "a bad flag is a usage error");
  assert.match(bad.err(), /--port http=notaport: write name=port/);
});
