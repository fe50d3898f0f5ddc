// What the sidecar cannot honour, or what Envoy would reject too, is NACKed with a stable code and a message
// that names the resource and the field. One test per reason.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileCluster } from "../src/proxy/config/cluster.js";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { compileClusterLoadAssignment } from "../src/proxy/config/endpoint.js";
import { compileListener } from "../src/proxy/config/listener.js";
import { compileRouteConfiguration } from "../src/proxy/config/route.js";
import type { HttpListenerConfig } from "../src/proxy/config/types.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, TYPE_URL_PREFIX } from "../src/xds/protos.js";
import {
  cluster,
  hcm,
  listener,
  loadAssignment,
  nack,
  route,
  routeConfiguration,
  routerFilter,
  typed,
  wire,
} from "./proxy-config-fixtures.js";

const { UNSUPPORTED, INVALID, TLS, REGEX } = ProxyConfigCodes;

function listenerNack(l: object) {
  return nack(() => compileListener(wire(LISTENER, l)));
}
function routeNack(r: object) {
  return nack(() => compileRouteConfiguration(wire(ROUTE, r)));
}
function clusterNack(c: object) {
  return nack(() => compileCluster(wire(CLUSTER, c)));
}
function withFilters(httpFilters: object[]): object {
  return listener("x", {
    filterChains: [
      {
        filters: [
          { name: "envoy.filters.network.http_connection_manager", typedConfig: hcm({ httpFilters }) },
        ],
      },
    ],
  });
}

test("an unsupported network filter is NACKed naming the listener, the field and the filter", () => {
  const e = listenerNack(
    listener("x", {
      filterChains: [
        {
          filters: [
            // The bytes are never decoded: the filter is refused by its type.
            {
              name: "envoy.filters.network.redis_proxy",
              typedConfig: {
                type_url: `${TYPE_URL_PREFIX}envoy.extensions.filters.network.redis_proxy.v3.RedisProxy`,
                value: Buffer.alloc(0),
              },
            },
          ],
        },
      ],
    }),
  );
  assert.equal(e.code, UNSUPPORTED);
  assert.equal(
    e.message,
    'Listener "x": filter_chains[0].filters[0]: unsupported filter envoy.filters.network.redis_proxy',
  );
});

test("an unknown HTTP filter is NACKed unless is_optional (then skipped, as Envoy does)", () => {
  // jwt_authn is supported now (test/jwt-config.test.ts); ext_authz is not.
  const jwt = {
    name: "envoy.filters.http.ext_authz",
    typedConfig: typed("envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"),
  };
  const e = listenerNack(withFilters([jwt, routerFilter()]));
  assert.equal(e.code, UNSUPPORTED);
  assert.match(
    e.message,
    /^Listener "x": filter_chains\[0\]\.filters\[0\]\.typed_config\.http_filters\[0\]: unsupported HTTP filter envoy\.filters\.http\.ext_authz \(envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthz\)/,
  );
  const ok = compileListener(wire(LISTENER, withFilters([{ ...jwt, isOptional: true }, routerFilter()])));
  assert.deepEqual(
    (ok.config as HttpListenerConfig).filters.map((f) => f.name),
    ["envoy.filters.http.router"],
  );
});

test("the router must be the last HTTP filter, and must be there", () => {
  const fault = {
    name: "envoy.filters.http.fault",
    typedConfig: typed("envoy.extensions.filters.http.fault.v3.HTTPFault"),
  };
  const notLast = listenerNack(withFilters([routerFilter(), fault]));
  assert.equal(notLast.code, INVALID);
  assert.equal(
    notLast.message,
    'Listener "x": filter_chains[0].filters[0].typed_config.http_filters[0]: the router filter must be the last HTTP filter (it ends the chain)',
  );
  const missing = listenerNack(withFilters([fault]));
  assert.equal(missing.code, INVALID);
  assert.equal(
    missing.message,
    'Listener "x": filter_chains[0].filters[0].typed_config.http_filters: the last HTTP filter must be the router (envoy.filters.http.router)',
  );
});

