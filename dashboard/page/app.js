// The aha dashboard page: the runs list, a run's charts, its samples and stages, drawn from the
// JSON API (dashboard/api.h) and kept live by polling. Views live in the URL's hash, so every
// view is a link: #/, #/run/ID?compare=ID2,ID3, #/samples/ID?step=N&q=TEXT&filter=correct.
//
// Text from the run (prompts, completions, names) is only ever set with textContent, never
// parsed as HTML. For tests, each chart's canvas says what it drew in data-* attributes
// (data-points, data-sum, data-line-pixels), and body[data-errors] collects script errors.
'use strict';

const POLL_MS = 3000;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

// The chart groups of a run page; a metric in none of them lands in a group named by its prefix.
const GROUPS = [
  {title: 'Rewards', match: n => n.startsWith('reward/') && !n.startsWith('reward/kl') ||
      /^(train|eval)\/accuracy$/.test(n) || /format|language/.test(n)},
  {title: 'R1-Zero signature', match: n => n.startsWith('response/') || n === 'samples/reflection_rate'},
  {title: 'Optimisation', match: n => /^train\/(loss|policy_loss|kl|kl_loss|ppo_kl|entropy|clip_frac_low|clip_frac_high|dual_clip_frac|ratio_min|ratio_mean|ratio_max|grad_norm|lr|skipped_steps)$/.test(n) ||
      n.startsWith('reward/kl')},
  {title: 'Throughput', match: n => n.startsWith('perf/')},
];
const REFLECTION = 'samples/reflection_rate';
const readback = document.createElement('canvas');  // computed from the stored samples, not a stored metric

// ---- errors are shown and recorded (the browser test reads body[data-errors])
const errors = [];
function recordError(message) {
  errors.push(String(message));
  document.body.dataset.errors = errors.join('\n');
}
window.addEventListener('error', e => recordError(e.message));
window.addEventListener('unhandledrejection', e => recordError(e.reason && e.reason.message || e.reason));

// ---- small helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  if (a >= Math.pow(10, digits)) return v.toFixed(0);  // toPrecision would switch to exponents
  const text = v.toPrecision(digits);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;  // 0.500 -> 0.5, never 100 -> 1
}
function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '–';
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
function when(t) { return t ? new Date(t * 1000).toLocaleString() : '–'; }
function runPath(id) { return id.split('/').map(encodeURIComponent).join('/'); }
async function api(path) {
  const response = await fetch('api/' + path, {credentials: 'same-origin'});
  const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}
function statusBadge(status) { return el('span', {class: 'status ' + status}, status); }
function setCrumbs(...items) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren(...items.map(([text, href]) => href ? el('a', {href}, text) : el('span', {}, text)));
}
function setLive(text) { document.getElementById('live').textContent = text; }
function showError(view, error) {
  view.replaceChildren(el('p', {class: 'error'}, error.message || String(error)));
  document.body.dataset.ready = '1';
}

// ---- routing: the hash is "#/KIND/ID?query"
let current = null;  // the view's stop() function
function parseHash() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const m = path.match(/^\/(run|samples)\/(.+)$/);
  if (!m) return {kind: 'runs', params};
  return {kind: m[1], id: m[2].split('/').map(decodeURIComponent).join('/'), params};
}
function route() {
  if (current) current();
  current = null;
  document.body.dataset.ready = '0';
  const r = parseHash();
  const view = document.getElementById('view');
  if (r.kind === 'run') current = runView(view, r.id, r.params);
  else if (r.kind === 'samples') current = samplesView(view, r.id, r.params);
  else current = runsView(view);
}
window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', route);

