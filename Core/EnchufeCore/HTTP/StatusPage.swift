import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /ui/`: the status page. One HTML document with its style and script inside, compiled into
/// the binary (no build step, no CDN). The page itself is served to anyone who can reach the hub;
/// everything it shows comes from the operator routes, which need the admin key (asked for, kept
/// in the tab's session storage) unless the hub listens on loopback.
extension HTTPServer {
    static func addStatusPage(_ router: Router<HubRequestContext>, hub: Hub) {
        router.get("/ui/") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.cacheControl] = "no-cache"
            headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: StatusPage.html)))
        }
    }
}

enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Enchufe</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        :root { --running:#2e7d32; --waiting:#1565c0; --failing:#c62828; --stopped:#757575; --skipped:#ef6c00; }
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
        header { background: #263238; color: #fff; padding: 8px 16px; display: flex; gap: 16px; align-items: center; }
        header h1 { font-size: 18px; margin: 0; }
        header .note { opacity: .8; font-size: 12px; }
        main { display: grid; grid-template-columns: 260px 1fr 360px; gap: 12px; padding: 12px; }
        section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; overflow: auto; }
        h2 { font-size: 15px; margin: 4px 0 8px; }
        ul.flows { list-style: none; margin: 0; padding: 0; }
        ul.flows li { padding: 6px 8px; border-radius: 4px; cursor: pointer; display: flex; justify-content: space-between; gap: 8px; }
        ul.flows li.selected { background: #e3f2fd; }
        .badge { color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; }
        .running { background: var(--running); } .waiting { background: var(--waiting); }
        .failing { background: var(--failing); } .stopped { background: var(--stopped); } .skipped { background: var(--skipped); }
        svg .node rect { stroke: #333; stroke-width: 1; rx: 6; cursor: pointer; }
        svg .node.selected rect { stroke-width: 3; }
        svg rect.running { fill: var(--running); } svg rect.waiting { fill: var(--waiting); }
        svg rect.failing { fill: var(--failing); } svg rect.stopped { fill: var(--stopped); }
        svg .node text { fill: #fff; font-size: 12px; pointer-events: none; }
        svg .wire { fill: none; stroke: #90a4ae; stroke-width: 2; }
        svg .wire.errors { stroke: #e57373; stroke-dasharray: 4 3; }
        pre { background: #f5f5f5; padding: 6px; white-space: pre-wrap; word-break: break-all; font-size: 12px; margin: 4px 0; }
        table { border-collapse: collapse; width: 100%; font-size: 12px; }
        td, th { border-bottom: 1px solid #eee; padding: 4px; text-align: left; vertical-align: top; }
        .error { color: var(--failing); }
        button { cursor: pointer; }
        #key { display: none; gap: 8px; align-items: center; }
        </style>
        </head>
        <body>
        <header>
          <h1>Enchufe</h1><span class="note" id="summary">loading…</span>
          <form id="key"><input type="password" id="key-input" placeholder="admin API key" size="40"><button>Use key</button></form>
        </header>
        <main>
          <section><h2>Flows</h2><ul class="flows" id="flows"></ul><div id="skipped"></div>
            <h2>Alerts</h2><table id="alerts"><thead><tr><th>alert</th><th>state</th><th>series</th><th>changed at</th><th>value</th></tr></thead><tbody></tbody></table>
            <h2>Alert changes</h2><table id="alert-changes"><thead><tr><th>at</th><th>alert</th><th>state</th><th>series</th><th>value</th></tr></thead><tbody></tbody></table></section>
          <section><h2 id="flow-title">Flow</h2><div id="flow-meta"></div><svg id="graph" width="100%" height="200"></svg>
            <h2>Dead letters</h2><table id="dead-letters"><thead><tr><th>id</th><th>when</th><th>node</th><th>error</th><th></th></tr></thead><tbody></tbody></table></section>
          <section><h2 id="node-title">Node</h2><div id="node-detail">Click a node of the graph.</div><h2>Live messages</h2><div id="tap"></div></section>
        </main>
        <script>
        "use strict";
        const state = { flows: [], selectedFlow: null, selectedNode: null, tap: null };
        const key = () => sessionStorage.getItem("enchufe-key");
        const headers = () => key() ? { Authorization: "Bearer " + key() } : {};
        const $ = (id) => document.getElementById(id);
        const el = (tag, attrs = {}, ...children) => {
          const e = tag === "svg" || ["g", "rect", "text", "path", "title"].includes(tag)
            ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
          for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
          for (const c of children) e.append(c);
          return e;
        };

        async function api(path, options = {}) {
          const r = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
          if (r.status === 401 || r.status === 403) { $("key").style.display = "flex"; throw new Error("an admin key is needed"); }
          const body = await r.json();
          if (!r.ok) throw new Error(body.detail || r.statusText);
          return body;
        }

        $("key").addEventListener("submit", (e) => {
          e.preventDefault();
          sessionStorage.setItem("enchufe-key", $("key-input").value);
          $("key").style.display = "none";
          refresh();
        });

        // Columns by distance from the sources, rows in file order.
        function layout(flow) {
          const depth = {};
          const incoming = {};
          for (const w of flow.wires) (incoming[w.to] ||= []).push(w.from);
          const visit = (id, seen) => {
            if (depth[id] !== undefined) return depth[id];
            if (seen.has(id)) return 0;
            seen.add(id);
            const d = Math.max(-1, ...(incoming[id] || []).map((f) => visit(f, seen))) + 1;
            return (depth[id] = d);
          };
          for (const n of flow.nodes) visit(n.id, new Set());
          const rows = {};
          const pos = {};
          for (const n of flow.nodes) {
            const col = depth[n.id];
            const row = (rows[col] = (rows[col] || 0) + 1) - 1;
            pos[n.id] = { x: 10 + col * 210, y: 10 + row * 80 };
          }
          return pos;
        }

        function drawGraph(flow) {
          const svg = $("graph");
          svg.replaceChildren();
          const pos = layout(flow);
          const w = 180, h = 56;
          let maxY = 0, maxX = 0;
          for (const p of Object.values(pos)) { maxY = Math.max(maxY, p.y + h); maxX = Math.max(maxX, p.x + w); }
          svg.setAttribute("height", maxY + 20);
          svg.setAttribute("viewBox", `0 0 ${Math.max(maxX + 20, 400)} ${maxY + 20}`);
          for (const wire of flow.wires) {
            const a = pos[wire.from], b = pos[wire.to];
            if (!a || !b) continue;
            const x1 = a.x + w, y1 = a.y + h / 2, x2 = b.x, y2 = b.y + h / 2;
            svg.append(el("path", { class: "wire" + (wire.port === "errors" ? " errors" : ""), d: `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`, "data-from": wire.from, "data-to": wire.to }));
          }
          for (const n of flow.nodes) {
            const p = pos[n.id];
            const g = el("g", { class: "node" + (n.id === state.selectedNode ? " selected" : ""), "data-node": n.id, transform: `translate(${p.x},${p.y})` });
            g.append(el("title", {}, `${n.id} (${n.type}): ${n.status}`));
            g.append(el("rect", { width: w, height: h, class: n.status }));
            g.append(el("text", { x: 8, y: 18, "font-weight": "bold" }, n.id));
            g.append(el("text", { x: 8, y: 33 }, n.type));
            g.append(el("text", { x: 8, y: 48, class: "counters", "data-in": n.messages_in, "data-out": n.messages_out },
              `in ${n.messages_in} · out ${n.messages_out}` + (n.errors ? ` · err ${n.errors}` : "")));
            g.addEventListener("click", () => { selectNode(n.id); });
            svg.append(g);
          }
        }

        function showNode(flow) {
          const n = flow && flow.nodes.find((x) => x.id === state.selectedNode);
          if (!n) return;
          $("node-title").textContent = `${flow.id} / ${n.id}`;
          const rows = [["type", n.type], ["status", n.status], ["in / out", `${n.messages_in} / ${n.messages_out}`],
            ["errors · retries · dead letters", `${n.errors} · ${n.retries} · ${n.dead_letters}`]];
          if (n.queue_size !== undefined) rows.push(["queue", `${n.queue_depth} of ${n.queue_size}`]);
          if (n.next_run) rows.push(["next run", n.next_run]);
          if (n.newest_data) rows.push(["newest data (lag)", `${n.newest_data} (${n.lag_seconds} s)`]);
          for (const [k, v] of Object.entries(n.details || {})) rows.push([k, typeof v === "object" ? JSON.stringify(v) : v]);
          const table = el("table", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, String(v)))));
          const detail = [table];
          if (n.last_error) detail.push(el("p", { class: "error" }, `last error at ${n.last_error.at}: ${n.last_error.message}`));
          $("node-detail").replaceChildren(...detail);
        }

        function selectNode(id) {
          state.selectedNode = id;
          const flow = state.flows.find((f) => f.id === state.selectedFlow);
          drawGraph(flow);
          showNode(flow);
          startTap(flow.id, id);
        }

        // Live messages: the tap's Server-Sent Events, read with fetch so that the key can be sent.
        async function startTap(flow, node) {
          if (state.tap) state.tap.abort();
          const controller = new AbortController();
          state.tap = controller;
          $("tap").replaceChildren(el("p", {}, "waiting for messages…"));
          try {
            const r = await fetch(`/api/v1/tap?flow=${encodeURIComponent(flow)}&node=${encodeURIComponent(node)}`, { headers: headers(), signal: controller.signal });
            const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
            let buffer = "";
            const shown = [];
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buffer += value;
              let end;
              while ((end = buffer.indexOf("\n\n")) >= 0) {
                const block = buffer.slice(0, end);
                buffer = buffer.slice(end + 2);
                const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
                if (!data) continue;
                const event = JSON.parse(data);
                shown.unshift(el("pre", {}, `${event.at} ${event.port}${event.skipped ? ` (+${event.skipped} not shown)` : ""}\n${JSON.stringify(event.message, null, 1)}`));
                shown.length = Math.min(shown.length, 20);
                $("tap").replaceChildren(...shown);
              }
            }
          } catch (e) {
            if (e.name !== "AbortError") $("tap").replaceChildren(el("p", { class: "error" }, String(e.message || e)));
          }
        }

        async function loadDeadLetters() {
          const body = await api("/api/v1/dead-letters?limit=50");
          const rows = body.dead_letters.filter((d) => !state.selectedFlow || d.flow === state.selectedFlow).map((d) => {
            const button = el("button", {}, d.replayed_at ? "replayed" : "replay");
            if (d.replayed_at) button.disabled = true;
            button.addEventListener("click", async () => {
              button.disabled = true;
              try { await api(`/api/v1/dead-letters/${d.id}/replay`, { method: "POST" }); button.textContent = "replayed"; }
              catch (e) { button.textContent = "failed"; button.title = e.message; button.disabled = false; }
            });
            return el("tr", { "data-dead-letter": d.id }, el("td", {}, String(d.id)), el("td", {}, d.created_at), el("td", {}, `${d.flow}/${d.node}`), el("td", { class: "error" }, d.error), el("td", {}, button));
          });
          $("dead-letters").tBodies[0].replaceChildren(...rows);
        }

        async function loadAlerts() {
          const body = await api("/api/v1/alerts?limit=20");
          $("alerts").tBodies[0].replaceChildren(...body.alerts.map((a) => el("tr", { "data-alert": a.alert, title: a.message },
            el("td", {}, a.alert), el("td", {}, el("span", { class: "badge " + (a.state === "raised" ? "failing" : "running") }, a.state)),
            el("td", {}, `${a.series} ${a.quantity}`), el("td", {}, a.changed_at || ""), el("td", {}, a.value === null ? "" : String(a.value)))));
          $("alert-changes").tBodies[0].replaceChildren(...body.recent.map((e) => el("tr", { title: e.message },
            el("td", {}, e.at), el("td", {}, e.alert), el("td", {}, e.state), el("td", {}, `${e.series} ${e.quantity}`), el("td", {}, String(e.value)))));
        }

        async function refresh() {
          let body;
          try { body = await api("/api/v1/flows"); }
          catch (e) { $("summary").textContent = e.message; return; }
          state.flows = body.flows;
          if (!state.selectedFlow || !state.flows.some((f) => f.id === state.selectedFlow)) {
            state.selectedFlow = (state.flows.find((f) => f.id === location.hash.slice(1)) || state.flows[0] || {}).id || null;
          }
          $("summary").textContent = `${state.flows.length} flow(s) running` + (body.skipped.length ? `, ${body.skipped.length} skipped` : "") +
            (body.last_reload ? ` · last reload ${body.last_reload.at}` : "");
          $("flows").replaceChildren(...state.flows.map((f) => {
            const li = el("li", { class: f.id === state.selectedFlow ? "selected" : "", "data-flow": f.id }, el("span", {}, f.id), el("span", { class: "badge " + f.status }, f.status));
            li.addEventListener("click", () => { state.selectedFlow = f.id; state.selectedNode = null; location.hash = f.id; refresh(); });
            return li;
          }));
          $("skipped").replaceChildren(...body.skipped.map((s) => el("p", {}, el("span", { class: "badge skipped" }, "skipped"), " ", s.flow || s.file, ": ", s.reason)));
          const flow = state.flows.find((f) => f.id === state.selectedFlow);
          if (flow) {
            $("flow-title").textContent = flow.id;
            const meta = [flow.description || "", `file ${flow.file}, tenant ${flow.tenant}`];
            if (flow.reload_error) meta.push("its last change was refused: " + flow.reload_error.join("; "));
            $("flow-meta").replaceChildren(...meta.filter(Boolean).map((t) => el("p", { class: t.startsWith("its last") ? "error" : "" }, t)));
            drawGraph(flow);
            showNode(flow);
          }
          loadDeadLetters().catch(() => {});
          loadAlerts().catch(() => {});
        }

        refresh();
        setInterval(refresh, 1000);
        </script>
        </body>
        </html>
        """#
}
