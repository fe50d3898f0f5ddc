// security.istio.io (v1beta1 and v1): PeerAuthentication, AuthorizationPolicy, RequestAuthentication.
// Field names and the checks mirror Istio's API reference and its validation (pkg/config/validation):
// port-level mTLS needs a selector, CUSTOM needs a provider, DENY/CUSTOM need rules, empty sources and
// operations are rejected. Skein is stricter where Istio would accept a value that can never match
// (a principal with `*` in the middle, a `spiffe://` principal, a path not starting with "/").
// Cross-field checks run only once an object's own fields parse (`ctx.issues` empty), so that one
// mistake (an unknown field, say) is not reported a second time as "this object is empty".
import { z } from "zod";
import { Codes } from "../codes.js";
import { defineKind } from "../kinds.js";
import { addIssue, duration, obj } from "../schema.js";
import {
  checkAttachment,
  checkedStrings,
  conditionKey,
  conditionValueProblem,
  ipBlockProblem,
  namespaceValueProblem,
  nonEmpty,
  pathProblem,
  plainValueProblem,
  policySelector,
  portString,
  principalProblem,
  reportProblem,
  requestPrincipalProblem,
  targetRef,
} from "./policy.js";

export const SECURITY_GROUP = "security.istio.io";
export const SECURITY_VERSIONS = ["v1beta1", "v1"] as const;

// ── PeerAuthentication ──────────────────────────────────────────────────────────────────────────────

export const MTLS_MODES = ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"] as const;
const mtls = () => obj({ mode: z.enum(MTLS_MODES).optional() });

export const peerAuthenticationSpec = obj({
  selector: policySelector().optional(),
  mtls: mtls().optional(),
  portLevelMtls: z.record(z.string(), mtls()).optional(),
}).superRefine((s, ctx) => {
  if (ctx.issues.length > 0) return;
  if (!s.portLevelMtls) return;
  const ports = Object.keys(s.portLevelMtls);
  if (ports.length === 0)
    addIssue(
      ctx,
      Codes.REQUIRED,
      "portLevelMtls is empty",
      ["portLevelMtls"],
      "list at least one port (`8080: {mode: DISABLE}`), or remove portLevelMtls",
    );
  for (const p of ports) {
    if (!/^\d+$/.test(p))
      addIssue(ctx, Codes.TYPE, `portLevelMtls key "${p}" is not a port number`, ["portLevelMtls", p]);
    else if (Number(p) < 1 || Number(p) > 65535)
      addIssue(ctx, Codes.RANGE, `port ${p} is outside 1–65535`, ["portLevelMtls", p]);
  }
  if (ports.length > 0 && Object.keys(s.selector?.matchLabels ?? {}).length === 0)
    addIssue(
      ctx,
      Codes.REQUIRED,
      "portLevelMtls needs a selector: Istio rejects port-level mTLS in mesh-wide and namespace-wide policies",
      ["portLevelMtls"],
      "add selector.matchLabels naming the workloads that own these ports (ports belong to workloads)",
    );
});
export type PeerAuthenticationSpec = z.output<typeof peerAuthenticationSpec>;

// ── AuthorizationPolicy ─────────────────────────────────────────────────────────────────────────────

const principals = () => checkedStrings(principalProblem).optional();
const requestPrincipals = () => checkedStrings(requestPrincipalProblem).optional();
const namespaces = () => checkedStrings(namespaceValueProblem).optional();
const ipBlocks = () => checkedStrings(ipBlockProblem).optional();
const plainList = (what: string) => checkedStrings((v) => plainValueProblem(v, what)).optional();
const paths = () => checkedStrings(pathProblem).optional();
const ports = () => z.array(portString()).optional();

const SOURCE_FIELDS = [
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;

const source = obj({
  principals: principals(),
  notPrincipals: principals(),
  requestPrincipals: requestPrincipals(),
  notRequestPrincipals: requestPrincipals(),
  namespaces: namespaces(),
  notNamespaces: namespaces(),
  ipBlocks: ipBlocks(),
  notIpBlocks: ipBlocks(),
  remoteIpBlocks: ipBlocks(),
  notRemoteIpBlocks: ipBlocks(),
}).superRefine((s, ctx) => {
  if (ctx.issues.length > 0) return;
  if (SOURCE_FIELDS.every((f) => (s[f]?.length ?? 0) === 0))
    addIssue(
      ctx,
      Codes.REQUIRED,
      "source is empty: Istio rejects a source without any field",
      [],
      `set at least one of ${SOURCE_FIELDS.join(", ")}; to allow any source, remove this from entry`,
    );
});

const OPERATION_FIELDS = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
] as const;

