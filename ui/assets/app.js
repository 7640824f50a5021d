// graphite-rs UI: metric tree, graph composer, dashboards and alerts, in one hand-written
// script over the server's own API (/metrics/find, /functions, /render?format=json,
// /ui/api/dashboards, /alerts/api/*). Every URL is relative so the page works under any prefix.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };

  const state = {
    time: { from: '-1h', until: 'now' },
    refresh: 0,
    targets: [],
    dash: null, // the dashboard being shown
    vars: {}, // variable name -> chosen value
  };
  const charts = new Map(); // container element -> {plot, targets, resize}
  let refreshTimer = null;

  async function getJSON(url, opts) {
    const r = await fetch(url, opts);
    const text = await r.text();
    if (!r.ok) {
      let msg = text;
      try { msg = JSON.parse(text).error || text; } catch (_) { /* plain text */ }
      const err = new Error(msg.trim() || r.statusText);
      err.status = r.status;
      throw err;
    }
    // /functions writes infinite defaults as 1e9999, which JSON.parse reads as Infinity.
    return text ? JSON.parse(text) : null;
  }
  const qs = (params) => params.map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');

  // ---- hash routing: #/graph?target=..&from=.., #/dashboards, #/dash/NAME?var-host=.., #/alerts
  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const [path, query] = h.split('?');
    const params = new URLSearchParams(query || '');
    return { path: path || 'graph', params };
  }
  function setHash(path, params, replace) {
    const q = params && params.length ? '?' + qs(params) : '';
    const url = '#/' + path + q;
    if (replace) history.replaceState(null, '', url); else location.hash = url;
  }
  function timeParams() {
    const p = [['from', state.time.from]];
    if (state.time.until !== 'now') p.push(['until', state.time.until]);
    return p;
  }
  function graphHash() {
    setHash('graph', state.targets.map((t) => ['target', t]).concat(timeParams()), true);
  }
  function dashHash() {
    if (!state.dash) return;
    const p = timeParams();
    for (const [k, v] of Object.entries(state.vars)) p.push(['var-' + k, v]);
    setHash('dash/' + encodeURIComponent(state.dash.name), p, true);
  }

  function showView(name) {
    for (const v of ['graph', 'dashboards', 'alerts']) $('view-' + v).hidden = v !== name;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name);
  }

  async function route() {
    const { path, params } = parseHash();
    if (params.get('from')) applyTime(params.get('from'), params.get('until') || 'now', false);
    if (path === 'graph') {
      showView('graph');
      const ts = params.getAll('target');
      if (ts.length) { state.targets = ts; renderTargets(); }
      drawComposer();
    } else if (path === 'dashboards') {
      showView('dashboards');
      await loadDashboardList();
      const first = $('dash-select').value;
      if (first) openDashboard(first, params, true); else { state.dash = null; $('grid').replaceChildren(); }
    } else if (path.startsWith('dash/')) {
      showView('dashboards');
      const name = decodeURIComponent(path.slice(5));
      await loadDashboardList();
      await openDashboard(name, params, false);
    } else if (path === 'alerts') {
      showView('alerts');
      loadAlerts();
    }
  }

  // ---- time range and refresh
  function applyTime(from, until, redraw) {
    state.time = { from, until };
    const sel = $('range');
    if (/^-\w+$/.test(from) && until === 'now' && ![...sel.options].some((o) => o.value === from)) {
      sel.insertBefore(el('option', { value: from }, from.slice(1)), sel.lastElementChild);
    }
    const known = [...sel.options].some((o) => o.value === from) && until === 'now';
    sel.value = known ? from : 'absolute';
    $('absolute').hidden = known;
    if (!known) {
      const toLocal = (v) => {
        if (!/^\d+$/.test(v)) return '';
        const d = new Date(Number(v) * 1000);
        return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      };
      $('abs-from').value = toLocal(from);
      $('abs-until').value = toLocal(until);
    }
    if (redraw) { redrawAll(); updateHash(); }
  }
  function updateHash() {
    if (!$('view-graph').hidden) graphHash(); else if (!$('view-dashboards').hidden) dashHash();
  }
  $('range').addEventListener('change', () => {
    const v = $('range').value;
    $('absolute').hidden = v !== 'absolute';
    if (v !== 'absolute') applyTime(v, 'now', true);
  });
  $('abs-apply').addEventListener('click', () => {
    const f = Date.parse($('abs-from').value), u = Date.parse($('abs-until').value);
    if (isNaN(f) || isNaN(u) || u <= f) return;
    applyTime(String(Math.floor(f / 1000)), String(Math.floor(u / 1000)), true);
  });
  function setRefresh(seconds) {
    state.refresh = seconds;
    $('refresh').value = String(seconds);
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = seconds > 0 ? setInterval(redrawAll, seconds * 1000) : null;
  }
  $('refresh').addEventListener('change', () => setRefresh(Number($('refresh').value)));

  // ---- charts
  const PALETTE = ['#2a7de1', '#e8743b', '#19a979', '#ed4a7b', '#945ecf', '#13a4b4', '#525df4',
    '#bf399e', '#6c8893', '#ee6868', '#2f6497', '#c0a000'];

  function substitute(target) {
    return target.replace(/\$([A-Za-z0-9_]+)/g, (m, name) => (name in state.vars ? state.vars[name] : m));
  }

  /// Aligns graphite's [[value, ts], ...] series onto one x axis for uPlot.
  function toColumns(series) {
    const first = series[0].datapoints;
    const same = series.every((s) => s.datapoints.length === first.length &&
      (first.length === 0 || s.datapoints[0][1] === first[0][1]));
    if (same) {
      const xs = first.map((p) => p[1]);
      return [xs, ...series.map((s) => s.datapoints.map((p) => p[0]))];
    }
    const all = new Set();
    for (const s of series) for (const p of s.datapoints) all.add(p[1]);
    const xs = [...all].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    return [xs, ...series.map((s) => {
      const ys = new Array(xs.length).fill(null);
      for (const p of s.datapoints) ys[index.get(p[1])] = p[0];
      return ys;
    })];
  }

  async function drawChart(box, targets, params) {
    const old = charts.get(box);
    if (old) { old.plot && old.plot.destroy(); old.observer && old.observer.disconnect(); }
    charts.set(box, { targets, params });
    box.dataset.state = 'loading';
    if (!targets.length) {
      box.replaceChildren(el('div', { class: 'msg' }, 'Pick a metric in the tree or add a target.'));
      box.dataset.state = 'empty';
      return;
    }
    const width = Math.max(200, box.clientWidth - 8);
    const p = targets.map((t) => ['target', substitute(t)]).concat(timeParams(),
      [['format', 'json'], ['maxDataPoints', String(width)]]);
    for (const [k, v] of Object.entries(params || {})) {
      if (typeof v !== 'object') p.push([k, String(v)]);
    }
    let series;
    try {
      series = await getJSON('render?' + qs(p));
    } catch (e) {
      box.replaceChildren(el('div', { class: 'msg error' }, 'Error: ' + e.message));
      box.dataset.state = 'error';
      return;
    }
    if (charts.get(box) === undefined || charts.get(box).targets !== targets) return; // superseded
    box.replaceChildren();
    if (!series.length) {
      box.append(el('div', { class: 'msg' }, 'No data.'));
      box.dataset.state = 'done';
      return;
    }
    const data = toColumns(series);
    const height = box.classList.contains('small') ? 200 : 280;
    const opts = {
      width,
      height,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      legend: { live: true },
      series: [{}].concat(series.map((s, i) => ({
        label: s.target,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        spanGaps: false,
        points: { show: false },
      }))),
      axes: [{}, { size: 60 }],
    };
    const plot = new uPlot(opts, data, box);
    const observer = new ResizeObserver(() => {
      const w = Math.max(200, box.clientWidth - 8);
      if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
    });
    observer.observe(box);
    charts.set(box, { targets, params, plot, observer });
    box.dataset.state = 'done';
    box.dataset.series = String(series.length);
  }

  function redrawAll() {
    if (!$('view-graph').hidden) drawComposer();
    if (!$('view-dashboards').hidden && state.dash) renderGrid();
    if (!$('view-alerts').hidden) loadAlerts();
  }

  // ---- metric tree
  function treeNode(node) {
    const li = el('li', { class: node.leaf ? 'leaf' : 'branch', 'data-path': node.id });
    const label = el('span', { class: 'node', title: node.id }, node.text);
    li.append(label);
    label.addEventListener('click', () => {
      if (node.leaf) { addTarget(node.id); return; }
      if (li.classList.toggle('open')) {
        if (!li.querySelector('ul')) {
          const ul = el('ul');
          li.append(ul);
          loadChildren(node.id + '.*', ul);
        } else li.querySelector('ul').hidden = false;
      } else li.querySelector('ul').hidden = true;
    });
    return li;
  }
  async function loadChildren(query, ul) {
    ul.replaceChildren(el('li', { class: 'status' }, '…'));
    try {
      const nodes = await getJSON('metrics/find?' + qs([['query', query], ['format', 'treejson']]));
      ul.replaceChildren(...nodes.map(treeNode));
      if (!nodes.length) ul.append(el('li', { class: 'status' }, 'nothing here'));
    } catch (e) {
      ul.replaceChildren(el('li', { class: 'status' }, 'Error: ' + e.message));
    }
  }
  let indexCache = null;
  let searchTimer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 200);
  });
  async function search() {
    const term = $('search').value.trim();
    const out = $('search-results');
    if (!term) { out.hidden = true; $('tree').hidden = false; return; }
    out.hidden = false;
    $('tree').hidden = true;
    try {
      if (/[*?\[{]/.test(term)) {
        const nodes = await getJSON('metrics/find?' + qs([['query', term], ['format', 'treejson']]));
        out.replaceChildren(...nodes.slice(0, 500).map(treeNode));
      } else {
        // Plain text matches anywhere in the name: one fetch of the index, filtered here.
        if (!indexCache) indexCache = await getJSON('metrics/index.json');
        const t = term.toLowerCase();
        const hits = indexCache.filter((m) => m.toLowerCase().includes(t)).slice(0, 500);
        out.replaceChildren(...hits.map((m) => treeNode({ id: m, text: m, leaf: 1 })));
      }
      if (!out.children.length) out.append(el('li', { class: 'status' }, 'no match'));
    } catch (e) {
      out.replaceChildren(el('li', { class: 'status' }, 'Error: ' + e.message));
    }
  }

  // ---- composer
  function renderTargets() {
    const ul = $('targets');
    ul.replaceChildren(...state.targets.map((t, i) => {
      const input = el('input', { value: t, 'aria-label': 'target ' + (i + 1), class: 'target' });
      input.addEventListener('change', () => { state.targets[i] = input.value; targetsChanged(); });
      return el('li', {}, input,
        el('button', { type: 'button', title: 'Apply a function', class: 'fn', onclick: () => openFunctions(i) }, 'ƒ'),
        el('button', { type: 'button', title: 'Remove', class: 'rm',
          onclick: () => { state.targets.splice(i, 1); targetsChanged(); } }, '×'));
    }));
  }
  function targetsChanged() {
    state.targets = state.targets.filter((t) => t.trim());
    renderTargets();
    graphHash();
    drawComposer();
  }
  function addTarget(t) {
    state.targets.push(t);
    if ($('view-graph').hidden) location.hash = '#/graph';
    targetsChanged();
  }
  function drawComposer() {
    drawChart($('composer-chart'), state.targets.slice(), {});
  }
  $('add-target').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('new-target').value.trim();
    if (v) { $('new-target').value = ''; addTarget(v); }
  });
  $('save-graph').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('save-dashboard').value.trim();
    const status = $('save-status');
    if (!name || !state.targets.length) { status.textContent = 'Need targets and a dashboard name.'; return; }
    try {
      let d;
      try { d = await getJSON('ui/api/dashboards/' + encodeURIComponent(name)); } catch (e) {
        if (e.status !== 404) throw e;
        d = { name, graphs: [], time: state.time, refresh_seconds: state.refresh, variables: [] };
      }
      d.graphs.push({ title: $('graph-title').value.trim(), targets: state.targets.slice(), params: {} });
      await putDashboard(d);
      status.textContent = 'Saved to ' + name + '.';
      status.append(' ', el('a', { href: '#/dash/' + encodeURIComponent(name), id: 'open-saved' }, 'Open'));
    } catch (e) {
      status.textContent = 'Error: ' + e.message;
    }
  });

  // ---- function picker, built from /functions metadata
  let functions = null;
  let fnTarget = 0;
  async function openFunctions(i) {
    fnTarget = i;
    if (!functions) {
      try { functions = await getJSON('functions'); } catch (e) { alert('Cannot load /functions: ' + e.message); return; }
    }
    $('fn-filter').value = '';
    fillFunctions('');
    $('fn-dialog').showModal();
    $('fn-filter').focus();
  }
  function fillFunctions(filter) {
    const sel = $('fn-select');
    const groups = {};
    const f = filter.toLowerCase();
    for (const fn of Object.values(functions).sort((a, b) => a.name.localeCompare(b.name))) {
      if (f && !fn.name.toLowerCase().includes(f)) continue;
      (groups[fn.group || 'Other'] = groups[fn.group || 'Other'] || []).push(fn);
    }
    sel.replaceChildren(...Object.keys(groups).sort().map((g) =>
      el('optgroup', { label: g }, ...groups[g].map((fn) => el('option', { value: fn.name }, fn.name)))));
    if (sel.options.length) { sel.selectedIndex = 0; showFunction(); }
  }
  $('fn-filter').addEventListener('input', () => fillFunctions($('fn-filter').value));
  $('fn-select').addEventListener('change', showFunction);
  function showFunction() {
    const fn = functions[$('fn-select').value];
    if (!fn) return;
    $('fn-desc').textContent = (fn.description || '').split('\n\n')[0];
    const params = (fn.params || []).slice(1); // the first is the series the target supplies
    $('fn-params').replaceChildren(...params.map((p) => {
      let input;
      if (p.options && p.options.length) {
        input = el('select', {}, el('option', { value: '' }, ''),
          ...p.options.map((o) => el('option', { value: String(o) }, String(o))));
      } else if (p.type === 'boolean') {
        input = el('select', {}, el('option', { value: '' }, ''), el('option', { value: 'true' }, 'true'),
          el('option', { value: 'false' }, 'false'));
      } else {
        input = el('input', { type: 'text' });
        if (p.default !== undefined && p.default !== null) input.placeholder = String(p.default);
      }
      input.dataset.name = p.name;
      input.dataset.type = p.type;
      if (p.multiple) input.dataset.multiple = '1';
      if (p.required) input.required = true;
      return el('label', {}, p.name + (p.required ? ' *' : '') + ' (' + p.type + ')', input);
    }));
  }
  function formatArg(value, type) {
    if (['integer', 'float', 'node', 'boolean', 'seriesList', 'seriesLists'].includes(type)) return value;
    if (type === 'intOrInterval' && /^-?\d+(\.\d+)?$/.test(value)) return value;
    if (type === 'nodeOrTag' && /^-?\d+$/.test(value)) return value;
    return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  }
  $('fn-form').addEventListener('submit', (ev) => {
    if (ev.submitter && ev.submitter.value !== 'apply') return;
    const name = $('fn-select').value;
    if (!name) return;
    const args = [state.targets[fnTarget]];
    let skipped = false;
    for (const input of $('fn-params').querySelectorAll('[data-name]')) {
      const v = input.value.trim();
      if (!v) { skipped = true; continue; }
      const parts = input.dataset.multiple ? v.split(',').map((s) => s.trim()) : [v];
      const formatted = parts.map((x) => formatArg(x, input.dataset.type)).join(', ');
      // After a skipped optional parameter the rest must be named.
      args.push(skipped && !input.dataset.multiple ? input.dataset.name + '=' + formatted : formatted);
    }
    state.targets[fnTarget] = name + '(' + args.join(', ') + ')';
    targetsChanged();
  });

  // ---- dashboards
  async function putDashboard(d) {
    return getJSON('ui/api/dashboards/' + encodeURIComponent(d.name), {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(d),
    });
  }
  async function loadDashboardList() {
    let names = [];
    try { names = (await getJSON('ui/api/dashboards')).dashboards; } catch (e) { $('dash-status').textContent = e.message; }
    $('dash-select').replaceChildren(...names.map((n) => el('option', { value: n }, n)));
    $('dashboard-names').replaceChildren(...names.map((n) => el('option', { value: n })));
    return names;
  }
  async function openDashboard(name, params, replaceHash) {
    try {
      state.dash = await getJSON('ui/api/dashboards/' + encodeURIComponent(name));
    } catch (e) {
      state.dash = null;
      $('grid').replaceChildren(el('p', { class: 'status' }, 'Cannot open ' + name + ': ' + e.message));
      return;
    }
    $('dash-select').value = name;
    document.title = name + ' · graphite-rs';
    const from = params.get('from') || state.dash.time.from;
    const until = params.get('until') || (params.get('from') ? 'now' : state.dash.time.until);
    applyTime(from, until, false);
    setRefresh(state.dash.refresh_seconds || 0);
    state.vars = {};
    for (const v of state.dash.variables) state.vars[v.name] = params.get('var-' + v.name) || v.value || '*';
    await renderVariables();
    if (replaceHash) dashHash();
    await renderGrid();
  }
  async function renderVariables() {
    const box = $('variables');
    box.replaceChildren();
    for (const v of state.dash.variables) {
      const sel = el('select', { 'aria-label': v.name }, el('option', { value: '*' }, '*'));
      box.append(el('label', {}, '$' + v.name + ' ', sel));
      try {
        const nodes = await getJSON('metrics/find?' + qs([['query', v.query]]));
        const seen = new Set();
        for (const n of nodes) {
          if (seen.has(n.text)) continue;
          seen.add(n.text);
          sel.append(el('option', { value: n.text }, n.text));
        }
      } catch (_) { /* the select keeps '*' */ }
      if (![...sel.options].some((o) => o.value === state.vars[v.name])) {
        sel.append(el('option', { value: state.vars[v.name] }, state.vars[v.name]));
      }
      sel.value = state.vars[v.name];
      sel.addEventListener('change', () => { state.vars[v.name] = sel.value; dashHash(); renderGrid(); });
    }
  }
  async function renderGrid() {
    const d = state.dash;
    const grid = $('grid');
    for (const box of grid.querySelectorAll('.chart')) {
      const c = charts.get(box);
      if (c) { c.plot && c.plot.destroy(); c.observer && c.observer.disconnect(); charts.delete(box); }
    }
    document.body.dataset.dashReady = '0';
    const started = performance.now();
    const cells = [];
    const boxes = d.graphs.map((g, i) => {
      const box = el('div', { class: 'chart small' });
      const title = g.title || g.targets.join(', ');
      cells.push(el('div', { class: 'cell' },
        el('h4', {}, el('span', { title }, title),
          el('button', { type: 'button', title: 'Edit in the composer', onclick: () => editGraph(i) }, '✎'),
          el('button', { type: 'button', title: 'Remove', onclick: () => removeGraph(i) }, '×')),
        box));
      return [box, g];
    });
    grid.replaceChildren(...cells);
    if (!boxes.length) grid.replaceChildren(el('p', { class: 'status' }, 'No graphs yet: compose one and add it here.'));
    await Promise.all(boxes.map(([box, g]) => drawChart(box, g.targets, g.params)));
    // Load time of the whole grid, read by the end-to-end test (Performance API figures).
    window.uiDashboardLoad = { graphs: boxes.length, ms: performance.now() - started, readyAt: performance.now() };
    document.body.dataset.dashReady = '1';
  }
  function editGraph(i) {
    const g = state.dash.graphs[i];
    state.targets = g.targets.slice();
    $('graph-title').value = g.title;
    $('save-dashboard').value = state.dash.name;
    location.hash = '#/graph';
    renderTargets();
  }
  async function removeGraph(i) {
    state.dash.graphs.splice(i, 1);
    await saveCurrent('Graph removed.');
    renderGrid();
  }
  async function saveCurrent(msg) {
    try { await putDashboard(state.dash); $('dash-status').textContent = msg; } catch (e) { $('dash-status').textContent = 'Error: ' + e.message; }
  }
  $('dash-select').addEventListener('change', () => { location.hash = '#/dash/' + encodeURIComponent($('dash-select').value); });
  $('dash-new').addEventListener('click', async () => {
    const name = prompt('New dashboard name');
    if (!name) return;
    try {
      await putDashboard({ name, graphs: [], time: state.time, refresh_seconds: state.refresh, variables: [] });
      location.hash = '#/dash/' + encodeURIComponent(name);
    } catch (e) { $('dash-status').textContent = 'Error: ' + e.message; }
  });
  $('dash-rename').addEventListener('click', async () => {
    if (!state.dash) return;
    const to = prompt('Rename to', state.dash.name);
    if (!to || to === state.dash.name) return;
    try {
      await getJSON('ui/api/dashboards/' + encodeURIComponent(state.dash.name) + '/rename', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ to }),
      });
      location.hash = '#/dash/' + encodeURIComponent(to);
    } catch (e) { $('dash-status').textContent = 'Error: ' + e.message; }
  });
  $('dash-delete').addEventListener('click', async () => {
    if (!state.dash || !confirm('Delete dashboard ' + state.dash.name + '?')) return;
    try {
      await fetch('ui/api/dashboards/' + encodeURIComponent(state.dash.name), { method: 'DELETE' });
      state.dash = null;
      location.hash = '#/dashboards';
    } catch (e) { $('dash-status').textContent = 'Error: ' + e.message; }
  });
  $('dash-save').addEventListener('click', () => {
    if (!state.dash) return;
    state.dash.time = state.time;
    state.dash.refresh_seconds = state.refresh;
    for (const v of state.dash.variables) v.value = state.vars[v.name] || '';
    saveCurrent('Saved.');
  });
  $('dash-share').addEventListener('click', () => {
    dashHash();
    const url = location.href;
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(url).catch(() => {});
    $('dash-status').replaceChildren('Link: ', el('a', { href: url }, url));
  });
  $('dash-var').addEventListener('click', async () => {
    if (!state.dash) return;
    const name = prompt('Variable name (used as $name in targets)');
    if (!name) return;
    const query = prompt('Glob its values come from (the last node of each match), e.g. servers.*');
    if (!query) return;
    state.dash.variables.push({ name, query, value: '' });
    state.vars[name] = '*';
    await saveCurrent('Variable added.');
    await renderVariables();
    renderGrid();
  });
  $('import-button').addEventListener('click', async () => {
    try {
      const d = await getJSON('ui/api/import', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: $('import-json').value,
      });
      $('import').open = false;
      location.hash = '#/dash/' + encodeURIComponent(d.name);
    } catch (e) { $('dash-status').textContent = 'Import failed: ' + e.message; }
  });

  // ---- alerts: shown only when the alert engine answers on this port. Shapes: alert/src/api.rs.
  const ALERT_ORDER = { firing: 0, error: 1, nodata: 2, recovering: 3, pending: 4, normal: 5 };
  const ACTIVE = new Set(['firing', 'recovering', 'nodata', 'error']);
  const SILENCE_ORDER = { active: 0, pending: 1, expired: 2 };
  const AUTHOR_KEY = 'graphite-rs.author';
  const alertsData = { alerts: [], silences: [], rules: [], history: [], loads: 0 };
  let silenceFor = null; // the instance a silence dialog was opened from

  const fmtTime = (t) => (t == null ? '' : new Date(t * 1000).toLocaleString());
  function span(sec) {
    sec = Math.round(Math.abs(sec));
    if (sec < 60) return sec + 's';
    if (sec < 3600) return Math.floor(sec / 60) + 'm' + (sec % 60 ? ' ' + (sec % 60) + 's' : '');
    if (sec < 86400) return Math.floor(sec / 3600) + 'h' + (sec % 3600 >= 60 ? ' ' + Math.floor((sec % 3600) / 60) + 'm' : '');
    return Math.floor(sec / 86400) + 'd' + (sec % 86400 >= 3600 ? ' ' + Math.floor((sec % 86400) / 3600) + 'h' : '');
  }
  function relTime(t) {
    const d = t - Date.now() / 1000;
    return d >= 0 ? 'in ' + span(d) : span(-d) + ' ago';
  }
  /// A time cell: relative text, the local date and time on hover.
  const timeCell = (t) => (t == null ? el('td', {}, 'never')
    : el('td', { title: fmtTime(t), 'data-t': String(t) }, relTime(t)));
  const fmtValue = (v) => (v == null ? '' : String(Number.isInteger(v) ? v : Number(v.toPrecision(6))));
  const labelText = (labels) => Object.entries(labels || {}).filter(([k]) => k !== 'alertname')
    .map(([k, v]) => k + '=' + v).join(', ');
  const labelChips = (labels) => el('span', { class: 'labels' }, ...Object.entries(labels || {})
    .filter(([k]) => k !== 'alertname').map(([k, v]) => el('code', { class: 'label' }, k + '=' + v)));
  function badge(status, severity) {
    const sev = severity && (status === 'firing' || status === 'recovering') ? ' sev-' + severity : '';
    return el('span', { class: 'badge st-' + status + sev }, status);
  }
  function dataTable(id, headers, rows, empty) {
    if (!rows.length) return el('p', { class: 'status', id: id + '-none' }, empty || 'None.');
    return el('table', { id, class: 'alerts' },
      el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))), el('tbody', {}, ...rows));
  }
  const present = (...nodes) => nodes.filter((n) => n != null); // replaceChildren writes null as text
  const button = (cls, text, onclick, title) => el('button', { type: 'button', class: cls, onclick, title: title || '' }, text);

  async function loadAlerts() {
    const status = $('alerts-status');
    let got;
    try {
      got = await Promise.all(['alerts', 'rules', 'silences', 'history?limit=50']
        .map((p) => getJSON('alerts/api/' + p)));
    } catch (e) {
      status.textContent = e.status === 404
        ? 'The alert engine is not running here: start graphite-rs with --alert-rules FILE.'
        : 'Error: ' + e.message;
      return;
    }
    [alertsData.alerts, alertsData.rules, alertsData.silences, alertsData.history] = got;
    renderAlerts();
    status.textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
    // Read by the end-to-end test: how many loads have been drawn.
    $('view-alerts').dataset.loads = String(++alertsData.loads);
  }
  function renderAlerts() {
    const { alerts, silences } = alertsData;
    const count = (s) => alerts.filter((a) => a.status === s).length;
    const silenced = alerts.filter((a) => ACTIVE.has(a.status) && a.silenced_by.length).length;
    $('alerts-summary').textContent = count('firing') + ' firing, ' + count('pending') + ' pending, ' +
      silenced + ' silenced, ' + silences.filter((s) => s.state === 'active').length + ' active silences; ' +
      alertsData.rules.length + (alertsData.rules.length === 1 ? ' rule.' : ' rules.');
    renderInstances();
    renderAcks();
    renderSilences();
    renderRules();
    renderHistory();
  }

  function renderInstances() {
    const showNormal = $('alerts-show-normal').checked;
    const all = alertsData.alerts.slice().sort((a, b) =>
      (ALERT_ORDER[a.status] ?? 9) - (ALERT_ORDER[b.status] ?? 9) ||
      (a.severity === 'critical' ? 0 : 1) - (b.severity === 'critical' ? 0 : 1) ||
      a.rule.localeCompare(b.rule) || labelText(a.labels).localeCompare(labelText(b.labels)));
    const shown = showNormal ? all : all.filter((a) => a.status !== 'normal');
    const rows = shown.map((a) => {
      const notes = [];
      const summary = a.annotations && a.annotations.summary;
      if (summary) notes.push(el('div', {}, summary));
      if (a.silenced_by.length) notes.push(el('div', { class: 'note' }, 'silenced by ' + a.silenced_by.join(', ')));
      if (a.ack) notes.push(el('div', { class: 'note' }, 'acknowledged by ' + a.ack.by + ', ' + relTime(a.ack.expires_at).replace(/^in /, 'for ')));
      if (a.detail) notes.push(el('div', { class: 'note' }, a.detail));
      const actions = [button('silence', 'Silence', () => openSilence(a), 'Silence this instance')];
      // Only an active alert routed to some receiver can be acknowledged.
      if (ACTIVE.has(a.status) && a.groups.length) {
        actions.push(button('ack', a.ack ? 'Re-ack' : 'Ack', () => openAck(a), 'Acknowledge'));
      }
      const cls = 'alert st-' + a.status + (a.severity ? ' sev-' + a.severity : '') +
        (a.silenced_by.length ? ' silenced' : '') + (a.ack ? ' acked' : '');
      return el('tr', { class: cls, 'data-fingerprint': a.fingerprint, 'data-status': a.status },
        el('td', { class: 'rule' }, a.rule), el('td', {}, labelChips(a.labels)),
        el('td', {}, badge(a.status, a.severity)), el('td', { class: 'severity' }, a.severity || ''),
        el('td', { class: 'num value' }, fmtValue(a.value)), timeCell(a.since),
        el('td', {}, ...notes), el('td', { class: 'actions' }, ...actions));
    });
    const hidden = all.length - shown.length;
    $('alerts-instances').replaceChildren(...present(
      dataTable('instances', ['Rule', 'Labels', 'State', 'Severity', 'Value', 'Since', 'Notes', ''], rows,
        hidden ? 'No instance outside normal.' : 'No instances.'),
      hidden ? el('p', { class: 'status' }, hidden + ' normal instance' + (hidden > 1 ? 's' : '') + ' hidden.') : null));
  }

  function renderAcks() {
    // The API has no list of acks: each alert carries the one covering it (its own or its group's).
    const acks = new Map();
    for (const a of alertsData.alerts) {
      if (!a.ack) continue;
      const key = JSON.stringify(a.ack.target);
      if (!acks.has(key)) acks.set(key, { ack: a.ack, covers: [] });
      acks.get(key).covers.push(a);
    }
    const rows = [...acks.values()].map(({ ack, covers }) => {
      const what = ack.target.fingerprint
        ? covers[0].rule + (labelText(covers[0].labels) ? ' {' + labelText(covers[0].labels) + '}' : '')
        : 'group ' + ack.target.group_key + ' (' + covers.length + ' alerts)';
      return el('tr', { class: 'ack-row', 'data-target': ack.target.fingerprint || ack.target.group_key },
        el('td', {}, what), el('td', { class: 'by' }, ack.by), el('td', {}, ack.comment),
        timeCell(ack.at), timeCell(ack.expires_at), el('td', {}, ack.severity || ''));
    });
    $('alerts-acks').replaceChildren(dataTable('acks',
      ['Covers', 'By', 'Comment', 'At', 'Expires', 'Up to severity'], rows));
  }

  function matcherText(m) { return m.name + m.op + JSON.stringify(m.value); }
  function renderSilences() {
    const showExpired = $('alerts-show-expired').checked;
    const all = alertsData.silences.slice().sort((a, b) =>
      (SILENCE_ORDER[a.state] ?? 9) - (SILENCE_ORDER[b.state] ?? 9) || b.ends_at - a.ends_at);
    const shown = showExpired ? all : all.filter((s) => s.state !== 'expired');
    const rows = shown.map((s) => {
      const silencing = alertsData.alerts.filter((a) => a.silenced_by.includes(s.id)).length;
      const actions = [];
      if (s.state !== 'expired') {
        // Two clicks: the first arms the button for 4 s.
        const b = button('expire', 'Expire', async () => {
          if (b.dataset.armed !== '1') {
            b.dataset.armed = '1';
            b.textContent = 'Expire now?';
            setTimeout(() => { b.dataset.armed = '0'; b.textContent = 'Expire'; }, 4000);
            return;
          }
          try {
            await getJSON('alerts/api/silences/' + encodeURIComponent(s.id), { method: 'DELETE' });
            $('alerts-status').textContent = 'Silence ' + s.id + ' expired.';
          } catch (e) { $('alerts-status').textContent = 'Error: ' + e.message; }
          loadAlerts();
        }, 'End this silence now');
        actions.push(b);
      }
      return el('tr', { class: 'silence-row st-' + s.state, 'data-id': s.id, 'data-state': s.state },
        el('td', {}, el('code', {}, s.id)), el('td', {}, el('span', { class: 'badge si-' + s.state }, s.state)),
        el('td', {}, ...s.matchers.map((m) => el('code', { class: 'label' }, matcherText(m)))),
        timeCell(s.starts_at), timeCell(s.ends_at), el('td', { class: 'by' }, s.created_by),
        el('td', {}, s.comment), el('td', { class: 'num' }, String(silencing)), el('td', { class: 'actions' }, ...actions));
    });
    const hidden = all.length - shown.length;
    $('alerts-silences').replaceChildren(...present(dataTable('silences',
      ['ID', 'State', 'Matchers', 'Starts', 'Ends', 'By', 'Comment', 'Silencing', ''], rows),
    hidden ? el('p', { class: 'status' }, hidden + ' expired hidden.') : null));
  }

  /// A composer link (relative: a hash) for a rule's generator URL, when it has a target.
  function composerLink(rule) {
    if (!['graphite', 'freshness'].includes(rule.kind) || !rule.generator_url.includes('?')) return null;
    const q = new URLSearchParams(rule.generator_url.split('?')[1]);
    const target = q.get('target');
    if (!target) return null;
    return el('a', { href: '#/graph?' + qs([['target', target], ['from', q.get('from') || '-1h']]) }, 'graph');
  }
  function renderRules() {
    const rows = alertsData.rules.map((r) => el('tr', { 'data-rule': r.name, class: r.last_error ? 'rule-error' : '' },
      el('td', {}, r.name), el('td', {}, r.kind), el('td', {}, el('code', {}, r.subject), ' ', composerLink(r)),
      el('td', {}, r.condition), el('td', {}, r.every + 's' + (r.for_seconds ? ', for ' + span(r.for_seconds) : '')),
      timeCell(r.last_eval), el('td', { class: 'num' }, r.last_duration_ms.toFixed(1) + ' ms'),
      el('td', {}, ...Object.entries(r.counts).map(([s, n]) => el('span', { class: 'badge st-' + s }, s + ' ' + n))),
      el('td', { class: 'error' }, r.last_error || ''), el('td', {}, r.notify.join(', '))));
    $('alerts-rules').replaceChildren(dataTable('rules',
      ['Rule', 'Kind', 'Target', 'Condition', 'Every', 'Last evaluation', 'Took', 'Instances', 'Error', 'Notify'], rows));
  }
  function renderHistory() {
    const rows = alertsData.history.map((t) => el('tr', {},
      timeCell(t.at), el('td', {}, t.rule), el('td', {}, labelChips(t.labels)),
      el('td', {}, badge(t.from), ' → ', badge(t.to, t.severity)), el('td', { class: 'num' }, fmtValue(t.value))));
    $('alerts-history').replaceChildren(dataTable('history', ['At', 'Rule', 'Labels', 'Change', 'Value'], rows));
  }
  $('alerts-show-normal').addEventListener('change', renderInstances);
  $('alerts-show-expired').addEventListener('change', renderSilences);
  $('alerts-reload').addEventListener('click', loadAlerts);

  // The silence form: matchers prefilled from an instance's labels (all but `severity`, which
  // changes while the alert does, are checked), a duration, an author and a comment.
  const OPS = ['=', '!=', '=~', '!~'];
  function addMatcher(name, op, value, on) {
    const row = el('tr', { class: 'matcher' },
      el('td', {}, el('input', { type: 'checkbox', class: 'm-on', 'aria-label': 'use this matcher' })),
      el('td', {}, el('input', { class: 'm-name', value: name, 'aria-label': 'label', required: '' })),
      el('td', {}, el('select', { class: 'm-op', 'aria-label': 'operator' }, ...OPS.map((o) => el('option', { value: o }, o)))),
      el('td', {}, el('input', { class: 'm-value', value, 'aria-label': 'value' })),
      el('td', {}, button('rm', '×', () => { row.remove(); silencePreview(); }, 'Remove')));
    row.querySelector('.m-on').checked = on;
    row.querySelector('.m-op').value = op;
    $('silence-matchers').tBodies[0].append(row);
  }
  function formMatchers() {
    return [...$('silence-matchers').tBodies[0].rows].filter((r) => r.querySelector('.m-on').checked)
      .map((r) => ({ name: r.querySelector('.m-name').value.trim(), op: r.querySelector('.m-op').value,
        value: r.querySelector('.m-value').value }));
  }
  /// How many known instances the checked matchers select (regexes are anchored, as the engine's;
  /// JavaScript's regex dialect is close to Rust's for the usual patterns).
  function silencePreview() {
    const ms = formMatchers();
    let n = 0;
    try {
      const tests = ms.map((m) => {
        const re = m.op.includes('~') ? new RegExp('^(?:' + m.value + ')$') : null;
        return (labels) => {
          const v = labels[m.name] ?? '';
          const hit = re ? re.test(v) : v === m.value;
          return m.op.startsWith('!') ? !hit : hit;
        };
      });
      n = ms.length ? alertsData.alerts.filter((a) => tests.every((t) => t(a.labels))).length : 0;
    } catch (e) {
      $('silence-preview').textContent = 'Bad regex: ' + e.message;
      return;
    }
    $('silence-preview').textContent = ms.length
      ? 'Matches ' + n + ' of the ' + alertsData.alerts.length + ' known instances.'
      : 'Check at least one matcher.';
  }
  function openSilence(a) {
    silenceFor = a || null;
    $('silence-matchers').tBodies[0].replaceChildren();
    if (a) for (const [k, v] of Object.entries(a.labels)) addMatcher(k, '=', v, k !== 'severity');
    else addMatcher('alertname', '=', '', true);
    $('silence-duration').value = '2h';
    $('silence-author').value = localStorage.getItem(AUTHOR_KEY) || '';
    $('silence-comment').value = '';
    $('silence-error').textContent = '';
    silencePreview();
    $('silence-dialog').showModal();
  }
  $('silence-new').addEventListener('click', () => openSilence(null));
  $('silence-add-matcher').addEventListener('click', () => { addMatcher('', '=', '', true); silencePreview(); });
  $('silence-matchers').addEventListener('input', silencePreview);
  $('silence-matchers').addEventListener('change', silencePreview);
  $('silence-form').addEventListener('submit', async (ev) => {
    if (!ev.submitter || ev.submitter.value !== 'create') return;
    ev.preventDefault();
    const matchers = formMatchers();
    if (!matchers.length) { $('silence-error').textContent = 'Check at least one matcher.'; return; }
    const author = $('silence-author').value.trim();
    const body = { matchers, duration: $('silence-duration').value.trim(), created_by: author,
      comment: $('silence-comment').value.trim() };
    try {
      const s = await getJSON('alerts/api/silences', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      localStorage.setItem(AUTHOR_KEY, author);
      $('silence-dialog').close();
      $('alerts-status').textContent = 'Silence ' + s.id + ' created' +
        (silenceFor ? ' for ' + silenceFor.rule : '') + ', until ' + fmtTime(s.ends_at) + '.';
      loadAlerts();
    } catch (e) { $('silence-error').textContent = e.message; }
  });

  // The ack form: the instance itself, or one of its notification groups.
  function openAck(a) {
    $('ack-target').replaceChildren(
      el('option', { value: 'fp:' + a.fingerprint }, 'this instance: ' + a.rule + ' {' + labelText(a.labels) + '}'),
      ...a.groups.map((g) => el('option', { value: 'group:' + g }, 'its group ' + g)));
    $('ack-by').value = localStorage.getItem(AUTHOR_KEY) || '';
    $('ack-comment').value = '';
    $('ack-expires').value = '';
    $('ack-error').textContent = '';
    $('ack-dialog').showModal();
  }
  $('ack-form').addEventListener('submit', async (ev) => {
    if (!ev.submitter || ev.submitter.value !== 'ack') return;
    ev.preventDefault();
    const target = $('ack-target').value;
    const by = $('ack-by').value.trim();
    const body = target.startsWith('fp:') ? { fingerprint: target.slice(3) } : { group_key: target.slice(6) };
    body.by = by;
    body.comment = $('ack-comment').value.trim();
    const expires = $('ack-expires').value.trim();
    if (expires) body.expires_in = expires;
    try {
      const ack = await getJSON('alerts/api/ack', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      localStorage.setItem(AUTHOR_KEY, by);
      $('ack-dialog').close();
      $('alerts-status').textContent = 'Acknowledged until ' + fmtTime(ack.expires_at) + '.';
      loadAlerts();
    } catch (e) { $('ack-error').textContent = e.message; }
  });

  // Reloaded every 30 s while shown, unless a form is open.
  setInterval(() => {
    if (!$('view-alerts').hidden && !$('silence-dialog').open && !$('ack-dialog').open) loadAlerts();
  }, 30000);
  async function probeAlerts() {
    try {
      const r = await fetch('alerts/api/rules', { method: 'GET' });
      $('nav-alerts').hidden = !r.ok;
    } catch (_) { $('nav-alerts').hidden = true; }
    document.body.dataset.alertsProbe = 'done';
  }

  // ---- start
  window.addEventListener('hashchange', route);
  loadChildren('*', $('tree'));
  renderTargets();
  probeAlerts();
  route();
})();
