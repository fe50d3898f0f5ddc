// What listeners need from the sidecar around them: the filter context (clusters, stats, randomness), the
// filter registry, the current RDS route tables and the per-request completion hook.
import type { RouteTable } from "../config/types.js";
import type { SecretManager } from "../identity/secrets.js";
import type { FilterContext, FilterRegistry } from "../router/chain.js";
import type { StreamInfo } from "../router/stream-info.js";

export interface ListenerContext extends FilterContext {
  readonly registry: FilterRegistry;
  /** Route tables by name, as of the last applied config (RDS). */
  routes(): ReadonlyMap<string, RouteTable>;
  /** Called once per request (and per TCP connection) when it is over; for access logs and metrics. */
  readonly onRequestComplete?: (info: StreamInfo) => void;
  /** The `default` and `ROOTCA` secrets TLS filter chains use. */
  readonly secrets: SecretManager;
}
