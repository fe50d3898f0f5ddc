// Translated resources against the real Envoy protos and a real xDS client we did not write:
// - every field name exists in the proto, every Any names a loaded type, and the protoc-gen-validate
//   rules Envoy enforces on ingestion (required fields and oneofs, string and list lengths, numeric and
//   duration bounds, defined enums) hold — protobufjs would otherwise drop unknown fields silently;
// - the encoded proxyless resources pass @grpc/grpc-js-xds's own validation (what it ACKs or NACKs).

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { test } from "node:test";
import type { ProxyIdentity } from "../src/model/snapshot.js";
import { type ProxyResources, translate } from "../src/translate/index.js";
import { pack } from "../src/xds/protos.js";
import { ECHO_EXTRA_POLICIES, echoSnapshot } from "./grpc-server-fixture.js";
import {
  API_GATEWAY_SIDECAR,
  exampleSnapshot,
  ORDER_V1_SIDECAR,
  PROXYLESS_CLIENT,
  shopSidecar,
  shopSnapshot,
} from "./translate-fixture.js";

const require = createRequire(import.meta.url);
// protobufjs as @grpc/proto-loader (and so the xDS layer) resolves it.
const protobuf = createRequire(require.resolve("@grpc/proto-loader"))(
  "protobufjs",
) as typeof import("protobufjs");
const xdsDir = dirname(require.resolve("@grpc/grpc-js-xds/package.json"));
const includeDirs = [
  ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(xdsDir, "deps", d)),
  dirname(createRequire(require.resolve("@grpc/proto-loader")).resolve("protobufjs/package.json")),
];

const PROTOS = [
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
  "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/fault/v3/fault.proto",
  "envoy/extensions/filters/http/rbac/v3/rbac.proto",
  "envoy/extensions/filters/network/rbac/v3/rbac.proto",
  "envoy/extensions/filters/http/cors/v3/cors.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto",
  "envoy/config/trace/v3/opentelemetry.proto",
  "envoy/config/trace/v3/zipkin.proto",
  "xds/type/v3/typed_struct.proto",
];

function loadRoot(): import("protobufjs").Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const d of includeDirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  // keepCase false: the generated interfaces (and so translation) use camelCase field names.
  root.loadSync(PROTOS, { keepCase: false });
  root.resolveAll();
  return root;
}

const root = loadRoot();
type PType = import("protobufjs").Type;
type PField = import("protobufjs").Field;

const TYPE_OF = {
  listeners: "envoy.config.listener.v3.Listener",
  routes: "envoy.config.route.v3.RouteConfiguration",
  clusters: "envoy.config.cluster.v3.Cluster",
  endpoints: "envoy.config.endpoint.v3.ClusterLoadAssignment",
} as const;

type Rules = Record<string, unknown>;

function rulesOf(field: PField): Rules | undefined {
  const parsed = (field as unknown as { parsedOptions?: Record<string, unknown>[] }).parsedOptions;
  return parsed?.find((o) => "(validate.rules)" in o)?.["(validate.rules)"] as Rules | undefined;
}

const durationNanos = (d: { seconds?: unknown; nanos?: unknown } | undefined) =>
  d ? Number(d.seconds ?? 0) * 1e9 + Number(d.nanos ?? 0) : 0;

function checkScalar(rules: Rules | undefined, value: unknown, path: string, errors: string[]): void {
  if (!rules) return;
  for (const [kind, r] of Object.entries(rules) as [string, Record<string, unknown>][]) {
    if (kind === "string" && typeof value === "string") {
      if (typeof r.min_len === "number" && value.length < r.min_len)
        errors.push(`${path}: shorter than ${r.min_len}`);
    } else if (
      ["uint32", "int32", "uint64", "int64", "double", "float"].includes(kind) &&
      typeof value === "number"
    ) {
      if (typeof r.gt === "number" && !(value > r.gt)) errors.push(`${path}: ${value} not > ${r.gt}`);
      if (typeof r.gte === "number" && !(value >= r.gte)) errors.push(`${path}: ${value} not >= ${r.gte}`);
      if (typeof r.lt === "number" && !(value < r.lt)) errors.push(`${path}: ${value} not < ${r.lt}`);
      if (typeof r.lte === "number" && !(value <= r.lte)) errors.push(`${path}: ${value} not <= ${r.lte}`);
    }
  }
}

