// The runs page: the silo's /ui/api (RunsService's own methods, messages in protobuf JSON) rendered with uPlot.
// Everything from the server is shown with textContent, never as HTML.
'use strict';

const KEY = 'onlinealign.apiKey';
const TERMINAL = new Set(['completed', 'cancelled', 'failed']);
// The charts and the round metrics each shows (those a run has; judge health adds any other judge/ and health/ metric).
const CHARTS = [
  { title: 'Accuracy', metrics: ['eval/accuracy', 'rewards/accuracies'] },
  { title: 'Rewards and margins', metrics: ['rewards/margins', 'rewards/chosen', 'rewards/rejected'] },
  { title: 'KL to the initial policy', metrics: ['kl/initial'] },
  { title: 'Judge health', metrics: ['judge/unscored_rate', 'judge/tau_vs_verifier', 'judge/pairwise_accuracy', 'health/implicit_agreement', 'health/majority_agreement',
    'health/judge_drift_tau', 'health/score_entropy', 'consistency/C'], prefixes: ['judge/', 'health/'],
    exclude: ['judge/score_mean', 'judge/pairwise_count', 'health/kl_initial', 'health/kl_initial_per_token',
      'health/length_drift'] },
];
const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];
const $ = (id) => document.getElementById(id);

let view = null; // { id, run, rounds: Map(round -> RoundMetrics), steps: [], abort }

function headers(post) {
  const h = {};
  const key = sessionStorage.getItem(KEY);
  if (key) h.authorization = 'Bearer ' + key;
  if (post) { h['x-onlinealign-page'] = '1'; h['content-type'] = 'application/json'; }
  return h;
}

class ApiError extends Error {
  constructor(status, body) { super(body.message || ('HTTP ' + status)); this.status = status; this.code = body.code; }
}

async function api(path, post, body) {
  const res = await fetch('api' + path, { method: post ? 'POST' : 'GET', headers: headers(post), body: body ? JSON.stringify(body) : undefined });
  if (res.status === 401) { askForKey(sessionStorage.getItem(KEY) ? 'the silo refused this key' : ''); throw new ApiError(401, { message: 'API key needed' }); }
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

function askForKey(why) {
  $('key-form').hidden = false;
  $('key-error').textContent = why;
  $('key-input').focus();
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $('key-input').value);
  $('key-input').value = '';
  $('key-form').hidden = true;
  route();
});
$('forget-key').addEventListener('click', () => { sessionStorage.removeItem(KEY); route(); });

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function num(v) { return typeof v === 'number' ? v : Number(v); } // protobuf JSON writes NaN and infinities as strings

function fmt(v) {
  const n = num(v);
  if (!Number.isFinite(n)) return String(v);
  return Number.isInteger(n) ? String(n) : n.toPrecision(4).replace(/\.?0+$/, '');
}

// ---- the runs list ----

let runsToken = '';
let runsSignature = '';
async function showRuns(more) {
  $('run-view').hidden = true;
  $('runs-view').hidden = false;
  const body = $('runs').tBodies[0];
  const page = await api('/runs' + (more ? '?pageToken=' + encodeURIComponent(runsToken) : ''));
  // The list refreshes every few seconds: rows are rebuilt only when something changed (a link under the pointer stays put).
  const signature = JSON.stringify(page);
  if (!more && signature === runsSignature) return;
  if (!more) { body.replaceChildren(); runsSignature = signature; }
  for (const run of page.runs) {
    const tr = el('tr');
    tr.dataset.run = run.id;
    const link = el('a', run.id);
    link.href = '#/runs/' + encodeURIComponent(run.id);
    tr.append(el('td'), el('td', run.spec && run.spec.name), el('td', run.status, 'state-' + run.status), el('td', run.round, 'number'),
      el('td', `${run.committedRounds} / ${run.spec ? run.spec.rounds : '?'}`, 'number'), el('td', run.phase),
      el('td', run.forkedFrom && run.forkedFrom.runId ? `${run.forkedFrom.runId} round ${run.forkedFrom.round}` : ''));
    tr.cells[0].append(link);
    body.append(tr);
  }
  runsToken = page.nextPageToken;
  $('more-runs').hidden = !runsToken;
  $('runs-note').textContent = `${page.totalRuns} run(s)`;
  connected(true);
}
$('more-runs').addEventListener('click', () => showRuns(true).catch(shown));

// ---- one run ----

