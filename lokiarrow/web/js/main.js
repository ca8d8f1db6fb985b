// The explorer page: a query, a time range, and what the server answers (lines or a graph).

import { ApiError, get, setTenant, tenant } from "./api.js";
import { drawLines, drawVolume, formatValue, levelColor, seriesColor } from "./charts.js";
import { Completer } from "./complete.js";
import { entriesOf, LogList, normalLevel } from "./logs.js";
import { LiveTail } from "./tail.js";
import { formatUtc, msToNs, range, stepFor } from "./time.js";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("query-form"), query: $("query"), completions: $("completions"), range: $("range"),
  from: $("from"), to: $("to"), limit: $("limit"), live: $("live"), tenant: $("tenant"),
  error: $("error"), errorText: $("error-text"), errorContext: $("error-context"),
  volume: $("volume"), volumeChart: $("volume-chart"), volumeLegend: $("volume-legend"),
  graph: $("graph"), graphChart: $("graph-chart"), graphLegend: $("graph-legend"),
  logs: $("logs"), logsSummary: $("logs-summary"), commonLabels: $("common-labels"),
  liveStatus: $("live-status"), lines: $("log-lines"), loadMore: $("load-more"), empty: $("empty"),
};
const TAIL_MAX_LINES = 1000;
const METRIC_POINTS = 120;
const logs = new LogList(ui.lines);
let current = null;       // the query shown: {query, from, to, limit}
let inflight = null;      // AbortController of the running requests

function timeRangeNs() {
  const { from, to } = range(ui.from.value, ui.to.value);
  return { start: msToNs(from), end: msToNs(to) };
}
const completer = new Completer(ui.query, ui.completions, timeRangeNs);

// ---- the URL holds the query and the range, so a link shows the same thing ----

function readUrl() {
  const p = new URLSearchParams(location.search);
  ui.query.value = p.get("query") || "";
  ui.from.value = p.get("from") || "now-1h";
  ui.to.value = p.get("to") || "now";
  ui.limit.value = p.get("limit") || "100";
  syncPreset();
  fitQuery();
}

function writeUrl() {
  const p = new URLSearchParams({ query: ui.query.value, from: ui.from.value, to: ui.to.value });
  if (ui.limit.value !== "100") p.set("limit", ui.limit.value);
  const url = "?" + p.toString();
  if (url !== location.search) history.pushState(null, "", url);
}

function syncPreset() {
  const preset = [...ui.range.options].find((o) => o.value === ui.from.value.trim());
  ui.range.value = preset && ui.to.value.trim() === "now" ? preset.value : "custom";
}

function fitQuery() {
  ui.query.rows = Math.min(8, ui.query.value.split("\n").length);
}

// ---- errors, in place; a parse error points at its line and column ----

function showError(message, query = "") {
  ui.error.hidden = false;
  ui.errorText.textContent = message;
  ui.errorContext.replaceChildren();
  ui.errorContext.hidden = true;
  const at = /parse error at line (\d+), col (\d+)/.exec(message);
  if (!at || !query || Number(at[1]) < 1) return;   // line 0: Loki knows no position
  const lines = query.split("\n");
  const lineNo = Math.min(Number(at[1]), lines.length), col = Number(at[2]);
  const text = lines[lineNo - 1] ?? "";
  const i = Math.max(0, Math.min(col - 1, text.length));
  const mark = document.createElement("mark");
  mark.className = "error-at";
  mark.textContent = text[i] ?? " ";
  mark.title = `line ${at[1]}, column ${at[2]}`;
  ui.errorContext.append(text.slice(0, i), mark, text.slice(i + 1));
  ui.errorContext.hidden = false;
  const offset = lines.slice(0, lineNo - 1).reduce((n, l) => n + l.length + 1, 0) + i;
  ui.query.classList.add("invalid");
  ui.query.focus();
  ui.query.setSelectionRange(offset, Math.min(offset + 1, ui.query.value.length));
}

function clearError() {
  ui.error.hidden = true;
  ui.query.classList.remove("invalid");
}

// ---- running a query ----

