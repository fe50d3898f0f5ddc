// Control-plane scenarios: how long a config change takes to be ACKed by every connected proxy (100 or
// 1000 simulated proxies, 1000 services), and how the control plane's and one real sidecar's memory grow
// as the mesh grows, with and without an Istio Sidecar resource scoping what the sidecar sees.
import { performance } from "node:perf_hooks";
import { ROUTE } from "../src/xds/protos.js";
import { manyServices, NAMESPACE, startControlPlane, startSidecar, writeConfig } from "./mesh.js";
import { cpuSeconds, memory, sleep } from "./procs.js";
import { SimulatedProxy } from "./sim-proxy.js";

export interface AckResult {
  proxies: number;
  services: number;
  /** From the first stream opened to every proxy holding routes. */
  connectMs: number;
  /** Per change: file written → the last proxy received (and at once ACKed) the new routes. */
  allAckedMs: number[];
  /** Over changes: p50/p99 of the time until all proxies had ACKed. */
  allAckedP50Ms: number;
  allAckedP99Ms: number;
  /** Over every proxy × change: p50/p99 of the time until that proxy had ACKed. */
  perProxyP50Ms: number;
  perProxyP99Ms: number;
  /** Changes that did not reach every proxy within the timeout. */
  timeouts: number;
  /** Proxies that had their first config when the connect budget ran out (= proxies when all did). */
  configured: number;
  /** Why the change measurements were not made, when they were not. */
  incomplete?: string;
  controlPlaneRssMiB: number;
  controlPlanePeakRssMiB: number;
  controlPlaneCpuS: number;
}

export interface MemoryStep {
  services: number;
  controlPlaneRssMiB: number;
  /** A real `skein proxy` that calls nothing, configured with everything the mesh exports to it. */
  sidecarRssMiB: number;
  sidecarPeakRssMiB: number;
  sidecarClusters: number;
  /** The same, with an Istio Sidecar resource limiting its egress to one service. */
  scopedSidecarRssMiB: number;
  scopedSidecarPeakRssMiB: number;
  scopedSidecarClusters: number;
}

const mib = (kib: number | undefined) => Math.round(((kib ?? 0) / 1024) * 10) / 10;

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p% of the samples at or below it.
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] as number;
}

/** A route change that every proxy sees (svc-0 is exported to all): its timeout steps on each change. */
function routeChange(k: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: svc-0, namespace: ${NAMESPACE} }
spec:
  hosts: [svc-0]
  http:
    - timeout: ${k + 1}s
      route: [{ destination: { host: svc-0 } }]
`;
}

async function waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Waits until no proxy's route version has changed for `quietMs` (registrations settled). */
async function settle(proxies: SimulatedProxy[], quietMs: number, maxMs: number): Promise<void> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    const last = Math.max(...proxies.map((p) => Math.max(0, ...p.changedAt.values())));
    if (performance.now() - last >= quietMs) return;
    await sleep(100);
  }
}

export async function ackLatency(o: {
  proxies: number;
  services: number;
  changes: number;
  timeoutMs: number;
  /** How long connecting the whole fleet may take before the scenario gives up. */
  connectBudgetMs: number;
  log: (m: string) => void;
}): Promise<AckResult> {
  const cp = await startControlPlane({
    "services.yaml": manyServices(o.services),
    "routes.yaml": routeChange(0),
  });
  const proxies: SimulatedProxy[] = [];
  try {
    const t0 = performance.now();
    // Connect in batches, as a fleet rolling out would, rather than 1000 streams in one tick.
    for (let i = 0; i < o.proxies; i += 50) {
      const batch: SimulatedProxy[] = [];
      for (let j = i; j < Math.min(o.proxies, i + 50); j++) {
        const app = `client-${j}`;
        batch.push(
          new SimulatedProxy(
            cp.xds,
            `sidecar~127.2.${j >> 8}.${j & 255}~${app}.${NAMESPACE}~${NAMESPACE}.svc.cluster.local`,
            { NAMESPACE, LABELS: { app }, SERVICE_ACCOUNT: app, INSTANCE_IPS: `127.2.${j >> 8}.${j & 255}` },
          ),
        );
      }
      proxies.push(...batch);
      const left = o.connectBudgetMs - (performance.now() - t0);
      if (left <= 0 || !(await waitFor(() => batch.every((p) => p.versions.has(ROUTE)), left))) {
        const configured = proxies.filter((p) => p.versions.has(ROUTE)).length;
        const m = memory(cp.child.pid);
        const why = `only ${configured} of ${proxies.length} connected proxies had their first config after ${o.connectBudgetMs} ms (budget); ${o.proxies} never all connected`;
        o.log(`    ${why}`);
        return {
          proxies: o.proxies,
          services: o.services,
          connectMs: Math.round(performance.now() - t0),
          allAckedMs: [],
          allAckedP50Ms: Number.NaN,
          allAckedP99Ms: Number.NaN,
          perProxyP50Ms: Number.NaN,
          perProxyP99Ms: Number.NaN,
          timeouts: 0,
          configured,
          incomplete: why,
          controlPlaneRssMiB: mib(m?.rssKiB),
          controlPlanePeakRssMiB: mib(m?.hwmKiB),
          controlPlaneCpuS: Math.round((cpuSeconds(cp.child.pid) ?? 0) * 100) / 100,
        };
      }
    }
    const connectMs = Math.round(performance.now() - t0);
    o.log(`    ${o.proxies} proxies connected and configured in ${connectMs} ms`);
    await settle(proxies, 1000, 60_000);
    const cpu0 = cpuSeconds(cp.child.pid) ?? 0;
    const allAckedMs: number[] = [];
    const perProxy: number[] = [];
    let timeouts = 0;
    for (let k = 1; k <= o.changes; k++) {
      const before = new Map(proxies.map((p) => [p, p.versions.get(ROUTE)]));
      const start = performance.now();
      writeConfig(cp.dir, { "routes.yaml": routeChange(k) });
      const ok = await waitFor(
        () => proxies.every((p) => p.versions.get(ROUTE) !== before.get(p)),
        o.timeoutMs,
      );
      if (!ok) {
        timeouts++;
        o.log(`    change ${k}: not every proxy had it within ${o.timeoutMs} ms`);
        continue;
      }
      const times = proxies.map((p) => (p.changedAt.get(ROUTE) ?? start) - start);
      perProxy.push(...times);
      allAckedMs.push(Math.round(Math.max(...times)));
      o.log(`    change ${k}: all ${o.proxies} proxies ACKed in ${allAckedMs.at(-1)} ms`);
      await settle(proxies, 500, 30_000);
    }
    const m = memory(cp.child.pid);
    return {
      proxies: o.proxies,
      services: o.services,
      connectMs,
      allAckedMs,
      allAckedP50Ms: percentile(allAckedMs, 50),
      allAckedP99Ms: percentile(allAckedMs, 99),
      perProxyP50Ms: Math.round(percentile(perProxy, 50)),
      perProxyP99Ms: Math.round(percentile(perProxy, 99)),
      timeouts,
      configured: proxies.length,
      controlPlaneRssMiB: mib(m?.rssKiB),
      controlPlanePeakRssMiB: mib(m?.hwmKiB),
      controlPlaneCpuS: Math.round(((cpuSeconds(cp.child.pid) ?? 0) - cpu0) * 100) / 100,
    };
  } finally {
    for (const p of proxies) p.close();
    await cp.child.stop();
  }
}

const SCOPED = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: scoped, namespace: ${NAMESPACE} }
spec:
  workloadSelector: { labels: { app: mem-scoped } }
  egress:
    - hosts: ["./svc-0.${NAMESPACE}.svc.cluster.local"]
`;

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  return (await res.json()) as Record<string, unknown>;
}