test("TLS settings the sidecar cannot honour are NACKed with their own code", () => {
  const l = listenerNack(
    listener("x", {
      filterChains: [
        {
          transportSocket: {
            name: "envoy.transport_sockets.tls",
            typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", {
              requireSni: { value: true },
            }),
          },
          filters: [{ name: "envoy.filters.network.http_connection_manager", typedConfig: hcm() }],
        },
      ],
    }),
  );
  assert.equal(l.code, TLS);
  assert.match(
    l.message,
    /^Listener "x": filter_chains\[0\]\.transport_socket\.typed_config\.require_sni: not supported/,
  );
  const c = clusterNack(
    cluster("c", {
      transportSocket: {
        name: "envoy.transport_sockets.tls",
        typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", {
          allowRenegotiation: true,
        }),
      },
    }),
  );
  assert.equal(c.code, TLS);
  assert.match(c.message, /^Cluster "c": transport_socket\.typed_config\.allow_renegotiation: not supported/);
});

test("filter chains the sidecar would have to choose between, or match criteria it cannot evaluate, are NACKed", () => {
  const chain = { filters: [{ name: "envoy.filters.network.http_connection_manager", typedConfig: hcm() }] };
  const two = listenerNack(listener("x", { filterChains: [chain, chain] }));
  assert.equal(two.code, UNSUPPORTED);
  assert.equal(
    two.message,
    'Listener "x": filter_chains: 2 filter chains: two have no match criteria; the Skein sidecar chooses filter chains by transport_protocol (tls, raw_buffer) only',
  );
  const sni = listenerNack(
    listener("x", { filterChains: [{ ...chain, filterChainMatch: { serverNames: ["a.example.com"] } }] }),
  );
  assert.equal(sni.code, UNSUPPORTED);
  assert.match(
    sni.message,
    /^Listener "x": filter_chains\[0\]\.filter_chain_match\.server_names: cannot evaluate/,
  );
  // Criteria every connection meets are fine: the listener's own port, plaintext.
  const own = compileListener(
    wire(
      LISTENER,
      listener("x", {
        filterChains: [
          {
            ...chain,
            filterChainMatch: { destinationPort: { value: 15001 }, transportProtocol: "raw_buffer" },
          },
        ],
      }),
    ),
  );
  assert.equal(own.config.kind, "http");
  const other = listenerNack(
    listener("x", { filterChains: [{ ...chain, filterChainMatch: { destinationPort: { value: 80 } } }] }),
  );
  assert.equal(other.code, UNSUPPORTED);
});

test("listener filters, API listeners and non-AUTO codecs are NACKed", () => {
  const lf = listenerNack(
    listener("x", {
      listenerFilters: [
        {
          name: "envoy.filters.listener.http_inspector",
          typedConfig: typed("envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"),
        },
      ],
    }),
  );
  assert.equal(
    lf.message,
    'Listener "x": listener_filters[0]: unsupported listener filter envoy.filters.listener.http_inspector (the sidecar runs tls_inspector)',
  );
  const api = listenerNack({ name: "svc:8080", apiListener: { apiListener: hcm() } });
  assert.equal(api.code, UNSUPPORTED);
  assert.match(
    api.message,
    /^Listener "svc:8080": api_listener: API listeners are for proxyless gRPC clients/,
  );
  const codec = listenerNack(
    listener("x", {
      filterChains: [{ filters: [{ name: "hcm", typedConfig: hcm({ codecType: "HTTP2" }) }] }],
    }),
  );
  assert.equal(
    codec.message,
    'Listener "x": filter_chains[0].filters[0].typed_config.codec_type: HTTP2: only AUTO is supported (the sidecar detects the protocol)',
  );
});

test("a field the sidecar does not implement is NACKed by name rather than ignored", () => {
  const e = clusterNack(
    cluster("c", { upstreamBindConfig: { sourceAddress: { address: "127.0.0.1", portValue: 0 } } }),
  );
  assert.equal(e.code, UNSUPPORTED);
  assert.equal(e.message, 'Cluster "c": upstream_bind_config: not supported by the Skein sidecar');
  const r = routeNack(
    routeConfiguration("r", [
      route({ route: { cluster: "c1", hedgePolicy: { initialRequests: { value: 2 } } } }),
    ]),
  );
  assert.equal(
    r.message,
    'RouteConfiguration "r": virtual_hosts[0].routes[0].route.hedge_policy: not supported by the Skein sidecar',
  );
});