const operation = obj({
  hosts: plainList("host"),
  notHosts: plainList("host"),
  ports: ports(),
  notPorts: ports(),
  methods: plainList("method"),
  notMethods: plainList("method"),
  paths: paths(),
  notPaths: paths(),
}).superRefine((o, ctx) => {
  if (ctx.issues.length > 0) return;
  if (OPERATION_FIELDS.every((f) => (o[f]?.length ?? 0) === 0))
    addIssue(
      ctx,
      Codes.REQUIRED,
      "operation is empty: Istio rejects an operation without any field",
      [],
      `set at least one of ${OPERATION_FIELDS.join(", ")}; to allow any operation, remove this to entry`,
    );
});

const condition = obj({
  key: z.string(),
  values: z.array(z.string()).optional(),
  notValues: z.array(z.string()).optional(),
}).superRefine((c, ctx) => {
  const k = conditionKey(c.key);
  if ("problem" in k) {
    reportProblem(ctx, k.problem, ["key"]);
    return;
  }
  if ((c.values?.length ?? 0) === 0 && (c.notValues?.length ?? 0) === 0)
    addIssue(
      ctx,
      Codes.REQUIRED,
      `condition "${c.key}" needs values or notValues`,
      [],
      "list the values to match",
    );
  for (const field of ["values", "notValues"] as const)
    c[field]?.forEach((v, i) => {
      reportProblem(ctx, conditionValueProblem(k.kind, v), [field, i]);
    });
});

const rule = obj({
  from: z.array(obj({ source })).optional(),
  to: z.array(obj({ operation })).optional(),
  when: z.array(condition).optional(),
}).superRefine((r, ctx) => {
  if (ctx.issues.length > 0) return;
  for (const f of ["from", "to"] as const)
    if (r[f] && r[f].length === 0)
      addIssue(
        ctx,
        Codes.REQUIRED,
        `\`${f}: []\` is rejected by Istio`,
        [f],
        `remove ${f} to match any ${f === "from" ? "source" : "operation"}, or list at least one entry`,
      );
});

export const AUTHZ_ACTIONS = ["ALLOW", "DENY", "AUDIT", "CUSTOM"] as const;

export const authorizationPolicySpec = obj({
  selector: policySelector().optional(),
  targetRef: targetRef().optional(),
  targetRefs: z.array(targetRef()).optional(),
  action: z.enum(AUTHZ_ACTIONS).optional(),
  provider: obj({ name: z.string().optional() }).optional(),
  rules: z.array(rule).optional(),
}).superRefine((s, ctx) => {
  if (ctx.issues.length > 0) return;
  checkAttachment(s, ctx);
  const action = s.action ?? "ALLOW";
  const noRules = (s.rules?.length ?? 0) === 0;
  if (action === "CUSTOM") {
    if (!s.provider?.name)
      addIssue(
        ctx,
        Codes.REQUIRED,
        "a CUSTOM policy needs provider.name",
        s.provider ? ["provider"] : ["action"],
        "name an extension provider from meshConfig.extensionProviders: `provider: {name: my-ext-authz}`",
      );
    if (noRules)
      addIssue(
        ctx,
        Codes.REQUIRED,
        "a CUSTOM policy without rules never triggers, so Istio rejects it",
        ["action"],
        "add rules; `rules: [{}]` sends every request to the provider",
      );
    s.rules?.forEach((r, i) => {
      r.from?.forEach((f, j) => {
        for (const field of [
          "principals",
          "notPrincipals",
          "requestPrincipals",
          "notRequestPrincipals",
          "namespaces",
          "notNamespaces",
        ] as const)
          if (f.source[field])
            addIssue(
              ctx,
              Codes.INVALID,
              `${field} is not supported with the CUSTOM action`,
              ["rules", i, "from", j, "source", field],
              "the external authorizer sees the request; match on ipBlocks, ports, paths, methods or hosts here",
            );
      });
      r.when?.forEach((c, j) => {
        if (c.key === "source.namespace" || c.key === "source.principal" || c.key.startsWith("request.auth."))
          addIssue(ctx, Codes.INVALID, `condition "${c.key}" is not supported with the CUSTOM action`, [
            "rules",
            i,
            "when",
            j,
            "key",
          ]);
      });
    });
  } else if (s.provider)
    addIssue(
      ctx,
      Codes.INVALID,
      `provider is only used with action CUSTOM (this policy's action is ${action})`,
      ["provider"],
      "remove provider, or set action: CUSTOM",
    );
  if (action === "DENY" && noRules)
    addIssue(
      ctx,
      Codes.REQUIRED,
      "a DENY policy without rules never triggers, so Istio rejects it",
      ["action"],
      "add rules; `rules: [{}]` denies every request",
    );
});
export type AuthorizationPolicySpec = z.output<typeof authorizationPolicySpec>;

