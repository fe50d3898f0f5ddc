// The service graph's layout: deterministic layers by call depth (callers left, callees right), nodes in a
// layer ordered by id, edges as curves from a node's right side to the next one's left side. Pure, so the
// same graph always draws the same way and tests can check it without a browser.
import type { GraphEdge, GraphNode } from "../control-plane/dashboard-types.js";

export const NODE_W = 150;
export const NODE_H = 46;
// Wide enough for an edge's label between two columns, tall enough that neighbouring labels do not collide.
const COL_GAP = 200;
const ROW_GAP = 60;
const MARGIN = 24;

export interface PlacedNode {
  node: GraphNode;
  layer: number;
  x: number;
  y: number;
}

export interface PlacedEdge {
  edge: GraphEdge;
  /** SVG path data. */
  d: string;
  labelX: number;
  labelY: number;
}

export interface Layout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

/**
 * Layer of each node: the longest chain of callers in front of it. Cycles are cut first: a depth-first walk
 * (from `unknown` callers, then nodes nobody calls, then by id) drops each edge back to a node on its path, so
 * the rest is acyclic. A node without traffic joins the layer of another version of the same app, else 0.
 */
export function layers(nodes: readonly GraphNode[], edges: readonly GraphEdge[]): Map<string, number> {
  const ids = [...nodes].map((n) => n.id).sort();
  const known = new Set(ids);
  const calls = edges.filter((e) => e.source !== e.target && known.has(e.source) && known.has(e.target));
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of [...calls].sort((a, b) => a.id.localeCompare(b.id))) out.get(e.source)?.push(e.target);
  const called = new Set(calls.map((e) => e.target));
  const state = new Map<string, "open" | "done">();
  const forward: [string, string][] = [];
  const visit = (id: string) => {
    state.set(id, "open");
    for (const t of out.get(id) ?? []) {
      if (state.get(t) === "open") continue; // back edge: part of a cycle
      forward.push([id, t]);
      if (!state.has(t)) visit(t);
    }
    state.set(id, "done");
  };
  // Callers from outside the mesh are where traffic enters, cycle or not.
  const starts = [...ids.filter((i) => i === "unknown"), ...ids.filter((i) => !called.has(i)), ...ids];
  for (const id of starts) if (!state.has(id)) visit(id);
  const depth = new Map(ids.map((id) => [id, 0]));
  // Longest path on the acyclic rest: relax until stable (at most one round per node).
  for (let round = 0; round < ids.length; round++) {
    let changed = false;
    for (const [s, t] of forward) {
      const d = (depth.get(s) ?? 0) + 1;
      if (d > (depth.get(t) ?? 0)) {
        depth.set(t, d);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const connected = new Set(calls.flatMap((e) => [e.source, e.target]));
  for (const n of nodes) {
    if (connected.has(n.id)) continue;
    const sibling = nodes.find(
      (o) => connected.has(o.id) && o.namespace === n.namespace && o.app === n.app && o.id !== n.id,
    );
    depth.set(n.id, sibling ? (depth.get(sibling.id) ?? 0) : 0);
  }
  return depth;
}

/** Positions for every node and a curve and label position for every edge. */
export function layoutGraph(nodes: readonly GraphNode[], edges: readonly GraphEdge[]): Layout {
  const depth = layers(nodes, edges);
  const columns: GraphNode[][] = [];
  for (const n of [...nodes].sort((a, b) => a.id.localeCompare(b.id))) {
    const l = depth.get(n.id) ?? 0;
    const col = columns[l] ?? [];
    col.push(n);
    columns[l] = col;
  }
  const rows = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  const height = 2 * MARGIN + rows * NODE_H + (rows - 1) * ROW_GAP;
  const placed = new Map<string, PlacedNode>();
  columns.forEach((col, layer) => {
    if (!col) return;
    const colHeight = col.length * NODE_H + (col.length - 1) * ROW_GAP;
    const top = (height - colHeight) / 2;
    col.forEach((node, i) => {
      placed.set(node.id, {
        node,
        layer,
        x: MARGIN + layer * (NODE_W + COL_GAP),
        y: top + i * (NODE_H + ROW_GAP),
      });
    });
  });
  const width = 2 * MARGIN + Math.max(1, columns.length) * NODE_W + Math.max(0, columns.length - 1) * COL_GAP;
  const placedEdges: PlacedEdge[] = [];
  for (const edge of [...edges].sort((a, b) => a.id.localeCompare(b.id))) {
    const s = placed.get(edge.source);
    const t = placed.get(edge.target);
    if (!s || !t) continue;
    if (s === t) {
      // A self-call: a loop above the node.
      const x = s.x + NODE_W / 2;
      placedEdges.push({
        edge,
        d: `M ${x - 20} ${s.y} C ${x - 40} ${s.y - 40}, ${x + 40} ${s.y - 40}, ${x + 20} ${s.y}`,
        labelX: x,
        labelY: s.y - 34,
      });
      continue;
    }
    const forward = t.x > s.x;
    const x1 = forward ? s.x + NODE_W : s.x;
    const x2 = forward ? t.x : t.x + NODE_W;
    const y1 = s.y + NODE_H / 2;
    const y2 = t.y + NODE_H / 2;
    const bend = forward ? Math.max(40, (x2 - x1) / 2) : -80;
    placedEdges.push({
      edge,
      d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      labelX: (x1 + x2) / 2,
      labelY: (y1 + y2) / 2 - 6,
    });
  }
  separateLabels(placedEdges);
  return { width, height, nodes: [...placed.values()], edges: placedEdges };
}

/** A label's box: its text in the 11 px monospace face (about 6.8 px a character), the lock, padding. */
export function labelWidth(e: GraphEdge): number {
  return edgeLabel(e).length * 6.8 + (e.mtls ? 16 : 0) + 8;
}
const LABEL_H = 16;

/**
 * Labels sit at their curve's middle, where crossing curves put them on top of each other: each one that
 * overlaps a label already placed moves down below it (in a stable order, so the picture does not jump).
 */
function separateLabels(edges: PlacedEdge[]): void {
  const placed: { x: number; y: number; w: number }[] = [];
  const order = [...edges].sort((a, b) => a.labelY - b.labelY || a.labelX - b.labelX);
  for (const e of order) {
    const w = labelWidth(e.edge);
    for (let tries = 0; tries < edges.length; tries++) {
      const hit = placed.find(
        (p) => Math.abs(p.x - e.labelX) < (p.w + w) / 2 + 2 && Math.abs(p.y - e.labelY) < LABEL_H + 2,
      );
      if (!hit) break;
      e.labelY = hit.y + LABEL_H + 3;
    }
    placed.push({ x: e.labelX, y: e.labelY, w });
  }
}

/** An edge's label: `rps · error % · p99`. */
export function edgeLabel(e: GraphEdge): string {
  const rps = e.rps >= 10 ? e.rps.toFixed(0) : e.rps.toFixed(1);
  const err = `${(100 * e.errorRate).toFixed(e.errorRate > 0 && e.errorRate < 0.01 ? 2 : 1)}%`;
  const p99 =
    e.p99Ms === null ? "–" : e.p99Ms >= 100 ? `${e.p99Ms.toFixed(0)} ms` : `${e.p99Ms.toFixed(1)} ms`;
  return `${rps} rps · ${err} · p99 ${p99}`;
}