async function showRun(id) {
  $('runs-view').hidden = true;
  $('run-view').hidden = false;
  view = { id, run: null, rounds: new Map(), steps: [], abort: new AbortController(), charts: [] };
  $('run-title').textContent = id;
  $('action-result').textContent = '';
  const [run, rounds] = await Promise.all([api('/runs/' + encodeURIComponent(id)), api('/runs/' + encodeURIComponent(id) + '/rounds')]);
  if (!view || view.id !== id) return;
  showState(run);
  if (rounds.initial) view.rounds.set(0, rounds.initial);
  for (const r of rounds.rounds) view.rounds.set(r.round, r);
  await loadSteps();
  render();
  watch(view);
}

async function loadSteps() {
  const steps = [];
  let token = '';
  // ListSteps pages (1000 steps each); a page shows at most 20 of them.
  for (let page = 0; page < 20; page++) {
    const r = await api(`/runs/${encodeURIComponent(view.id)}/steps${token ? '?pageToken=' + encodeURIComponent(token) : ''}`);
    steps.push(...r.steps);
    token = r.nextPageToken;
    if (!token) break;
  }
  view.steps = steps;
}

function showState(run) {
  // An answer and an event may cross: of two states, the one with the larger state_version is the later.
  if (view.run && Number(run.stateVersion) < Number(view.run.stateVersion)) return;
  view.run = run;
  const s = $('run-status');
  s.textContent = run.status;
  s.className = 'state-' + run.status;
  const parts = [`round ${run.round}`, `${run.committedRounds} of ${run.spec ? run.spec.rounds : '?'} rounds committed`];
  if (run.phase) parts.push('phase ' + run.phase);
  if (run.forkedFrom && run.forkedFrom.runId) parts.push(`forked from ${run.forkedFrom.runId} round ${run.forkedFrom.round}`);
  if (run.bestRound !== undefined && run.bestRound !== null) parts.push(`best round ${run.bestRound}`);
  $('run-summary').textContent = '(' + parts.join(', ') + ')';
  $('run-error').textContent = [run.error, run.stopReason].filter(Boolean).join('\n');
  $('pause').disabled = !(run.status === 'running' || run.status === 'pending' || run.status === 'waiting_for_gpu');
  $('resume').disabled = run.status !== 'paused';
  $('cancel').disabled = TERMINAL.has(run.status);
}

