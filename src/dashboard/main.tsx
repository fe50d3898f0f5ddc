// The dashboard page: polls the control plane's API every two seconds (graph, services, status,
// resources, proxy status) and renders the service graph and the side panels. Served from the control
// plane itself, so every request is same-origin and nothing loads from elsewhere.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { GraphResponse, ServicesResponse } from "../control-plane/dashboard-types.js";
import { ServiceGraph } from "./graph.js";
import {
  ConfigPanel,
  ProxiesPanel,
  type ProxyStatusResponse,
  type ResourcesResponse,
  ServicesPanel,
  type StatusResponse,
} from "./panels.js";

const POLL_MS = 2000;

interface State {
  graph?: GraphResponse;
  services?: ServicesResponse;
  status?: StatusResponse;
  resources?: ResourcesResponse;
  proxies?: ProxyStatusResponse;
  updatedAt?: Date;
  error?: string;
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

async function poll(): Promise<State> {
  const [graph, services, status, resources, proxies] = await Promise.all([
    getJson<GraphResponse>("/api/v1/graph"),
    getJson<ServicesResponse>("/api/v1/services"),
    getJson<StatusResponse>("/api/v1/status"),
    getJson<ResourcesResponse>("/api/v1/resources"),
    getJson<ProxyStatusResponse>("/debug/proxy_status"),
  ]);
  return { graph, services, status, resources, proxies, updatedAt: new Date() };
}

function App() {
  const [state, setState] = useState<State>({});
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const next = await poll();
        if (!stopped) setState(next);
      } catch (err) {
        if (!stopped) setState((s) => ({ ...s, error: (err as Error).message }));
      }
      if (!stopped) timer = setTimeout(tick, POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  const { graph, services, status, resources, proxies, updatedAt, error } = state;
  const stale = error && updatedAt ? " (stale: the control plane stopped answering)" : "";
  return (
    <div class="app">
      <header>
        <h1>Skein</h1>
        <span class="muted">service mesh dashboard</span>
        <span class="spacer" />
        {graph && (
          <span class="muted" data-testid="scrape-health">
            sidecars scraped {graph.scrape.ok}/{graph.scrape.targets} every {graph.scrape.intervalMs / 1000} s
          </span>
        )}
        <span data-testid="updated" class={error ? "bad" : "muted"}>
          {updatedAt ? `updated ${updatedAt.toLocaleTimeString()}${stale}` : error ? error : "loading…"}
        </span>
      </header>
      <main>
        <section class="graph-pane">
          <h2>Service graph</h2>
          <p class="legend muted">
            edges: requests/s · 5xx share · p99 latency over the last scrape window; lock: mutual TLS
          </p>
          {graph ? <ServiceGraph graph={graph} /> : <p class="empty">loading…</p>}
        </section>
        <aside>{services && <ServicesPanel services={services.services} />}</aside>
        <aside>
          <ConfigPanel status={status} resources={resources} />
          <ProxiesPanel proxies={proxies} />
        </aside>
      </main>
    </div>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
