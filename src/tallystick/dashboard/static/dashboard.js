// Tallystick dashboard: draws each page's Vega-Lite charts from its /api/ endpoint,
// keeps the explore view in the address bar, and runs SQL. Text that came from the
// warehouse is only ever set with textContent or handed to Vega as data.
"use strict";

(function () {
  const body = document.body;
  const views = {};
  let drawing = 0; // the latest draw wins: an older response arriving late is dropped

  function embedOptions(name) {
    return {
      renderer: "svg",
      // Export (PNG/SVG) stays; the editor link would send the data to a website.
      actions: { export: true, source: false, compiled: false, editor: false },
      downloadFileName: "tallystick-" + name,
      // Evaluate Vega expressions with the interpreter: no eval(), so the CSP can forbid it.
      ast: true,
      expr: window.vegaInterpreter.expressionInterpreter,
    };
  }

  function showMessage(el, message) {
    el.textContent = message;
    el.classList.add("error");
  }

  async function getJSON(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = { message: response.status + " " + response.statusText };
    }
    if (!response.ok) throw new Error(data.message || response.statusText);
    return data;
  }

  // Vega draws a title on one line and clips it at the chart's edge; on a narrow screen the
  // title is broken into lines that fit beside the export button, and legends go below the
  // plot so that it keeps the width. The spec is copied: the page's data stays as sent.
  const NARROW = 560;
  const ACTIONS = 48; // the export button's corner
  let measure = null;

  function textWidth(text, font) {
    measure = measure || document.createElement("canvas").getContext("2d");
    measure.font = font;
    return measure.measureText(text).width;
  }

  function wrapLines(text, font, width) {
    const lines = [];
    let line = "";
    for (const word of String(text).split(" ")) {
      const longer = line ? line + " " + word : word;
      if (line && textWidth(longer, font) > width) {
        lines.push(line);
        line = word;
      } else {
        line = longer;
      }
    }
    if (line) lines.push(line);
    return lines;
  }

  function fitToWidth(spec, el) {
    const width = el.clientWidth;
    if (!width) return spec;
    const fitted = Object.assign({}, spec);
    if (fitted.title) {
      const title = typeof fitted.title === "string" ? { text: fitted.title } : Object.assign({}, fitted.title);
      if (typeof title.text === "string") {
        const font = "bold " + (title.fontSize || 13) + "px sans-serif";
        const lines = wrapLines(title.text, font, width - ACTIONS);
        if (lines.length > 1) {
          title.text = lines;
          title.anchor = "start";
        }
      }
      fitted.title = title;
    }
    if (width < NARROW) {
      const config = Object.assign({}, fitted.config || {});
      config.legend = Object.assign({}, config.legend || {}, { orient: "bottom", columns: 2, labelLimit: 130 });
      config.axisTemporal = Object.assign({}, config.axisTemporal || {}, { tickCount: 4, labelOverlap: "greedy", labelSeparation: 6 });
      fitted.config = config;
      // The height is the plot's own: a legend below adds to it instead of squeezing the plot.
      if (fitted.autosize && fitted.autosize.type === "fit") fitted.autosize = Object.assign({}, fitted.autosize, { type: "fit-x" });
    }
    return fitted;
  }

  // The page carries its first charts (JSON in a non-executing script element);
  // later changes fetch new ones from the page's /api/ endpoint.
  async function drawCharts(source) {
    const mine = ++drawing;
    body.dataset.ready = "false";
    try {
      const data = typeof source === "string" ? await getJSON(source) : source;
      if (mine !== drawing) return;
      const jobs = [];
      for (const el of document.querySelectorAll("[data-chart]")) {
        const name = el.dataset.chart;
        if (views[name]) views[name].finalize();
        delete views[name];
        el.classList.remove("error");
        const spec = data.charts[name];
        if (!spec) {
          showMessage(el, "No data for this chart.");
          continue;
        }
        jobs.push(vegaEmbed(el, fitToWidth(spec, el), embedOptions(name)).then((result) => { views[name] = result.view; }));
      }
      await Promise.all(jobs);
    } catch (err) {
      if (mine !== drawing) return;
      for (const el of document.querySelectorAll("[data-chart]")) showMessage(el, "Could not draw this chart: " + err.message);
    } finally {
      if (mine === drawing) {
        window.tallystickRenderedAt = performance.now();
        body.dataset.ready = "true";
      }
    }
  }

  // --- explore: the form is the state, the URL holds it ---
  function exploreQuery(form) {
    const params = new URLSearchParams();
    const data = new FormData(form);
    const keys = data.getAll("fk");
    const values = data.getAll("fv");
    for (const [name, value] of data.entries()) {
      if (name !== "fk" && name !== "fv" && value) params.append(name, value);
    }
    keys.forEach((key, i) => {
      if (key && values[i]) {
        params.append("fk", key);
        params.append("fv", values[i]);
      }
    });
    return params.toString();
  }

  async function suggestValues(select) {
    const list = document.getElementById(select.dataset.valuesFor);
    list.replaceChildren();
    if (!select.value) return;
    const app = select.form.elements.app.value;
    const url = "/api/values?" + new URLSearchParams({ app: app, key: select.value }).toString();
    try {
      const data = await getJSON(url);
      for (const value of data.values) {
        const option = document.createElement("option");
        option.value = value;
        list.append(option);
      }
    } catch (_) {
      // Suggestions are a convenience; the filter works without them.
    }
  }

  function setUpExplore(form) {
    form.addEventListener("change", (event) => {
      if (event.target.matches("select[data-values-for]")) suggestValues(event.target);
      const query = exploreQuery(form);
      history.replaceState(null, "", "/explore?" + query);
      drawCharts("/api/explore?" + query);
    });
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  // --- SQL ---
  function cellText(value) {
    if (value === null) return "NULL";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function renderTable(target, data) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const column of data.columns) {
      const th = document.createElement("th");
      th.textContent = column;
      head.append(th);
    }
    const tbody = table.createTBody();
    for (const row of data.rows) {
      const tr = tbody.insertRow();
      for (const value of row) {
        const td = tr.insertCell();
        td.textContent = cellText(value);
        if (value === null) td.className = "null";
        else if (typeof value === "number") td.className = "num";
      }
    }
    target.replaceChildren(table);
  }

  function setUpSql(form) {
    const status = document.getElementById("sql-status");
    const result = document.getElementById("sql-result");
    const csv = document.getElementById("csv");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const sql = form.elements.q.value;
      const query = new URLSearchParams({ q: sql }).toString();
      history.replaceState(null, "", "/sql?" + query);
      csv.href = "/api/sql.csv?" + query;
      status.textContent = "running…";
      status.className = "";
      body.dataset.ready = "false";
      try {
        const data = await getJSON("/api/sql", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ sql: sql }),
        });
        renderTable(result, data);
        const n = data.rows.length;
        status.textContent = n + " row" + (n === 1 ? "" : "s") + (data.truncated ? " (more not shown)" : "") + " in " + data.ms + " ms";
      } catch (err) {
        result.replaceChildren();
        status.textContent = err.message;
        status.className = "error";
      } finally {
        window.tallystickRenderedAt = performance.now();
        body.dataset.ready = "true";
      }
    });
  }

  function start() {
    for (const select of document.querySelectorAll("select[data-autosubmit]")) {
      select.addEventListener("change", () => select.form.submit());
    }
    const analysis = document.getElementById("analysis");
    if (analysis) analysis.addEventListener("change", () => analysis.requestSubmit());
    const explore = document.getElementById("explore");
    if (explore) setUpExplore(explore);
    const sql = document.getElementById("sql");
    if (sql) {
      setUpSql(sql);
      sql.requestSubmit();
    } else if (document.getElementById("chart-data")) {
      drawCharts(JSON.parse(document.getElementById("chart-data").textContent));
    } else {
      window.tallystickRenderedAt = performance.now();
      body.dataset.ready = "true";
    }
  }

  start();
})();
