// The router filter, last in every HTTP filter chain: answers direct responses and redirects, and forwards
// everything else to the route's cluster with Envoy's semantics: weighted cluster by a uniform roll,
// header mutations, path and host rewrites, route and per-try timeouts, retries with jittered back-off and
// a retry circuit breaker, body replay within a buffer limit, streamed responses with trailers, and
// fire-and-forget request mirroring. Before each attempt it consults the chain's attempt filters (faults),
// so what they inject meets the same timeouts and retries as a real upstream failure.
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type {
  MirrorPolicy,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteAction,
  RouterConfig,
  WeightedCluster,
} from "../config/types.js";
import {
  type Host,
  type PickContext,
  type UpstreamCluster,
  UpstreamError,
  type UpstreamResponse,
} from "../upstream/types.js";
import { RETRY_BUFFER_LIMIT, RequestBody } from "./body.js";
import {
  type AttemptFilters,
  type FilterContext,
  type FilterStatus,
  StopIteration,
  type StreamFilter,
} from "./chain.js";
import type { DownstreamRequest } from "./downstream.js";
import {
  applyMutation,
  downstreamResponseHeaders,
  first,
  forwardableTrailers,
  type HeaderRecord,
  upstreamRequestHeaders,
} from "./headers.js";
import {
  grpcToHttpStatus,
  httpToGrpcStatus,
  isGrpc,
  type LocalReply,
  localReply,
  parseGrpcTimeout,
  Replies,
} from "./local-reply.js";
import { selectWeightedCluster } from "./match.js";
import {
  backoffMs,
  hasGrpcConditions,
  retriableError,
  retriableGrpc,
  retriableResponse,
  retriableTimeout,
} from "./retry.js";
import type { ClusterRouterStats } from "./stats.js";
import { ResponseFlag } from "./stream-info.js";

const DEFAULT_ROUTER_CONFIG: RouterConfig = { kind: "router", suppressEnvoyHeaders: false };

// Abort reasons: the upstream layer rejects an aborted attempt with the signal's reason, so the router
// recognises its own timeouts. Shared instances: nobody reads their stacks.
const PER_TRY_TIMEOUT = new UpstreamError("SKEIN_E_UPSTREAM_TIMEOUT", "UT", "per-try timeout");
const ROUTE_TIMEOUT = new UpstreamError("SKEIN_E_UPSTREAM_TIMEOUT", "UT", "route timeout");
const DOWNSTREAM_GONE = new Error("downstream went away");

export function createRouterFilter(config: unknown, _name: string, ctx: FilterContext): StreamFilter {
  const c = (config as RouterConfig | undefined) ?? DEFAULT_ROUTER_CONFIG;
  return new RouterFilter(c.kind === "router" ? c : DEFAULT_ROUTER_CONFIG, ctx);
}

export class RouterFilter implements StreamFilter {
  constructor(
    readonly config: RouterConfig,
    readonly ctx: FilterContext,
  ) {}

  decodeHeaders(req: DownstreamRequest): FilterStatus | Promise<FilterStatus> {
    // A filter may have cleared the route cache after changing what routing reads.
    if (req.table === undefined) req.resolveRoute(this.ctx.random);
    const route = req.route;
    if (!route) {
      req.stats.noRoute.value++;
      return Replies.noRoute;
    }
    const action = route.action;
    switch (action.kind) {
      case "direct":
        req.sendLocalReply(localReply(action.status, action.body ?? "", 0, "direct_response"), route);
        return StopIteration;
      case "redirect":
        req.sendLocalReply(
          localReply(action.status, "", 0, "redirect", {
            headers: { location: redirectLocation(req, route, action) },
          }),
          route,
        );
        return StopIteration;
      case "route":
        return new UpstreamCall(this, req, route, action).run();
    }
  }
}

