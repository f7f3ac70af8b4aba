// Flowchain dashboard: JSON-RPC over /rpc, no build step, no libraries.
"use strict";
const WINDOW_MS = 5 * 60 * 1000, MAX_BLOCKS = 12, COLORS = ["#4fb3ff", "#3ecf8e", "#f5a524", "#ff6b6b", "#b48cff", "#4dd0e1"];
const devices = new Map();   // id -> {card, canvas, latest, dot, points: [{t, v:{k:num}}], keys:Set}
const blocks = [];
let ws, nextId = 1, pending = new Map(), liveReadings = 0, total = 0;

function rpc(method, params) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params: params || {} }));
  });
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function device(id) {
  let d = devices.get(id);
  if (d) return d;
  const card = el("div", { class: "card", "data-device": id, "data-points": "0" });
  const h = el("h3"); const dot = el("span", { class: "dot" });
  h.append(dot, document.createTextNode(id));
  const latest = el("div", { class: "latest" }, "–");
  const canvas = el("canvas", { width: "640", height: "280" });
  const legend = el("div", { class: "legend" });
  card.append(h, latest, canvas, legend);
  const list = document.getElementById("devices");
  const after = [...list.children].find(c => c.dataset.device > id);
  list.insertBefore(card, after || null);
  d = { card, canvas, latest, dot, legend, points: [], keys: new Set() };
  devices.set(id, d);
  document.getElementById("ndev").textContent = devices.size;
  return d;
}

function addReading(r, live) {
  const d = device(r.device);
  const v = {};
  for (const [k, x] of Object.entries(r.payload || {})) if (typeof x === "number") { v[k] = x; d.keys.add(k); }
  d.points.push({ t: r.time, v });
  const cutoff = Date.now() - WINDOW_MS;
  while (d.points.length && d.points[0].t < cutoff) d.points.shift();
  d.latest.textContent = `seq ${r.seq} · ${new Date(r.time).toLocaleTimeString()} · ${JSON.stringify(r.payload)}`;
  d.card.dataset.points = String(d.points.length);
  if (live) { liveReadings++; total++; document.body.dataset.readings = String(liveReadings); document.getElementById("count").textContent = total; }
  d.dirty = true;
}