/** Walks `value` as a message of `type`, collecting unknown fields and broken validation rules. */
function validate(type: PType, value: Record<string, unknown>, path: string, errors: string[]): void {
  // The wrappers (UInt32Value …), not Struct's Value and ListValue, which hold no `value` field.
  const wrapper =
    type.fullName.startsWith(".google.protobuf.") &&
    type.fullName.endsWith("Value") &&
    type.fullName !== ".google.protobuf.Value" &&
    type.fullName !== ".google.protobuf.ListValue";
  for (const [key, v] of Object.entries(value)) {
    if (key === "@type") continue;
    const field = type.fields[key];
    if (!field) {
      errors.push(`${path}.${key}: no such field in ${type.fullName}`);
      continue;
    }
    if (v === undefined || v === null) continue;
    const rules = rulesOf(field);
    const p = `${path}.${key}`;
    if (field.map) {
      for (const [k, item] of Object.entries(v as Record<string, unknown>))
        validateValue(field, item, `${p}[${k}]`, errors);
    } else if (field.repeated) {
      const list = v as unknown[];
      const min = (rules?.repeated as Rules | undefined)?.min_items;
      if (typeof min === "number" && list.length < min) errors.push(`${p}: fewer than ${min} items`);
      const itemRules = (rules?.repeated as Rules | undefined)?.items as Rules | undefined;
      list.forEach((item, i) => {
        checkScalar(itemRules, item, `${p}[${i}]`, errors);
        validateValue(field, item, `${p}[${i}]`, errors);
      });
    } else {
      checkScalar(rules, v, p, errors);
      if (rules?.duration) {
        const d = rules.duration as Rules;
        if (d.gt && !(durationNanos(v as never) > durationNanos(d.gt as never)))
          errors.push(`${p}: duration not > ${JSON.stringify(d.gt)}`);
        if (d.gte && !(durationNanos(v as never) >= durationNanos(d.gte as never)))
          errors.push(`${p}: duration below minimum`);
      }
      // Rules on a wrapper field (UInt32Value …) apply to its value.
      const numeric =
        rules &&
        Object.entries(rules).find(([k]) => ["uint32", "uint64", "int32", "int64", "double"].includes(k));
      if (numeric && typeof v === "object" && "value" in (v as object))
        checkScalar(rules, (v as { value: unknown }).value, `${p}.value`, errors);
      validateValue(field, v, p, errors);
    }
  }
  for (const [name, field] of Object.entries(type.fields)) {
    const rules = rulesOf(field);
    // A oneof member's rules apply only when it is the one set.
    if (field.partOf) continue;
    if (
      (rules?.message as Rules | undefined)?.required &&
      (value[name] === undefined || value[name] === null)
    )
      errors.push(`${path}.${name}: required`);
  }
  for (const oneof of type.oneofsArray) {
    const required = (oneof as unknown as { parsedOptions?: Record<string, unknown>[] }).parsedOptions?.some(
      (o) => o["(validate.required)"],
    );
    if (required && !oneof.oneof.some((f) => value[f] !== undefined && value[f] !== null))
      errors.push(`${path}: one of ${oneof.oneof.join("|")} is required in ${type.fullName}`);
  }
  if (wrapper && !("value" in value)) errors.push(`${path}: wrapper without value`);
}

function validateValue(field: PField, v: unknown, path: string, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const ok =
      typeof v === "number"
        ? Object.values(resolved.values).includes(v)
        : typeof v === "string" && v in resolved.values;
    if (!ok) errors.push(`${path}: ${String(v)} is not a ${resolved.fullName}`);
    return;
  }
  if (!(resolved instanceof protobuf.Type)) return;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    errors.push(`${path}: expected a ${resolved.fullName} message`);
    return;
  }
  if (resolved.fullName === ".google.protobuf.Any") {
    const url = (v as { "@type"?: string })["@type"];
    const inner = url ? root.lookup(url.slice(url.lastIndexOf("/") + 1)) : null;
    if (!(inner instanceof protobuf.Type)) errors.push(`${path}: Any of unloaded type ${url}`);
    else validate(inner, v as Record<string, unknown>, path, errors);
    return;
  }
  validate(resolved, v as Record<string, unknown>, path, errors);
}

function checkAgainstProtos(resources: ProxyResources): string[] {
  const errors: string[] = [];
  for (const kind of Object.keys(TYPE_OF) as (keyof typeof TYPE_OF)[]) {
    const type = root.lookupType(TYPE_OF[kind]);
    for (const r of resources[kind]) {
      const name = "name" in r ? r.name : "clusterName" in r ? r.clusterName : "?";
      validate(type, r as Record<string, unknown>, `${kind}[${name}]`, errors);
      // And it encodes: fromObject would throw on a wrong shape (a string where a message goes).
      type.encode(type.fromObject(r as Record<string, unknown>)).finish();
    }
  }
  return errors;
}

const proxies: ProxyIdentity[] = [API_GATEWAY_SIDECAR, ORDER_V1_SIDECAR, PROXYLESS_CLIENT];

