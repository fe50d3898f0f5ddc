// Issue 9, fault injection end to end: VirtualService faults → translation (per-route HTTPFault) → the real
// Sidecar's fault filter, with real upstreams. Faults apply to each upstream attempt (docs/resilience.md), so
// retries and timeouts stay in force and the client sees what a real failure would cost it.
//
// Statistics (binomial; requests independent; n stated per phase):
//  - the seed's pattern without retries, n = 2000 requests: aborts p = 0.05, sd = 0.0049, accepted
//    0.05 ± 0.025 (5.1 sd). A 10% abort rate (sd 0.0067) would have to fall 3.7 sd low to pass (p ≈ 1e-4).
//    Delays p = 0.10, sd = 0.0067, accepted 0.10 ± 0.03 (4.5 sd); 5% or 20% fails.
//  - the seed's pattern with Istio's default retries (2, on 503), n = 2000 requests (≈ 2105 attempts):
//    injected aborts per attempt 0.05 ± 0.025 (5.3 sd; 10% passes with p ≈ 7e-5); the client sees a 503
//    only when all 3 attempts abort: expected 2000 × 0.05³ = 0.25, accepted ≤ 4 (P(≥ 5) ≈ 8e-6), where
//    faulting once per request (Istio's model) would show ≈ 100.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
import type { StreamInfo } from "../src/proxy/router/stream-info.js";
import { formatResponseFlags } from "../src/proxy/router/stream-info.js";
import type { AdsServer } from "../src/xds/server.js";
import {
  type RunningSidecar,
  send,
  sendPaced,
  serviceYaml,
  startAdsServer,
  startControlPlane,
  startSidecar,
  type Upstream,
  until,
  upstream,
} from "./resilience-harness.js";

const SIDECAR = "127.0.14.10";
const HOST = "order-service.production:8080";
const seed = readFileSync(new URL("./fixtures/seed/pattern3-fault-injection.yaml", import.meta.url), "utf8");

const subsets = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: order-service, namespace: production }
spec:
  host: order-service
  subsets: [{ name: stable, labels: { version: v1 } }]
