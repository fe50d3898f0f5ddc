// Lowerings of the security, telemetry, mesh-configuration and monitoring kinds, by `group/Kind`, and the
// set lowering that fixes policy scopes once the root namespace is known.
import { INSTALL_GROUP } from "../../api/istio/operator.js";
import { SECURITY_GROUP } from "../../api/istio/security.js";
import { TELEMETRY_GROUP } from "../../api/istio/telemetry.js";
import { MONITORING_GROUP } from "../../api/monitoring.js";
import {
  lowerAuthorizationPolicy,
  lowerPeerAuthentication,
  lowerRequestAuthentication,
} from "./istio-security.js";
import { lowerIstioOperator, lowerTelemetry } from "./istio-telemetry.js";
import { lowerServiceMonitor } from "./monitoring.js";
import type { KindLowering } from "./types.js";

export { policyScopes } from "./policy-scope.js";

export const policyKindLowerings: [string, KindLowering][] = [
  [`${SECURITY_GROUP}/PeerAuthentication`, lowerPeerAuthentication],
  [`${SECURITY_GROUP}/AuthorizationPolicy`, lowerAuthorizationPolicy],
  [`${SECURITY_GROUP}/RequestAuthentication`, lowerRequestAuthentication],
  [`${TELEMETRY_GROUP}/Telemetry`, lowerTelemetry],
  [`${INSTALL_GROUP}/IstioOperator`, lowerIstioOperator],
  [`${MONITORING_GROUP}/ServiceMonitor`, lowerServiceMonitor],
];