// WatchRun's events as server-sent events, read with fetch (EventSource cannot send the key as a header); reconnects
// from the next uncommitted round until the run ends or the page shows another.
async function watch(v) {
  while (!v.abort.signal.aborted) {
    try {
      const from = Math.max(0, ...v.rounds.keys()) + 1;
      const res = await fetch(`api/runs/${encodeURIComponent(v.id)}/events?fromRound=${from}`, { headers: headers(false), signal: v.abort.signal });
      if (res.status === 401) { askForKey('the silo refused this key'); return; }
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
      connected(true, 'live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of block.split('\n')) if (line.startsWith('data: ')) onEvent(v, JSON.parse(line.slice(6)));
        }
      }
    } catch (e) {
      if (v.abort.signal.aborted) return;
      $('action-result').textContent = 'live updates: ' + e.message;
    }
    if (v.run && TERMINAL.has(v.run.status)) {
      connected(true, 'ended');
      $('run-progress').textContent = '';
      return;
    }
    connected(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(v, e) {
  if (v !== view) return;
  if (e.run) showState(e.run);
  else if (e.progress) {
    const p = e.progress;
    $('run-progress').textContent = `round ${p.round}: ${p.phase} ${p.done}/${p.total}`;
  } else if (e.roundCommitted) {
    const r = e.roundCommitted;
    v.rounds.set(r.round, r);
    v.fresh = r.round;
    loadSteps().catch(() => {}).then(() => { if (v === view) render(); });
    render();
  }
}

function connected(ok, what) {
  const c = $('connection');
  c.dataset.live = String(ok && what === 'live');
  c.textContent = ok ? (what === 'live' ? 'live' : what === 'ended' ? 'the run has ended' : 'connected') : 'reconnecting…';
  $('forget-key').hidden = !sessionStorage.getItem(KEY);
}

function render() {
  const rounds = [...view.rounds.values()].sort((a, b) => a.round - b.round);
  const keys = [...new Set(rounds.flatMap((r) => Object.keys(r.metrics || {})))].sort();
  // The rounds table: one row a round (round 0, the initial policy, first), one column a metric.
  const head = el('tr');
  for (const k of ['round', ...keys, 'warnings']) head.append(el('th', k));
  $('rounds').tHead.replaceChildren(head);
  const body = $('rounds').tBodies[0];
  body.replaceChildren();
  for (const r of rounds) {
    const tr = el('tr', null, r.round === view.fresh ? 'new' : '');
    tr.dataset.round = r.round;
    tr.append(el('td', r.round, 'number'));
    for (const k of keys) tr.append(el('td', r.metrics && k in r.metrics ? fmt(r.metrics[k]) : '', 'number'));
    tr.append(el('td', (r.warnings || []).join('; ')));
    body.append(tr);
  }
  drawCharts(rounds, keys);
}

function drawCharts(rounds, keys) {
  for (const c of view.charts) c.destroy();
  view.charts = [];
  const box = $('charts');
  box.replaceChildren();
  const x = rounds.map((r) => r.round);
  for (const def of CHARTS) {
    let metrics = def.metrics.filter((m) => keys.includes(m));
    if (def.prefixes) {
      metrics = metrics.concat(keys.filter((k) => !metrics.includes(k) && !def.exclude.includes(k) && def.prefixes.some((p) => k.startsWith(p))));
    }
    const series = metrics.map((m) => rounds.map((r) => (r.metrics && m in r.metrics ? num(r.metrics[m]) : null)));
    chart(box, def.title, 'round', x, metrics, series);
  }
  // Per-step loss: the optimiser steps of every committed round, one after another.
  const steps = view.steps.filter((s) => s.metrics && 'loss' in s.metrics);
  chart(box, 'Training loss per step', 'step (all rounds)', steps.map((_, i) => i), ['loss'], [steps.map((s) => num(s.metrics.loss))],
    steps.map((s) => `round ${s.round} step ${s.step}`));
}

function chart(box, title, xLabel, x, names, series, xNames) {
  const holder = el('div', null, 'chart');
  holder.dataset.chart = title;
  holder.append(el('h4', title));
  box.append(holder);
  if (names.length === 0 || x.length === 0) { holder.append(el('p', 'no data yet', 'note')); return; }
  const opts = {
    width: 440, height: 220,
    scales: { x: { time: false } },
    // Whole rounds and steps on the x axis; room for negative values' labels on the y axis.
    axes: [{ label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }, { size: 60 }],
    series: [{ label: xLabel, value: xNames ? (u, v) => (v === null || v === undefined ? '' : xNames[v] || v) : undefined },
      ...names.map((n, i) => ({ label: n, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: x.length < 60 }, spanGaps: true }))],
  };
  view.charts.push(new uPlot(opts, [x, ...series], holder));
}

// ---- actions ----

async function act(what) {
  $('action-result').textContent = '';
  try {
    const run = await api(`/runs/${encodeURIComponent(view.id)}/${what}`, true);
    showState(run);
    $('action-result').textContent = `${what}: the run is ${run.status}`;
  } catch (e) { shown(e); }
}
$('pause').addEventListener('click', () => act('pause'));
$('resume').addEventListener('click', () => act('resume'));
$('cancel').addEventListener('click', () => { if (confirm(`Cancel run ${view.id}? A cancelled run cannot be resumed.`)) act('cancel'); });
$('fork-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const overrides = $('fork-set').value.split('\n').map((s) => s.trim()).filter(Boolean);
  try {
    const run = await api(`/runs/${encodeURIComponent(view.id)}/fork`, true, { round: Number($('fork-round').value), overrides });
    const result = $('action-result');
    result.replaceChildren(el('span', 'started '));
    const link = el('a', run.id);
    link.href = '#/runs/' + encodeURIComponent(run.id);
    result.append(link);
  } catch (err) { shown(err); }
});

function shown(e) {
  if (e.status === 401) return;
  $('action-result').textContent = `error${e.code ? ' (' + e.code + ')' : ''}: ${e.message}`;
}

// ---- routing: #/ the runs, #/runs/<id> one run ----

let listTimer = null;
function route() {
  if (view) { view.abort.abort(); view = null; }
  runsSignature = '';
  clearInterval(listTimer);
  const m = /^#\/runs\/(.+)$/.exec(location.hash);
  if (m) showRun(decodeURIComponent(m[1])).catch(shown);
  else {
    showRuns(false).catch(shown);
    listTimer = setInterval(() => { if (!$('runs-view').hidden && $('key-form').hidden) showRuns(false).catch(() => {}); }, 5000);
  }
}
window.addEventListener('hashchange', route);
route();
