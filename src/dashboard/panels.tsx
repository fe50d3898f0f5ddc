// The dashboard's side panels: services (canary split set and seen, routes, recent errors), applied
// configuration with its validation status, and connected proxies with the versions they ACKed.
import type { ServiceDetail, SplitEntry } from "../control-plane/dashboard-types.js";

/** GET /api/v1/status, the fields the page reads. */
export interface StatusResponse {
  version?: string;
  acceptedAt?: string;
  resources: number;
  warnings: { code: string; severity: string; message: string; file?: string; line?: number }[];
  rejections: number;
  lastRejection?: {
    trigger: string;
    at: string;
    diagnostics: { code: string; severity: string; message: string }[];
  };
  proxies: number;
  workloads: number;
}

/** GET /api/v1/resources. */
export interface ResourcesResponse {
  version?: string;
  items: { kind: string; namespace: string; name: string; source: { file: string; line: number } }[];
}

/** GET /debug/proxy_status. */
export interface ProxyStatusResponse {
  proxies: {
    id: string;
    kind: string;
    namespace: string;
    workload?: string;
    connectedAt: string;
    types: Record<string, { sent?: string; acked?: string; nack?: { version: string; message: string } }>;
  }[];
}

const pct = (n: number) => `${Math.round(n)}%`;

function splitLabel(s: SplitEntry): string {
  return s.version ?? s.subset ?? s.host;
}

/** `v1 90% · v2 10%`. */
export function splitText(entries: readonly { label: string; percent: number }[]): string {
  return entries.map((e) => `${e.label} ${pct(e.percent)}`).join(" · ");
}

function SplitBar({ entries }: { entries: { label: string; percent: number }[] }) {
  return (
    <div class="bar">
      {entries.map((e, i) => (
        <span key={e.label} class={`seg seg${i % 4}`} style={{ width: `${Math.max(e.percent, 0)}%` }}>
          {e.percent >= 12 ? `${e.label} ${pct(e.percent)}` : ""}
        </span>
      ))}
    </div>
  );
}