test("unsupported cluster types and load-balancing policies are NACKed", () => {
  const aggregate = clusterNack({
    name: "agg",
    clusterType: {
      name: "envoy.clusters.aggregate",
      typedConfig: typed("envoy.extensions.clusters.aggregate.v3.ClusterConfig", { clusters: ["a", "b"] }),
    },
  });
  assert.equal(aggregate.code, UNSUPPORTED);
  assert.match(
    aggregate.message,
    /^Cluster "agg": cluster_type: custom cluster type envoy\.clusters\.aggregate is not supported/,
  );

  const cswrr = {
    typedExtensionConfig: {
      name: "cswrr",
      typedConfig: typed(
        "envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin",
      ),
    },
  };
  const none = clusterNack(
    cluster("c", { lbPolicy: "LOAD_BALANCING_POLICY_CONFIG", loadBalancingPolicy: { policies: [cswrr] } }),
  );
  assert.equal(none.code, UNSUPPORTED);
  assert.match(none.message, /^Cluster "c": load_balancing_policy: none of the policies is supported/);
  // The first supported policy in the list wins, as in Envoy.
  const rr = {
    typedExtensionConfig: {
      name: "rr",
      typedConfig: typed("envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"),
    },
  };
  assert.equal(
    compileCluster(wire(CLUSTER, cluster("c", { loadBalancingPolicy: { policies: [cswrr, rr] } }))).lbPolicy,
    "ROUND_ROBIN",
  );

  const od = clusterNack({ name: "od", type: "ORIGINAL_DST", lbPolicy: "ROUND_ROBIN" });
  assert.equal(od.code, INVALID);
  assert.equal(
    od.message,
    'Cluster "od": lb_policy: ROUND_ROBIN is not valid for an ORIGINAL_DST cluster: use CLUSTER_PROVIDED',
  );
  const maglev = clusterNack(
    cluster("c", { lbPolicy: "MAGLEV", maglevLbConfig: { tableSize: { value: 1000 } } }),
  );
  assert.equal(maglev.message, 'Cluster "c": maglev_lb_config.table_size: must be a prime number, got 1000');
  const choice = clusterNack(
    cluster("c", { lbPolicy: "LEAST_REQUEST", leastRequestLbConfig: { choiceCount: { value: 5 } } }),
  );
  assert.equal(choice.code, UNSUPPORTED);
});

test("success-rate outlier ejection explicitly enforced is NACKed; left unset it is not applied", () => {
  const e = clusterNack(cluster("c", { outlierDetection: { enforcingSuccessRate: { value: 100 } } }));
  assert.equal(e.code, UNSUPPORTED);
  assert.match(
    e.message,
    /^Cluster "c": outlier_detection\.enforcing_success_rate: success-rate and failure-percentage ejection/,
  );
  const c = compileCluster(wire(CLUSTER, cluster("c", { outlierDetection: {} })));
  assert.equal(c.outlierDetection?.consecutive5xx, 5);
});

test("regexes that are not RE2, or that JavaScript cannot run as RE2 does, are NACKed", () => {
  const cases: [string, RegExp][] = [
    ["(a)\\1", /backreferences \(\\1\) are not RE2/],
    ["/api(?=/v1)", /lookaround assertions are not RE2/],
    ["/(?i:abc)", /flags are only supported at the very start/],
    ["(?U)a+", /ungreedy/],
    ["a{1001}", /exceeds RE2's limit of 1000/],
    ["a\\C", /any byte/],
    ["[", /missing \]/],
    ["(a", /cannot be compiled/],
  ];
  for (const [pattern, reason] of cases) {
    const e = routeNack(routeConfiguration("r", [route({ match: { safeRegex: { regex: pattern } } })]));
    assert.equal(e.code, REGEX, pattern);
    assert.ok(
      e.message.startsWith(
        `RouteConfiguration "r": virtual_hosts[0].routes[0].match.safe_regex.regex: regex ${JSON.stringify(pattern)}`,
      ),
      e.message,
    );
    assert.match(e.message, reason, pattern);
  }
  const ignoreCase = routeNack(
    routeConfiguration("r", [
      route({
        match: {
          prefix: "/",
          headers: [{ name: "x", stringMatch: { safeRegex: { regex: "a" }, ignoreCase: true } }],
        },
      }),
    ]),
  );
  assert.equal(ignoreCase.code, INVALID);
  const rewrite = routeNack(
    routeConfiguration("r", [
      route({ route: { cluster: "c1", regexRewrite: { pattern: { regex: "/(a)" }, substitution: "/\\2" } } }),
    ]),
  );
  assert.equal(rewrite.code, REGEX);
  assert.match(rewrite.message, /substitution uses \\2 but the regex has only 1 groups/);
});

