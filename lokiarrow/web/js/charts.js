// Two small SVG charts: the log volume (bars stacked by level) and a metric query's lines.

import { formatUtc } from "./time.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 48, right: 12, top: 8, bottom: 22 };
const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b"];

export const LEVEL_COLORS = {
  critical: "#a855f7", fatal: "#a855f7", error: "#ef4444", warn: "#f59e0b", warning: "#f59e0b",
  info: "#22c55e", debug: "#3b82f6", trace: "#7dd3fc", unknown: "#9ca3af",
};
export const levelColor = (level) => LEVEL_COLORS[level] || LEVEL_COLORS.unknown;
export const seriesColor = (i) => PALETTE[i % PALETTE.length];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}

export function formatValue(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toPrecision(3).replace(/\.?0+$/, "") + "G";
  if (a >= 1e6) return (v / 1e6).toPrecision(3).replace(/\.?0+$/, "") + "M";
  if (a >= 1e4) return (v / 1e3).toPrecision(3).replace(/\.?0+$/, "") + "k";
  return Number.isInteger(v) ? String(v) : v.toPrecision(3).replace(/\.?0+$/, "");
}

function timeLabel(ms, spanMs) {
  const s = formatUtc(ms);
  return spanMs > 2 * 86400e3 ? s.slice(5, 16) : spanMs > 600e3 ? s.slice(11, 16) : s.slice(11, 19);
}

// A chart frame: the svg, its scales (time from..to, values yMin..yMax) and both axes.
function frame(container, height, from, to, yMin, yMax) {
  const width = Math.max(container.clientWidth, 320);
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  const plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
  const x = (ms) => PAD.left + ((ms - from) / (to - from)) * plotW;
  const y = (v) => PAD.top + plotH - ((v - yMin) / (yMax - yMin || 1)) * plotH;
  const axes = el("g", { class: "axes" });
  for (const frac of [0, 0.5, 1]) {
    const v = yMin + (yMax - yMin) * frac;
    axes.append(el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    axes.append(el("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, formatValue(v)));
  }
  const ticks = Math.max(2, Math.floor(plotW / 110));
  for (let i = 0; i <= ticks; i++) {
    const ms = from + ((to - from) * i) / ticks;
    axes.append(el("text", { x: x(ms), y: height - 6, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" },
      timeLabel(ms, to - from)));
  }
  svg.append(axes);
  container.replaceChildren(svg);
  return { svg, x, y, plotW };
}

// series: [{name, color, values: Map(bucket start ms -> count)}]; buckets of stepMs from `from`.
export function drawVolume(container, series, from, to, stepMs) {
  const buckets = [];
  for (let t = Math.floor(from / stepMs) * stepMs; t < to; t += stepMs) buckets.push(t);
  const totals = buckets.map((t) => series.reduce((sum, s) => sum + (s.values.get(t) || 0), 0));
  const { svg, x, y } = frame(container, 120, from, to, 0, niceMax(Math.max(0, ...totals)));
  const barW = Math.max(1, x(from + stepMs) - x(from) - 1);
  const bars = el("g", { class: "bars" });
  buckets.forEach((t) => {
    let base = 0;
    for (const s of series) {
      const v = s.values.get(t) || 0;
      if (!v) continue;
      const rect = el("rect", { x: x(t), y: y(base + v), width: barW, height: y(base) - y(base + v), fill: s.color,
        "data-level": s.name, "data-count": v, "data-time": t });
      rect.append(el("title", {}, `${formatUtc(t)}  ${s.name}: ${v}`));
      bars.append(rect);
      base += v;
    }
  });
  svg.append(bars);
}

// series: [{name, color, points: [[ms, value]]}]
export function drawLines(container, series, from, to) {
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const lo = Math.min(0, ...values), hi = niceMax(Math.max(0, ...values));
  const { svg, x, y } = frame(container, 240, from, to, lo < 0 ? -niceMax(-lo) : 0, hi);
  const lines = el("g", { class: "lines" });
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    const path = el("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.5, "data-series": s.name, "data-points": pts.length });
    path.append(el("title", {}, s.name));
    lines.append(path);
    if (pts.length === 1) lines.append(el("circle", { cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3, fill: s.color }));
  }
  svg.append(lines);
}
