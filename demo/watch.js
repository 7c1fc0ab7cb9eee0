// watch.js - the demo page's live charts, inlined into the page by app.py
// (FIELDS, the counter names of a sample row after its time, comes first).
// Every second: fetch /history.json (one row a second, the last 5 minutes),
// turn counters into per-interval figures, redraw three inline SVG charts
// and the counters table.  Each chart's svg carries data-samples (rows
// drawn) and each line data-last (its newest value), for the page's test.
'use strict';
const WINDOW_S = 300, W = 480, H = 120, PAD = 28;
const COLORS = ['#1f77b4', '#2ca02c', '#d62728'];

function rowsToSeries(rows) {
  const at = (r, f) => r[1 + FIELDS.indexOf(f)];
  const out = {t: [], hit: [], used: [], mapped: [], gets: [], sets: [], dels: []};
  for (let i = 1; i < rows.length; i++) {
    const p = rows[i - 1], r = rows[i], dt = r[0] - p[0];
    if (dt <= 0) continue;
    const dh = at(r, 'hits') - at(p, 'hits'), dm = at(r, 'miss') - at(p, 'miss');
    out.t.push(r[0]);
    out.hit.push(dh + dm > 0 ? 100 * dh / (dh + dm) : null);
    out.used.push(at(r, 'bytes_used'));
    out.mapped.push(at(r, 'bytes_mapped'));
    out.gets.push(Math.max(dh + dm, 0) / dt);
    out.sets.push(Math.max(at(r, 'sets') - at(p, 'sets'), 0) / dt);
    out.dels.push(Math.max(at(r, 'deletes') - at(p, 'deletes'), 0) / dt);
  }
  return out;
}

function fmt(v, unit) {
  if (v === null || v === undefined) return '-';
  if (unit === 'B') {
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + ' ' + u[i];
  }
  return v.toFixed(1) + (unit ? ' ' + unit : '');
}

function el(name, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// lines: [{name, values}]; x from the rows' times over the last WINDOW_S.
function chart(id, title, t, lines, unit, yMax) {
  let svg = document.getElementById(id);
  if (!svg) {
    svg = el('svg', {id: id, width: W, height: H, viewBox: `0 0 ${W} ${H}`});
    document.getElementById('charts').appendChild(svg);
  }
  svg.replaceChildren();
  const now = t.length ? t[t.length - 1] : 0;
  const all = lines.flatMap(l => l.values.filter(v => v !== null));
  const top = yMax || Math.max(1, ...all) * 1.1;
  const x = ts => PAD + (W - PAD - 4) * (1 - (now - ts) / WINDOW_S);
  const y = v => H - 14 - (H - 30) * v / top;
  svg.setAttribute('data-samples', t.length);
  svg.appendChild(el('line', {x1: PAD, y1: y(0), x2: W - 4, y2: y(0), stroke: '#bbb'}));
  svg.appendChild(el('text', {x: 4, y: 12}, title));
  svg.appendChild(el('text', {x: 4, y: y(top / 1.1) + 4}, fmt(yMax || top / 1.1, unit)));
  svg.appendChild(el('text', {x: PAD, y: H - 2}, '-5 min'));
  svg.appendChild(el('text', {x: W - 28, y: H - 2}, 'now'));
  lines.forEach((l, i) => {
    // a path, so that intervals without data (no lookups) leave a gap
    let d = '', pen = 'M';
    t.forEach((ts, j) => {
      const v = l.values[j];
      if (v === null || x(ts) < PAD) { pen = 'M'; return; }
      d += `${pen}${x(ts).toFixed(1)},${y(v).toFixed(1)} `;
      pen = 'L';
    });
    const last = l.values.length ? l.values[l.values.length - 1] : null;
    svg.appendChild(el('path', {d: d.trim(), fill: 'none', stroke: COLORS[i], 'stroke-width': 1.5,
      class: 'line-' + l.name, 'data-last': last === null ? '' : last}));
    svg.appendChild(el('text', {x: 210 + 90 * i, y: 12, fill: COLORS[i]}, `${l.name} ${fmt(last, unit)}`));
  });
}

function draw(rows) {
  const s = rowsToSeries(rows);
  chart('chart-hit', 'hit ratio %', s.t, [{name: 'hit', values: s.hit}], '%', 100);
  const mapped = s.mapped.length ? s.mapped[s.mapped.length - 1] : null;
  chart('chart-memory', `memory (of ${fmt(mapped, 'B')} mapped)`, s.t, [{name: 'used', values: s.used}], 'B');
  chart('chart-ops', 'ops/s', s.t, [{name: 'gets', values: s.gets}, {name: 'sets', values: s.sets},
    {name: 'deletes', values: s.dels}], '/s');
  const last = rows[rows.length - 1];
  if (last) FIELDS.forEach((f, i) => {
    const td = document.getElementById('ctr-' + f);
    if (td) td.textContent = last[i + 1];
  });
}

async function tick() {
  try {
    const r = await fetch('/history.json', {cache: 'no-store'});
    draw(await r.json());
  } catch (e) {
    // the demo restarting: try again on the next tick
  }
}
tick();
setInterval(tick, 1000);
