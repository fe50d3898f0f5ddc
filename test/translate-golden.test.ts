// Golden files for translation: the example mesh (examples/) translated for two sidecars and a
// proxyless gRPC client. `UPDATE_GOLDEN=1 npm test` rewrites test/golden/; otherwise any difference
// fails with the first differing path.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { translate } from "../src/translate/index.js";
import {
  API_GATEWAY_SIDECAR,
  exampleSnapshot,
  ORDER_V1_SIDECAR,
  PROXYLESS_CLIENT,
} from "./translate-fixture.js";

const goldenDir = new URL("./golden/", import.meta.url);
const update = process.env.UPDATE_GOLDEN === "1";

function golden(name: string, actual: unknown): void {
  const file = new URL(`${name}.json`, goldenDir);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (update) {
    mkdirSync(goldenDir, { recursive: true });
    writeFileSync(file, text);
    return;
  }
  assert.ok(existsSync(file), `missing golden file ${file.pathname}: run with UPDATE_GOLDEN=1`);
  assert.deepEqual(
    JSON.parse(text),
    JSON.parse(readFileSync(file, "utf8")),
    `golden ${name} differs: UPDATE_GOLDEN=1 rewrites it`,
  );
}

const cases = [
  { name: "translate-sidecar-api-gateway", proxy: API_GATEWAY_SIDECAR },
  { name: "translate-sidecar-order-service-v1", proxy: ORDER_V1_SIDECAR },
  { name: "translate-proxyless-production", proxy: PROXYLESS_CLIENT },
];

for (const c of cases) {
  test(`golden: ${c.name}`, async () => {
    golden(c.name, translate(await exampleSnapshot(), c.proxy));
  });
}

test("translation is deterministic: the same input gives byte-identical output, whatever the input order", async () => {
  const snapshot = await exampleSnapshot();
  const shuffled = {
    ...snapshot,
    workloads: [...snapshot.workloads].reverse(),
    model: {
      ...snapshot.model,
      services: [...snapshot.model.services].reverse(),
      routeTables: [...snapshot.model.routeTables].reverse(),
      destinationPolicies: [...snapshot.model.destinationPolicies].reverse(),
    },
  };
  for (const proxy of [API_GATEWAY_SIDECAR, PROXYLESS_CLIENT]) {
    assert.equal(JSON.stringify(translate(shuffled, proxy)), JSON.stringify(translate(snapshot, proxy)));
  }
});

test("every name a listener or cluster references exists (a consistent snapshot)", async () => {
  const snapshot = await exampleSnapshot();
  for (const proxy of [API_GATEWAY_SIDECAR, ORDER_V1_SIDECAR, PROXYLESS_CLIENT]) {
    const r = translate(snapshot, proxy);
    const routeNames = new Set(r.routes.map((x) => x.name));
    const text = JSON.stringify(r.listeners);
    for (const m of text.matchAll(/"routeConfigName":"([^"]+)"/g))
      assert.ok(routeNames.has(m[1]), `${proxy.id}: RDS ${m[1]}`);
    const edsNames = new Set(r.endpoints.map((e) => e.clusterName));
    for (const c of r.clusters)
      if (c.type === "EDS")
        assert.ok(edsNames.has(c.edsClusterConfig?.serviceName), `${proxy.id}: EDS ${c.name}`);
    for (const kind of ["listeners", "routes", "clusters"] as const) {
      const names = r[kind].map((x) => x.name ?? "");
      assert.deepEqual(names, [...names].sort(), `${kind} sorted`);
      assert.equal(new Set(names).size, names.length, `${kind} unique`);
    }
  }
});