test("retry conditions, host predicates and header formatters the router does not implement are NACKed", () => {
  const retry = routeNack(
    routeConfiguration("r", [
      route({ route: { cluster: "c1", retryPolicy: { retryOn: "5xx,envoy-ratelimited" } } }),
    ]),
  );
  assert.equal(retry.code, UNSUPPORTED);
  assert.match(retry.message, /retry_policy\.retry_on: retry condition "envoy-ratelimited" is not supported/);
  const predicate = routeNack(
    routeConfiguration("r", [
      route({
        route: {
          cluster: "c1",
          retryPolicy: {
            retryOn: "5xx",
            retryHostPredicate: [
              {
                name: "envoy.retry_host_predicates.omit_canary_hosts",
                typedConfig: typed(
                  "envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate",
                ),
              },
            ],
          },
        },
      }),
    ]),
  );
  assert.match(
    predicate.message,
    /retry_host_predicate\[0\]: retry host predicate envoy\.retry_host_predicates\.omit_canary_hosts is not supported/,
  );
  const formatter = routeNack(
    routeConfiguration("r", [
      route({ requestHeadersToAdd: [{ header: { key: "x-client", value: "%DOWNSTREAM_REMOTE_ADDRESS%" } }] }),
    ]),
  );
  assert.equal(formatter.code, UNSUPPORTED);
  assert.equal(
    formatter.message,
    'RouteConfiguration "r": virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: header value formatter %DOWNSTREAM_REMOTE_ADDRESS% is not supported by the Skein sidecar (write %% for a literal %)',
  );
  const host = routeNack(
    routeConfiguration("r", [route({ requestHeadersToAdd: [{ header: { key: "Host", value: "x" } }] })]),
  );
  assert.equal(host.code, INVALID);
  assert.match(host.message, /:-prefixed or host headers may not be modified/);
  const action = routeNack(
    routeConfiguration("r", [
      route({ requestHeadersToAdd: [{ header: { key: "x", value: "1" }, appendAction: "ADD_IF_ABSENT" }] }),
    ]),
  );
  assert.equal(action.code, UNSUPPORTED);
});

test("faults and per-route configs the sidecar cannot run are NACKed; optional unknown per-route configs are skipped", () => {
  const rate = routeNack(
    routeConfiguration("r", [
      route({
        typedPerFilterConfig: {
          "envoy.filters.http.fault": typed("envoy.extensions.filters.http.fault.v3.HTTPFault", {
            responseRateLimit: { fixedLimit: { limitKbps: "10" }, percentage: { numerator: 100 } },
          }),
        },
      }),
    ]),
  );
  assert.equal(rate.code, UNSUPPORTED);
  assert.match(
    rate.message,
    /typed_per_filter_config\["envoy\.filters\.http\.fault"\]\.response_rate_limit: response rate limiting faults/,
  );
  const noType = routeNack(
    routeConfiguration("r", [
      route({ typedPerFilterConfig: { rbac: typed("envoy.extensions.filters.http.rbac.v3.RBACPerRoute") } }),
    ]),
  );
  assert.equal(noType.code, UNSUPPORTED);
  assert.match(
    noType.message,
    /unsupported per-route filter config envoy\.extensions\.filters\.http\.rbac\.v3\.RBACPerRoute/,
  );
  const optional = compileRouteConfiguration(
    wire(
      ROUTE,
      routeConfiguration("r", [
        route({
          typedPerFilterConfig: {
            rbac: typed("envoy.config.route.v3.FilterConfig", {
              config: typed("envoy.extensions.filters.http.rbac.v3.RBACPerRoute"),
              isOptional: true,
            }),
          },
        }),
      ]),
    ),
  );
  assert.equal(optional.catchAll?.routes[0]?.filterConfig.size, 0);
  const badStatus = routeNack(
    routeConfiguration("r", [
      route({
        typedPerFilterConfig: {
          "envoy.filters.http.fault": typed("envoy.extensions.filters.http.fault.v3.HTTPFault", {
            abort: { httpStatus: 100, percentage: { numerator: 100 } },
          }),
        },
      }),
    ]),
  );
  assert.equal(badStatus.code, INVALID);
  assert.match(badStatus.message, /abort\.http_status: must be in \[200, 600\), got 100/);
});