/** Envoy's redirect: scheme, host, port, path (or prefix) swapped as configured; the query kept unless stripped. */
export function redirectLocation(
  req: { scheme: string; authority: string; path: string },
  route: Route,
  a: RedirectAction,
): string {
  const scheme = a.scheme ?? req.scheme;
  let host = a.host ?? req.authority;
  if (a.port !== undefined) host = `${withoutPort(host)}:${a.port}`;
  const q = req.path.indexOf("?");
  let path = q >= 0 ? req.path.slice(0, q) : req.path;
  let query = q >= 0 ? req.path.slice(q) : "";
  if (a.path !== undefined) {
    path = a.path;
    // A query in path_redirect replaces the request's.
    if (a.path.includes("?")) query = "";
  } else if (a.prefixRewrite !== undefined && route.match.path.kind !== "regex") {
    path = a.prefixRewrite + path.slice(route.match.path.value.length);
  }
  if (a.stripQuery) query = "";
  return `${scheme}://${host}${path}${query}`;
}

function withoutPort(host: string): string {
  const colon = host.lastIndexOf(":");
  if (colon < 0 || host.endsWith("]")) return host;
  return host.startsWith("[") || host.indexOf(":") === colon ? host.slice(0, colon) : host;
}

/** The path sent upstream: prefix rewrite (of the matched prefix or path), else regex rewrite of the path. */
export function rewritePath(route: Route, action: RouteAction, path: string): string {
  if (action.prefixRewrite !== undefined && route.match.path.kind !== "regex") {
    return action.prefixRewrite + path.slice(route.match.path.value.length);
  }
  const rr = action.regexRewrite;
  if (rr) {
    const q = path.indexOf("?");
    if (q < 0) return path.replace(rr.regex, rr.substitution);
    return path.slice(0, q).replace(rr.regex, rr.substitution) + path.slice(q);
  }
  return path;
}

function grpcStatusOf(v: string | string[] | undefined): number | undefined {
  const s = first(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isInteger(n) ? n : undefined;
}

type Peek = "data" | "end" | "error";

/** Waits for the first body chunk (put back for the reader) or the end, without losing either. */
function peekBody(body: Readable): Promise<Peek> {
  return new Promise((resolve) => {
    const done = (p: Peek) => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("error", onError);
      resolve(p);
    };
    const onData = (chunk: Buffer) => {
      body.pause();
      body.unshift(chunk);
      done("data");
    };
    const onEnd = () => done("end");
    const onError = () => done("error");
    body.on("data", onData);
    body.once("end", onEnd);
    body.once("error", onError);
  });
}

/** Drops a response we will not forward; small bodies are read out so the connection can be reused. */
function discard(res: UpstreamResponse): void {
  const body = res.body as Readable;
  const len = Number(first(res.headers["content-length"]));
  if (Number.isFinite(len) && len <= RETRY_BUFFER_LIMIT) body.resume();
  else body.destroy();
}

/** Envoy's shadow host: `-shadow` appended to the host name, before any port (`orders:8080` → `orders-shadow:8080`). */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(":");
  const bracket = authority.lastIndexOf("]");
  if (colon < 0 || colon < bracket || (bracket < 0 && authority.indexOf(":") !== colon))
    return `${authority}-shadow`;
  return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
}

function noop(): void {}

// Shadow requests never outlive the process's interest in them; with no route timeout nothing aborts them.
const NEVER = new AbortController().signal;
const NO_PICK: PickContext = {};

/** A shadow's response is read and dropped; its outcome still feeds the mirror cluster's outlier detection. */
class ShadowExchange {
  constructor(private readonly host: Host) {}

  readonly onResponse = (res: UpstreamResponse): void => {
    this.host.report({ kind: "response", status: res.status });
    const body = res.body as Readable;
    body.on("error", noop);
    body.resume();
  };

  readonly onError = (err: unknown): void => {
    if (err instanceof UpstreamError && err.flag !== "UO")
      this.host.report(err.flag === "UF" ? { kind: "connect-failure" } : { kind: "reset" });
  };
}

