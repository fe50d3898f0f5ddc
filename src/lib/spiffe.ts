// SPIFFE workload identities as Istio writes them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Shared by the CA (which puts them in certificates) and the sidecar (which checks peers against them).
import { SkeinError } from "./diagnostics.js";

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export const SpiffeCodes = {
  /** A namespace, service account or trust domain that cannot be part of a SPIFFE ID. */
  BAD_IDENTITY: "SKEIN_E_CA_BAD_IDENTITY",
} as const;

// Kubernetes' rules: namespaces are DNS-1123 labels, service accounts DNS-1123 subdomains. Holding to them
// also keeps `/`, `..` and percent-escapes out of the URI, so one identity can never spell another.
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// SPIFFE trust domains: lowercase letters, digits, dots, dashes and underscores.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** Throws SKEIN_E_CA_BAD_IDENTITY naming the field when a part is not valid. */
export function validateIdentity(id: WorkloadIdentity): void {
  const bad = (field: string, value: string, rule: string) =>
    new SkeinError(SpiffeCodes.BAD_IDENTITY, `${field} ${JSON.stringify(value)} is not valid: ${rule}`);
  if (typeof id.namespace !== "string" || id.namespace.length > 63 || !LABEL.test(id.namespace))
    throw bad("namespace", String(id.namespace), "use a DNS label (a-z, 0-9, '-', at most 63 characters)");
  if (
    typeof id.serviceAccount !== "string" ||
    id.serviceAccount.length > 253 ||
    !SUBDOMAIN.test(id.serviceAccount)
  )
    throw bad(
      "serviceAccount",
      String(id.serviceAccount),
      "use a DNS subdomain (a-z, 0-9, '-', '.', at most 253 characters)",
    );
  if (typeof id.trustDomain !== "string" || id.trustDomain.length > 255 || !TRUST_DOMAIN.test(id.trustDomain))
    throw bad("trustDomain", String(id.trustDomain), "use lowercase letters, digits, '.', '-' and '_'");
}

/** The SPIFFE ID of a workload identity (validated). */
export function spiffeId(id: WorkloadIdentity): string {
  validateIdentity(id);
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses an Istio-form SPIFFE ID; undefined for anything else (other path forms, bad parts). */
export function parseSpiffeId(uri: string): WorkloadIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const id = { trustDomain: m[1] as string, namespace: m[2] as string, serviceAccount: m[3] as string };
  try {
    validateIdentity(id);
  } catch {
    return undefined;
  }
  return id;
}
