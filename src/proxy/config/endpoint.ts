// ClusterLoadAssignment (EDS, or inline in a STATIC/DNS cluster) → EndpointSet: a flat list of address:port
// endpoints with weight, health, locality and priority. EDS and STATIC endpoints must be IP addresses (Envoy
// resolves nothing there); DNS clusters carry hostnames.
import { isIP } from "node:net";
import type { ClusterLoadAssignment__Output } from "../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import { At, names, onlyFields, resourceLabel, wrapped } from "./fields.js";
import { structValues } from "./tls.js";
import type { Endpoint, EndpointSet } from "./types.js";

/** Envoy's limit on priorities. */
const MAX_PRIORITY = 128;

export interface EndpointOptions {
  /** STATIC and EDS: every address must be an IP. DNS clusters pass false. */
  requireIp: boolean;
}

// Drop-free policies only: overprovisioning and staleness tune priority failover, which is all-or-nothing here.
const POLICY_FIELDS = names("overprovisioningFactor", "endpointStaleAfter", "weightedPriorityHealth");
// Locality weights and metadata: the balancers do not weight localities; proximity only orders them.
const LOCALITY_FIELDS = names(
  "locality",
  "lbEndpoints",
  "loadBalancingWeight",
  "priority",
  "metadata",
  "proximity",
);
const LB_ENDPOINT_FIELDS = names("endpoint", "healthStatus", "metadata", "loadBalancingWeight");
// hostname only feeds Envoy's auto_host_rewrite, which the sidecar refuses.
const ENDPOINT_FIELDS = names("address", "hostname");

/** Envoy reads transport socket matches from this filter metadata namespace of the endpoint. */
export const TRANSPORT_SOCKET_MATCH = "envoy.transport_socket_match";

function transportSocketMatchOf(
  metadata: { filterMetadata?: Record<string, unknown> | null } | null | undefined,
): { transportSocketMatch?: Record<string, unknown> } {
  const s = metadata?.filterMetadata?.[TRANSPORT_SOCKET_MATCH];
  return s ? { transportSocketMatch: structValues(s as Parameters<typeof structValues>[0]) } : {};
}

/**
 * ClusterLoadAssignment → EndpointSet. `at` is the position of an inline assignment inside its cluster; an
 * EDS resource is its own position.
 */
export function compileClusterLoadAssignment(
  cla: ClusterLoadAssignment__Output,
  options: EndpointOptions = { requireIp: true },
  at: At = new At(resourceLabel("ClusterLoadAssignment", cla.clusterName)),
): EndpointSet {
  onlyFields(
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    cla,
    names("clusterName", "endpoints", "policy"),
    at,
  );
  if (cla.policy) {
    const pat = at.field("policy");
    if (cla.policy.dropOverloads.length > 0)
      pat.field("dropOverloads").unsupported("drop_overloads is not supported by the Skein sidecar");
    onlyFields("envoy.config.endpoint.v3.ClusterLoadAssignment.Policy", cla.policy, POLICY_FIELDS, pat);
  }
  const endpoints: Endpoint[] = [];
  for (const [i, group] of cla.endpoints.entries()) {
    const gat = at.field("endpoints").index(i);
    onlyFields("envoy.config.endpoint.v3.LocalityLbEndpoints", group, LOCALITY_FIELDS, gat);
    if (group.priority > MAX_PRIORITY) gat.field("priority").invalid(`must be at most ${MAX_PRIORITY}`);
    if (group.loadBalancingWeight && group.loadBalancingWeight.value < 1)
      gat.field("loadBalancingWeight").invalid("must be at least 1");
    const l = group.locality;
    const locality = l && (l.region || l.zone || l.subZone) ? `${l.region}/${l.zone}/${l.subZone}` : "";
    for (const [j, lb] of group.lbEndpoints.entries()) {
      const eat = gat.field("lbEndpoints").index(j);
      onlyFields("envoy.config.endpoint.v3.LbEndpoint", lb, LB_ENDPOINT_FIELDS, eat);
      const e = lb.endpoint;
      if (!e) return eat.field("endpoint").invalid("is required");
      const pat = eat.field("endpoint");
      onlyFields("envoy.config.endpoint.v3.Endpoint", e, ENDPOINT_FIELDS, pat);
      const aat = pat.field("address");
      if (!e.address) return aat.invalid("is required");
      if (e.address.address !== "socketAddress" || !e.address.socketAddress)
        return aat.unsupported("only socket addresses are supported (no pipes or internal addresses)");
      const sa = e.address.socketAddress;
      const sat = aat.field("socketAddress");
      onlyFields(
        "envoy.config.core.v3.SocketAddress",
        sa,
        names("protocol", "address", "portValue", "ipv4Compat"),
        sat,
      );
      if (sa.protocol !== "TCP") sat.field("protocol").unsupported("only TCP endpoints are supported");
      if (sa.address === "") sat.field("address").invalid("must not be empty");
      if (options.requireIp && isIP(sa.address) === 0)
        sat
          .field("address")
          .invalid(`${JSON.stringify(sa.address)} is not an IP address (only DNS clusters resolve names)`);
      if (sa.portSpecifier !== "portValue" || !sa.portValue)
        sat.field("portValue").invalid("a port is required");
      const weight = wrapped(lb.loadBalancingWeight, 1);
      if (weight < 1) eat.field("loadBalancingWeight").invalid("must be at least 1");
      endpoints.push({
        address: sa.address,
        port: sa.portValue as number,
        weight,
        // UNKNOWN (no health information) counts as healthy, as in Envoy; DEGRADED is treated as unhealthy.
        healthy: lb.healthStatus === "UNKNOWN" || lb.healthStatus === "HEALTHY",
        locality,
        priority: group.priority,
        ...transportSocketMatchOf(lb.metadata),
      });
    }
  }
  return { clusterName: cla.clusterName, endpoints };
}