// Timer callbacks get the call as an argument, so a request pays for a closure only when a timer is set.
function routeTimeoutFired(call: UpstreamCall): void {
  call.onRouteTimeout();
}
function maxDurationFired(call: UpstreamCall): void {
  call.onMaxDuration();
}
function perTryTimeoutFired(call: UpstreamCall): void {
  call.onPerTryTimeout();
}
function backoffOver(call: UpstreamCall): void {
  call.endBackoff();
}

/** One forwarded request: its attempts, timers and the response pump. */
class UpstreamCall {
  private readonly ctx: FilterContext;
  private readonly policy: RetryPolicy | undefined;
  private wc: WeightedCluster | undefined;
  private cluster: UpstreamCluster | undefined;
  private cstats: ClusterRouterStats | undefined;
  private headers: HeaderRecord = {};
  private upstreamPath = "";
  private upstreamAuthority = "";
  private http2 = false;
  private body: RequestBody | undefined;
  private readonly pick: PickContext = {};
  private tried: Set<string> | undefined;
  private routeTimeoutMs = 0;
  private routeTimer: NodeJS.Timeout | undefined;
  private durationTimer: NodeJS.Timeout | undefined;
  /** Set when the route timeout or max stream duration fired: the reply the request ends with. */
  private expired: LocalReply | undefined;
  private perTryTimer: NodeJS.Timeout | undefined;
  private perTryPending = false;
  private perTryTimedOut = false;
  private attempt: AbortController | undefined;
  private attemptStart = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private downstreamGone = false;
  private retrySlot = false;
  /** Mirrors wait for the whole body (they send only bodies that fit the buffer). */
  private mirrorOnBodyEnd = false;

  constructor(
    private readonly router: RouterFilter,
    private readonly req: DownstreamRequest,
    private readonly route: Route,
    private readonly action: RouteAction,
  ) {
    this.ctx = router.ctx;
    this.policy = action.retry;
  }

  async run(): Promise<FilterStatus> {
    const req = this.req;
    // Gone while earlier filters (a fault delay) held the request: nobody is left to answer.
    if (req.aborted) return StopIteration;
    const info = req.info;
    const wc = selectWeightedCluster(this.action, this.ctx.random());
    if (!wc) return Replies.noCluster;
    this.wc = wc;
    info.cluster = wc.name;
    const cluster = this.ctx.clusters.get(wc.name);
    if (!cluster) return Replies.noCluster;
    this.cluster = cluster;
    this.cstats = this.ctx.stats.cluster(wc.name);
    this.prepare(cluster);
    if (this.action.mirrors.length > 0) {
      if (this.body === undefined) this.mirror(null);
      else this.mirrorOnBodyEnd = true;
    }
    req.onAbort(this);
    try {
      return await this.attempts();
    } finally {
      this.cleanup();
    }
  }