function hideResults() {
  ui.volume.hidden = ui.graph.hidden = ui.logs.hidden = ui.empty.hidden = true;
  ui.loadMore.hidden = true;
}

async function run() {
  stopLive();
  inflight?.abort();
  inflight = new AbortController();
  const signal = inflight.signal;
  clearError();
  const query = ui.query.value;   // as written: a parse error's line and column count in it
  if (!query.trim()) return showError("Write a LogQL query first, such as {app=\"example\"}.");
  let r;
  try {
    r = range(ui.from.value, ui.to.value);
  } catch (err) {
    return showError(err.message);
  }
  const limit = Math.max(1, Number(ui.limit.value) || 100);
  current = { query, from: r.from, to: r.to, limit };
  writeUrl();
  document.body.classList.add("busy");
  try {
    const step = stepFor(r.from, r.to, METRIC_POINTS);
    const answer = await get("query_range", {
      query, start: msToNs(r.from), end: msToNs(r.to), limit, direction: "backward", step: `${step}s`,
    }, { signal, flags: "categorize-labels" });
    hideResults();
    if (answer.data.resultType === "streams") {
      showLogs(answer.data.result, limit);
      await showVolume(query, r, signal);
    } else {
      showGraph(answer.data.result, r, answer.data.resultType);
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    hideResults();
    showError(err instanceof ApiError ? err.message : String(err), query);
  } finally {
    document.body.classList.remove("busy");
  }
}

function showLogs(result, limit) {
  logs.clear();
  const n = logs.add(entriesOf(result));
  ui.logs.hidden = n === 0;
  ui.empty.hidden = n !== 0;
  ui.loadMore.hidden = n < limit;
  summarize();
}

function summarize() {
  ui.logsSummary.textContent = `${logs.entries.length} line${logs.entries.length === 1 ? "" : "s"}, newest first`;
  ui.commonLabels.textContent = logs.commonText();
}

async function loadMore() {
  const oldest = logs.oldest();
  if (!current || !oldest) return;
  ui.loadMore.disabled = true;
  try {
    // `end` is exclusive: one nanosecond past the oldest line keeps the lines that share its time
    const end = (BigInt(oldest.ts) + 1n).toString();
    const answer = await get("query_range", {
      query: current.query, start: msToNs(current.from), end, limit: current.limit, direction: "backward",
    }, { flags: "categorize-labels" });
    const entries = entriesOf(answer.data.result);
    const added = logs.add(entries);
    ui.loadMore.hidden = added === 0 || entries.length < current.limit;
    summarize();
  } catch (err) {
    showError(err instanceof ApiError ? err.message : String(err), current.query);
  } finally {
    ui.loadMore.disabled = false;
  }
}

// The log volume by level, as Grafana draws it above the lines: counts per step, stacked.
async function showVolume(query, r, signal) {
  const step = stepFor(r.from, r.to);
  const stepMs = step * 1000;
  // whole buckets covering the range: the count at t is of the lines in (t - step, t]
  const first = Math.floor(r.from / stepMs) * stepMs;
  const last = Math.ceil(r.to / stepMs) * stepMs;
  let answer;
  try {
    answer = await get("query_range", {
      // the range on a line of its own: a `#` comment ends with the query's last line
      query: `sum by (detected_level) (count_over_time(${query}\n[${step}s]))`,
      start: msToNs(first + stepMs), end: msToNs(last), step: `${step}s`,
    }, { signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    ui.volume.hidden = false;
    ui.volumeLegend.replaceChildren();
    ui.volumeChart.textContent = `Log volume unavailable: ${err.message}`;
    return;
  }
  const series = answer.data.result.map((s) => {
    const name = normalLevel(s.metric.detected_level);
    const values = new Map(s.values.map(([t, v]) => [t * 1000 - stepMs, Number(v)]));
    return { name, color: levelColor(name), values };
  }).sort((a, b) => a.name.localeCompare(b.name));
  ui.volume.hidden = false;
  drawVolume(ui.volumeChart, series, first, last, stepMs);
  ui.volumeChart.dataset.step = stepMs;
  ui.volumeLegend.replaceChildren(...series.map((s) => {
    let total = 0;
    for (const v of s.values.values()) total += v;
    return legendItem(s.name, s.color, formatValue(total), { level: s.name, count: total });
  }));
}

function legendItem(name, color, value, data = {}) {
  const li = document.createElement("li");
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.background = color;
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  const amount = document.createElement("span");
  amount.className = "value";
  amount.textContent = value;
  li.append(swatch, label, amount);
  Object.assign(li.dataset, data);
  return li;
}

function showGraph(result, r, type) {
  const series = (type === "matrix" ? result : []).map((s, i) => ({
    name: "{" + Object.entries(s.metric).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") + "}",
    color: seriesColor(i),
    points: s.values.map(([t, v]) => [t * 1000, Number(v)]),
  }));
  if (!series.length) {
    ui.empty.hidden = false;
    ui.empty.textContent = "No data points in this range.";
    return;
  }
  ui.graph.hidden = false;
  drawLines(ui.graphChart, series, r.from, r.to);
  ui.graphLegend.replaceChildren(...series.map((s) => legendItem(s.name, s.color,
    formatValue(s.points.at(-1)?.[1] ?? NaN), { series: s.name })));
}

// ---- live tail ----

const tail = new LiveTail({
  onEntries(streams, dropped) {
    logs.add(entriesOf(streams), { atTop: true, max: TAIL_MAX_LINES });
    ui.logs.hidden = false;
    ui.empty.hidden = true;
    summarize();
    if (dropped) ui.liveStatus.textContent = `Following new lines… (${dropped} dropped by the server)`;
  },
  onStatus(state, text) {
    ui.liveStatus.textContent = text;
    ui.liveStatus.dataset.state = state;
    ui.live.setAttribute("aria-pressed", String(state === "live"));
    if (state === "error") showError(text);
  },
});

function startLive() {
  clearError();
  const query = ui.query.value.trim();
  if (!query) return showError("Write a LogQL query first, such as {app=\"example\"}.");
  inflight?.abort();
  hideResults();
  ui.logs.hidden = false;
  if (!current || current.query !== query) logs.clear();
  summarize();
  ui.live.setAttribute("aria-pressed", "true");
  tail.start(query, Math.max(1, Number(ui.limit.value) || 100));
}

function stopLive() {
  if (tail.running) tail.stop();
}

// ---- wiring ----

ui.form.addEventListener("submit", (e) => { e.preventDefault(); completer.hide(); run(); });
ui.query.addEventListener("keydown", (e) => {
  if (completer.onKey(e)) return;
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); ui.form.requestSubmit(); }
});
ui.query.addEventListener("input", () => { fitQuery(); ui.query.classList.remove("invalid"); });
ui.range.addEventListener("change", () => {
  if (ui.range.value === "custom") { ui.from.focus(); return; }
  ui.from.value = ui.range.value;
  ui.to.value = "now";
  completer.clear();
  if (ui.query.value.trim()) run();
});
for (const input of [ui.from, ui.to]) input.addEventListener("change", () => { syncPreset(); completer.clear(); });
ui.loadMore.addEventListener("click", loadMore);
// a bar of the volume zooms into its time: the count at t is of the lines in (t - step, t]
ui.volumeChart.addEventListener("click", (e) => {
  const bar = e.target.closest("rect");
  if (!bar) return;
  const start = Number(bar.dataset.time);
  ui.from.value = formatUtc(start);
  ui.to.value = formatUtc(start + Number(ui.volumeChart.dataset.step));
  syncPreset();
  run();
});
ui.live.addEventListener("click", () => (tail.running ? stopLive() : startLive()));
ui.tenant.value = tenant();
ui.tenant.addEventListener("change", () => { setTenant(ui.tenant.value.trim()); completer.clear(); });
window.addEventListener("popstate", () => { readUrl(); if (ui.query.value.trim()) run(); });

readUrl();
if (ui.query.value.trim()) run();
document.body.dataset.ready = "true";
