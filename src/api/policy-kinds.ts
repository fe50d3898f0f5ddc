// The security, telemetry, mesh-configuration and monitoring kinds, registered together.
import { operatorKinds } from "./istio/operator.js";
import { securityKinds } from "./istio/security.js";
import { telemetryKinds } from "./istio/telemetry.js";
import { monitoringKinds } from "./monitoring.js";

export const policyKinds = [...securityKinds, ...telemetryKinds, ...operatorKinds, ...monitoringKinds];