  private prepare(cluster: UpstreamCluster): void {
    const req = this.req;
    const { route, action } = this;
    const h = upstreamRequestHeaders(req.headers);
    // Most specific first, so the route table's own mutations win (Envoy's default order).
    applyMutation(h, (this.wc as WeightedCluster).requestHeaders);
    applyMutation(h, route.requestHeaders);
    if (req.virtualHost) applyMutation(h, req.virtualHost.requestHeaders);
    if (req.table) applyMutation(h, req.table.requestHeaders);
    if (h["x-forwarded-proto"] === undefined) h["x-forwarded-proto"] = req.scheme;
    if (h["x-request-id"] === undefined && req.manager.config.generateRequestId)
      h["x-request-id"] = randomUUID();
    req.info.requestId = first(h["x-request-id"]);
    this.headers = h;
    this.upstreamPath = rewritePath(route, action, req.path);
    this.upstreamAuthority = action.hostRewrite ?? req.authority;
    const cc = cluster.config;
    this.http2 = cc.http2 || (cc.useDownstreamProtocol && req.http2);

    let timeout = action.timeoutMs;
    if (action.grpcTimeoutHeaderMaxMs !== undefined && req.isGrpc()) {
      const t = parseGrpcTimeout(first(req.headers["grpc-timeout"]));
      if (t !== undefined) {
        const max = action.grpcTimeoutHeaderMaxMs;
        timeout = max > 0 ? Math.min(t, max) : t;
      }
    }
    this.routeTimeoutMs = timeout;
    const maxDuration = action.maxStreamDurationMs ?? 0;
    if (maxDuration > 0) {
      // Envoy counts max_stream_duration from the start of the stream, whatever the filters did meanwhile.
      const left = Math.max(0, maxDuration - req.info.elapsed());
      this.durationTimer = setTimeout(maxDurationFired, left, this);
    }

    if (action.hashPolicies.length > 0) {
      const q = req.path.indexOf("?");
      this.pick.hash = this.ctx.clusters.hashFor(action.hashPolicies, {
        headers: req.headers as Record<string, string | string[] | undefined>,
        sourceIp: req.sourceAddress,
        query: new URLSearchParams(q >= 0 ? req.path.slice(q + 1) : ""),
      });
    }

    const source = req.body();
    if (source) {
      const keep =
        (this.policy && this.policy.numRetries > 0) || action.mirrors.length > 0 ? RETRY_BUFFER_LIMIT : 0;
      this.body = new RequestBody(source, keep, this);
    } else {
      this.onBodyEnd();
    }
  }

  private async attempts(): Promise<FilterStatus> {
    const cluster = this.cluster as UpstreamCluster;
    const cstats = this.cstats as ClusterRouterStats;
    const info = this.req.info;
    const policy = this.policy;
    const faults = this.req.attemptFilters;
    let retries = 0;
    for (;;) {
      if (this.downstreamGone) return StopIteration;
      if (this.expired) return this.fail(this.expired);
      const attempt = ++info.attempts;
      // The previous attempt is over: timers firing from now on must not abort its discarded response.
      this.attempt = undefined;
      this.perTryTimedOut = false;
      this.armPerTry();
      if (faults !== undefined) {
        let injected = this.injectFaults(faults);
        if (injected instanceof Promise) injected = await injected;
        if (this.downstreamGone) return StopIteration;
        if (this.expired) return this.fail(this.expired);
        if (this.perTryTimedOut) {
          // A delay outlasted the per-try timeout: the attempt timed out, as a slow upstream's would.
          this.clearPerTry();
          this.releaseRetrySlot();
          if (policy && retriableTimeout(policy) && this.mayRetry(retries)) {
            retries++;
            await this.backoff(retries);
            continue;
          }
          return this.fail(Replies.perTryTimeout);
        }
        if (injected !== undefined) {
          // The attempt ended here: a retry slot it held is free again, as after an upstream answer.
          this.clearPerTry();
          this.releaseRetrySlot();
          if (policy && this.faultRetriable(policy, injected) && this.mayRetry(retries)) {
            retries++;
            await this.backoff(retries);
            continue;
          }
          return this.fail(injected);
        }
      }
      if (policy?.avoidPreviousHosts && this.tried) this.pick.avoid = this.tried;
      const host = cluster.pick(this.pick);
      if (!host) {
        cstats.noHealthy.value++;
        return this.fail(Replies.noHealthy);
      }
      let res: UpstreamResponse | undefined;
      let error: unknown;
      try {
        res = await this.send(host, attempt);
      } catch (e) {
        error = e;
      }
      this.releaseRetrySlot();
      if (this.downstreamGone) {
        if (res) discard(res);
        return StopIteration;
      }

      if (res === undefined) {
        this.clearPerTry();
        if (this.expired) {
          host.report({ kind: "timeout" });
          return this.fail(this.expired);
        }
        const err = this.perTryTimedOut
          ? PER_TRY_TIMEOUT
          : error instanceof UpstreamError
            ? error
            : new UpstreamError("SKEIN_E_UPSTREAM_RESET", "UR", String(error));
        this.reportError(host, err);
        if (policy && retriableError(policy, err) && this.mayRetry(retries)) {
          retries++;
          await this.backoff(retries);
          continue;
        }
        return this.fail(this.replyFor(err));
      }

      const status = res.status;
      info.upstreamResponseStart = info.elapsed();
      info.upstreamPeerPrincipal = host.peerPrincipal;
      const grpcInHeaders = grpcStatusOf(res.headers["grpc-status"]);
      const grpc = isGrpc(res.headers["content-type"]);
      if (
        policy &&
        retriableResponse(policy, status, grpc ? grpcInHeaders : undefined) &&
        this.mayRetry(retries)
      ) {
        this.clearPerTry();
        host.report({
          kind: "response",
          status: grpc && grpcInHeaders !== undefined ? grpcToHttpStatus(grpcInHeaders) : status,
        });
        cstats.responded(status);
        discard(res);
        retries++;
        await this.backoff(retries);
        continue;
      }

      // gRPC puts its status in trailers. When nothing but trailers follows the headers (an error answered
      // after sending metadata), nothing has gone downstream yet and a retriable status can still be retried.
      let trailersOnly: HeaderRecord | undefined;
      if (
        policy &&
        grpc &&
        grpcInHeaders === undefined &&
        retries < policy.numRetries &&
        hasGrpcConditions(policy) &&
        (this.body === undefined || this.body.replayable)
      ) {
        const peek = await peekBody(res.body as Readable);
        if (this.downstreamGone) return StopIteration;
        if (peek === "error") {
          this.clearPerTry();
          if (this.expired) return this.fail(this.expired);
          const err = this.perTryTimedOut
            ? PER_TRY_TIMEOUT
            : new UpstreamError("SKEIN_E_UPSTREAM_RESET", "UR", "reset");
          this.reportError(host, err);
          if (retriableError(policy, err) && this.mayRetry(retries)) {
            retries++;
            await this.backoff(retries);
            continue;
          }
          return this.fail(this.replyFor(err));
        }
        if (peek === "end") {
          trailersOnly = await res.trailers.catch(() => ({}));
          const g = grpcStatusOf(trailersOnly["grpc-status"]);
          if (g !== undefined && retriableGrpc(policy, g) && this.mayRetry(retries)) {
            this.clearPerTry();
            host.report({ kind: "response", status: grpcToHttpStatus(g) });
            cstats.responded(status);
            retries++;
            await this.backoff(retries);
            continue;
          }
        }
      }
      if (retries > 0) cstats.retrySuccess.value++;
      return this.forward(host, res, grpc, grpcInHeaders, trailersOnly);
    }
  }