`;

/** The seed's chaos VirtualService in the production namespace, optionally with `retries` added to its route. */
function chaos(retries?: string): string {
  let vs = seed.replace(
    "  name: order-service-chaos\n",
    "  name: order-service-chaos\n  namespace: production\n",
  );
  if (retries) vs = vs.replace("      route:\n", `      retries: ${retries}\n      route:\n`);
  return vs;
}

const flags = (i: StreamInfo | undefined) => formatResponseFlags(i?.responseFlags ?? 0);

let order: Upstream;
let cp: ControlPlane;
let write: (name: string, text: string) => void;
let proxy: RunningSidecar;

before(async () => {
  order = await upstream("127.0.14.1");
  const started = await startControlPlane({
    "mesh.yaml": serviceYaml("order-service", [order]) + subsets,
    "routing.yaml": chaos("{ attempts: 0 }"),
  });
  cp = started.cp;
  write = started.write;
  proxy = await startSidecar(started.xds, SIDECAR);
});

after(async () => {
  await proxy?.stop();
  await cp?.stop();
  await order?.close();
});

function stat(name: string): number {
  return proxy.sidecar.listeners.stats.counter(`http.outbound_${SIDECAR}_15001.fault.${name}`).value;
}

/** The retry count of the route the sidecar now has for the order service. */
function numRetries(): number | undefined {
  const table = proxy.sidecar.store.config.routes.get("http_proxy");
  const action = table?.exact.get(HOST)?.routes[0]?.action;
  return action?.kind === "route" ? (action.retry?.numRetries ?? 0) : undefined;
}

test("the seed's pattern without retries: 5% of requests aborted with 503 FI, 10% delayed 5 s DI (n = 2000)", async (t) => {
  await until("the chaos route without retries applies", () => numRetries() === 0);
  const n = 2000;
  const first = proxy.completed.length;
  const rs = await sendPaced(n, 100, 25, () => send(SIDECAR, HOST, "/orders"));
  const infos = proxy.completed.slice(first);
  const aborted = rs.filter((r) => r.status === 503);
  const delayed = rs.filter((r) => r.ms >= 4500);
  assert.ok(
    rs.every((r) => r.status === 200 || (r.status === 503 && r.body === "fault filter abort")),
    "only the fault fails requests",
  );
  assert.ok(Math.abs(aborted.length / n - 0.05) <= 0.025, `aborted share ${aborted.length / n}`);
  assert.ok(Math.abs(delayed.length / n - 0.1) <= 0.03, `delayed share ${delayed.length / n}`);
  const fi = infos.filter((i) => i.responseCode === 503);
  assert.ok(
    fi.every((i) => flags(i).includes("FI")),
    "aborts carry the FI flag",
  );
  assert.equal(infos.filter((i) => flags(i).includes("DI")).length, stat("delays_injected"));
  assert.ok(
    infos.every((i) => i.attempts === 1),
    "no retries: one attempt each",
  );
  t.diagnostic(`${n} requests: ${aborted.length} aborted (503 FI), ${delayed.length} delayed ≥ 4.5 s`);
});

test("the seed's pattern with Istio's default retries: faults hit 5% of attempts; the client almost never sees them (n = 2000)", async (t) => {
  write("routing.yaml", chaos());
  await until("the default retry policy applies", () => numRetries() === 2);
  const n = 2000;
  const first = proxy.completed.length;
  const abortsBefore = stat("aborts_injected");
  const receivedBefore = order.received;
  const rs = await sendPaced(n, 100, 25, () => send(SIDECAR, HOST, "/orders"));
  const infos = proxy.completed.slice(first);
  const attempts = infos.reduce((s, i) => s + i.attempts, 0);
  const aborts = stat("aborts_injected") - abortsBefore;
  const failed = rs.filter((r) => r.status !== 200).length;
  assert.ok(Math.abs(aborts / attempts - 0.05) <= 0.025, `aborted share of attempts ${aborts / attempts}`);
  assert.ok(failed <= 4, `${failed} requests failed`);
  assert.equal(
    order.received - receivedBefore,
    attempts - aborts,
    "an aborted attempt never reaches the upstream; every other attempt does",
  );
  const retried = infos.filter((i) => i.attempts > 1).length;
  // The upstream always answers 200: every retry is of an injected abort, and only a request's last abort
  // (when it failed) went unretried.
  assert.equal(
    attempts - n,
    aborts - failed,
    "every aborted attempt but a failed request's last was retried",
  );
  t.diagnostic(
    `${n} requests, ${attempts} attempts, ${aborts} aborts injected, ${retried} requests retried, ${failed} failed`,
  );
});

test("a delay shorter than the route timeout is seen; a longer one ends in 504 UT, before reaching the upstream", async () => {
  write(
    "routing.yaml",
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: order-service, namespace: production }
spec:
  hosts: [order-service]
  http:
    - match: [{ uri: { prefix: /short } }]
      timeout: 2s
      fault: { delay: { fixedDelay: 300ms, percentage: { value: 100 } } }
      route: [{ destination: { host: order-service } }]
    - match: [{ uri: { prefix: /long } }]
      timeout: 1s
      fault: { delay: { fixedDelay: 3s, percentage: { value: 100 } } }
      route: [{ destination: { host: order-service } }]
`,
  );
  await until(
    "the timeout routes apply",
    () => proxy.sidecar.store.config.routes.get("http_proxy")?.exact.get(HOST)?.routes.length === 2,
  );
  const received = order.received;
  const short = await send(SIDECAR, HOST, "/short");
  assert.equal(short.status, 200);
  assert.ok(short.ms >= 300, `took ${short.ms} ms`);
  assert.equal(flags(proxy.completed.at(-1)), "DI");
  assert.equal(order.received, received + 1);

  const long = await send(SIDECAR, HOST, "/long");
  assert.equal(long.status, 504);
  assert.equal(long.body, "upstream request timeout");
  assert.ok(long.ms >= 1000 && long.ms < 2500, `took ${long.ms} ms`);
  assert.equal(flags(proxy.completed.at(-1)), "UT,DI");
  assert.equal(order.received, received + 1, "the delayed attempt never reached the upstream");
});

