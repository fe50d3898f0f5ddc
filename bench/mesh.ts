// Starts the real Skein processes a scenario needs, as the CLI starts them: `skein control-plane` on a
// config directory the harness writes, and `skein proxy` sidecars on their own 127.0.x addresses. The
// compiled CLI (dist/) is used, not tsx, so what is measured is what ships.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Child, freePort, startChild, waitHttpOk } from "./procs.js";

export const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
export const NAMESPACE = "bench";

export interface ControlPlaneProcess {
  child: Child;
  dir: string;
  xds: string;
  http: string;
}

export async function startControlPlane(files: Record<string, string>): Promise<ControlPlaneProcess> {
  const dir = mkdtempSync(join(tmpdir(), "skein-bench-cp-"));
  const config = join(dir, "config");
  const state = join(dir, "state");
  writeConfig(config, files);
  const [xdsPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const child = startChild(
    "control-plane",
    process.execPath,
    [
      CLI,
      "control-plane",
      "-c",
      config,
      "--state-dir",
      state,
      "--xds-port",
      String(xdsPort),
      "--http-port",
      String(httpPort),
      "--metrics-port",
      String(metricsPort),
      // No fixed port in tests and benchmarks (xDS over TLS defaults to 15012).
      "--xds-tls-port",
      "0",
    ],
    { ...process.env, SKEIN_LOG_LEVEL: "warn" },
  );
  const http = `http://127.0.0.1:${httpPort}`;
  await waitHttpOk(`${http}/ready`, 30_000, child);
  return { child, dir: config, xds: `127.0.0.1:${xdsPort}`, http };
}

export function writeConfig(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

export interface SidecarSpec {
  name: string;
  address: string;
  xds: string;
  labels: Record<string, string>;
  /** Service port name → port the sidecar serves inbound. */
  ports?: Record<string, number>;
  /** Service port name → the application's port on 127.0.0.1. */
  appPorts?: Record<string, number>;
  /** Extra node flags (`--cpu-prof` and the like), placed before the CLI path. */
  nodeArgs?: string[];
  /**
   * Bootstrap token (`issueToken`) and the control plane's HTTP API: the sidecar gets its mTLS certificate
   * from the CA, as under `skein run`, and is ready only once it has it. Without them it has no identity.
   */
  identity?: { token: string; ca: string };
}

export async function startSidecar(s: SidecarSpec, readyTimeoutMs = 15_000): Promise<Child> {
  const args = [
    ...(s.nodeArgs ?? []),
    CLI,
    "proxy",
    "--xds",
    s.xds,
    "--address",
    s.address,
    "--name",
    s.name,
    "--namespace",
    NAMESPACE,
    "--service-account",
    s.name,
    "--drain",
    "500",
    ...Object.entries(s.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    ...Object.entries(s.ports ?? {}).flatMap(([k, v]) => ["--port", `${k}=${v}`]),
    ...Object.entries(s.appPorts ?? {}).flatMap(([k, v]) => ["--app-port", `${k}=${v}`]),
  ];
  const child = startChild(`sidecar ${s.name}`, process.execPath, args, {
    ...process.env,
    SKEIN_LOG_LEVEL: "warn",
    // In the environment, as `skein run` passes them: not on the command line.
    ...(s.identity && { SKEIN_BOOTSTRAP_TOKEN: s.identity.token, SKEIN_CA: s.identity.ca }),
  });
  await waitHttpOk(`http://${s.address}:15000/ready`, readyTimeoutMs, child);
  return child;
}

/** A bootstrap token for one identity from the control plane's HTTP API (what `skein run` asks for). */
export async function issueToken(http: string, serviceAccount: string): Promise<string> {
  const res = await fetch(`${http}/api/v1/workloads/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ namespace: NAMESPACE, serviceAccount }),
  });
  const body = (await res.json()) as { token?: unknown };
  if (res.status !== 201 || typeof body.token !== "string")
    throw new Error(`token for ${NAMESPACE}/${serviceAccount}: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/**
 * The bench namespace's server Service: one port per protocol, named for Istio's protocol selection. Its
 * PeerAuthentication is DISABLE, so the plaintext rows stay plaintext (a sidecar-registered workload would
 * otherwise be PERMISSIVE and its clients would try automatic mTLS) and have no TLS inspector on the inbound.
 */
export const SERVER_SERVICE = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: bench-server, namespace: ${NAMESPACE} }
spec:
  selector: { app: bench-server }
  ports:
    - { name: http, port: 8080 }
    - { name: http2, port: 8081 }
    - { name: grpc, port: 9090 }
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: { name: bench-server-plaintext, namespace: ${NAMESPACE} }
spec:
  selector: { matchLabels: { app: bench-server } }
  mtls: { mode: DISABLE }
`;

/**
 * The same server behind mutual TLS: Service `bench-server-mtls` with a STRICT PeerAuthentication (so
 * plaintext is refused and a request that succeeds went over mTLS); its clients use automatic mTLS.
 */
export const MTLS_SERVER_SERVICE = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: bench-server-mtls, namespace: ${NAMESPACE} }
spec:
  selector: { app: bench-server-mtls }
  ports:
    - { name: http, port: 8080 }
    - { name: http2, port: 8081 }
    - { name: grpc, port: 9090 }
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: { name: bench-server-mtls, namespace: ${NAMESPACE} }
spec:
  selector: { matchLabels: { app: bench-server-mtls } }
  mtls: { mode: STRICT }
`;

/** `count` services, each with one static workload, to grow the mesh for the memory scenarios. */
export function manyServices(count: number, firstOctet = 1): string {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    // Addresses nothing binds: the endpoints only have to exist in EDS.
    const address = `127.${firstOctet}.${(i + 1) >> 8}.${(i + 1) & 255}`;
    docs.push(`apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: svc-${i}, namespace: ${NAMESPACE} }
spec:
  selector: { app: svc-${i} }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: svc-${i}-0, namespace: ${NAMESPACE}, labels: { app: svc-${i} } }
spec: { address: ${address}, ports: { http: 8080 } }
`);
  }
  return docs.join("---\n");
}
