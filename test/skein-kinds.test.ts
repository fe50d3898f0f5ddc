import assert from "node:assert/strict";
import { test } from "node:test";
import { check, codes, plain } from "./helpers.js";

test("Skein Service lowers with FQDN, aliases and protocol from port name", () => {
  const r = check(`apiVersion: skein.dev/v1alpha1
kind: Service
metadata:
  name: order-service
  namespace: production
spec:
  selector: { app: order-service }
  ports:
    - name: grpc-api
      port: 9090
    - name: web
      port: 8080
      protocol: HTTP2
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const svc = plain(r.model?.services[0]);
  assert.equal(svc?.hostname, "order-service.production.svc.cluster.local");
  assert.deepEqual(
    svc?.ports.map((p) => `${p.name}:${p.number}:${p.protocol}`),
    ["grpc-api:9090:GRPC", "web:8080:HTTP2"],
  );
  assert.deepEqual(svc?.selector, { app: "order-service" });
});

test("Skein Workload: unknown field with suggestion, bad port range, wrong type", () => {
  const r = check(`apiVersion: skein.dev/v1alpha1
kind: Workload
metadata:
  name: w
spec:
  serviceAcount: sa
  ports:
    http: 70000
  address: 12
`);
  assert.deepEqual(
    codes(r.diagnostics).sort(),
    ["SKEIN_E_RANGE@8", "SKEIN_E_TYPE@9", "SKEIN_E_UNKNOWN_FIELD@6"].sort(),
  );
  const unknown = r.diagnostics.find((d) => d.code === "SKEIN_E_UNKNOWN_FIELD");
  assert.match(unknown?.message ?? "", /did you mean "serviceAccount"/);
  assert.equal(unknown?.path, "spec.serviceAcount");
  assert.equal(unknown?.column, 3);
});
