/// `/ui/communities` and `/ui/communities/{id}`: one HTML document with its style and script inside,
/// compiled into the binary (no build step, no CDN, no fonts fetched). The script asks
/// `GET /api/v1/communities` and `GET /api/v1/communities/{id}/dashboard` (with the key typed once,
/// kept in the tab's session storage) and draws every chart as SVG itself, each beside a table of
/// the same numbers. Colours are Okabe and Ito's palette, which readers with any common colour
/// vision deficiency tell apart; lines also differ by dash, so nothing depends on colour alone.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Enchufe · communities</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        :root { --orange:#E69F00; --sky:#56B4E9; --green:#009E73; --yellow:#F0E442; --blue:#0072B2; --red:#D55E00; --purple:#CC79A7; }
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
        header { background: #263238; color: #fff; padding: 8px 16px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
        header h1 { font-size: 18px; margin: 0; }
        header a { color: #fff; }
        header form, header label { display: flex; gap: 6px; align-items: center; }
        main { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 12px; padding: 12px; }
        section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; overflow: auto; }
        h2 { font-size: 15px; margin: 4px 0 8px; }
        h3 { font-size: 13px; margin: 8px 0 4px; }
        svg { width: 100%; height: auto; display: block; }
        svg text { font-size: 11px; fill: #333; }
        svg .axis { stroke: #999; stroke-width: 1; }
        svg .grid { stroke: #eee; stroke-width: 1; }
        .legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 12px; margin: 4px 0; }
        .legend span::before { content: ""; display: inline-block; width: 18px; height: 0; border-top: 3px solid var(--c); margin-right: 4px; vertical-align: middle; }
        .legend span.dashed::before { border-top-style: dashed; }
        details { margin-top: 6px; }
        table { border-collapse: collapse; font-size: 12px; }
        td, th { border-bottom: 1px solid #eee; padding: 2px 6px; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        .figure { font-size: 22px; font-weight: 600; }
        .figures { display: flex; gap: 24px; flex-wrap: wrap; }
        .note { color: #555; font-size: 12px; }
        .error { color: #b71c1c; }
        tr.negative td { color: var(--blue); font-weight: 600; }
        tr.cheapest td:first-child::after { content: " ★"; color: var(--green); }
        #key { display: none; }
        ul.communities li { margin: 6px 0; }
        </style>
        </head>
        <body>
        <header>
          <h1><a href="/ui/communities">Communities</a> <span id="title"></span></h1>
          <form id="controls" hidden>
            <label>day <input type="date" id="date"></label>
            <label>range <select id="range"><option>day</option><option>week</option><option>month</option></select></label>
            <label>forecast <select id="vintage"><option value="latest">latest</option><option value="day-ahead">day-ahead</option></select></label>
          </form>
          <form id="key"><input type="password" id="key-input" placeholder="read key of the community" size="40"><button>Use key</button></form>
        </header>
        <main id="main"><section><p id="status">loading…</p></section></main>
        <script>
        "use strict";
        const STORAGE = "enchufe-dashboard-key";
        // Okabe and Ito's colour-blind safe palette.
        const C = { orange: "#E69F00", sky: "#56B4E9", green: "#009E73", yellow: "#F0E442", blue: "#0072B2", red: "#D55E00", purple: "#CC79A7" };
        // A key handed over in the link's fragment (never sent to the server) is kept and taken out of the address.
        if (location.hash.startsWith("#key=")) {
          sessionStorage.setItem(STORAGE, decodeURIComponent(location.hash.slice(5)));
          history.replaceState(null, "", location.pathname + location.search);
        }
        const key = () => sessionStorage.getItem(STORAGE);
        const $ = (id) => document.getElementById(id);
        const SVG = "http://www.w3.org/2000/svg";
        const el = (tag, attrs = {}, ...children) => {
          const e = ["svg", "g", "rect", "text", "path", "line", "circle", "title"].includes(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
          for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
          for (const c of children) e.append(c);
          return e;
        };
        const fmt = (v, digits = 3) => v === null || v === undefined ? "" : Number(v).toFixed(digits);
        const pct = (v) => v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %";

        async function api(path) {
          const r = await fetch(path, { headers: key() ? { Authorization: "Bearer " + key() } : {} });
          if (r.status === 401 || r.status === 403) { $("key").style.display = "flex"; throw new Error("a read key is needed: type it above (it is kept in this tab only)"); }
          const body = await r.json();
          if (!r.ok) throw new Error(body.detail || r.statusText);
          return body;
        }

        $("key").addEventListener("submit", (e) => {
          e.preventDefault();
          sessionStorage.setItem(STORAGE, $("key-input").value);
          $("key").style.display = "none";
          load();
        });

        // A chart: lines (with a dot per point) and bars over the same intervals, y from 0 (or the
        // lowest value) up, the unit on the y axis, local-time labels under the x axis.
        function chart(name, labels, series, unit, marks = []) {
          const W = 760, H = 260, L = 56, R = 12, T = 12, B = 48;
          const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
          let lo = Math.min(0, ...all), hi = Math.max(0, ...all);
          if (hi === lo) hi = lo + 1;
          const n = labels.length, step = (W - L - R) / Math.max(n, 1);
          const x = (i) => L + step * (i + 0.5), y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
          const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": name, "data-chart": name });
          svg.append(el("title", {}, name));
          for (const m of marks) svg.append(el("rect", { x: L + step * m.i, y: T, width: step, height: H - T - B, fill: m.color, opacity: 0.18, "data-mark": m.kind }));
          for (let k = 0; k <= 4; k++) {
            const v = lo + (hi - lo) * k / 4;
            svg.append(el("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
            svg.append(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, Math.abs(hi - lo) < 10 ? v.toFixed(2) : v.toFixed(0)));
          }
          const middle = T + (H - T - B) / 2;
          svg.append(el("text", { x: 12, y: middle, transform: `rotate(-90 12 ${middle})`, "text-anchor": "middle" }, unit));
          svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: y(0), y2: y(0) }));
          const every = Math.max(1, Math.ceil(n / 12));
          labels.forEach((lab, i) => {
            if (i % every === 0) svg.append(el("text", { x: x(i), y: H - B + 14, "text-anchor": "middle" }, lab));
          });
          const bars = series.filter((s) => s.kind === "bar");
          bars.forEach((s, b) => {
            const g = el("g", { "data-series": s.name });
            s.values.forEach((v, i) => {
              if (v === null || v === undefined) return;
              const w = step * 0.8 / bars.length, x0 = L + step * (i + 0.1) + w * b;
              g.append(el("rect", { x: x0, y: Math.min(y(v), y(0)), width: w, height: Math.abs(y(v) - y(0)), fill: s.color }, el("title", {}, `${labels[i]}: ${fmt(v)} ${unit}`)));
            });
            svg.append(g);
          });
          for (const s of series.filter((s) => s.kind !== "bar")) {
            const g = el("g", { "data-series": s.name });
            let d = "", previous = false;
            s.values.forEach((v, i) => {
              if (v === null || v === undefined) { previous = false; return; }
              d += (previous ? "L" : "M") + x(i).toFixed(1) + "," + y(v).toFixed(1);
              previous = true;
            });
            if (d) g.append(el("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dashed ? "6 4" : null }));
            s.values.forEach((v, i) => {
              if (v === null || v === undefined) return;
              g.append(el("circle", { class: "point", cx: x(i), cy: y(v), r: 2.5, fill: s.color, "data-i": i }, el("title", {}, `${labels[i]}: ${fmt(v)} ${unit}`)));
            });
            svg.append(g);
          }
          const legend = el("div", { class: "legend" }, ...series.map((s) => el("span", { class: s.dashed ? "dashed" : "", style: `--c:${s.color}` }, s.name)));
          return [legend, svg];
        }

        // The same numbers as a table, for reading and copying.
        function table(name, labels, columns, rowClass = () => "") {
          const head = el("tr", {}, el("th", {}, "interval"), ...columns.map((c) => el("th", {}, c.name)));
          const rows = labels.map((lab, i) => el("tr", { class: rowClass(i), "data-i": i }, el("td", {}, lab), ...columns.map((c) => el("td", { "data-col": c.key }, c.format ? c.format(c.values[i]) : fmt(c.values[i])))));
          return el("details", {}, el("summary", {}, "table"), el("table", { "data-table": name }, el("thead", {}, head), el("tbody", {}, ...rows)));
        }

        function section(id, title, ...content) {
          return el("section", { "data-panel": id }, el("h2", {}, title), ...content);
        }

        // Axis labels: the local clock, or the day for a month; an hour that comes twice (the night
        // summer time ends) shows its UTC offset the second time.
        function axisLabels(d) {
          if (d.resolution === "P1D") return d.intervals.map((i) => i.label);
          const seen = new Set();
          return d.intervals.map((i) => {
            const clock = d.range === "day" ? i.label.slice(11, 16) : i.label.slice(5, 16);
            const repeated = seen.has(clock);
            seen.add(clock);
            return repeated ? `${clock} (${i.label.slice(17)})` : clock;
          });
        }

        function energyPanel(d) {
          const labels = axisLabels(d);
          const m = d.energy.measured, p = d.energy.predicted;
          const series = [
            { name: "consumption (measured)", values: m.consumption, color: C.blue },
            { name: "consumption (predicted)", values: p.consumption, color: C.blue, dashed: true },
            { name: "generation (measured)", values: m.generation, color: C.orange },
            { name: "generation (predicted)", values: p.generation, color: C.orange, dashed: true },
          ];
          const acc = d.accuracy.length ? el("div", {}, el("h3", {}, "forecast accuracy (community series)"),
            el("table", { "data-table": "accuracy" }, el("thead", {}, el("tr", {}, ...["quantity", "model", "horizon", "n", "MAE", "nMAE", "skill"].map((h) => el("th", {}, h)))),
              el("tbody", {}, ...d.accuracy.flatMap((a) => a.buckets.map((b) => el("tr", {}, el("td", {}, a.quantity), el("td", {}, a.model), el("td", {}, b.bucket), el("td", {}, String(b.n)),
                el("td", {}, fmt(b.mae)), el("td", {}, b.nmae === null ? "–" : b.nmae.toFixed(1) + " %"), el("td", {}, b.skill === null ? "–" : b.skill.toFixed(2))))))))
            : el("p", { class: "note" }, "No forecast of the community series to measure yet.");
          return section("energy", `Consumption (from the grid) and generation, kWh per ${d.resolution === "P1D" ? "day" : "hour"}`,
            ...chart("energy", labels, series, "kWh"),
            table("energy", d.intervals.map((i) => i.label), series.map((s, k) => ({ name: s.name, key: ["consumption", "predicted_consumption", "generation", "predicted_generation"][k], values: s.values }))),
            acc);
        }

        function pricePanel(d) {
          const parts = [];
          for (const day of d.prices) {
            parts.push(el("h3", {}, day.day === d.date ? `today ${day.day}` : `tomorrow ${day.day}`));
            if (!day.rows.length) { parts.push(el("p", { class: "note" }, "No prices stored for this day.")); continue; }
            const base = day.rows[0];
            const seen = new Set();
            const labels = base.points.map((p) => {
              const again = seen.has(p.label);
              seen.add(p.label);
              return again ? `${p.label} (2nd)` : p.label;
            });
            const colors = [C.red, C.sky, C.purple];
            const series = day.rows.map((row, k) => ({ name: `${row.name} (${row.series})` + (row.points.some((p) => p.predicted) ? " · predicted where dashed" : ""), values: alignTo(base, row), color: colors[k % 3], dashed: row.points.every((p) => p.predicted) }));
            const marks = base.points.flatMap((p, i) => p.negative ? [{ i, color: C.blue, kind: "negative" }] : p.cheapest ? [{ i, color: C.green, kind: "cheapest" }] : []);
            parts.push(...chart(`prices ${day.day}`, labels, series, "EUR/MWh", marks));
            parts.push(el("p", { class: "note" }, "Green bands: the cheapest three hours of " + base.name + "; blue: negative prices."));
            parts.push(table(`prices ${day.day}`, labels, series.map((s, k) => ({ name: s.name, key: day.rows[k].name, values: s.values })),
              (i) => (base.points[i].negative ? "negative " : "") + (base.points[i].cheapest ? "cheapest" : "")));
          }
          return section("prices", "Prices, EUR/MWh", ...parts);
        }

        // Another row's values on the first row's intervals (a quarter-hourly spot under an hourly PVPC: the hour's mean).
        function alignTo(base, row) {
          if (row === base) return row.points.map((p) => p.value);
          return base.points.map((p, i) => {
            const start = Date.parse(p.start), end = i + 1 < base.points.length ? Date.parse(base.points[i + 1].start) : start + 3600e3;
            const inside = row.points.filter((q) => Date.parse(q.start) >= start && Date.parse(q.start) < end).map((q) => q.value);
            return inside.length ? inside.reduce((a, b) => a + b, 0) / inside.length : null;
          });
        }

        function salePanel(d) {
          const labels = axisLabels(d);
          const s = d.for_sale;
          const series = [
            { name: "surplus for sale (predicted)", values: s.predicted_surplus, color: C.green, kind: "bar" },
            { name: "sold in the community", values: s.sold, color: C.orange, kind: "bar" },
            { name: "bought in the community", values: s.bought, color: C.sky, kind: "bar" },
          ];
          const parts = [...chart("for sale", labels, series, "kWh"),
            table("for sale", d.intervals.map((i) => i.label), series.map((x, k) => ({ name: x.name, key: ["predicted_surplus", "sold", "bought"][k], values: x.values })))];
          if (d.members_detail) {
            parts.push(el("h3", {}, "bought and sold per member"));
            parts.push(el("table", { "data-table": "market members" }, el("thead", {}, el("tr", {}, ...["member", "bought kWh", "sold kWh", "value EUR", "savings EUR"].map((h) => el("th", {}, h)))),
              el("tbody", {}, ...d.members_detail.map((m) => el("tr", { "data-cups": m.cups }, el("td", {}, m.cups), el("td", {}, fmt(m.market_bought)), el("td", {}, fmt(m.market_sold)), el("td", {}, fmt(m.market_value, 2)), el("td", {}, fmt(m.market_savings, 2)))))));
          } else {
            parts.push(el("p", { class: "note" }, "Per-member figures need a read key of the community."));
          }
          return section("sale", "Energy available for sale, and the community market", ...parts);
        }

        function ratioPanel(d) {
          const c = d.ratios.community;
          const parts = [el("div", { class: "figures" },
            el("div", {}, el("div", { class: "figure", "data-figure": "self_sufficiency" }, pct(c.self_sufficiency)), "self-sufficiency (use covered by own generation)"),
            el("div", {}, el("div", { class: "figure", "data-figure": "self_consumption" }, pct(c.self_consumption)), "self-consumption (generation used on site)"))];
          parts.push(el("p", { class: "note" }, `${d.members} members · generation ${fmt(c.generation)} kWh · self-consumed ${fmt(c.self_consumed)} kWh · from the grid ${fmt(c.consumption)} kWh · fed in ${fmt(c.surplus)} kWh`));
          if (d.members_detail) {
            parts.push(el("table", { "data-table": "ratios" }, el("thead", {}, el("tr", {}, ...["member", "self-sufficiency", "self-consumption", "generation kWh", "from the grid kWh", "fed in kWh"].map((h) => el("th", {}, h)))),
              el("tbody", {}, ...d.members_detail.map((m) => el("tr", { "data-cups": m.cups }, el("td", {}, m.cups), el("td", {}, pct(m.self_sufficiency)), el("td", {}, pct(m.self_consumption)),
                el("td", {}, fmt(m.generation)), el("td", {}, fmt(m.consumption)), el("td", {}, fmt(m.surplus)))))));
          }
          return section("ratios", "Self-sufficiency and self-consumption", ...parts);
        }

        function params() {
          const q = new URLSearchParams(location.search);
          return { date: q.get("date"), range: q.get("range") || "day", vintage: q.get("vintage") || "latest", tenant: q.get("tenant") };
        }

        async function loadIndex() {
          $("title").textContent = "";
          const body = await api("/api/v1/communities");
          const list = body.communities.map((c) => el("li", { "data-community": c.id }, el("a", { href: `/ui/communities/${encodeURIComponent(c.id)}?tenant=${encodeURIComponent(c.tenant)}` }, c.id), ` · tenant ${c.tenant} · ${c.members} members`));
          $("main").replaceChildren(section("index", "Communities", list.length ? el("ul", { class: "communities" }, ...list) : el("p", {}, "No community: register supplies with a community (PUT /api/v1/supplies/{cups}).")));
        }

        async function loadCommunity(id) {
          const p = params();
          $("controls").hidden = false;
          $("range").value = p.range;
          $("vintage").value = p.vintage;
          const q = new URLSearchParams({ range: p.range, vintage: p.vintage });
          if (p.date) q.set("date", p.date);
          if (p.tenant) q.set("tenant", p.tenant);
          const started = performance.now();
          const d = await api(`/api/v1/communities/${encodeURIComponent(id)}/dashboard?${q}`);
          $("date").value = d.date;
          $("title").textContent = `· ${d.community} · ${d.range} from ${d.date} (${d.time_zone})`;
          $("main").replaceChildren(energyPanel(d), pricePanel(d), salePanel(d), ratioPanel(d));
          document.body.dataset.rendered = String(Math.round(performance.now() - started));
        }

        function go() {
          const q = new URLSearchParams(location.search);
          q.set("date", $("date").value);
          q.set("range", $("range").value);
          q.set("vintage", $("vintage").value);
          location.search = q.toString();
        }
        for (const id of ["date", "range", "vintage"]) $(id).addEventListener("change", go);

        function load() {
          const path = location.pathname.replace(/\/+$/, "");
          const id = path.startsWith("/ui/communities/") ? decodeURIComponent(path.slice("/ui/communities/".length)) : null;
          (id ? loadCommunity(id) : loadIndex()).catch((e) => $("main").replaceChildren(section("error", "Nothing to show", el("p", { class: "error", id: "error" }, String(e.message || e)))));
        }
        load();
        </script>
        </body>
        </html>
        """#
}
