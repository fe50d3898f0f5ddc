// The live service graph as SVG: one box per workload version, one curve per edge labelled with requests
// per second, 5xx share and p99 latency, and a lock on edges whose traffic is all mutual TLS. Stable
// data-* attributes (data-node, data-edge, data-rps) let tests and scripts read it.
import type { GraphEdge, GraphResponse } from "../control-plane/dashboard-types.js";
import { edgeLabel, labelWidth, layoutGraph, NODE_H, NODE_W } from "./layout.js";

function edgeClass(e: GraphEdge): string {
  if (e.rps === 0) return "edge idle";
  if (e.errorRate >= 0.05) return "edge bad";
  if (e.errorRate >= 0.01) return "edge warn";
  return "edge ok";
}

/** A padlock drawn with shapes (no emoji font needed), its top-left at (x, y). */
function Lock({ x, y }: { x: number; y: number }) {
  return (
    <g class="lock" transform={`translate(${x} ${y})`} data-testid="mtls-lock">
      <title>mutual TLS</title>
      <path d="M 2.5 5 V 3.5 a 3 3 0 0 1 6 0 V 5" fill="none" stroke-width="1.4" />
      <rect x="1" y="5" width="9" height="7" rx="1.2" />
    </g>
  );
}

export function ServiceGraph({ graph }: { graph: GraphResponse }) {
  const layout = layoutGraph(graph.nodes, graph.edges);
  if (graph.nodes.length === 0)
    return <p class="empty">No workloads yet: start some with `skein run` or `skein up`.</p>;
  return (
    <svg
      data-testid="service-graph"
      viewBox={`0 0 ${layout.width} ${layout.height}`}
      width={layout.width}
      height={layout.height}
      role="img"
      aria-label="service graph"
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
      </defs>
      {layout.edges.map(({ edge, d }) => (
        <path key={`p-${edge.id}`} d={d} class={edgeClass(edge)} marker-end="url(#arrow)" />
      ))}
      {layout.nodes.map(({ node, x, y }) => (
        <g
          key={node.id}
          data-testid="graph-node"
          data-node={node.id}
          class={node.instances > 0 ? "node" : "node gone"}
          transform={`translate(${x} ${y})`}
        >
          <title>{`${node.id}\nworkloads: ${node.workloads.join(", ") || "–"}\ninstances: ${node.instances}`}</title>
          <rect width={NODE_W} height={NODE_H} rx="6" />
          <text x="10" y="19" class="app">
            {node.app}
          </text>
          <text x="10" y="36" class="meta">
            {node.id === "unknown"
              ? "outside the mesh"
              : `${node.version} · ${node.namespace}${node.instances > 1 ? ` · ×${node.instances}` : ""}`}
          </text>
        </g>
      ))}
      {layout.edges.map(({ edge, labelX, labelY }) => {
        const text = edgeLabel(edge);
        const w = labelWidth(edge);
        return (
          <g
            key={`l-${edge.id}`}
            data-testid="graph-edge"
            data-edge={edge.id}
            data-rps={edge.rps.toFixed(3)}
            data-mtls={String(edge.mtls)}
            class="edge-label"
            transform={`translate(${labelX - w / 2} ${labelY - 9})`}
          >
            <rect width={w} height="16" rx="3" />
            {edge.mtls && <Lock x={4} y={2} />}
            <text x={edge.mtls ? 18 : 4} y="12">
              {text}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
