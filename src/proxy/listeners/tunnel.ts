// Raw byte tunnel between a downstream and an upstream connection (TCP proxy, WebSocket and other
// upgrades, CONNECT): both directions piped with backpressure, half-close passed through (a FIN one way
// ends only that direction), an idle timeout, and either side's error or reset closing both.
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

export interface TunnelOptions {
  /** Close both sides after this long without bytes either way; 0: never. */
  idleTimeoutMs: number;
  /** Called once when both sides are closed, with the bytes moved each way. */
  onClose?: (bytes: {
    downstreamToUpstream: number;
    upstreamToDownstream: number;
    idleTimedOut: boolean;
  }) => void;
}

export function tunnel(downstream: Socket, upstream: Duplex, opts: TunnelOptions): void {
  let up = 0;
  let down = 0;
  let idleTimedOut = false;
  let closed = 0;
  // Half-close needs both sockets to keep their writable side open after the peer's FIN.
  downstream.allowHalfOpen = true;
  (upstream as Socket).allowHalfOpen = true;
  const destroyBoth = () => {
    downstream.destroy();
    upstream.destroy();
  };
  const onClosed = (side: Duplex) => {
    if (++closed === 2) {
      opts.onClose?.({ downstreamToUpstream: up, upstreamToDownstream: down, idleTimedOut });
      return;
    }
    // Closed after a FIN each way: the other side has both FINs too and closes once its bytes flush.
    // Anything else (reset, error, destroy) leaves the other side nothing to talk to.
    if (!(side.readableEnded && side.writableFinished)) destroyBoth();
  };
  downstream.on("data", (c: Buffer) => {
    up += c.length;
  });
  upstream.on("data", (c: Buffer) => {
    down += c.length;
  });
  downstream.pipe(upstream);
  upstream.pipe(downstream);
  downstream.on("error", destroyBoth);
  upstream.on("error", destroyBoth);
  downstream.once("close", () => onClosed(downstream));
  upstream.once("close", () => onClosed(upstream));
  if (opts.idleTimeoutMs > 0) {
    // The downstream socket sees every byte (it reads one direction and writes the other), so its own
    // inactivity timer is the tunnel's.
    downstream.setTimeout(opts.idleTimeoutMs, () => {
      idleTimedOut = true;
      destroyBoth();
    });
  }
  downstream.resume();
}
