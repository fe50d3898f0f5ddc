// A small mesh for proxyless gRPC servers under AuthorizationPolicy: the `echo` gRPC service in namespace
// `rbac`, an ALLOW policy for POSTs of /test.Echo/Allowed and a DENY policy on the x-deny request header,
// both selecting app=echo and neither needing a peer identity (proxyless callers are plaintext). Shared by
// the wire test (grpc-js-xds's validators) and the interop test (a real XdsServer and a sidecar).
import { checkTexts } from "../src/model/check.js";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../src/model/snapshot.js";

export const ECHO_NAMESPACE = "rbac";
export const ECHO_LABELS = { app: "echo" } as const;
/** The method the ALLOW policy lets through; any other is refused. */
export const ALLOWED_PATH = "/test.Echo/Allowed";
export const OTHER_PATH = "/test.Echo/Other";
/** A request with this header set to `yes` is refused even on the allowed method. */
export const DENY_HEADER = "x-deny";

/** The mesh; `extra` YAML documents are appended (policies the interop test does not need). */
export function echoMesh(extra = ""): string {
  return `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: echo, namespace: ${ECHO_NAMESPACE} }
spec:
  selector: { app: echo }
  ports: [{ name: grpc, port: 8080, protocol: GRPC }]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: { name: echo-allow, namespace: ${ECHO_NAMESPACE} }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules:
    - to: [{ operation: { methods: ["POST"], paths: ["${ALLOWED_PATH}"] } }]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: { name: echo-deny, namespace: ${ECHO_NAMESPACE} }
spec:
  selector: { matchLabels: { app: echo } }
  action: DENY
  rules:
    - when: [{ key: "request.headers[${DENY_HEADER}]", values: ["yes"] }]
${extra ? `---\n${extra}` : ""}`;
}

/** Policies only the wire test uses: AUDIT (gRPC refuses action LOG), hosts (a case-insensitive regex). */
export const ECHO_EXTRA_POLICIES = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: { name: echo-audit, namespace: ${ECHO_NAMESPACE} }
spec:
  selector: { matchLabels: { app: echo } }
  action: AUDIT
  rules: [{ to: [{ operation: { paths: ["/test.Echo/*"] } }] }]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: { name: echo-hosts, namespace: ${ECHO_NAMESPACE} }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules: [{ to: [{ operation: { hosts: ["echo.rbac.svc.cluster.local"], notPaths: ["/admin/*"] } }] }]
`;

/** The echo workload as a proxyless gRPC server (the registry's view of an XdsServer's node). */
export function echoServerWorkload(address: string, port: number): WorkloadInstance {
  return {
    id: `grpc~${address}~echo`,
    name: "echo",
    namespace: ECHO_NAMESPACE,
    labels: { ...ECHO_LABELS },
    serviceAccount: "echo",
    address,
    ports: { grpc: port },
    origin: "proxy",
    tlsMode: "disabled",
    healthy: true,
  };
}

/** The mesh as a snapshot with one proxyless echo server, and that server's proxy identity. */
export function echoSnapshot(
  address: string,
  port: number,
  extra = "",
): { snapshot: MeshSnapshot; proxy: ProxyIdentity } {
  const r = checkTexts([{ file: "echo.yaml", text: echoMesh(extra) }], { analyze: false });
  const problems = r.diagnostics.filter((d) => d.severity === "error");
  if (!r.model) throw new Error(`echo mesh: ${problems.map((d) => d.message).join("; ")}`);
  const workload = echoServerWorkload(address, port);
  return {
    snapshot: { version: "echo-1", model: r.model, workloads: [workload] },
    proxy: { id: workload.id, kind: "proxyless", namespace: ECHO_NAMESPACE, workload },
  };
}