const SHOP_PROXYLESS: ProxyIdentity = { id: "grpc~prod", kind: "proxyless", namespace: "prod" };

/** order-service v1 as a proxyless gRPC server: its server listener carries pattern 2's RBAC filters. */
const PROXYLESS_SERVER: ProxyIdentity = { ...ORDER_V1_SIDECAR, id: "grpc~order-v1", kind: "proxyless" };

test("every field exists in the Envoy protos and their validation rules hold", async () => {
  const snapshot = await exampleSnapshot();
  for (const proxy of proxies) assert.deepEqual(checkAgainstProtos(translate(snapshot, proxy)), [], proxy.id);
  const shop = shopSnapshot();
  for (const proxy of [shopSidecar("web"), shopSidecar("cart"), shopSidecar("shop-v2"), SHOP_PROXYLESS])
    assert.deepEqual(checkAgainstProtos(translate(shop, proxy)), [], proxy.id);
});

test("the xDS layer's pack() encodes every translated resource (its strict checks included)", async () => {
  const example = await exampleSnapshot();
  const shop = shopSnapshot();
  const cases: [typeof example, ProxyIdentity][] = [
    ...proxies.map((p): [typeof example, ProxyIdentity] => [example, p]),
    [shop, shopSidecar("web")],
    [shop, SHOP_PROXYLESS],
  ];
  for (const [snapshot, proxy] of cases) {
    const r = translate(snapshot, proxy);
    for (const kind of Object.keys(TYPE_OF) as (keyof typeof TYPE_OF)[])
      for (const resource of r[kind]) assert.ok(pack(TYPE_OF[kind], resource).value.length > 0);
  }
});

test("the proto check catches what protobufjs would drop or Envoy would reject", () => {
  const errors = checkAgainstProtos({
    listeners: [],
    routes: [],
    endpoints: [],
    clusters: [
      {
        name: "bad",
        connectTimeout: { seconds: 0 },
        typedExtensionProtocolOptions: {
          x: { "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions" },
        },
        ...({ maxRequestPerConnection: 1 } as object),
      },
    ],
  });
  assert.deepEqual(errors, [
    "clusters[bad].connectTimeout: duration not > {}",
    "clusters[bad].typedExtensionProtocolOptions[x]: one of explicitHttpConfig|useDownstreamProtocolConfig|autoConfig is required in .envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "clusters[bad].maxRequestPerConnection: no such field in .envoy.config.cluster.v3.Cluster",
  ]);
});

test("Any values survive encoding: the nested filter configs decode back with their fields", async () => {
  const r = translate(await exampleSnapshot(), API_GATEWAY_SIDECAR);
  const RC = root.lookupType(TYPE_OF.routes);
  const decoded = RC.toObject(
    RC.decode(RC.encode(RC.fromObject(r.routes[0] as Record<string, unknown>)).finish()),
    {
      json: true,
      enums: String,
      longs: Number,
    },
  );
  const vh = (
    decoded.virtualHosts as { name: string; routes: { typedPerFilterConfig?: Record<string, unknown> }[] }[]
  ).find((v) => v.name === "order-service.default.svc.cluster.local:8080");
  assert.deepEqual(vh?.routes[0]?.typedPerFilterConfig?.["envoy.filters.http.fault"], {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
    delay: { fixedDelay: { seconds: 5 }, percentage: { numerator: 10, denominator: "HUNDRED" } },
    abort: { httpStatus: 503, percentage: { numerator: 5, denominator: "HUNDRED" } },
  });
});

// ── What @grpc/grpc-js-xds accepts ─────────────────────────────────────────────────────────────────────

// gRPC registers its RBAC filter only with this set (read once, when grpc-js-xds loads); without it a server
// NACKs listeners that carry RBAC filters.
process.env.GRPC_XDS_EXPERIMENTAL_RBAC = "true";
const xds = {
  index: require("@grpc/grpc-js-xds"),
  resources: require("@grpc/grpc-js-xds/build/src/resources.js"),
  listener: require("@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js"),
  route: require("@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js"),
  cluster: require("@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js"),
  endpoint: require("@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js"),
};

const grpcContext = { bootstrap: { certificateProviders: {} }, server: {} };