test("route tables Envoy would reject are NACKed: duplicate domains or names, zero total weight, unknown validated clusters", () => {
  const dupDomain = routeNack({
    name: "r",
    virtualHosts: [
      { name: "a", domains: ["x.com"], routes: [route()] },
      { name: "b", domains: ["X.com"], routes: [route()] },
    ],
  });
  assert.equal(
    dupDomain.message,
    'RouteConfiguration "r": virtual_hosts[1].domains[0]: duplicate domain "X.com": each domain may appear once',
  );
  const dupName = routeNack({
    name: "r",
    virtualHosts: [
      { name: "a", domains: ["x.com"], routes: [route()] },
      { name: "a", domains: ["y.com"], routes: [route()] },
    ],
  });
  assert.equal(dupName.code, INVALID);
  const zero = routeNack(
    routeConfiguration("r", [
      route({ route: { weightedClusters: { clusters: [{ name: "a", weight: { value: 0 } }] } } }),
    ]),
  );
  assert.equal(
    zero.message,
    'RouteConfiguration "r": virtual_hosts[0].routes[0].route.weighted_clusters.clusters: the sum of the weights must be greater than 0',
  );
  const redirectRegex = routeNack(
    routeConfiguration("r", [
      { match: { prefix: "/" }, redirect: { regexRewrite: { pattern: { regex: "a" }, substitution: "b" } } },
    ]),
  );
  assert.equal(redirectRegex.code, UNSUPPORTED);
});

test("endpoints: EDS and STATIC need IP addresses; LOGICAL_DNS exactly one endpoint; drop_overloads unsupported", () => {
  const host = nack(() =>
    compileClusterLoadAssignment(wire(ENDPOINT, loadAssignment("c1", [["db.example.com", 5432]]))),
  );
  assert.equal(host.code, INVALID);
  assert.equal(
    host.message,
    'ClusterLoadAssignment "c1": endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "db.example.com" is not an IP address (only DNS clusters resolve names)',
  );
  const logical = clusterNack({
    name: "l",
    type: "LOGICAL_DNS",
    loadAssignment: loadAssignment("l", [
      ["a.example.com", 80],
      ["b.example.com", 80],
    ]),
  });
  assert.equal(
    logical.message,
    'Cluster "l": load_assignment: LOGICAL_DNS clusters take exactly one endpoint, got 2',
  );
  const drops = nack(() =>
    compileClusterLoadAssignment(
      wire(ENDPOINT, {
        ...loadAssignment(),
        policy: { dropOverloads: [{ category: "x", dropPercentage: { numerator: 1 } }] },
      }),
    ),
  );
  assert.equal(drops.code, UNSUPPORTED);
});

test("RDS from anywhere but the ADS stream is NACKed", () => {
  const e = listenerNack(
    listener("x", {
      filterChains: [
        {
          filters: [
            {
              name: "hcm",
              typedConfig: hcm({
                rds: {
                  routeConfigName: "r1",
                  configSource: { pathConfigSource: { path: "/etc/routes.yaml" } },
                },
              }),
            },
          ],
        },
      ],
    }),
  );
  assert.equal(e.code, UNSUPPORTED);
  assert.match(
    e.message,
    /rds\.config_source: the Skein sidecar takes its configuration from the ADS stream only/,
  );
});