function Service({ s }: { s: ServiceDetail }) {
  const configured = s.configuredSplit.map((e) => ({ label: splitLabel(e), percent: e.percent }));
  const observed = s.observedSplit.map((e) => ({ label: e.version, percent: e.percent }));
  return (
    <section class="service" data-service={`${s.namespace}/${s.name}`}>
      <h3>
        {s.name} <small>{s.namespace}</small>
        <span class="stats">
          {s.rps.toFixed(1)} rps · {(100 * s.errorRate).toFixed(1)}% 5xx · p99{" "}
          {s.p99Ms === null ? "–" : `${s.p99Ms.toFixed(0)} ms`}
        </span>
      </h3>
      {configured.length > 0 ? (
        <div class="split">
          <span class="label">
            split set by <code>{s.routeTable}</code>
          </span>
          <span
            data-testid="configured-split"
            data-split={s.configuredSplit.map((e) => `${splitLabel(e)}=${Math.round(e.percent)}`).join(",")}
          >
            {splitText(configured)}
          </span>
          <SplitBar entries={configured} />
        </div>
      ) : (
        <div class="split muted">
          {s.routeTable ? "no catch-all route" : "no VirtualService: spread over all endpoints"} · versions{" "}
          {s.versions.join(", ") || "–"}
        </div>
      )}
      {s.rps > 0 && (
        <div class="split">
          <span class="label">seen in the last window</span>
          <span data-testid="observed-split">{splitText(observed)}</span>
          <SplitBar entries={observed} />
        </div>
      )}
      {s.routes.length > 0 && (
        <ul class="routes">
          {s.routes.map((r, i) => (
            <li key={`${i}-${r.match}`}>
              <span class="match">
                {r.name ? `${r.name}: ` : ""}
                {r.match}
              </span>{" "}
              → {r.destinations.map((d) => `${splitLabel(d)} ${pct(d.percent)}`).join(", ")}
            </li>
          ))}
        </ul>
      )}
      {s.recentErrors.length > 0 && (
        <ul class="errors" data-testid="recent-errors">
          {s.recentErrors.slice(0, 5).map((e) => (
            <li key={`${e.at}-${e.source}-${e.destination}-${e.responseCode}`}>
              {new Date(e.at).toLocaleTimeString()} {e.responseCode}
              {e.responseFlags ? ` ${e.responseFlags}` : ""} ×{e.count} {e.source} → {e.destination}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function ServicesPanel({ services }: { services: ServiceDetail[] }) {
  return (
    <div class="panel" data-testid="services-panel">
      <h2>Services</h2>
      {services.length === 0 ? <p class="empty">No services in the applied configuration.</p> : null}
      {services.map((s) => (
        <Service key={`${s.namespace}/${s.name}`} s={s} />
      ))}
    </div>
  );
}

export function ConfigPanel({
  status,
  resources,
}: {
  status?: StatusResponse;
  resources?: ResourcesResponse;
}) {
  if (!status) return null;
  const last = status.lastRejection;
  return (
    <div class="panel" data-testid="config-panel">
      <h2>Configuration</h2>
      <p>
        {status.version ? (
          <>
            <span class="pill ok">accepted</span> version <code>{status.version.slice(0, 12)}</code>
            {status.acceptedAt ? ` at ${new Date(status.acceptedAt).toLocaleTimeString()}` : ""} ·{" "}
            {status.resources} resources · {status.warnings.length} warnings
          </>
        ) : (
          <span class="pill bad">no configuration accepted</span>
        )}
      </p>
      {last && (
        <p class="rejected">
          <span class="pill bad">rejected</span> last change ({last.trigger}) at{" "}
          {new Date(last.at).toLocaleTimeString()}:{" "}
          {last.diagnostics
            .filter((d) => d.severity === "error")
            .slice(0, 3)
            .map((d) => `${d.code} ${d.message}`)
            .join("; ")}{" "}
          — the version above stays in force
        </p>
      )}
      {status.warnings.length > 0 && (
        <ul class="warnings">
          {status.warnings.slice(0, 5).map((w) => (
            <li key={`${w.code}-${w.file}-${w.line}`}>
              {w.code} {w.message}
            </li>
          ))}
        </ul>
      )}
      <table>
        <thead>
          <tr>
            <th>kind</th>
            <th>name</th>
            <th>source</th>
          </tr>
        </thead>
        <tbody>
          {(resources?.items ?? []).map((r) => (
            <tr key={`${r.kind}/${r.namespace}/${r.name}`}>
              <td>{r.kind}</td>
              <td>
                {r.namespace}/{r.name}
              </td>
              <td class="muted">
                {r.source.file.split("/").at(-1)}:{r.source.line}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const TYPES = ["lds", "rds", "cds", "eds"];

export function ProxiesPanel({ proxies }: { proxies?: ProxyStatusResponse }) {
  if (!proxies) return null;
  return (
    <div class="panel" data-testid="proxies-panel">
      <h2>Proxies</h2>
      <table>
        <thead>
          <tr>
            <th>proxy</th>
            {TYPES.map((t) => (
              <th key={t}>{t.toUpperCase()}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {proxies.proxies.map((p) => (
            <tr key={p.id} data-proxy={p.id}>
              <td title={p.id}>
                {p.workload ?? p.id} <small class="muted">{p.kind}</small>
              </td>
              {TYPES.map((t) => {
                const s = p.types[t];
                const state = s?.nack ? "NACK" : !s?.sent ? "–" : s.acked === s.sent ? "SYNCED" : "STALE";
                return (
                  <td
                    key={t}
                    class={state === "SYNCED" ? "ok" : state === "–" ? "muted" : "bad"}
                    title={s?.nack ? s.nack.message : `sent ${s?.sent ?? "–"}, acked ${s?.acked ?? "–"}`}
                  >
                    {state} {s?.acked ? <code>{s.acked.slice(0, 8)}</code> : null}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
