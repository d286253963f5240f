// convmeter dashboard: reads the public APIs and draws tables and inline SVG charts. No build
// step, no dependencies. What it rendered, and any error it caught, goes into #cm-check as JSON
// (the headless browser test compares it with the APIs).
"use strict";

const errors = [];
window.addEventListener("error", (e) => errors.push("error: " + (e.message || String(e.error))));
window.addEventListener("unhandledrejection", (e) => errors.push("rejection: " + String(e.reason)));

const REFRESH_MS = 3000;
const SVGNS = "http://www.w3.org/2000/svg";
let busy = false;
const chosenMonth = {}; // WABA → month picked in its box
let renders = 0;
let current = null; // the last overview, for the quote form

function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  for (const k of kids) n.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return n;
}

function svg(tag, attrs, ...kids) {
  const n = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  for (const k of kids) n.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return n;
}

async function getJSON(url, init) {
  const r = await fetch(url, Object.assign({ cache: "no-store" }, init || {}));
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (body && body.error ? body.error : ""));
  return body;
}

const fmt = (n) => Number(n || 0).toLocaleString("en-US");
const iso = (t) => new Date(t * 1000).toISOString().replace(".000Z", "Z");

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const ov = await getJSON("/dashboard/api/overview");
    const at = ov.at;
    const totals = {};
    for (const w of ov.wabas) {
      const m = chosenMonth[w.waba_id];
      if (m && w.months.includes(m)) w.month = m; // the month picked in the WABA's box
    }
    await Promise.all(ov.wabas.map(async (w) => {
      totals[w.waba_id] = await getJSON("/billing/totals?waba=" + encodeURIComponent(w.waba_id) + "&month=" + w.month);
    }));
    const limits = {};
    await Promise.all(ov.numbers.map(async (n) => {
      limits[n.phone_number_id] = await getJSON("/v1/limits/numbers/" + encodeURIComponent(n.phone_number_id) + "?at=" + at);
    }));
    const history = await getJSON("/dashboard/api/history");
    current = ov;
    render(ov, totals, limits, history);
    await showProgress();
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    errors.push("refresh: " + e.message);
    document.getElementById("status").textContent = "error: " + e.message;
  } finally {
    busy = false;
    writeCheck();
  }
}

// showProgress shows how far the embedded pipeline has got; only `convmeter dev` serves it.
let hasProgress = true;
async function showProgress() {
  if (!hasProgress) return;
  const r = await fetch("/dev/progress", { cache: "no-store" });
  if (r.status === 404) {
    hasProgress = false;
    return;
  }
  const p = await r.json();
  if (!r.ok) throw new Error("/dev/progress: " + r.status + " " + (p && p.error ? p.error : ""));
  const lags = Object.entries(p.projection_lag || {}).map(([g, n]) => g.replace(/^convmeter\.|\.v1$/g, "") + " " + fmt(n));
  document.getElementById("progress").textContent = (p.simulating ? "simulating (" + fmt(p.published) + " events) · " : "") +
    (p.caught_up ? "caught up" : "behind: aggregator " + fmt(p.aggregator_lag) + ", " + lags.join(", ")) +
    " · since start: " + fmt(p.events_in) + " in → " + fmt(p.events_out) + " out" +
    (p.suppressed ? " (+" + fmt(p.suppressed) + " already written before the restart)" : "") + ", " + fmt(p.set_aside) + " too late, " +
    fmt(p.dead_letters) + " dead letters";
}

let check = {};

function writeCheck() {
  check.errors = errors.slice();
  check.renders = renders;
  document.getElementById("cm-check").textContent = JSON.stringify(check);
}

