// The live page: polls /api/state (same origin only) and redraws with textContent, never
// innerHTML of data; the graph's SVG comes from wgbgp's own Graphviz run.
"use strict";

const POLL_MS = 1000;
let shownVersion = -1;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  const s = Math.round(seconds);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h`;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}

function table(headers, rows) {
  const t = el("table", {}, el("tr", {}, ...headers.map(h => el("th", {}, h))));
  for (const r of rows) t.append(r);
  return t;
}

function tunnels(m) {
  const rows = [];
  for (const t of m.tunnels || []) {
    for (const p of t.peers || []) {
      const fresh = p.handshake_age !== null && p.handshake_age <= 180;
      rows.push(el("tr", {"data-tunnel": `${m.machine}|${p.name || p.public_key}`,
                          "data-state": fresh ? "up" : "down"},
        el("td", {}, t.name), el("td", {}, p.name || p.public_key.slice(0, 10) + "…"),
        el("td", {}, p.endpoint || "-"),
        el("td", {class: fresh ? "state-up" : "state-stale"}, age(p.handshake_age)),
        el("td", {}, bytes(p.rx_bytes)), el("td", {}, bytes(p.tx_bytes))));
    }
  }
  if (!rows.length) return el("p", {class: "fail"}, "no WireGuard interface is up");
  return table(["interface", "peer", "endpoint (as seen)", "handshake", "received", "sent"], rows);
}

function sessions(m) {
  if (!m.bgp) return el("p", {class: m.errors && m.errors.bgp ? "fail" : ""},
                        m.errors && m.errors.bgp ? "BGP not answering" : "no BGP on this machine");
  const rows = (m.bgp.neighbors || []).map(n => el("tr",
    {"data-session": `${m.machine}|${n.name || n.address}`, "data-state": n.state},
    el("td", {}, n.address), el("td", {}, n.name || ""), el("td", {}, n.remote_as || "?"),
    el("td", {class: `state-${n.state === "Established" ? "up" : "down"}`}, n.state),
    el("td", {}, n.state === "Established" ? age(n.uptime) : "-"),
    el("td", {}, n.prefixes_received ?? "-"), el("td", {}, n.prefixes_sent ?? "-")));
  return table(["neighbour", "name", "AS", "state", "up", "pfx rcvd", "pfx sent"], rows);
}

function routes(m) {
  if (!m.bgp) return el("span");
  const rows = (m.bgp.routes || []).map(r => el("tr", {"data-route": `${m.machine}|${r.prefix}`},
    el("td", {}, r.prefix), el("td", {}, (r.nexthops || []).join(", ")),
    el("td", {class: r.installed ? "state-up" : "state-down"}, r.installed ? "yes" : "no")));
  if (!rows.length) rows.push(el("tr", {}, el("td", {}, "-"), el("td", {}, "none"), el("td", {})));
  return table(["route learned", "via", "installed"], rows);
}

function finding(c) {
  return el("div", {class: `finding v-${c.verdict}`, "data-finding": c.code, "data-machine": c.machine},
    el("b", {}, `${c.verdict.toUpperCase()} ${c.code}`), ` on ${c.machine}: ${c.message}`,
    ...(c.fix ? [el("div", {class: "fix"}, `fix: ${c.fix}`)] : []));
}

function machines(state) {
  const box = el("div", {class: "machines"});
  const findings = (state.doctor && state.doctor.findings) || [];
  for (const name of state.machines_expected) {
    const m = state.machines[name];
    const mine = findings.filter(c => c.machine === name);
    const card = el("div", {class: "machine" + (mine.some(c => c.verdict === "fail") ? " problem" : ""),
                            "data-machine": name}, el("h3", {}, name));
    if (!m) { card.append(el("p", {class: "warn"}, "not read (no way to reach it from here)")); box.append(card); continue; }
    card.append(tunnels(m), sessions(m), routes(m));
    for (const [src, why] of Object.entries(m.errors || {})) card.append(el("p", {class: "warn"}, `${src}: ${why}`));
    for (const c of mine) card.append(finding(c));
    box.append(card);
  }
  return box;
}

async function showGraph() {
  const res = await fetch("/graph.svg", {cache: "no-store", credentials: "same-origin"});
  if (!res.ok) return;
  const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return;
  document.getElementById("graph").replaceChildren(document.importNode(svg, true));
}

function show(state) {
  document.getElementById("network").textContent = `${state.network} (${state.mode} mode)`;
  const doc = state.doctor;
  const health = document.getElementById("health");
  const down = state.sessions.filter(s => s.state === "down").length;
  const bad = (doc && !doc.healthy) || down > 0;
  health.textContent = !doc ? `${down} down; doctor pending` : bad ?
    `problems: ${down} tunnel/session down, ${doc.findings.length} finding(s)` : "healthy";
  health.className = "badge " + (bad ? "bad" : "ok");
  health.setAttribute("data-down", String(down));
  document.getElementById("updated").textContent = state.taken_at ?
    `read ${new Date(state.taken_at * 1000).toLocaleTimeString()} in ${state.seconds} s (#${state.version})` : "";
  const findings = (doc && doc.findings) || [];
  // Doctor probes, so it runs less often than the status is read: say how old it is, and
  // do not call a network healthy that the status already shows broken.
  document.getElementById("doctor-at").textContent = state.doctor_at ?
    `(report from ${new Date(state.doctor_at * 1000).toLocaleTimeString()})` : "";
  const none = !doc ? el("p", {}, "pending") : down > 0 ?
    el("p", {class: "warn"}, "no finding yet: doctor runs again in a few seconds") :
    el("p", {class: "state-up"}, "no problem found");
  document.getElementById("findings").replaceChildren(
    ...(findings.length ? findings.map(finding) : [none]));
  document.getElementById("machines").replaceChildren(machines(state));
}

async function poll() {
  try {
    const res = await fetch("/api/state", {cache: "no-store", credentials: "same-origin"});
    if (res.ok) {
      const state = await res.json();
      if (state.version !== shownVersion) {
        shownVersion = state.version;
        show(state);
        await showGraph();
        document.body.setAttribute("data-version", String(state.version));
      }
    }
  } catch (e) {
    document.getElementById("health").textContent = "wgbgp web is not answering";
  }
  setTimeout(poll, POLL_MS);
}

poll();