  /**
   * Asks the chain's attempt filters about this attempt: holds it for an injected delay (the route and
   * per-try timeouts keep running, so a long delay times out as a slow upstream would), then returns an
   * injected abort, if any. The caller checks what happened meanwhile (expired, per-try, downstream gone).
   */
  private injectFaults(
    set: AttemptFilters,
    from = 0,
  ): LocalReply | undefined | Promise<LocalReply | undefined> {
    const req = this.req;
    const cluster = (this.wc as WeightedCluster).name;
    const filters = set.filters;
    for (let i = from; i < filters.length; i++) {
      const f = filters[i] as (typeof filters)[number];
      const perRoute = req.perFilterConfig(set.names[i] as string);
      const delay = f.attemptDelay(req, perRoute, cluster);
      // Only a delay makes this asynchronous: attempts without faults pay for no promise.
      if (delay > 0) return this.injectAfterDelay(set, i, delay);
      const abort = f.attemptAbort(req, perRoute, cluster);
      if (abort !== undefined) return abort;
    }
    return undefined;
  }

  private async injectAfterDelay(
    set: AttemptFilters,
    i: number,
    delay: number,
  ): Promise<LocalReply | undefined> {
    const f = set.filters[i] as AttemptFilters["filters"][number];
    await this.hold(delay);
    f.attemptDelayEnded(this.req);
    if (this.expired || this.perTryTimedOut || this.downstreamGone) return undefined;
    const abort = f.attemptAbort(
      this.req,
      this.req.perFilterConfig(set.names[i] as string),
      (this.wc as WeightedCluster).name,
    );
    return abort ?? this.injectFaults(set, i + 1);
  }

