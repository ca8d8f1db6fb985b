// The log lines: newest first, each expandable to its labels, structured metadata and parsed fields.

import { levelColor } from "./charts.js";
import { formatNs } from "./time.js";

const LEVEL_NAMES = { warning: "warn", err: "error", eror: "error", crit: "critical", dbg: "debug", inf: "info", wrn: "warn" };

// A line's level when the server sent none (tail frames): a level field, else a level word, as Grafana does.
const LEVEL_IN_LINE = /(?:\blevel"?\s*[=:]\s*"?|\b)(critical|fatal|error|err|warning|warn|info|debug|trace)\b/i;
export function lineLevel(line) {
  return LEVEL_IN_LINE.exec(line)?.[1];
}

export function normalLevel(value) {
  const v = String(value || "").toLowerCase();
  return LEVEL_NAMES[v] || v || "unknown";
}

const labelText = (labels) => "{" + Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") + "}";

// Entries of a `streams` answer (categorized or not) or of a tail frame, each with its level.
export function entriesOf(streams) {
  const out = [];
  for (const s of streams || []) {
    const labels = s.stream || {};
    const key = labelText(labels);
    for (const [ts, line, meta] of s.values || []) {
      const metadata = meta?.structuredMetadata || {};
      const parsed = meta?.parsed || {};
      const level = normalLevel(metadata.detected_level ?? parsed.level ?? parsed.detected_level ?? labels.detected_level ?? labels.level ?? lineLevel(line));
      out.push({ ts: String(ts), line, labels, metadata, parsed, level, id: `${ts}\u0000${key}\u0000${line}` });
    }
  }
  return out;
}

export const newestFirst = (a, b) => {
  const d = BigInt(b.ts) - BigInt(a.ts);
  return d > 0n ? 1 : d < 0n ? -1 : a.line < b.line ? -1 : a.line > b.line ? 1 : 0;
};

function cell(tag, text, cls) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function fieldsTable(title, fields, cls) {
  const names = Object.keys(fields);
  if (!names.length) return [];
  const table = document.createElement("table");
  table.className = cls;
  table.append(cell("caption", title));
  for (const name of names.sort()) {
    const tr = document.createElement("tr");
    tr.append(cell("th", name), cell("td", fields[name]));
    table.append(tr);
  }
  return [table];
}

function details(entry) {
  const box = document.createElement("div");
  box.className = "details";
  box.append(
    ...fieldsTable("Stream labels", entry.labels, "stream-labels"),
    ...fieldsTable("Structured metadata", entry.metadata, "structured-metadata"),
    ...fieldsTable("Parsed fields", entry.parsed, "parsed-fields"),
    cell("div", `Timestamp ${entry.ts} ns`, "raw-ts"),
  );
  return box;
}

// Labels that tell this line's stream apart from the others shown.
function distinctive(entry, common) {
  const out = {};
  for (const [k, v] of Object.entries(entry.labels)) if (common.get(k) !== v) out[k] = v;
  return out;
}

export class LogList {
  constructor(list) {
    this.list = list;
    this.entries = [];
    this.seen = new Set();
    list.addEventListener("click", (e) => this.toggle(e));
    list.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") this.toggle(e); });
  }

  clear() {
    this.entries = [];
    this.seen.clear();
    this.list.replaceChildren();
  }

  // Adds entries not shown yet; returns how many were new. `atTop` for a tail's newer lines.
  add(entries, { atTop = false, max = Infinity } = {}) {
    const fresh = entries.filter((e) => !this.seen.has(e.id) && this.seen.add(e.id));
    if (!fresh.length) return 0;
    fresh.sort(newestFirst);
    this.entries = atTop ? [...fresh, ...this.entries] : [...this.entries, ...fresh];
    this.entries.sort(newestFirst);
    if (this.entries.length > max) {
      for (const gone of this.entries.splice(max)) this.seen.delete(gone.id);
    }
    this.render();
    return fresh.length;
  }

  oldest() { return this.entries.at(-1); }

  render() {
    const open = new Set([...this.list.querySelectorAll("li.open")].map((li) => li.dataset.id));
    const common = this.commonLabels();
    this.list.replaceChildren(...this.entries.map((entry) => this.row(entry, common, open.has(entry.id))));
  }

  // Labels every line shown shares, said once above the lines (as Grafana's "common labels").
  commonLabels() {
    const [first, ...rest] = this.entries;
    const common = new Map(Object.entries(first?.labels || {}));
    for (const e of rest) for (const [k, v] of common) if (e.labels[k] !== v) common.delete(k);
    return common;
  }

  commonText() {
    const common = this.commonLabels();
    return common.size ? labelText(Object.fromEntries(common)) : "";
  }

  row(entry, common, isOpen) {
    const li = document.createElement("li");
    li.className = `entry level-${entry.level}` + (isOpen ? " open" : "");
    li.dataset.id = entry.id;
    li.dataset.ts = entry.ts;
    li.dataset.level = entry.level;
    const summary = document.createElement("div");
    summary.className = "summary";
    summary.tabIndex = 0;
    summary.setAttribute("aria-expanded", String(isOpen));
    const bar = cell("span", "", "level-bar");
    bar.style.background = levelColor(entry.level);
    bar.title = entry.level;
    summary.append(bar, cell("time", formatNs(entry.ts)));
    const own = distinctive(entry, common);
    if (Object.keys(own).length) summary.append(cell("span", labelText(own), "labels"));
    summary.append(cell("span", entry.line, "line"));
    li.append(summary);
    if (isOpen) li.append(details(entry));
    return li;
  }

  toggle(e) {
    const summary = e.target.closest(".summary");
    if (!summary) return;
    e.preventDefault();
    const li = summary.parentElement;
    const entry = this.entries.find((x) => x.id === li.dataset.id);
    if (li.classList.toggle("open")) li.append(details(entry));
    else li.querySelector(".details")?.remove();
    summary.setAttribute("aria-expanded", String(li.classList.contains("open")));
  }
}