// A poller that runs fn now and every POLL_MS until stopped; errors show in the header.
function poll(fn) {
  let stopped = false, timer = null;
  const tick = async () => {
    try {
      await fn();
      setLive('live · updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      setLive('update failed: ' + e.message);
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- runs page
function runsView(view) {
  setCrumbs(['runs']);
  const selected = new Set();
  const compare = el('button', {onclick: () => {
    const ids = [...selected];
    if (ids.length) location.hash = '#/run/' + runPath(ids[0]) + (ids.length > 1 ? '?compare=' + ids.slice(1).map(encodeURIComponent).join(',') : '');
  }}, 'Compare selected');
  const body = el('tbody');
  view.replaceChildren(el('h1', {}, 'Runs'),
    el('table', {id: 'runs'}, el('thead', {}, el('tr', {}, ['', 'run', 'recipe', 'stage', 'status', 'step', 'eval accuracy', 'started', 'duration'].map(h => el('th', {}, h)))), body),
    el('p', {}, compare));
  return poll(async () => {
    const data = await api('runs');
    body.replaceChildren(...data.runs.map(run => {
      const box = el('input', {type: 'checkbox', onchange: e => e.target.checked ? selected.add(run.id) : selected.delete(run.id)});
      box.checked = selected.has(run.id);
      const progress = run.total_steps ? Math.min(1, (run.step || 0) / run.total_steps) : 0;
      return el('tr', {'data-run': run.id},
        el('td', {}, box),
        el('td', {}, el('a', {href: '#/run/' + runPath(run.id)}, run.id)),
        el('td', {}, run.recipe || '–'),
        el('td', {}, run.stage || '–'),
        el('td', {}, statusBadge(run.status), run.error ? el('span', {class: 'muted'}, ' ' + run.error) : null),
        el('td', {}, `${run.step ?? '–'} / ${run.total_steps ?? '?'}`, el('span', {class: 'bar'}, el('span', {style: `width:${(progress * 100).toFixed(1)}%`}))),
        el('td', {}, fmt(run.eval_accuracy, 3)),
        el('td', {}, when(run.started_at)),
        el('td', {}, duration(run.duration_s)));
    }));
    if (!data.runs.length) body.replaceChildren(el('tr', {}, el('td', {colspan: 9, class: 'muted'}, 'No run.db found under the --runs directories yet.')));
    document.body.dataset.ready = '1';
  });
}

// ---- run page
function groupOf(name) {
  for (const g of GROUPS) if (g.match(name)) return g.title;
  return name.split('/')[0];
}
function smooth(values, weight) {  // exponential moving average, debiased like TensorBoard's
  if (!weight) return values;
  let last = 0, n = 0;
  return values.map(v => {
    if (v === null || !isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}

function runView(view, id, params) {
  const compareIds = (params.get('compare') || '').split(',').filter(Boolean);
  const runIds = [id, ...compareIds.filter(c => c !== id)];
  setCrumbs(['runs', '#/'], [id], ['samples', '#/samples/' + runPath(id)]);
  const settings = {smoothing: Number(params.get('smooth') || 0), log: params.get('log') === '1', x: params.get('x') || 'step'};
  // per run: {start, series: {name: {step: [], value: [], time: []}}, reflection: {...}}
  const data = Object.fromEntries(runIds.map(r => [r, {series: {}, start: null, lastStep: -Infinity, reflectionStep: -Infinity}]));
  const charts = {};  // name -> {chart, canvas, valueLabel}
  const header = el('div');
  const stagesBox = el('div');
  const groupsBox = el('div');
  const controls = el('div', {class: 'controls'},
    el('label', {}, 'smoothing', el('input', {type: 'range', min: 0, max: 0.99, step: 0.01, value: settings.smoothing,
      oninput: e => { settings.smoothing = Number(e.target.value); redrawAll(); }})),
    el('label', {}, el('input', Object.assign({type: 'checkbox', onchange: e => { settings.log = e.target.checked; rebuildAll(); }},
      settings.log ? {checked: ''} : {})), 'log scale'),
    el('label', {}, 'x axis', el('select', {onchange: e => { settings.x = e.target.value; rebuildAll(); }},
      el('option', settings.x === 'step' ? {value: 'step', selected: ''} : {value: 'step'}, 'step'),
      el('option', settings.x === 'time' ? {value: 'time', selected: ''} : {value: 'time'}, 'wall time'))),
    el('label', {}, 'compare with', el('input', {type: 'text', size: 32, placeholder: 'run ids, comma-separated', value: compareIds.join(','),
      onchange: e => { location.hash = '#/run/' + runPath(id) + (e.target.value ? '?compare=' + encodeURIComponent(e.target.value) : ''); }})),
    el('span', {class: 'muted'}, runIds.length > 1 ? runIds.map((r, i) => `${r}: ${['blue', 'red', 'green', 'purple', 'orange'][i] || 'other'}`).join(' · ') : ''));
  view.replaceChildren(header, stagesBox, controls, groupsBox);

  function xOf(run, s, i) {
    return settings.x === 'time' ? (s.time[i] - (data[run].start ?? s.time[0])) / 60 : s.step[i];
  }
  function datasets(name) {
    return runIds.filter(r => data[r].series[name]).map((r, k) => {
      const s = data[r].series[name];
      const y = smooth(s.value, settings.smoothing);
      return {label: r, data: s.step.map((_, i) => ({x: xOf(r, s, i), y: y[i]})), borderColor: COLORS[k % COLORS.length],
              backgroundColor: COLORS[k % COLORS.length], borderWidth: 1.5, pointRadius: s.step.length < 30 ? 2 : 0, spanGaps: true};
    });
  }
  function makeChart(name, canvas) {
    return new Chart(canvas, {
      type: 'line', data: {datasets: datasets(name)},
      options: {
        animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
        interaction: {mode: 'nearest', axis: 'x', intersect: false},
        plugins: {legend: {display: runIds.length > 1, labels: {boxWidth: 10}},
                  tooltip: {callbacks: {label: c => `${c.dataset.label}: ${fmt(c.parsed.y)}`}}},
        scales: {x: {type: 'linear', title: {display: true, text: settings.x === 'time' ? 'minutes since start' : 'step'}},
                 y: {type: settings.log ? 'logarithmic' : 'linear', ticks: {callback: v => fmt(v, 3)}}},
      }});
  }
  // What the primary run's line drew, for tests: its points, their sum, and how many canvas
  // pixels carry the line's colour (0 means nothing was drawn).
  function report(name) {
    const c = charts[name], s = data[id].series[name];
    if (!s) return;
    c.canvas.dataset.points = s.step.length;
    c.canvas.dataset.sum = s.value.reduce((a, v) => a + (v === null ? 0 : v), 0);
    c.canvas.dataset.lastStep = s.step.length ? s.step[s.step.length - 1] : '';
    // read back through a copy made for reading (the chart's own canvas is made for drawing)
    readback.width = c.canvas.width;
    readback.height = c.canvas.height;
    const ctx = readback.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(c.canvas, 0, 0);
    const pixels = ctx.getImageData(0, 0, readback.width, readback.height).data;
    let line = 0;
    for (let i = 0; i < pixels.length; i += 4)  // COLORS[0] = #1f77b4, antialiased edges included
      if (Math.abs(pixels[i] - 31) < 24 && Math.abs(pixels[i + 1] - 119) < 24 && Math.abs(pixels[i + 2] - 180) < 24 && pixels[i + 3] > 128) line++;
    c.canvas.dataset.linePixels = line;
    const last = s.value.length ? s.value[s.value.length - 1] : null;
    c.valueLabel.textContent = 'last ' + fmt(last);
  }
  // A constant series (a fixed LR) gets a range around its value: Chart.js would centre it in
  // [v - 1, v + 1], flattening 1e-4 onto the zero line.
  function fitFlat(chart) {
    const ys = chart.data.datasets.flatMap(d => d.data.map(p => p.y)).filter(v => v !== null && isFinite(v));
    const y = chart.options.scales.y;
    delete y.min; delete y.max;
    if (!ys.length || settings.log) return;
    const lo = Math.min(...ys), hi = Math.max(...ys);
    if (hi - lo <= 1e-12 * Math.max(1, Math.abs(hi))) {
      const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      y.min = lo - pad; y.max = hi + pad;
    }
  }
  // Every chart spans the same steps (the first to the latest of any metric), so that charts
  // line up and an evaluation's few points sit where they happened.
  function fitSteps(chart) {
    const x = chart.options.scales.x;
    delete x.min; delete x.max;
    if (settings.x !== 'step') return;
    let lo = Infinity, hi = -Infinity;
    for (const r of runIds) for (const s of Object.values(data[r].series))
      if (s.step.length) { lo = Math.min(lo, s.step[0]); hi = Math.max(hi, s.step[s.step.length - 1]); }
    if (lo < hi) { x.min = lo; x.max = hi; }
  }
  function redraw(name) {
    const c = charts[name];
    c.chart.data.datasets = datasets(name);
    fitFlat(c.chart);
    fitSteps(c.chart);
    c.chart.update('none');
    report(name);
  }
  function redrawAll() { for (const name of Object.keys(charts)) redraw(name); }
  function rebuildAll() {
    for (const name of Object.keys(charts)) {
      charts[name].chart.destroy();
      charts[name].chart = makeChart(name, charts[name].canvas);
      report(name);
    }
  }
  function ensureChart(name) {
    if (charts[name]) return;
    const group = groupOf(name);
    let box = groupsBox.querySelector(`section[data-group="${CSS.escape(group)}"]`);
    if (!box) {
      box = el('section', {'data-group': group}, el('h2', {}, group), el('div', {class: 'grid'}));
      // fixed groups first, in their order; prefix groups after, alphabetically
      const order = t => { const i = GROUPS.findIndex(g => g.title === t); return i < 0 ? GROUPS.length : i; };
      const after = [...groupsBox.children].find(s => order(s.dataset.group) > order(group) ||
          (order(s.dataset.group) === order(group) && s.dataset.group > group));
      groupsBox.insertBefore(box, after || null);
    }
    const canvas = el('canvas', {'data-metric': name});
    const valueLabel = el('span', {class: 'value'});
    const grid = box.querySelector('.grid');
    const card = el('div', {class: 'card'}, el('h3', {}, name, valueLabel), el('div', {class: 'chart-box'}, canvas));
    const after = [...grid.children].find(c => c.querySelector('canvas').dataset.metric > name);
    grid.insertBefore(card, after || null);
    charts[name] = {canvas, valueLabel, chart: makeChart(name, canvas)};
  }
  function append(run, name, incoming) {
    const s = data[run].series[name] || (data[run].series[name] = {step: [], value: [], time: []});
    for (let i = 0; i < incoming.step.length; i++) {
      // a resumed run may rewrite steps: keep the series ordered and without duplicates
      while (s.step.length && s.step[s.step.length - 1] >= incoming.step[i]) { s.step.pop(); s.value.pop(); s.time.pop(); }
      s.step.push(incoming.step[i]); s.value.push(incoming.value[i]); s.time.push(incoming.time[i]);
    }
  }
  async function refreshRun(run) {
    const detail = await api('runs/' + runPath(run));
    const d = data[run];
    if (d.start === null) d.start = detail.started_at;
    if (run === id) renderHeader(detail);
    // From the last step seen, again: a held-out evaluation adds metrics to a step after its own write.
    const since = d.lastStep === -Infinity ? '' : `?since_step=${d.lastStep}`;
    const m = await api(`runs/${runPath(run)}/metrics` + since);
    for (const [name, s] of Object.entries(m.series)) {
      append(run, name, s);
      if (s.step.length) d.lastStep = Math.max(d.lastStep, s.step[s.step.length - 1]);
    }
    if (detail.sample_steps && detail.sample_steps.length) {
      const rsince = d.reflectionStep === -Infinity ? '' : `?since_step=${d.reflectionStep}`;
      const r = await api(`runs/${runPath(run)}/reflection` + rsince);
      append(run, REFLECTION, {step: r.step, value: r.rate, time: r.step.map(() => null)});
      const s = d.series[REFLECTION];
      for (let i = 0; i < s.time.length; i++) if (s.time[i] === null) s.time[i] = timeOfStep(d, s.step[i]);
      if (r.step.length) d.reflectionStep = r.step[r.step.length - 1];
    }
  }
  function timeOfStep(d, step) {  // the wall time of a step, from any metric that has it
    for (const s of Object.values(d.series)) { const i = s.step.indexOf(step); if (i >= 0 && s.time[i] !== null) return s.time[i]; }
    return d.start;
  }
  function renderHeader(detail) {
    header.replaceChildren(el('h1', {}, detail.id, ' ', statusBadge(detail.status)),
      el('p', {class: 'muted'}, `recipe ${detail.recipe || '–'} · step ${detail.step ?? '–'} of ${detail.total_steps ?? '?'} · started ${when(detail.started_at)} · ${duration(detail.duration_s)}`,
        ' · ', el('a', {href: '#/samples/' + runPath(id)}, 'browse samples')));
    const rows = detail.stages.map(s => el('tr', {},
      el('td', {}, s.name), el('td', {}, s.kind), el('td', {}, statusBadge(s.status)), el('td', {}, s.last_step ?? '–'),
      ...['reward/total', 'train/accuracy', 'eval/accuracy', 'response/length_mean'].map(k => el('td', {}, fmt(s.headline[k], 3))),
      el('td', {}, duration((isFinite(s.finished_at) && s.finished_at ? s.finished_at : s.updated_at) - s.started_at))));
    stagesBox.replaceChildren(el('h2', {}, 'Stages'), el('table', {id: 'stages'},
      el('thead', {}, el('tr', {}, ['stage', 'kind', 'status', 'last step', 'reward', 'train acc', 'eval acc', 'mean length', 'duration'].map(h => el('th', {}, h)))),
      el('tbody', {}, rows)));
  }
  return poll(async () => {
    for (const run of runIds) {
      try { await refreshRun(run); } catch (e) { if (run === id) throw e; recordError(`${run}: ${e.message}`); }
    }
    const names = new Set(runIds.flatMap(r => Object.keys(data[r].series)));
    for (const name of [...names].sort()) { ensureChart(name); redraw(name); }
    document.body.dataset.ready = '1';
  });
}

// ---- sample browser
function splitThink(text) {  // [thinking, rest]: the part up to </think> is the reasoning
  const end = text.indexOf('</think>');
  if (end < 0) return [null, text];
  const start = text.indexOf('<think>');
  return [text.slice(start >= 0 && start < end ? start + 7 : 0, end), text.slice(end + 8)];
}
function highlighted(text, query) {  // text with the query's matches in <mark>, built as nodes
  const node = el('pre', {class: 'text'});
  if (!query) { node.textContent = text; return node; }
  const lower = text.toLowerCase(), q = query.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, at)) {
    node.append(text.slice(at, i), el('mark', {}, text.slice(i, i + q.length)));
    at = i + q.length;
  }
  node.append(text.slice(at));
  return node;
}

function samplesView(view, id, params) {
  setCrumbs(['runs', '#/'], [id, '#/run/' + runPath(id)], ['samples']);
  const state = {step: params.get('step'), q: params.get('q') || '', filter: params.get('filter') || 'all'};
  const link = () => '#/samples/' + runPath(id) + '?' + new URLSearchParams(Object.entries(state).filter(([k, v]) => v !== null && v !== '' && v !== 'all')).toString();
  let loaded = null, accuracy = 'accuracy';
  const list = el('div', {id: 'samples'});
  const stepSelect = el('select', {onchange: e => { state.step = e.target.value; history.replaceState(null, '', link()); load(); }});
  const search = el('input', {type: 'search', placeholder: 'search text', value: state.q,
    oninput: e => { state.q = e.target.value; history.replaceState(null, '', link()); render(); }});
  const chips = el('span', {class: 'chips'}, ['all', 'correct', 'incorrect', 'truncated'].map(f =>
    el('button', {'data-filter': f, class: state.filter === f ? 'on' : '', onclick: () => {
      state.filter = f; history.replaceState(null, '', link());
      chips.querySelectorAll('button').forEach(b => b.classList.toggle('on', b.dataset.filter === f));
      render();
    }}, f)));
  const summary = el('span', {class: 'muted'});
  view.replaceChildren(el('h1', {}, 'Samples of ', id),
    el('div', {class: 'controls'}, el('label', {}, 'step', stepSelect), el('label', {}, 'search', search), chips, summary), list);

  function correct(s) { const v = s.components[accuracy]; return v !== undefined && v !== null ? v > 0.5 : s.reward > 0.5; }
  function keep(s) {
    if (state.filter === 'correct' && !correct(s)) return false;
    if (state.filter === 'incorrect' && correct(s)) return false;
    if (state.filter === 'truncated' && s.finish_reason !== 'length') return false;
    if (state.q) { const q = state.q.toLowerCase(); return s.completion.toLowerCase().includes(q) || s.prompt.toLowerCase().includes(q); }
    return true;
  }
  function render() {
    if (!loaded) return;
    const groups = new Map();
    for (const s of loaded.samples) { if (!groups.has(s.group)) groups.set(s.group, []); groups.get(s.group).push(s); }
    let shown = 0;
    const sections = [];
    for (const [group, samples] of groups) {
      const kept = samples.filter(keep);
      if (!kept.length) continue;
      shown += kept.length;
      const rewards = samples.map(s => s.reward);
      sections.push(el('section', {class: 'group', 'data-group': group},
        el('h2', {}, `group ${group} · ${samples.length} completions · mean reward ${fmt(rewards.reduce((a, b) => a + b, 0) / rewards.length, 3)}`),
        highlighted(samples[0].prompt, state.q),
        kept.map(s => {
          const [think, answer] = splitThink(s.completion);
          return el('div', {class: 'completion ' + (correct(s) ? 'correct' : 'incorrect'), 'data-index': s.index},
            el('div', {class: 'meta'},
              el('span', {}, '#', s.index), el('span', {}, 'reward ', el('b', {}, fmt(s.reward, 3))),
              Object.entries(s.components).map(([k, v]) => el('span', {}, k + ' ', el('b', {}, fmt(v, 3)))),
              el('span', {}, 'advantage ', el('b', {}, fmt(s.advantage, 3))), el('span', {}, 'length ', el('b', {}, s.length)),
              el('span', {}, 'finish ', el('b', {}, s.finish_reason)), el('span', {}, 'reflection words ', el('b', {}, s.reflection_words))),
            think !== null ? el('details', {class: 'think'}, el('summary', {}, `<think> ${think.length} characters`), highlighted(think, state.q)) : null,
            highlighted(answer, state.q));
        })));
    }
    list.replaceChildren(...sections);
    if (!sections.length) list.replaceChildren(el('p', {class: 'muted'}, 'No completion matches.'));
    summary.textContent = `${shown} of ${loaded.samples.length} completions`;
    document.body.dataset.ready = '1';
  }
  async function load() {
    try {
      const detail = await api('runs/' + runPath(id));
      accuracy = detail.accuracy_reward || 'accuracy';
      loaded = await api(`runs/${runPath(id)}/samples` + (state.step ? `?step=${encodeURIComponent(state.step)}` : ''));
      state.step = String(loaded.step);
      stepSelect.replaceChildren(...loaded.steps.map(s => el('option', s === loaded.step ? {value: s, selected: ''} : {value: s}, 'step ' + s)));
      render();
      setLive('samples of step ' + loaded.step);
    } catch (e) {
      showError(list, e);
    }
  }
  load();
  return () => {};
}