function render(ov, totals, limits, history) {
  renders++;
  document.getElementById("at").textContent = iso(ov.at);
  document.getElementById("at-source").textContent = ov.at_source === "stream" ? "(event time)" : "(wall clock: nothing applied yet)";

  // Cards.
  const byCurrency = {};
  let lines = 0, billable = 0, unpriced = 0;
  for (const w of ov.wabas) {
    const t = totals[w.waba_id];
    lines += t.total.lines;
    billable += t.total.billable;
    unpriced += t.total.unpriced;
    for (const [cur, b] of Object.entries(t.by_currency || {})) byCurrency[cur] = (byCurrency[cur] || 0) + b.amount_micros;
  }
  const cards = [
    ["windows open", fmt(ov.windows_open)],
    ["conversations open", fmt(ov.conversations_open)],
    ["numbers", fmt(ov.numbers.length)],
    ["ledger lines (this month)", fmt(lines)],
    ["billable", fmt(billable)],
  ];
  for (const [cur, m] of Object.entries(byCurrency).sort()) cards.push(["charges " + cur, (m / 1e6).toFixed(2)]);
  // Lines no rate card prices count in no charge: say how many, so a sum is never read as whole.
  cards.push(["unpriced (not in charges)", fmt(unpriced), unpriced > 0 ? "warn" : ""]);
  document.getElementById("cards").replaceChildren(...cards.map(([k, v, cls]) =>
    el("div", { class: "card" }, el("div", { class: "label" }, k), el("div", { class: "v " + (cls || "") }, v))));

  // Numbers table.
  const head = el("tr", {}, ...["number", "WABA", "windows open", "conversations open", "lines", "billable", "unpriced", "charges",
    "limit of", "tier", "limit", "used 24 h", "headroom", "headroom back", "peak msg/s", "pair-rate hits 24 h"].map((h) => el("th", {}, h)));
  const rows = [head];
  const numbers = {};
  for (const n of ov.numbers) {
    const t = totals[n.waba_id];
    const b = (t && t.by_number && t.by_number[n.phone_number_id]) || { lines: 0, billable: 0, unpriced: 0, amount_micros: 0, amount: "0" };
    const l = limits[n.phone_number_id];
    const ml = l.messaging_limit;
    const full = !ml.unlimited && ml.headroom === 0;
    rows.push(el("tr", {},
      el("td", {}, n.phone_number_id), el("td", { class: "l" }, n.waba_id),
      el("td", {}, fmt(n.windows_open)), el("td", {}, fmt(n.conversations_open_total)),
      el("td", {}, fmt(b.lines)), el("td", {}, fmt(b.billable)), el("td", b.unpriced > 0 ? { class: "warn" } : {}, fmt(b.unpriced)),
      el("td", {}, b.amount + " " + (n.currency || "")),
      el("td", { class: "l" }, scopeName(ml.scope)), el("td", { class: "l" }, ml.tier), el("td", {}, ml.unlimited ? "∞" : fmt(ml.limit)), el("td", {}, fmt(ml.used)),
      el("td", full ? { class: "full" } : {}, ml.unlimited ? "∞" : fmt(ml.headroom)),
      el("td", {}, full ? iso(ml.headroom_at) : "now"),
      el("td", {}, fmt(l.throughput && l.throughput.peak)), el("td", {}, fmt(l.pair_rate.hits_24h))));
    numbers[n.phone_number_id] = {
      windows_open: n.windows_open, conversations_open: n.conversations_open_total,
      lines: b.lines, billable: b.billable, unpriced: b.unpriced, amount_micros: b.amount_micros,
      scope: ml.scope, limit: ml.limit, used: ml.used, headroom: ml.headroom,
    };
  }
  document.getElementById("numbers").replaceChildren(...rows);

  // WABAs: totals and charges by category and market.
  const wabaOut = {};
  document.getElementById("wabas").replaceChildren(...ov.wabas.map((w) => {
    const t = totals[w.waba_id];
    wabaOut[w.waba_id] = { month: w.month, lines: t.total.lines, billable: t.total.billable, unpriced: t.unpriced || {},
      amount_micros: t.total.amount_micros };
    const pick = el("select", { "aria-label": "month" }, ...w.months.map((m) => {
      const o = el("option", { value: m }, m);
      if (m === w.month) o.selected = true;
      return o;
    }));
    pick.addEventListener("change", () => {
      chosenMonth[w.waba_id] = pick.value;
      refresh();
    });
    const csv = el("a", { href: "/billing/lines.csv?waba=" + encodeURIComponent(w.waba_id) + "&month=" + w.month }, "CSV");
    const box = el("div", { class: "waba" },
      el("h3", {}, "WABA " + w.waba_id + " (" + w.time_zone + ") ", pick, " ", csv),
      el("div", {}, fmt(t.total.lines) + " lines, " + fmt(t.total.billable) + " billable, " + t.total.amount + " " + w.currency +
        (t.free_tier ? " · free tier " + t.free_tier.used + "/" + t.free_tier.limit : "")));
    if (t.total.unpriced > 0) box.append(unpricedNote(t));
    box.append(el("div", { class: "label" }, "charges by category"), bars(t.by_category, (b) => b.amount_micros / 1e6, w.currency));
    box.append(el("div", { class: "label" }, "lines by market"), bars(t.by_market, (b) => b.lines, "lines"));
    return box;
  }));

  // Charts from the sampled history.
  document.getElementById("chart-open").replaceChildren(lineChart(history, [
    ["windows open", (s) => s.windows_open, "var(--a)"],
    ["conversations open", (s) => s.conversations_open, "var(--b)"],
  ]));
  document.getElementById("chart-lines").replaceChildren(lineChart(history, [
    ["lines", (s) => s.lines, "var(--a)"],
    ["billable", (s) => s.billable, "var(--c)"],
  ]));

  // The quote form's numbers.
  const sel = document.querySelector("#quote select[name=phone_number_id]");
  if (sel.options.length !== ov.numbers.length) {
    sel.replaceChildren(...ov.numbers.map((n) => el("option", {}, n.phone_number_id)));
  }

  check = { at: ov.at, at_source: ov.at_source, windows_open: ov.windows_open, conversations_open: ov.conversations_open,
    totals: wabaOut, numbers: numbers };
}