  /** An injected abort is retried when the status it stands for would be (gRPC requests read grpc-status). */
  private faultRetriable(policy: RetryPolicy, reply: LocalReply): boolean {
    if (!this.req.isGrpc()) return retriableResponse(policy, reply.status, undefined);
    return retriableGrpc(policy, reply.grpcStatus ?? httpToGrpcStatus(reply.status));
  }

  /** Starts the attempt's per-try clock (or marks it to start once the request body is complete). */
  private armPerTry(): void {
    const perTry = this.policy?.perTryTimeoutMs ?? 0;
    if (perTry <= 0) return;
    // As in Envoy, an attempt's clock starts once the whole request is available to send.
    if (this.body === undefined || this.body.complete) this.startPerTry(perTry);
    else this.perTryPending = true;
  }

  private send(host: Host, attempt: number): Promise<UpstreamResponse> {
    const ac = new AbortController();
    this.attempt = ac;
    const info = this.req.info;
    info.upstreamHost = host.key;
    info.upstreamRequestStart = info.elapsed();
    this.attemptStart = performance.now();
    if (this.policy?.avoidPreviousHosts) {
      if (this.tried === undefined) this.tried = new Set();
      this.tried.add(host.key);
    }
    (this.cstats as ClusterRouterStats).rqTotal.value++;
    this.headers["x-envoy-attempt-count"] = String(attempt);
    return host.request({
      method: this.req.method,
      path: this.upstreamPath,
      authority: this.upstreamAuthority,
      scheme: "http",
      headers: this.headers,
      body: this.body ? this.body.open() : null,
      signal: ac.signal,
      http2: this.http2,
    });
  }