test("header-controlled faults (listener-level config), per attempt with retries and per-try timeouts; a route's own config replaces it", async () => {
  const address = "127.0.14.11";
  const yaml = `${serviceYaml("order-service", [order])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: order-service, namespace: production }
spec:
  hosts: [order-service]
  http:
    - match: [{ uri: { prefix: /override } }]
      route: [{ destination: { host: order-service } }]
    - retries: { attempts: 2, perTryTimeout: 150ms, retryOn: 5xx }
      route: [{ destination: { host: order-service } }]
`;
  let ads: AdsServer | undefined;
  let side: RunningSidecar | undefined;
  try {
    const started = await startAdsServer(yaml, address, (r) => {
      // What Istio cannot say: header-controlled faults on the listener's fault filter, and a fixed abort on one route.
      const outbound = r.listeners.find((l) => l.name === "virtualOutbound");
      const hcm = outbound?.filterChains?.[0]?.filters?.[0]?.typedConfig as unknown as {
        httpFilters: { name: string; typedConfig: Record<string, unknown> }[];
      };
      const fault = hcm.httpFilters.find((f) => f.name === "envoy.filters.http.fault");
      assert.ok(fault);
      fault.typedConfig = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        delay: { headerDelay: {}, percentage: { numerator: 100 } },
        abort: { headerAbort: {}, percentage: { numerator: 100 } },
      };
      const vh = r.routes[0]?.virtualHosts?.find((v) => v.domains?.includes(HOST));
      const override = vh?.routes?.find((x) => x.match?.prefix === "/override");
      assert.ok(override);
      override.typedPerFilterConfig = {
        "envoy.filters.http.fault": {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
          abort: { httpStatus: 418, percentage: { numerator: 100 } },
        },
      } as never;
    });
    ads = started.ads;
    side = await startSidecar(started.xds, address);
    const last = () => side?.completed.at(-1);
    const received = order.received;

    assert.equal((await send(address, HOST, "/")).status, 200, "no fault headers: no fault");
    assert.equal(order.received, received + 1);

    const aborted = await send(address, HOST, "/", { headers: { "x-envoy-fault-abort-request": "503" } });
    assert.equal(aborted.status, 503);
    assert.equal(aborted.body, "fault filter abort");
    assert.equal(flags(last()), "URX,FI", "the retry limit was reached; the fault answered");
    assert.equal(last()?.attempts, 3, "each of the 3 attempts was aborted (5xx is retried)");
    assert.equal(order.received, received + 1, "none reached the upstream");

    const lowered = await send(address, HOST, "/", {
      headers: { "x-envoy-fault-abort-request": "503", "x-envoy-fault-abort-request-percentage": "0" },
    });
    assert.equal(lowered.status, 200, "the percentage header lowers the configured 100% to 0%");

    const grpc = await send(address, HOST, "/", { headers: { "x-envoy-fault-abort-grpc-request": "14" } });
    assert.equal(grpc.status, 503, "UNAVAILABLE reaches an HTTP client as 503");

    const slow = await send(address, HOST, "/", { headers: { "x-envoy-fault-delay-request": "60" } });
    assert.equal(slow.status, 200);
    assert.ok(slow.ms >= 60);
    assert.equal(flags(last()), "DI");

    const before = order.received;
    const stuck = await send(address, HOST, "/", { headers: { "x-envoy-fault-delay-request": "1000" } });
    assert.equal(stuck.status, 504, "every attempt outlives the 150 ms per-try timeout");
    assert.equal(flags(last()), "URX,UT,DI");
    assert.equal(last()?.attempts, 3);
    assert.ok(stuck.ms >= 450 && stuck.ms < 1000, `3 per-try timeouts, not the 1 s delay: ${stuck.ms} ms`);
    assert.equal(order.received, before);

    const teapot = await send(address, HOST, "/override", {
      headers: { "x-envoy-fault-abort-request": "503" },
    });
    assert.equal(teapot.status, 418, "the route's own fault config replaces the listener's");
    const stats = side.sidecar.clusters.stats()["outbound|8080||order-service.production.svc.cluster.local"];
    assert.equal(stats?.retriesActive, 0, "faulted retries gave their max_retries slots back");
    assert.equal(stats?.retryOverflowsTotal, 0);
  } finally {
    await side?.stop();
    await ads?.close();
  }
});
