// Reference proxies on the same machine and in the same run: nginx and HAProxy (Debian packages the
// harness installs with apt-get when missing), each configured as a single hop in front of the origin and
// as a second hop in front of that, one worker/thread per process like one single-threaded sidecar.
// Also Debian's wrk and h2load, which drive saturation runs with less CPU than a Node client would.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Child, startChild } from "./procs.js";

export interface Tools {
  nginx?: string;
  haproxy?: string;
  wrk?: string;
  h2load?: string;
  /** Versions as the tools print them. */
  versions: Record<string, string>;
  /** Why a tool is missing. */
  missing: Record<string, string>;
}

const PACKAGES: Record<string, string> = {
  nginx: "nginx",
  haproxy: "haproxy",
  wrk: "wrk",
  h2load: "nghttp2-client",
};

function which(cmd: string): string | undefined {
  for (const dir of ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]) {
    const r = spawnSync("test", ["-x", join(dir, cmd)]);
    if (r.status === 0) return join(dir, cmd);
  }
  return undefined;
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim()) ?? "";
}

/** Finds the tools, installing the missing ones with apt-get when running as root (and allowed to). */
export function ensureTools(install: boolean, log: (m: string) => void): Tools {
  const missing = Object.keys(PACKAGES).filter((c) => !which(c));
  const reasons: Record<string, string> = {};
  if (missing.length > 0) {
    if (!install) for (const c of missing) reasons[c] = "not installed (--no-install)";
    else if (process.getuid?.() !== 0) for (const c of missing) reasons[c] = "not installed and not root";
    else {
      const pkgs = missing.map((c) => PACKAGES[c] as string);
      log(`installing ${pkgs.join(" ")} with apt-get`);
      const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
      const args = ["install", "-y", "--no-install-recommends", ...pkgs];
      let r = spawnSync("apt-get", args, { env, encoding: "utf8" });
      if (r.status !== 0) {
        spawnSync("apt-get", ["update"], { env, encoding: "utf8" });
        r = spawnSync("apt-get", args, { env, encoding: "utf8" });
      }
      if (r.status !== 0)
        for (const c of missing)
          reasons[c] = `apt-get install failed: ${(r.stderr ?? "").trim().split("\n").at(-1)}`;
    }
  }
  const tools: Tools = { versions: {}, missing: {} };
  for (const c of Object.keys(PACKAGES) as (keyof typeof PACKAGES)[]) {
    const path = which(c);
    if (!path) {
      tools.missing[c] = reasons[c] ?? "not installed";
      continue;
    }
    (tools as unknown as Record<string, string>)[c] = path;
    tools.versions[c] =
      c === "nginx"
        ? version(path, ["-v"])
        : c === "haproxy"
          ? version(path, ["-v"])
          : c === "wrk"
            ? version(path, ["-v"])
            : version(path, ["--version"]);
  }
  return tools;
}

export interface HopPorts {
  http1: number;
  h2c: number;
  grpc: number;
}

/** Where a hop forwards: its upstream's host and per-protocol ports. */
export interface Upstream {
  host: string;
  ports: HopPorts;
}

/** The listening ports every reference hop uses on its own 127.0.x address (the sidecar's inbound ones). */
export const HOP_PORTS: HopPorts = { http1: 8080, h2c: 8081, grpc: 9090 };

/**
 * nginx as one hop. nginx cannot speak h2c to an upstream (proxy_pass is HTTP/1.x; grpc_pass is for gRPC),
 * so its h2c listener forwards over HTTP/1.1 keep-alive: the same request, a cheaper upstream protocol.
 */
export function startNginx(bin: string, dir: string, name: string, address: string, up: Upstream): Child {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const root = process.getuid?.() === 0 ? "user root;\n" : "";
  const conf = `${root}daemon off;
master_process on;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  http2_max_requests 1000000;
  upstream h1 { server ${up.host}:${up.ports.http1}; keepalive 128; keepalive_requests 1000000; }
  upstream g { server ${up.host}:${up.ports.grpc}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen ${address}:${HOP_PORTS.http1};
    location / { proxy_pass http://h1; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen ${address}:${HOP_PORTS.h2c} http2;
    location / { proxy_pass http://h1; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen ${address}:${HOP_PORTS.grpc} http2;
    location / { grpc_pass grpc://g; }
  }
}
`;
  const file = join(d, "nginx.conf");
  writeFileSync(file, conf);
  return startChild(`nginx ${name}`, bin, ["-p", d, "-c", file]);
}