// ── RequestAuthentication ───────────────────────────────────────────────────────────────────────────

const HEADER_NAME = /^[-_A-Za-z0-9]+$/;
const headerName = () =>
  z.string().superRefine((h, ctx) => {
    if (!HEADER_NAME.test(h))
      addIssue(
        ctx,
        Codes.INVALID,
        `"${h}" is not a valid header name`,
        [],
        "use letters, digits, '-' and '_'",
      );
  });

const jwksUri = () =>
  z.string().superRefine((u, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(u);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "")
      addIssue(
        ctx,
        Codes.INVALID,
        `jwksUri "${u}" is not an http or https URL`,
        [],
        'write the JWKS endpoint URL, for example "https://accounts.example.com/.well-known/jwks.json"',
      );
  });

const jwks = () =>
  z.string().superRefine((text, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      addIssue(
        ctx,
        Codes.INVALID,
        `jwks is not JSON: ${(err as Error).message}`,
        [],
        'inline a JSON Web Key Set: {"keys": [...]}',
      );
      return;
    }
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length === 0)
      addIssue(
        ctx,
        Codes.INVALID,
        'jwks is not a JSON Web Key Set: it needs a non-empty "keys" list',
        [],
        'inline {"keys": [{"kty": "RSA", …}]}',
      );
  });

const jwtRule = obj({
  issuer: nonEmpty("issuer"),
  audiences: z.array(nonEmpty("audience")).optional(),
  jwksUri: jwksUri().optional(),
  jwks: jwks().optional(),
  fromHeaders: z.array(obj({ name: nonEmpty("header name"), prefix: z.string().optional() })).optional(),
  fromParams: z.array(nonEmpty("query parameter name")).optional(),
  fromCookies: z.array(nonEmpty("cookie name")).optional(),
  outputPayloadToHeader: headerName().optional(),
  outputClaimToHeaders: z.array(obj({ header: headerName(), claim: nonEmpty("claim") })).optional(),
  forwardOriginalToken: z.boolean().optional(),
  timeout: duration({ min: 1 }).optional(),
}).superRefine((r, ctx) => {
  if (ctx.issues.length > 0) return;
  if (r.jwks !== undefined && r.jwksUri !== undefined)
    addIssue(
      ctx,
      Codes.ONE_OF,
      "use only one of jwksUri and jwks",
      ["jwks"],
      "jwksUri fetches the key set; jwks inlines it",
    );
});

export const requestAuthenticationSpec = obj({
  selector: policySelector().optional(),
  targetRef: targetRef().optional(),
  targetRefs: z.array(targetRef()).optional(),
  jwtRules: z.array(jwtRule).optional(),
}).superRefine((s, ctx) => checkAttachment(s, ctx));
export type RequestAuthenticationSpec = z.output<typeof requestAuthenticationSpec>;

export const securityKinds = [
  defineKind({
    group: SECURITY_GROUP,
    kind: "PeerAuthentication",
    versions: SECURITY_VERSIONS,
    namespaced: true,
    spec: peerAuthenticationSpec,
    specOptional: true,
  }),
  defineKind({
    group: SECURITY_GROUP,
    kind: "AuthorizationPolicy",
    versions: SECURITY_VERSIONS,
    namespaced: true,
    spec: authorizationPolicySpec,
    // `spec: {}` and no spec are Istio's allow-nothing policy.
    specOptional: true,
  }),
  defineKind({
    group: SECURITY_GROUP,
    kind: "RequestAuthentication",
    versions: SECURITY_VERSIONS,
    namespaced: true,
    spec: requestAuthenticationSpec,
    specOptional: true,
  }),
];
