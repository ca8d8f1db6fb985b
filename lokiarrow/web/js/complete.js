// Completion of label names and values inside a stream selector, from the labels API.

import { labelNames, labelValues } from "./api.js";

const MAX_SHOWN = 50;
const MATCHER = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*$/;
const REGEX_META = /[.*+?^${}()|[\]\\]/g;

// What the caret is in: a label name being typed, a value being typed, or neither.
export function context(text, caret) {
  const before = text.slice(0, caret);
  let depth = 0, quote = null, quoteAt = -1, braceAt = -1;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "`") { quote = c; quoteAt = i; }
    else if (c === "{") { depth++; braceAt = i; }
    else if (c === "}") depth = Math.max(0, depth - 1);
  }
  if (depth === 0) return null;
  if (quote) {
    const matcher = MATCHER.exec(before.slice(braceAt + 1, quoteAt));
    if (!matcher) return null;
    return { kind: "value", name: matcher[1], op: matcher[2], start: quoteAt, prefix: unescape(before.slice(quoteAt + 1), quote) };
  }
  const inside = before.slice(braceAt + 1);
  const matcher = MATCHER.exec(inside);
  if (matcher) return { kind: "value", name: matcher[1], op: matcher[2], start: caret, prefix: "" };
  const name = /(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)?$/.exec(inside);
  if (name) return { kind: "name", start: caret - (name[1] || "").length, prefix: name[1] || "" };
  return null;
}

function unescape(s, quote) {
  return quote === "`" ? s : s.replace(/\\(.)/g, "$1");
}

// A value as LogQL text: regex matchers match it literally.
export function quoteValue(value, op) {
  const literal = op === "=~" || op === "!~" ? value.replace(REGEX_META, "\\$&") : value;
  return '"' + literal.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

function rank(options, prefix) {
  const p = prefix.toLowerCase();
  const starts = options.filter((o) => o.toLowerCase().startsWith(p));
  const contains = options.filter((o) => !o.toLowerCase().startsWith(p) && o.toLowerCase().includes(p));
  return [...starts, ...contains].slice(0, MAX_SHOWN);
}

export class Completer {
  constructor(input, list, timeRange) {
    this.input = input;
    this.list = list;
    this.timeRange = timeRange; // () => {start, end} in nanoseconds, or throws
    this.cache = new Map();
    this.items = [];
    this.active = 0;
    this.ctx = null;
    this.request = 0;
    input.addEventListener("input", () => this.update());
    input.addEventListener("click", () => this.update());
    input.addEventListener("blur", () => setTimeout(() => this.hide(), 150));
    list.addEventListener("mousedown", (e) => {
      const li = e.target.closest("li");
      if (li) { e.preventDefault(); this.accept(Number(li.dataset.index)); }
    });
  }

  get open() { return !this.list.hidden; }

  // Keys the completion list takes while open; true when it took the key.
  onKey(e) {
    if (e.key === " " && e.ctrlKey) { e.preventDefault(); this.update(); return true; }
    if (!this.open) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      const n = this.items.length;
      this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.render();
    } else if (e.key === "Enter" || e.key === "Tab") {
      this.accept(this.active);
    } else if (e.key === "Escape") {
      this.hide();
    } else return false;
    e.preventDefault();
    return true;
  }

  clear() { this.cache.clear(); }

  async options(ctx) {
    const { start, end } = this.timeRange();
    const key = ctx.kind === "name" ? "names" : "values:" + ctx.name;
    if (!this.cache.has(key)) {
      const load = ctx.kind === "name" ? labelNames(start, end) : labelValues(ctx.name, start, end);
      this.cache.set(key, load.catch((err) => { this.cache.delete(key); throw err; }));
    }
    return this.cache.get(key);
  }

  async update() {
    const ctx = context(this.input.value, this.input.selectionStart);
    const ticket = ++this.request;
    if (!ctx) {
      this.hide();
      return;
    }
    let options;
    try {
      options = await this.options(ctx);
    } catch {
      this.hide(); // the query's own run reports what is wrong with the server
      return;
    }
    if (ticket !== this.request) return;
    this.ctx = ctx;
    this.items = rank(options, ctx.prefix);
    this.active = 0;
    if (!this.items.length) this.hide();
    else this.render();
  }

  render() {
    this.list.replaceChildren(...this.items.map((item, i) => {
      const li = document.createElement("li");
      li.textContent = item;
      li.dataset.index = i;
      li.role = "option";
      li.className = this.ctx.kind;
      if (i === this.active) li.setAttribute("aria-selected", "true");
      return li;
    }));
    this.list.hidden = false;
    this.list.children[this.active]?.scrollIntoView({ block: "nearest" });
  }

  hide() {
    this.list.hidden = true;
    this.items = [];
  }

  accept(index) {
    const item = this.items[index];
    const ctx = this.ctx;
    if (item === undefined || !ctx) return;
    const text = this.input.value;
    const caret = this.input.selectionStart;
    let insert, end = caret;
    if (ctx.kind === "name") insert = item + "=";
    else {
      insert = quoteValue(item, ctx.op);
      if (text[end] === '"' && ctx.start < caret) end++; // a closing quote already typed
    }
    this.input.value = text.slice(0, ctx.start) + insert + text.slice(end);
    const at = ctx.start + insert.length;
    this.input.setSelectionRange(at, at);
    this.hide();
    this.input.dispatchEvent(new Event("input")); // a name goes on to its values
  }
}