function draw(d) {
  const c = d.canvas, g = c.getContext("2d"), W = c.width, H = c.height, pad = 28;
  g.clearRect(0, 0, W, H);
  // The x axis spans from the oldest point shown (at least 30 s) to now, so new devices fill the chart.
  const now = Date.now(), oldest = d.points.length ? d.points[0].t : now;
  const span = Math.max(30000, Math.min(WINDOW_MS, now - oldest)), t0 = now - span;
  const keys = [...d.keys];
  d.legend.replaceChildren(...keys.map((k, i) => { const s = el("span", {}, "● " + k); s.style.color = COLORS[i % COLORS.length]; return s; }));
  g.strokeStyle = "#26313c"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) { const y = pad / 2 + (H - pad) * i / 4; g.beginPath(); g.moveTo(pad, y); g.lineTo(W, y); g.stroke(); }
  keys.forEach((k, i) => {
    const pts = d.points.filter(p => k in p.v);
    if (!pts.length) return;
    let lo = Math.min(...pts.map(p => p.v[k])), hi = Math.max(...pts.map(p => p.v[k]));
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    g.strokeStyle = COLORS[i % COLORS.length]; g.lineWidth = 2; g.beginPath();
    pts.forEach((p, j) => {
      const x = pad + (W - pad) * (p.t - t0) / span, y = pad / 2 + (H - pad) * (1 - (p.v[k] - lo) / (hi - lo));
      j ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
    g.fillStyle = COLORS[i % COLORS.length]; g.font = "20px system-ui";
    g.fillText(hi.toFixed(1), 2, pad / 2 + 16 + i * 22);
  });
  g.fillStyle = "#8a949e"; g.font = "18px system-ui";
  g.fillText(`${Math.round(span / 1000)} s`, W - 60, H - 4);
}

function addBlock(b) {
  if (blocks.length && blocks[0].height >= b.height) return;
  blocks.unshift(b);
  blocks.length = Math.min(blocks.length, MAX_BLOCKS);
  document.getElementById("tip").textContent = b.height;
  document.body.dataset.blocks = String(Number(document.body.dataset.blocks) + 1);
  document.getElementById("blocks").replaceChildren(...blocks.map(x => {
    const tr = el("tr");
    tr.append(el("td", {}, x.height), el("td", {}, new Date(x.time).toLocaleTimeString()), el("td", {}, x.count), el("td", {}, x.hash.slice(0, 16) + "…"));
    return tr;
  }));
}

async function start() {
  const info = await rpc("info");
  document.getElementById("key").textContent = info.publicKey.slice(0, 16) + "…";
  total = info.readings; document.getElementById("count").textContent = total;
  const recent = await rpc("blocks", { limit: MAX_BLOCKS });
  recent.reverse().forEach(addBlock);
  const since = Date.now() - WINDOW_MS;
  for (const d of await rpc("devices")) {
    device(d.device).dot.classList.toggle("alive", d.isAlive);
    const page = await rpc("readings", { device: d.device, from: since, limit: 1000 });
    page.readings.forEach(r => addReading(r, false));
  }
  await rpc("subscribe", { topic: "blocks" });
  await rpc("subscribe", { topic: "readings" });
  refreshRing();
}

function connect() {
  const conn = document.getElementById("conn");
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/rpc" + location.search);
  ws.onopen = () => { conn.textContent = "live"; conn.className = "dim"; start().catch(e => { conn.textContent = "error: " + e.message; conn.className = "bad"; }); };
  ws.onclose = () => { conn.textContent = "disconnected, retrying…"; conn.className = "bad"; pending.clear(); setTimeout(connect, 2000); };
  ws.onmessage = ev => {
    const m = JSON.parse(ev.data);
    for (const x of Array.isArray(m) ? m : [m]) {
      if (x.id !== undefined && pending.has(x.id)) {
        const p = pending.get(x.id); pending.delete(x.id);
        x.error ? p.reject(new Error(x.error.message)) : p.resolve(x.result);
      } else if (x.method === "subscription") {
        if (x.params.reading) addReading(x.params.reading, true);
        if (x.params.block) addBlock(x.params.block);
      }
    }
  };
}

// The ring: every node this one knows at its place on the circle (angle = id / 2^160), this node
// in the accent colour, the keys it owns as an arc from its predecessor to itself.
const SVG = "http://www.w3.org/2000/svg";
function angle(hex) { return parseInt(hex.slice(0, 8), 16) / 4294967296 * 2 * Math.PI - Math.PI / 2; }
function svg(tag, attrs) { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }
function drawRing(r) {
  const s = document.getElementById("ringsvg"); s.replaceChildren();
  s.append(svg("circle", { cx: 0, cy: 0, r: 90, fill: "none", stroke: "#26313c", "stroke-width": 6 }));
  if (!r.active) { document.getElementById("ringtext").textContent = r.reason || "not in a ring"; return; }
  const known = r.ring || [];
  if (r.range && r.range.share < 0.999) {
    const a0 = angle(r.range.after), a1 = angle(r.range.upTo);
    const large = ((a1 - a0 + 2 * Math.PI) % (2 * Math.PI)) > Math.PI ? 1 : 0;
    s.append(svg("path", { d: `M ${90 * Math.cos(a0)} ${90 * Math.sin(a0)} A 90 90 0 ${large} 1 ${90 * Math.cos(a1)} ${90 * Math.sin(a1)}`,
                           fill: "none", stroke: "#4fb3ff", "stroke-width": 6, class: "range" }));
  } else {
    s.append(svg("circle", { cx: 0, cy: 0, r: 90, fill: "none", stroke: "#4fb3ff", "stroke-width": 6, class: "range" }));
  }
  for (const n of known) {
    const a = angle(n.id), me = n.id === r.id;
    const dot = svg("circle", { cx: 90 * Math.cos(a), cy: 90 * Math.sin(a), r: me ? 7 : 5, fill: me ? "#4fb3ff" : "#e6e6e6", class: "node" });
    dot.append(svg("title", {})); dot.firstChild.textContent = n.address + " " + n.id.slice(0, 12);
    s.append(dot);
  }
  const share = r.range ? (r.range.share * 100).toFixed(1) + "% of the keys" : "range not known yet";
  document.getElementById("ringtext").textContent = `${known.length} node(s) · this node owns ${share}`;
  document.body.dataset.ringNodes = known.length;
}
async function refreshRing() {
  if (!ws || ws.readyState !== 1) return;
  try { drawRing(await rpc("ring")); } catch (e) { document.getElementById("ringtext").textContent = e.message; }
  try {
    const a = await rpc("anchor");
    document.getElementById("anchor").textContent = a.height + " · " + a.hash.slice(0, 8);
    document.body.dataset.anchor = a.height;
  } catch (e) { /* a node without an anchor chain */ }
}
setInterval(refreshRing, 3000);

setInterval(() => { for (const d of devices.values()) if (d.dirty || d.points.length) { draw(d); d.dirty = false; } }, 500);
connect();
