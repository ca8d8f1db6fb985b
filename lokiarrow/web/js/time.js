// Time ranges as Grafana writes them: `now`, `now-15m`, an RFC 3339 date or epoch milliseconds.

const UNIT_MS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3, y: 31536000e3 };
const RELATIVE = /^now(?:\s*-\s*(\d+)\s*([smhdwy]))?$/;

// Milliseconds since the epoch, or throws naming the text it could not read.
export function parseTime(text, now = Date.now()) {
  const t = String(text).trim();
  const rel = RELATIVE.exec(t);
  if (rel) return rel[1] ? now - Number(rel[1]) * UNIT_MS[rel[2]] : now;
  if (/^\d{10,}$/.test(t)) return Number(t);
  // a date without a zone is UTC, as every time on this page
  const iso = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(t) ? t.replace(" ", "T") + (t.length > 10 ? "Z" : "T00:00:00Z") : t;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`cannot read the time "${t}": use now, now-1h or 2026-01-19 22:00:00`);
  return ms;
}

export function range(fromText, toText, now = Date.now()) {
  const from = parseTime(fromText, now);
  const to = parseTime(toText, now);
  if (from >= to) throw new Error(`the range must start before it ends ("${fromText}" is not before "${toText}")`);
  return { from, to };
}

export const msToNs = (ms) => (BigInt(Math.floor(ms)) * 1000000n).toString();
export const nsToMs = (ns) => Number(BigInt(ns) / 1000000n);

// A step (seconds) giving about `points` buckets over the range, rounded to a readable size.
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
export function stepFor(from, to, points = 80) {
  const want = (to - from) / 1000 / points;
  return STEPS.find((s) => s >= want) || Math.ceil(want / 86400) * 86400;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");
export function formatUtc(ms, withMs = false) {
  const d = new Date(ms);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return withMs ? `${base}.${pad(d.getUTCMilliseconds(), 3)}` : base;
}

// A log line's time from its nanosecond string, to the nanosecond.
export function formatNs(ns) {
  const s = String(ns);
  return `${formatUtc(nsToMs(s))}.${s.slice(-9).padStart(9, "0")}`;
}