/** What grpc-js-xds says about each resource: undefined when it accepts it, else its NACK message. */
function grpcVerdicts(r: ProxyResources): { name: string; error?: string }[] {
  xds.index.register(); // registers its HTTP filters (fault, router) and LB policies
  const kinds = [
    {
      list: r.listeners,
      type: TYPE_OF.listeners,
      url: xds.resources.LDS_TYPE_URL,
      rt: xds.listener.ListenerResourceType,
    },
    {
      list: r.routes,
      type: TYPE_OF.routes,
      url: xds.resources.RDS_TYPE_URL,
      rt: xds.route.RouteConfigurationResourceType,
    },
    {
      list: r.clusters,
      type: TYPE_OF.clusters,
      url: xds.resources.CDS_TYPE_URL,
      rt: xds.cluster.ClusterResourceType,
    },
    {
      list: r.endpoints,
      type: TYPE_OF.endpoints,
      url: xds.resources.EDS_TYPE_URL,
      rt: xds.endpoint.EndpointResourceType,
    },
  ];
  const out: { name: string; error?: string }[] = [];
  for (const k of kinds) {
    const type = root.lookupType(k.type);
    for (const resource of k.list) {
      const bytes = type.encode(type.fromObject(resource as Record<string, unknown>)).finish();
      const result = k.rt.get().decode(grpcContext, { type_url: k.url, value: Buffer.from(bytes) });
      out.push({ name: `${k.type} ${result.name}`, ...(result.error && { error: result.error }) });
    }
  }
  return out;
}

test("@grpc/grpc-js-xds accepts every resource served to a proxyless client", async () => {
  for (const r of [
    translate(await exampleSnapshot(), PROXYLESS_CLIENT),
    translate(shopSnapshot(), SHOP_PROXYLESS),
    translate(await exampleSnapshot(), PROXYLESS_SERVER),
  ]) {
    const verdicts = grpcVerdicts(r);
    assert.ok(verdicts.length > 4);
    assert.deepEqual(
      verdicts.filter((v) => v.error),
      [],
    );
  }
});

test("a proxyless gRPC server's listener: named as gRPC asks, RBAC then router, accepted by grpc-js-xds", () => {
  const { snapshot, proxy } = echoSnapshot("127.0.8.1", 18080, ECHO_EXTRA_POLICIES);
  const r = translate(snapshot, proxy);
  const name = "grpc/server?xds.resource.listening_address=127.0.8.1:18080";
  const l = r.listeners.find((x) => x.name === name);
  assert.ok(l, `served ${name}: ${r.listeners.map((x) => x.name).join(", ")}`);
  assert.deepEqual(l.address, { socketAddress: { address: "127.0.8.1", portValue: 18080 } });
  const hcm = l.filterChains?.[0]?.filters?.[0]?.typedConfig as unknown as {
    httpFilters: { name: string; typedConfig: { rules?: { action: string } } }[];
    routeConfig: { virtualHosts: { routes: { nonForwardingAction?: object }[] }[] };
  };
  // AUDIT (action LOG) is left out: gRPC refuses it.
  assert.deepEqual(
    hcm.httpFilters.map((f) => [f.name, f.typedConfig.rules?.action]),
    [
      ["istio.authorization.deny", "DENY"],
      ["istio.authorization.allow", "ALLOW"],
      ["envoy.filters.http.router", undefined],
    ],
  );
  assert.deepEqual(hcm.routeConfig.virtualHosts[0]?.routes[0]?.nonForwardingAction, {});
  assert.deepEqual(checkAgainstProtos(r), []);
  for (const x of r.listeners) assert.ok(pack(TYPE_OF.listeners, x).value.length > 0);
  const verdicts = grpcVerdicts(r);
  assert.ok(verdicts.some((v) => v.name.endsWith(name)));
  assert.deepEqual(
    verdicts.filter((v) => v.error),
    [],
  );
  // Without an AUDIT policy's exclusion gRPC would NACK: its validator on the same listener with LOG kept.
  const logged = structuredClone(l);
  const loggedHcm = logged.filterChains?.[0]?.filters?.[0]?.typedConfig as unknown as typeof hcm;
  const deny = loggedHcm.httpFilters[0];
  if (deny?.typedConfig.rules) deny.typedConfig.rules.action = "LOG";
  const nacked = grpcVerdicts({ listeners: [logged], routes: [], clusters: [], endpoints: [] });
  assert.match(nacked[0]?.error ?? "", /istio\.authorization\.deny filter validation failed/);
});

test("grpc-js-xds would NACK what translation avoids for proxyless clients (sidecar resources as the counter-example)", () => {
  // The sidecar view of the shop has LEAST_REQUEST clusters, STRICT_DNS, a redirect and CORS overrides.
  const nacked = grpcVerdicts(translate(shopSnapshot(), shopSidecar("web"))).filter((v) => v.error);
  const text = nacked.map((v) => v.error).join("\n");
  assert.match(text, /unsupported lb_policy|load_balancing_policy unset/);
  assert.match(text, /Unsupported type STRICT_DNS/);
  assert.match(text, /unsupported action: redirect/);
});