/** HAProxy as one hop, HTTP/1.1 keep-alive and end-to-end h2c/gRPC (`proto h2` on both sides). */
export function startHaproxy(bin: string, dir: string, name: string, address: string, up: Upstream): Child {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const conf = `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend h1
  bind ${address}:${HOP_PORTS.http1}
  default_backend h1
backend h1
  server origin ${up.host}:${up.ports.http1}
frontend h2c
  bind ${address}:${HOP_PORTS.h2c} proto h2
  default_backend h2c
backend h2c
  server origin ${up.host}:${up.ports.h2c} proto h2
frontend grpc
  bind ${address}:${HOP_PORTS.grpc} proto h2
  default_backend grpc
backend grpc
  server origin ${up.host}:${up.ports.grpc} proto h2
`;
  const file = join(d, "haproxy.cfg");
  writeFileSync(file, conf);
  return startChild(`haproxy ${name}`, bin, ["-db", "-f", file]);
}

export interface ToolRun {
  tool: "wrk" | "h2load";
  completed: number;
  errors: number;
  achievedRps: number;
  durationS: number;
  raw: string;
}

/** wrk, HTTP/1.1 keep-alive, POST of `bytes` bytes on `connections` connections from one thread. */
export function runWrk(
  bin: string,
  dir: string,
  url: string,
  authority: string,
  bytes: number,
  connections: number,
  seconds: number,
): ToolRun {
  const script = join(dir, "post.lua");
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = string.rep("x", ${bytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\nwrk.headers["Host"] = "${authority}"\n`,
  );
  const r = spawnSync(bin, ["-t1", `-c${connections}`, `-d${seconds}s`, "-s", script, url], {
    encoding: "utf8",
    timeout: (seconds + 30) * 1000,
  });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const total = Number(/(\d+) requests in ([\d.]+)(m?s)/.exec(out)?.[1] ?? 0);
  const secs = Number(/(\d+) requests in ([\d.]+)(m?s)/.exec(out)?.[2] ?? seconds);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    tool: "wrk",
    completed: total - non2xx,
    errors: non2xx + sockErrors,
    achievedRps: Math.round(
      Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0) * ((total - non2xx) / Math.max(1, total)),
    ),
    durationS: secs,
    raw: out,
  };
}

/** h2load, h2c with prior knowledge, POST of the payload file, `clients` connections × `streams` each. */
export function runH2load(
  bin: string,
  dir: string,
  url: string,
  authority: string,
  bytes: number,
  clients: number,
  streams: number,
  seconds: number,
): ToolRun {
  const data = join(dir, "payload.bin");
  writeFileSync(data, Buffer.alloc(bytes, "x"));
  const r = spawnSync(
    bin,
    [
      "-c",
      String(clients),
      "-m",
      String(streams),
      "-D",
      String(seconds),
      "--warm-up-time=1",
      "-d",
      data,
      "-H",
      "content-type: application/octet-stream",
      "-H",
      `:authority: ${authority}`,
      url,
    ],
    { encoding: "utf8", timeout: (seconds + 30) * 1000 },
  );
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  // h2load's "status codes" line can trail "succeeded" by the requests that straddle --warm-up-time, so
  // success and failure come from the requests line alone.
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const bad = codes ? Number(codes[3]) + Number(codes[4]) : 0;
  const succeeded = (req ? Number(req[4]) : 0) - bad;
  const failed = (req ? Number(req[5]) + Number(req[6]) + Number(req[7]) : 0) + bad;
  const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const done = req ? Number(req[3]) : 0;
  return {
    tool: "h2load",
    completed: succeeded,
    errors: failed,
    achievedRps: Math.round(done > 0 ? rps * (succeeded / done) : 0),
    durationS: seconds,
    raw: out,
  };
}