/** One fresh real sidecar per step: RSS once its config is ACKed and it has idled a moment. */
async function probeSidecar(
  xds: string,
  http: string,
  address: string,
  app: string,
): Promise<{ rssMiB: number; peakMiB: number; clusters: number }> {
  const child = await startSidecar({ name: app, address, xds, labels: { app } });
  try {
    // ACKed everything it was sent: its config is applied.
    const id = `sidecar~${address}~${app}.${NAMESPACE}~${NAMESPACE}.svc.cluster.local`;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const { proxies } = (await getJson(`${http}/debug/proxy_status`)) as {
        proxies: { id: string; types: Record<string, { sent?: string; acked?: string }> }[];
      };
      const me = proxies.find((p) => p.id === id);
      if (
        me &&
        ["lds", "rds", "cds", "eds"].every(
          (t) => me.types[t]?.sent && me.types[t]?.acked === me.types[t]?.sent,
        )
      )
        break;
      await sleep(200);
    }
    await sleep(1500);
    const m = memory(child.pid);
    const dump = await getJson(`http://${address}:15000/config_dump`);
    return {
      rssMiB: mib(m?.rssKiB),
      peakMiB: mib(m?.hwmKiB),
      clusters: (dump.clusters as unknown[] | undefined)?.length ?? 0,
    };
  } finally {
    await child.stop();
  }
}

export async function memoryGrowth(o: { steps: number[]; log: (m: string) => void }): Promise<MemoryStep[]> {
  const first = o.steps[0] ?? 10;
  const cp = await startControlPlane({ "services.yaml": manyServices(first), "scoped.yaml": SCOPED });
  const out: MemoryStep[] = [];
  try {
    for (const n of o.steps) {
      writeConfig(cp.dir, { "services.yaml": manyServices(n) });
      // Services and their workloads, plus the Sidecar resource.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const s = await getJson(`${cp.http}/api/v1/status`);
        if (s.resources === 2 * n + 1) break;
        await sleep(200);
      }
      const plain = await probeSidecar(cp.xds, cp.http, "127.0.21.1", "mem-probe");
      const scoped = await probeSidecar(cp.xds, cp.http, "127.0.21.2", "mem-scoped");
      const m = memory(cp.child.pid);
      out.push({
        services: n,
        controlPlaneRssMiB: mib(m?.rssKiB),
        sidecarRssMiB: plain.rssMiB,
        sidecarPeakRssMiB: plain.peakMiB,
        sidecarClusters: plain.clusters,
        scopedSidecarRssMiB: scoped.rssMiB,
        scopedSidecarPeakRssMiB: scoped.peakMiB,
        scopedSidecarClusters: scoped.clusters,
      });
      o.log(
        `    ${n} services: control plane ${mib(m?.rssKiB)} MiB; sidecar ${plain.rssMiB} MiB (${plain.clusters} clusters); scoped sidecar ${scoped.rssMiB} MiB (${scoped.clusters} clusters)`,
      );
    }
    return out;
  } finally {
    await cp.child.stop();
  }
}