// scopeName says whose messaging limit a number's is: its own before 2025-10-07, its business
// portfolio's from then on (shared with the portfolio's other numbers).
function scopeName(scope) {
  if (scope.startsWith("pf:")) return "portfolio " + scope.slice(3);
  if (scope.startsWith("pn:")) return "this number";
  return scope;
}

// What each unpriced reason of the billing projection means (projections/billing, Line.Unpriced).
const UNPRICED = {
  account_not_configured: "no account.config for the number",
  no_currency: "the WABA has no currency",
  bad_time_zone: "the WABA's time zone is not known",
  unknown_market: "the recipient's calling code is in no market",
  no_rate_card: "no rate card of the currency in force",
  no_rate: "the card in force has no rate for the market and category",
};

// unpricedNote says how many of a WABA-month's lines are left out of its charges, and why.
function unpricedNote(t) {
  const why = Object.entries(t.unpriced || {}).sort((a, b) => b[1] - a[1])
    .map(([k, n]) => fmt(n) + " " + k + (UNPRICED[k] ? " (" + UNPRICED[k] + ")" : ""));
  const markets = Object.entries(t.by_market || {}).filter(([, b]) => b.unpriced > 0).sort((a, b) => b[1].unpriced - a[1].unpriced)
    .map(([m, b]) => m + " " + fmt(b.unpriced));
  return el("div", { class: "warn" }, fmt(t.total.unpriced) + " lines unpriced, not in the charges: " + why.join(", ") +
    (markets.length ? "; by market: " + markets.join(", ") : "") + ". Load rate cards that price them (-ratecards) and replay.");
}

// bars draws a horizontal bar chart of a breakdown map.
function bars(m, value, unit) {
  const entries = Object.entries(m || {}).map(([k, b]) => [k, value(b)]).sort((a, b) => b[1] - a[1]).slice(0, 10);
  const W = 440, row = 18, X0 = 170, H = Math.max(row, entries.length * row);
  const max = Math.max(1e-9, ...entries.map((e) => e[1]));
  const s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "bar", role: "img", preserveAspectRatio: "xMinYMin meet", style: "height:" + H + "px" });
  entries.forEach(([k, v], i) => {
    const w = Math.max(1, (v / max) * (W - X0 - 100));
    const label = k.length > 26 ? k.slice(0, 25) + "…" : k;
    s.append(svg("text", { x: 0, y: i * row + 13 }, svg("title", {}, k), label));
    s.append(svg("rect", { x: X0, y: i * row + 3, width: w, height: row - 6, rx: 2 }));
    s.append(svg("text", { x: X0 + 4 + w, y: i * row + 13 }, (Number.isInteger(v) ? fmt(v) : v.toFixed(2)) + " " + unit));
  });
  if (entries.length === 0) s.append(svg("text", { x: 0, y: 13 }, "nothing yet"));
  return s;
}

// lineChart draws series over the samples' event time.
function lineChart(samples, series) {
  const W = 600, H = 180, L = 50, R = 10, T = 10, B = 24;
  const s = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
  if (samples.length < 2) {
    s.append(svg("text", { x: L, y: H / 2 }, "collecting samples…"));
    return s;
  }
  const x0 = samples[0].at, x1 = Math.max(x0 + 1, samples[samples.length - 1].at);
  let ymax = 1;
  for (const [, f] of series) for (const p of samples) ymax = Math.max(ymax, f(p));
  const X = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
  const Y = (v) => T + (1 - v / ymax) * (H - T - B);
  s.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#ccc" }));
  s.append(svg("text", { x: 2, y: T + 8 }, fmt(ymax)));
  s.append(svg("text", { x: 2, y: H - B }, "0"));
  s.append(svg("text", { x: L, y: H - 6 }, iso(x0)));
  s.append(svg("text", { x: W - R - 120, y: H - 6 }, iso(x1)));
  series.forEach(([name, f, color], i) => {
    const pts = samples.map((p) => X(p.at).toFixed(1) + "," + Y(f(p)).toFixed(1)).join(" ");
    s.append(svg("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 1.5 }));
    s.append(svg("text", { x: L + 10 + i * 140, y: T + 8, style: "fill:" + color }, name));
  });
  return s;
}

document.getElementById("quote").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const req = { phone_number_id: f.get("phone_number_id"), user: f.get("user"), kind: f.get("kind") };
  if (req.kind === "template") req.category = f.get("category");
  if (current) req.at = current.at;
  const out = document.getElementById("quote-out");
  try {
    const d = await getJSON("/v1/admission", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) });
    out.textContent = JSON.stringify(d, null, 2);
  } catch (e) {
    out.textContent = e.message;
  }
});

refresh();
setInterval(refresh, REFRESH_MS);
