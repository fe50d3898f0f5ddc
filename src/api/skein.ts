// Skein's own kinds for running without Kubernetes: `Service` (a name, a label selector and ports, like a
// Kubernetes Service) and `Workload` (one running instance with its identity, like a pod or Istio
// WorkloadEntry). Group skein.dev, version v1alpha1.
import { z } from "zod";
import { defineKind } from "./kinds.js";
import { labels, obj, port } from "./schema.js";

export const SKEIN_GROUP = "skein.dev";

export const PROTOCOLS = ["HTTP", "HTTP2", "GRPC", "TCP", "TLS", "HTTPS"] as const;

/** Istio's protocol selection by port name prefix (`http-web`, `grpc`, `tcp-db`, …). */
export function protocolFromPortName(name: string): (typeof PROTOCOLS)[number] | undefined {
  const prefix = name.toLowerCase().split("-")[0] ?? "";
  const byPrefix: Record<string, (typeof PROTOCOLS)[number]> = {
    http: "HTTP",
    http2: "HTTP2",
    grpc: "GRPC",
    "grpc-web": "HTTP2",
    tcp: "TCP",
    tls: "TLS",
    https: "HTTPS",
  };
  return byPrefix[prefix];
}

const servicePort = obj({
  name: z.string().min(1),
  port: port(),
  /** Istio protocol; when absent, taken from the name's prefix (http-, grpc-, tcp-…), else HTTP. */
  protocol: z.enum(PROTOCOLS).optional(),
  targetPort: port().optional(),
});

export const serviceSpec = obj({
  selector: labels().optional(),
  ports: z.array(servicePort).min(1),
});
export type SkeinServiceSpec = z.output<typeof serviceSpec>;

export const workloadSpec = obj({
  serviceAccount: z.string().min(1).default("default"),
  address: z.string().min(1).optional(),
  ports: z.record(z.string(), port()).optional(),
});
export type SkeinWorkloadSpec = z.output<typeof workloadSpec>;

export const skeinKinds = [
  defineKind({
    group: SKEIN_GROUP,
    kind: "Service",
    versions: ["v1alpha1"],
    namespaced: true,
    spec: serviceSpec,
  }),
  defineKind({
    group: SKEIN_GROUP,
    kind: "Workload",
    versions: ["v1alpha1"],
    namespaced: true,
    spec: workloadSpec,
  }),
];
