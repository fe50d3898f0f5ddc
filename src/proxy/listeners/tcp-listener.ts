// A TCP listener (Envoy's tcp_proxy): each accepted connection goes to a host of a cluster chosen by weight
// and bytes pass both ways untouched, with half-close and an idle timeout. Bytes wait in the kernel until
// the upstream is connected (pauseOnConnect), so nothing is read that could be lost.
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { logAccess } from "../access-log/writer.js";
import type { Listener, TcpListenerConfig } from "../config/types.js";
import { NetworkRbac } from "../filters/rbac/network.js";
import { type ConnectionInfo, plaintextConnection } from "../router/connection.js";
import type { Stat } from "../router/stats.js";
import { ResponseFlag, StreamInfo } from "../router/stream-info.js";
import type { ListenerContext } from "./context.js";
import { listen } from "./http-listener.js";
import { DownstreamTransport } from "./transport.js";
import { tunnel } from "./tunnel.js";

interface TcpStats {
  cxTotal: Stat;
  cxActive: Stat;
  noRoute: Stat;
  connectFail: Stat;
  idleTimeout: Stat;
}

function tcpStats(ctx: ListenerContext, prefix: string): TcpStats {
  const p = `tcp.${prefix}.`;
  return {
    cxTotal: ctx.stats.counter(`${p}downstream_cx_total`),
    cxActive: ctx.stats.gauge(`${p}downstream_cx_active`),
    noRoute: ctx.stats.counter(`${p}downstream_cx_no_route`),
    connectFail: ctx.stats.counter(`${p}upstream_cx_connect_fail`),
    idleTimeout: ctx.stats.counter(`${p}idle_timeout`),
  };
}

/** The cluster a roll in [0, 1) selects by weight. */
export function pickTcpCluster(clusters: TcpListenerConfig["clusters"], roll: number): string | undefined {
  if (clusters.length <= 1) return clusters[0]?.name;
  let total = 0;
  for (const c of clusters) total += c.weight;
  if (total <= 0) return clusters[0]?.name;
  const r = Math.floor(roll * total);
  let cumulative = 0;
  for (const c of clusters) {
    cumulative += c.weight;
    if (r < cumulative) return c.name;
  }
  return clusters[clusters.length - 1]?.name;
}

export class TcpListener {
  config: TcpListenerConfig;
  draining = false;
  private stats: TcpStats;
  /** The chain's network RBAC filters; undefined when it has none. */
  private rbac: NetworkRbac | undefined;
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();
  private drained: (() => void) | undefined;
  /** Filter chain selection by transport protocol and TLS termination (the proxied bytes are the decrypted ones). */
  readonly transport: DownstreamTransport;

  constructor(
    public listener: Listener,
    private readonly ctx: ListenerContext,
  ) {
    this.config = listener.config as TcpListenerConfig;
    this.stats = tcpStats(ctx, this.config.statPrefix);
    this.rbac = this.config.rbac ? new NetworkRbac(this.config.rbac, ctx.stats) : undefined;
    this.transport = new DownstreamTransport(listener.name, ctx.stats, ctx.secrets, this.onConnection);
    this.server = createNetServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) =>
      this.transport.accept(s, this.listener.transport),
    );
  }

  get name(): string {
    return this.listener.name;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  listen(): Promise<void> {
    return listen(this.server, this.listener);
  }

  update(listener: Listener): void {
    this.listener = listener;
    this.config = listener.config as TcpListenerConfig;
    this.stats = tcpStats(this.ctx, this.config.statPrefix);
    this.rbac = this.config.rbac ? new NetworkRbac(this.config.rbac, this.ctx.stats) : undefined;
  }

  /** Stops accepting; open connections carry on until they end or `ms` passes. */
  drain(ms: number): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.server.close();
    }
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prev = this.drained;
      const timer = setTimeout(() => {
        this.close();
        finish();
      }, ms);
      const finish = () => {
        clearTimeout(timer);
        prev?.();
        resolve();
      };
      this.drained = finish;
    });
  }

  close(): void {
    this.draining = true;
    this.server.close();
    this.transport.close();
    for (const s of this.sockets) s.destroy();
  }

  private readonly onConnection = (socket: Socket, connection?: ConnectionInfo): void => {
    const stats = this.stats;
    stats.cxTotal.value++;
    stats.cxActive.value++;
    this.sockets.add(socket);
    socket.on("error", noop);
    const info = new StreamInfo(this.listener.name, "TCP", "", "", "", socket.remoteAddress ?? "");
    info.connection = connection ?? plaintextConnection(socket);
    const ac = new AbortController();
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      info.downstreamResponseEnd = info.elapsed();
      const logs = this.config.accessLog;
      if (logs) logAccess(logs, info);
      this.ctx.onRequestComplete?.(info);
    };
    socket.once("close", () => {
      this.sockets.delete(socket);
      stats.cxActive.value--;
      ac.abort(new Error("downstream went away"));
      if (this.draining && this.sockets.size === 0) {
        const d = this.drained;
        this.drained = undefined;
        d?.();
      }
    });
    // Network RBAC: a refused connection is closed before any upstream is chosen or connected.
    const refused = this.rbac?.refusal(info.connection);
    if (refused !== undefined) {
      info.responseCodeDetails = `rbac_access_denied_matched_policy[${refused}]`;
      socket.destroy();
      done();
      return;
    }
    const name = pickTcpCluster(this.config.clusters, this.ctx.random());
    info.cluster = name;
    const cluster = name !== undefined ? this.ctx.clusters.get(name) : undefined;
    if (!cluster) {
      stats.noRoute.value++;
      info.setFlag(ResponseFlag.NoClusterFound);
      socket.destroy();
      done();
      return;
    }
    const host = cluster.pick({});
    if (!host) {
      info.setFlag(ResponseFlag.NoHealthyUpstream);
      socket.destroy();
      done();
      return;
    }
    info.upstreamHost = host.key;
    info.attempts = 1;
    info.upstreamRequestStart = info.elapsed();
    host.connect(ac.signal).then(
      (upstream) => {
        if (socket.destroyed) {
          upstream.destroy();
          info.setFlag(ResponseFlag.DownstreamConnectionTermination);
          done();
          return;
        }
        info.upstreamResponseStart = info.elapsed();
        tunnel(socket, upstream, {
          idleTimeoutMs: this.config.idleTimeoutMs,
          onClose: (bytes) => {
            info.bytesReceived = bytes.downstreamToUpstream;
            info.bytesSent = bytes.upstreamToDownstream;
            if (bytes.idleTimedOut) stats.idleTimeout.value++;
            done();
          },
        });
      },
      (err: { flag?: string }) => {
        if (!ac.signal.aborted) {
          stats.connectFail.value++;
          if (err.flag === "UF") host.report({ kind: "connect-failure" });
          info.setFlag(
            err.flag === "UO" ? ResponseFlag.UpstreamOverflow : ResponseFlag.UpstreamConnectionFailure,
          );
        } else info.setFlag(ResponseFlag.DownstreamConnectionTermination);
        socket.destroy();
        done();
      },
    );
  };
}

function noop(): void {}