  /** Streams the chosen response downstream; resolves when it ended or was reset. */
  private forward(
    host: Host,
    res: UpstreamResponse,
    grpc: boolean,
    grpcInHeaders: number | undefined,
    trailersOnly: HeaderRecord | undefined,
  ): Promise<FilterStatus> {
    const req = this.req;
    const info = req.info;
    const headers = downstreamResponseHeaders(res.headers);
    applyMutation(headers, (this.wc as WeightedCluster).responseHeaders);
    applyMutation(headers, this.route.responseHeaders);
    if (req.virtualHost) applyMutation(headers, req.virtualHost.responseHeaders);
    if (req.table) applyMutation(headers, req.table.responseHeaders);
    if (!this.router.config.suppressEnvoyHeaders) {
      headers["x-envoy-upstream-service-time"] = String(Math.round(performance.now() - this.attemptStart));
    }
    info.responseCodeDetails = "via_upstream";
    const status = res.status;
    const cstats = this.cstats as ClusterRouterStats;
    cstats.responded(status);
    const body = res.body as Readable;

    // gRPC trailers-only: one HEADERS frame ending the stream (grpc-status in it), as gRPC clients expect.
    if (trailersOnly !== undefined || (grpc && grpcInHeaders !== undefined)) {
      if (trailersOnly) {
        const t = forwardableTrailers(trailersOnly);
        if (t) Object.assign(headers, t);
      }
      const g = grpcStatusOf(headers["grpc-status"]);
      info.grpcStatus = g;
      host.report({ kind: "response", status: g !== undefined ? grpcToHttpStatus(g) : status });
      req.sendHeaders(status, headers, true);
      body.resume();
      return Promise.resolve(StopIteration);
    }
    if (!grpc) host.report({ kind: "response", status });
    if (req.method === "HEAD" || status === 204 || status === 304) {
      req.sendHeaders(status, headers, true);
      body.resume();
      return Promise.resolve(StopIteration);
    }
    req.sendHeaders(status, headers, false);

    return new Promise<FilterStatus>((resolve) => {
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        body.off("data", onData);
        body.off("error", onError);
        body.off("close", onClose);
        resolve(StopIteration);
      };
      const resume = () => body.resume();
      const onData = (chunk: Buffer) => {
        info.bytesSent += chunk.length;
        if (!req.write(chunk)) {
          body.pause();
          req.onceDrain(resume);
        }
      };
      const onEnd = () => {
        res.trailers.then(
          (t) => {
            if (grpc) {
              const g = grpcStatusOf(t["grpc-status"]);
              info.grpcStatus = g;
              host.report({ kind: "response", status: g !== undefined ? grpcToHttpStatus(g) : status });
            }
            req.end(forwardableTrailers(t));
            finish();
          },
          () => {
            req.end(undefined);
            finish();
          },
        );
      };
      const onError = () => {
        if (this.downstreamGone) {
          finish();
          return;
        }
        if (this.expired || this.perTryTimedOut) {
          info.setFlag(this.expired?.flag ?? ResponseFlag.UpstreamRequestTimeout);
          host.report({ kind: "timeout" });
        } else {
          info.setFlag(ResponseFlag.UpstreamRemoteReset);
          cstats.reset.value++;
          host.report({ kind: "reset" });
        }
        req.reset();
        finish();
      };
      // A body destroyed without an error (aborted by us) ends the response too.
      const onClose = () => {
        if (!body.readableEnded) onError();
      };
      body.on("data", onData);
      body.once("end", onEnd);
      body.once("error", onError);
      body.once("close", onClose);
      body.resume();
    });
  }

  /** Whether another attempt may go: retries left, body replayable, time left, and the retry budget. */
  private mayRetry(retries: number): boolean {
    const policy = this.policy as RetryPolicy;
    const cstats = this.cstats as ClusterRouterStats;
    if (retries >= policy.numRetries) {
      this.req.info.setFlag(ResponseFlag.UpstreamRetryLimitExceeded);
      cstats.retryLimitExceeded.value++;
      return false;
    }
    if (this.body !== undefined && !this.body.replayable) return false;
    if (this.expired || this.downstreamGone) return false;
    if (!(this.cluster as UpstreamCluster).tryRetry()) {
      cstats.retryOverflow.value++;
      return false;
    }
    this.retrySlot = true;
    cstats.retry.value++;
    return true;
  }

  private releaseRetrySlot(): void {
    if (!this.retrySlot) return;
    this.retrySlot = false;
    (this.cluster as UpstreamCluster).retryDone();
  }

  private backoff(retry: number): Promise<void> {
    return this.hold(backoffMs(this.policy as RetryPolicy, retry, this.ctx.random));
  }

  /** Waits `ms` (a back-off or an injected delay); timeouts and a departed downstream end the wait early. */
  private hold(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.backoffTimer = setTimeout(backoffOver, ms, this);
    });
  }

  endBackoff(): void {
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private reportError(host: Host, err: UpstreamError): void {
    const cstats = this.cstats as ClusterRouterStats;
    switch (err.flag) {
      case "UF":
        cstats.connectFail.value++;
        host.report({ kind: "connect-failure" });
        break;
      case "UR":
        cstats.reset.value++;
        host.report({ kind: "reset" });
        break;
      case "UT":
        host.report({ kind: "timeout" });
        break;
      case "UO":
        cstats.overflow.value++;
        break;
    }
  }

  private replyFor(err: UpstreamError): LocalReply {
    switch (err.flag) {
      case "UF":
        return Replies.connectFailure;
      case "UO":
        return this.router.config.suppressEnvoyHeaders ? Replies.overflowQuiet : Replies.overflow;
      case "UT":
        return err === PER_TRY_TIMEOUT ? Replies.perTryTimeout : Replies.timeout;
      default:
        return Replies.reset;
    }
  }

  private fail(reply: LocalReply): FilterStatus {
    this.req.sendLocalReply(reply, this.route);
    return StopIteration;
  }

  private startPerTry(ms: number): void {
    this.perTryPending = false;
    this.perTryTimer = setTimeout(perTryTimeoutFired, ms, this);
  }

  private clearPerTry(): void {
    this.perTryPending = false;
    if (this.perTryTimer) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = undefined;
    }
  }

  /**
   * Envoy's request mirroring: each mirror policy's fraction is rolled, and a copy goes to a host of the
   * mirror cluster with `-shadow` appended to its host, fire and forget: its response is dropped, its
   * errors ignored, nothing waits for it. Bodies are mirrored only when they fit the replay buffer.
   */
  private mirror(body: Buffer | null): void {
    const mirrors = this.action.mirrors;
    for (let i = 0; i < mirrors.length; i++) {
      const m = mirrors[i] as MirrorPolicy;
      if (m.fraction < 1 && this.ctx.random() >= m.fraction) continue;
      const cluster = this.ctx.clusters.get(m.cluster);
      const host = cluster?.pick(NO_PICK);
      if (!cluster || !host) continue;
      const headers = { ...this.headers };
      delete headers["x-envoy-attempt-count"];
      const shadow = new ShadowExchange(host);
      host
        .request({
          method: this.req.method,
          path: this.upstreamPath,
          authority: shadowAuthority(this.upstreamAuthority),
          scheme: "http",
          headers,
          body,
          // Envoy gives shadows the route's timeout.
          signal: this.routeTimeoutMs > 0 ? AbortSignal.timeout(this.routeTimeoutMs) : NEVER,
          http2: cluster.config.http2 || (cluster.config.useDownstreamProtocol && this.req.http2),
        })
        .then(shadow.onResponse, shadow.onError);
    }
  }

  /** The downstream request ended (RequestBody calls this; bodyless requests at once). */
  onBodyEnd(): void {
    const info = this.req.info;
    info.downstreamRequestEnd = info.elapsed();
    if (this.mirrorOnBodyEnd) {
      this.mirrorOnBodyEnd = false;
      const whole = (this.body as RequestBody).buffered();
      if (whole !== undefined) this.mirror(whole);
    }
    if (this.routeTimeoutMs > 0 && this.routeTimer === undefined) {
      this.routeTimer = setTimeout(routeTimeoutFired, this.routeTimeoutMs, this);
    }
    if (this.perTryPending) this.startPerTry((this.policy as RetryPolicy).perTryTimeoutMs);
  }

  onRouteTimeout(): void {
    this.routeTimer = undefined;
    if (this.expired) return;
    this.expired = Replies.timeout;
    (this.cstats as ClusterRouterStats).timeout.value++;
    this.attempt?.abort(ROUTE_TIMEOUT);
    this.endBackoff();
  }

  onMaxDuration(): void {
    this.durationTimer = undefined;
    if (this.expired) return;
    this.expired = Replies.maxDuration;
    this.req.stats.rqMaxDurationReached.value++;
    this.attempt?.abort(ROUTE_TIMEOUT);
    this.endBackoff();
  }

  onPerTryTimeout(): void {
    this.perTryTimer = undefined;
    this.perTryTimedOut = true;
    (this.cstats as ClusterRouterStats).perTryTimeout.value++;
    this.attempt?.abort(PER_TRY_TIMEOUT);
    // An injected delay is part of the attempt: the per-try timeout ends it too.
    this.endBackoff();
  }

  onDownstreamAbort(): void {
    if (this.req.responseEnded) return;
    this.downstreamGone = true;
    this.req.info.setFlag(ResponseFlag.DownstreamConnectionTermination);
    this.attempt?.abort(DOWNSTREAM_GONE);
    this.endBackoff();
  }

  private cleanup(): void {
    if (this.routeTimer) clearTimeout(this.routeTimer);
    if (this.durationTimer) clearTimeout(this.durationTimer);
    this.routeTimer = undefined;
    this.durationTimer = undefined;
    this.clearPerTry();
    this.endBackoff();
    this.releaseRetrySlot();
    if (this.body) {
      this.req.info.bytesReceived = this.body.received;
      this.body.close();
    }
  }
}
