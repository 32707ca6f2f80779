// pitwall's live page: polls the engine's JSON API and draws the race on canvas.
// Plain script, no build step, nothing from elsewhere.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const GEAR_TYPES = ['lugging', 'over_revving', 'rapid_shifting', 'invalid_gear'];
  const SEVERITIES = ['high', 'medium', 'low'];
  const TRACE_SECONDS = 120;

  const state = {
    driver: null,          // the driver the charts show
    chosen: false,         // picked by the user (else it follows the leader)
    drivers: [],           // codes with telemetry, alphabetical
    standings: [],
    pitProbability: new Map(),
    predictions: [],
    severities: new Set(SEVERITIES),
    trace: null,
    anomalies: [],
    rates: [],
    raceTime: null,
  };

  // ---- helpers -------------------------------------------------------------------------

  async function getJSON(path) {
    const r = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  const pad = (n) => String(n).padStart(2, '0');
  function clock(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }
  function seconds(ms, digits = 3) {
    return (ms / 1000).toFixed(digits);
  }
  function lapTime(ms) {
    if (!ms) return '—';
    const m = Math.floor(ms / 60000);
    return `${m}:${((ms % 60000) / 1000).toFixed(3).padStart(6, '0')}`;
  }
  function duration(s) {
    if (s === null || s === undefined) return '—';
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
    return h ? `${h}h ${pad(m)}m` : m ? `${m}m ${pad(sec)}s` : `${sec}s`;
  }
  function latency(s) {
    if (s === null || s === undefined) return '—';
    return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`;
  }
  function count(n) {
    if (n === null || n === undefined) return '—';
    return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)} k` : String(Math.round(n));
  }
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function setConn(ok, message) {
    const c = $('conn');
    c.className = ok ? 'conn ok' : 'conn bad';
    c.textContent = ok ? 'live' : `no answer: ${message}`;
  }

  // ---- charts ----------------------------------------------------------------------------

  // A canvas sized to its box at the screen's pixel ratio, with the plot area inside margins.
  function surface(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(canvas.clientWidth, 10), h = Math.max(canvas.clientHeight, 10);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h, box: { l: 44, r: w - 8, t: 8, b: h - 20 } };
  }

  function niceStep(span, ticks) {
    const raw = span / Math.max(ticks, 1);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  }

  function noData(canvas, message) {
    const { ctx, w, h } = surface(canvas);
    ctx.fillStyle = css('--dim');
    ctx.font = '12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.fillText(message, w / 2, h / 2);
    canvas.dataset.points = '0';
  }

  // Axes and grid of a plot; returns the value-to-pixel maps.
  function frame(s, x0, x1, y0, y1, xLabel, yLabel) {
    const { ctx, box } = s;
    const X = (x) => box.l + ((x - x0) / (x1 - x0 || 1)) * (box.r - box.l);
    const Y = (y) => box.b - ((y - y0) / (y1 - y0 || 1)) * (box.b - box.t);
    ctx.font = '10px system-ui, sans-serif';
    ctx.strokeStyle = '#1f2836';
    ctx.fillStyle = css('--dim');
    ctx.lineWidth = 1;
    const ys = niceStep(y1 - y0, 4);
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let y = Math.ceil(y0 / ys) * ys; y <= y1 + 1e-9; y += ys) {
      ctx.beginPath(); ctx.moveTo(box.l, Y(y) + 0.5); ctx.lineTo(box.r, Y(y) + 0.5); ctx.stroke();
      ctx.fillText(yLabel(y), box.l - 5, Y(y));
    }
    const xs = niceStep(x1 - x0, Math.max(2, Math.floor((box.r - box.l) / 80)));
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let x = Math.ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs) {
      ctx.beginPath(); ctx.moveTo(X(x) + 0.5, box.t); ctx.lineTo(X(x) + 0.5, box.b); ctx.stroke();
      ctx.fillText(xLabel(x), X(x), box.b + 4);
    }
    return { X, Y };
  }

  // Runs of consecutive points where `on(p)` holds, as [from, to] times.
  function runs(points, on) {
    const out = [];
    let start = null, last = null;
    for (const p of points) {
      if (on(p)) { if (start === null) start = p.time; last = p.time; }
      else if (start !== null) { out.push([start, last]); start = null; }
    }
    if (start !== null) out.push([start, last]);
    return out;
  }

  // A time chart of one driver's trace: lines (value getters), shaded bands, fixed y range.
  function timeChart(canvas, trace, opts) {
    const pts = trace ? trace.points : [];
    if (!pts.length) return noData(canvas, state.driver ? `No samples of ${state.driver} yet` : 'Waiting for telemetry…');
    const s = surface(canvas);
    const t1 = trace.to, t0 = trace.from;
    let y0 = opts.min, y1 = opts.max;
    if (y1 === undefined) {
      y1 = 1;
      for (const line of opts.lines) for (const p of pts) { const v = line.value(p); if (v !== null && v > y1) y1 = v; }
      y1 = Math.ceil(y1 / niceStep(y1 - y0, 4)) * niceStep(y1 - y0, 4);
    }
    const { X, Y } = frame(s, (t0 - t1) / 1000, 0, y0, y1, (x) => (x === 0 ? 'now' : `${x}s`), opts.yLabel || ((y) => String(Math.round(y))));
    const tx = (t) => X((t - t1) / 1000);
    const ctx = s.ctx;
    const half = 125;
    for (const band of opts.bands || []) {
      ctx.fillStyle = band.color;
      for (const [a, b] of runs(pts, band.on)) {
        const xa = tx(a - half), xb = tx(b + half);
        ctx.fillRect(Math.max(xa, s.box.l), s.box.t, Math.max(xb - xa, 2), s.box.b - s.box.t);
      }
    }
    let drawn = 0;
    ctx.save();
    ctx.beginPath(); ctx.rect(s.box.l, s.box.t - 2, s.box.r - s.box.l, s.box.b - s.box.t + 4); ctx.clip();
    for (const line of opts.lines) {
      ctx.strokeStyle = line.color;
      ctx.lineWidth = line.width || 1.6;
      ctx.setLineDash(line.dash || []);
      ctx.beginPath();
      let pen = false, prevY = null;
      for (const p of pts) {
        const v = line.value(p);
        if (v === null || v === undefined) { pen = false; continue; }
        const x = tx(p.time), y = Y(Math.min(Math.max(v, y0), y1));
        if (!pen) ctx.moveTo(x, y);
        else if (line.step) { ctx.lineTo(x, prevY); ctx.lineTo(x, y); }
        else ctx.lineTo(x, y);
        pen = true; prevY = y; drawn++;
      }
      ctx.stroke();
    }
    ctx.restore();
    canvas.dataset.points = String(drawn);
    canvas.dataset.driver = trace.driver;
  }

  function overlaps(t, episodes) {
    return episodes.some((a) => t >= a.start_ms && t <= a.end_ms);
  }

  // Gear against speed: every sample of the trace, those inside a gear-anomaly episode in red.
  function scatter(canvas, trace, anomalies) {
    const pts = trace ? trace.points.filter((p) => p.speed !== null) : [];
    if (!pts.length) return noData(canvas, state.driver ? `No samples of ${state.driver} yet` : 'Waiting for telemetry…');
    const s = surface(canvas);
    let vmax = 100;
    for (const p of pts) vmax = Math.max(vmax, p.speed);
    vmax = Math.ceil(vmax / 50) * 50;
    const { X, Y } = frame(s, 0, vmax, 0, 9, (x) => String(x), (y) => (y >= 9 ? '9+' : String(y)));
    const ctx = s.ctx;
    const high = css('--high'), dot = 'rgba(62, 166, 255, 0.35)';
    const odd = [];
    ctx.fillStyle = dot;
    for (const p of pts) {
      if (overlaps(p.time, anomalies)) { odd.push(p); continue; }
      ctx.beginPath(); ctx.arc(X(p.speed), Y(Math.min(p.gear, 9)), 2.2, 0, Math.PI * 2); ctx.fill();
    }
    ctx.fillStyle = high;
    for (const p of odd) {
      ctx.beginPath(); ctx.arc(X(p.speed), Y(Math.min(p.gear, 9)), 3.6, 0, Math.PI * 2); ctx.fill();
    }
    canvas.dataset.points = String(pts.length);
    canvas.dataset.anomalies = String(odd.length);
    canvas.dataset.driver = trace.driver;
  }

  function sparkline(canvas, values) {
    const real = values.filter((v) => v !== null);
    if (real.length < 2) return noData(canvas, 'Measuring the rate…');
    const s = surface(canvas);
    const box = { l: 4, r: s.w - 4, t: 6, b: s.h - 4 };
    const max = Math.max(...real, 1);
    const ctx = s.ctx;
    ctx.strokeStyle = css('--throttle');
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    real.forEach((v, i) => {
      const x = box.l + (i / (real.length - 1)) * (box.r - box.l), y = box.b - (v / max) * (box.b - box.t);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
    canvas.dataset.points = String(real.length);
  }

  function drawCharts() {
    const t = state.trace;
    timeChart($('c-speed'), t, {
      min: 0,
      lines: [
        { value: (p) => p.expected_speed, color: css('--expected'), dash: [4, 3], width: 1.3 },
        { value: (p) => p.speed, color: css('--speed') },
      ],
      bands: [{ on: (p) => p.spinning, color: css('--spin') }],
    });
    timeChart($('c-rpm'), t, { min: 0, lines: [{ value: (p) => p.rpm, color: css('--rpm') }], yLabel: (y) => (y >= 1000 ? `${y / 1000}k` : String(y)) });
    timeChart($('c-throttle'), t, {
      min: 0, max: 100,
      lines: [{ value: (p) => p.throttle, color: css('--throttle') }],
      bands: [{ on: (p) => p.brake > 0, color: css('--brake') }],
    });
    timeChart($('c-gear'), t, { min: 0, max: 9, lines: [{ value: (p) => Math.min(p.gear, 9), color: css('--gear'), step: true }] });
    scatter($('c-scatter'), t, state.anomalies);
    $('trace-span').textContent = t && t.points.length ? `last ${TRACE_SECONDS} s of race time to ${clock(t.to)}` : '';
  }

  // ---- panels ----------------------------------------------------------------------------

  // Gap and interval as measured at the line on the driver's latest lap, as a timing tower
  // shows them between crossings; a gap of a lap or more reads in laps.
  function gapText(row, lapMs) {
    if (row.position === 1) return 'Leader';
    const laps = lapMs > 0 ? Math.floor(row.gap_to_leader_ms / lapMs) : 0;
    return laps >= 1 ? `+${laps} L` : `+${seconds(row.gap_to_leader_ms)}`;
  }

  function renderTower() {
    const body = $('tower').tBodies[0];
    const rows = state.standings.map((r) => ({ ...r }));
    const listed = new Set(rows.map((r) => r.driver_id));
    for (const d of state.drivers) if (!listed.has(d)) rows.push({ driver_id: d });
    const lapMs = state.standings.length ? state.standings[0].last_lap_time_ms : 0;
    body.replaceChildren(...rows.map((r) => {
      const tr = el('tr');
      tr.dataset.driver = r.driver_id;
      if (r.driver_id === state.driver) tr.classList.add('sel');
      if (r.retired) tr.classList.add('retired');
      const has = r.position !== undefined;
      const name = el('td', 'drv', r.driver_id);
      if (r.retired) name.append(el('span', 'tag ret', 'OUT'));
      if (r.undercut_on && !r.retired) {
        const uc = el('span', 'tag uc', 'UC');
        uc.title = `within reach of undercutting ${r.undercut_on}: ${seconds(r.interval_ms)} s behind, its tyres lost ${seconds(r.undercut_gain_ms)} s on the lap`;
        name.append(uc);
      }
      const p = state.pitProbability.get(r.driver_id);
      const pp = el('span', p !== undefined && p >= 0.5 ? 'pp hot' : 'pp', p === undefined ? '—' : `${Math.round(p * 100)}%`);
      const ppCell = el('td', 'num');
      ppCell.append(pp);
      tr.append(
        el('td', 'pos', has ? r.position : '—'),
        name,
        el('td', null, has ? r.lap : '—'),
        el('td', 'num', has ? gapText(r, lapMs) : '—'),
        el('td', 'num', has ? (r.position === 1 ? '' : `+${seconds(r.interval_ms)}`) : '—'),
        el('td', null, has ? `${r.tyre_age_laps} · S${r.stint}` : '—'),
        el('td', null, has ? r.pit_count : '—'),
        ppCell,
        el('td', 'num rejoin', has && r.rejoin_position_if_pit ? `P${r.rejoin_position_if_pit}` : '—'),
      );
      tr.title = has ? `last lap ${lapTime(r.last_lap_time_ms)}, best ${lapTime(r.best_lap_ms)}; a stop next lap (${seconds(r.pit_loss_ms, 1)} s lost) rejoins P${r.rejoin_position_if_pit}` : 'no lap completed yet';
      return tr;
    }));
    $('tower-empty').hidden = rows.length > 0;
    const leader = state.standings[0];
    const field = $('field');
    if (leader) {
      field.className = `field ${leader.field_state}`;
      field.textContent = leader.field_state.toUpperCase();
      $('lap').textContent = `${leader.lap} done`;
    }
  }

  function renderDriverPicker() {
    const select = $('driver');
    const have = Array.from(select.options).map((o) => o.value).join(',');
    if (have !== state.drivers.join(',')) {
      select.replaceChildren(...state.drivers.map((d) => {
        const o = el('option', null, d);
        o.value = d;
        return o;
      }));
    }
    if (state.driver) select.value = state.driver;
  }

  function choose(driver, byUser) {
    if (!driver || driver === state.driver) return;
    state.driver = driver;
    state.chosen = state.chosen || byUser;
    state.trace = null;
    state.anomalies = [];
    if (byUser) history.replaceState(null, '', `#${driver}`);
    renderDriverPicker();
    renderTower();
    renderPredictions();
    drawCharts();
    refreshTrace().catch((e) => setConn(false, e.message));
  }

  function renderAlerts(alerts) {
    $('alerts').replaceChildren(...alerts.map((a) => {
      const li = el('li', a.severity);
      li.dataset.severity = a.severity;
      const top = el('div', 'top');
      top.append(el('span', 'who', a.driver_id), el('span', 'what', a.alert_type.replace(/_/g, ' ')));
      if (a.status === 'cleared') top.append(el('span', 'cleared', 'cleared'));
      top.append(el('span', 'when', `${clock(a.start_ms)}${a.lap ? ` · L${a.lap}` : ''}`));
      li.append(top, el('div', 'desc', a.description));
      return li;
    }));
    $('alerts-empty').hidden = alerts.length > 0;
    $('alerts-empty').textContent = state.severities.size ? 'No alerts yet.' : 'Every severity is hidden.';
  }

  function renderChips(bySeverity) {
    const chips = $('severity-chips');
    if (!chips.children.length) {
      for (const sev of SEVERITIES) {
        const b = el('button', `chip ${sev}`);
        b.type = 'button';
        b.dataset.severity = sev;
        b.addEventListener('click', () => {
          if (state.severities.has(sev)) state.severities.delete(sev); else state.severities.add(sev);
          b.classList.toggle('off', !state.severities.has(sev));
          refreshAlerts().catch((e) => setConn(false, e.message));
        });
        chips.append(b);
      }
    }
    for (const b of chips.children) {
      const sev = b.dataset.severity;
      b.replaceChildren(el('b', null, count(bySeverity[sev] || 0)), document.createTextNode(sev));
    }
  }

  function renderPredictions() {
    const mine = state.predictions.filter((p) => p.driver_id === state.driver);
    $('pred-driver').textContent = state.driver ? `${state.driver}, latest lap` : '';
    $('predictions').replaceChildren(...mine.map((p) => {
      const d = el('div', `pred ${p.prediction.risk_level}`);
      const row = el('div', 'row');
      // A rare event (a crash, a tyre failure) shows how many times its base rate it is: a
      // fraction of a percent can still stand out. The meter is that multiple, up to 8x.
      const pct = p.probability * 100;
      const shown = pct >= 10 ? pct.toFixed(0) : pct >= 1 ? pct.toFixed(1) : pct.toFixed(2);
      const times = p.times_base ?? 1;
      const rare = p.model_type !== 'pit_stop_probability';
      row.append(el('span', null, p.model_type.replace(/_/g, ' ')), el('span', null, `${shown}% · ${times.toFixed(1)}× base · lap ${p.lap}`));
      const meter = el('div', 'meter');
      const bar = el('i');
      bar.style.width = `${Math.max(0, Math.min(100, rare ? times / 8 * 100 : pct))}%`;
      meter.append(bar);
      d.append(row, meter);
      return d;
    }));
    $('preds-empty').hidden = mine.length > 0;
  }

  function renderStops(stops) {
    const recent = stops.slice().sort((a, b) => b.pit_in_ms - a.pit_in_ms).slice(0, 12);
    $('stops').replaceChildren(...recent.map((s) => {
      const li = el('li', s.field_state === 'green' ? 'low' : 'medium');
      const top = el('div', 'top');
      top.append(el('span', 'who', s.driver_id), el('span', 'what', `in on lap ${s.lap}`), el('span', 'when', clock(s.pit_in_ms)));
      li.append(top, el('div', 'desc', `${seconds(s.stationary_ms, 1)} s stopped, ${seconds(s.pit_lane_ms, 1)} s in the lane, ${s.field_state}`));
      return li;
    }));
    $('stops-empty').hidden = recent.length > 0;
  }

  function renderEngine(e) {
    state.raceTime = e.race_time_ms;
    $('clock').textContent = clock(e.race_time_ms);
    $('e-rate').textContent = e.records_per_second === null ? '—' : count(e.records_per_second);
    $('e-records').textContent = count(e.records);
    $('e-lat').textContent = latency(e.latency_seconds.last);
    $('e-lat-mean').textContent = latency(e.latency_seconds.mean);
    $('e-drivers').textContent = String(e.drivers);
    $('e-uptime').textContent = duration(e.uptime_seconds);
    $('e-lag-row').hidden = !e.kafka;
    if (e.kafka) $('e-lag').textContent = `${count(e.kafka.lag)} (${count(e.kafka.committed_lag)} uncommitted)`;
    state.rates.push(e.records_per_second);
    if (state.rates.length > 120) state.rates.shift();
    sparkline($('c-rate'), state.rates);
    renderChips(e.alerts);
  }

  // ---- polling ---------------------------------------------------------------------------

  async function refreshDrivers() {
    const drivers = await getJSON('/api/drivers');
    state.drivers = drivers.filter((d) => d.points > 0).map((d) => d.driver).sort();
    if (!state.driver || !state.drivers.includes(state.driver)) {
      const wanted = decodeURIComponent(location.hash.slice(1)).toUpperCase();
      const leader = state.standings[0] && state.standings[0].driver_id;
      const pick = state.drivers.includes(wanted) ? wanted : state.drivers.includes(leader) ? leader : state.drivers[0];
      if (pick) choose(pick, false);
    }
    renderDriverPicker();
  }

  async function refreshStandings() {
    state.standings = await getJSON('/api/standings');
    if (!state.chosen && state.standings.length && state.driver !== state.standings[0].driver_id
      && state.drivers.includes(state.standings[0].driver_id) && !location.hash) {
      choose(state.standings[0].driver_id, false);
    }
    renderTower();
  }

  async function refreshTrace() {
    const driver = state.driver;
    if (!driver || !state.drivers.includes(driver)) return;
    const trace = await getJSON(`/api/trace?driver=${encodeURIComponent(driver)}&seconds=${TRACE_SECONDS}`);
    const anomalies = trace.points.length
      ? await getJSON(`/api/alerts?driver=${encodeURIComponent(driver)}&type=${GEAR_TYPES.join(',')}&from=${trace.from}&to=${trace.to}&max=500`)
      : [];
    if (driver !== state.driver) return;
    state.trace = trace;
    state.anomalies = anomalies;
    drawCharts();
  }

  async function refreshAlerts() {
    const sev = Array.from(state.severities);
    const alerts = sev.length ? await getJSON(`/api/alerts?max=60&severity=${sev.join(',')}`) : [];
    renderAlerts(alerts);
  }

  async function refreshRace() {
    const [predictions, stops] = await Promise.all([getJSON('/api/predictions?latest=true'), getJSON('/api/pit_stops')]);
    state.predictions = predictions;
    state.pitProbability = new Map(predictions.filter((p) => p.model_type === 'pit_stop_probability').map((p) => [p.driver_id, p.probability]));
    renderPredictions();
    renderStops(stops);
    renderTower();
  }

  async function refreshEngine() {
    renderEngine(await getJSON('/api/engine'));
  }

  function every(ms, job) {
    const run = async () => {
      try {
        await job();
        setConn(true);
      } catch (e) {
        setConn(false, e.message);
      }
      setTimeout(run, document.hidden ? ms * 4 : ms);
    };
    run();
  }

  $('driver').addEventListener('change', (e) => choose(e.target.value, true));
  $('tower').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-driver]');
    if (tr && state.drivers.includes(tr.dataset.driver)) choose(tr.dataset.driver, true);
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { drawCharts(); sparkline($('c-rate'), state.rates); }, 100);
  });

  drawCharts();
  renderChips({});
  every(2000, async () => { await refreshDrivers(); await refreshStandings(); });
  every(1000, refreshTrace);
  every(1000, refreshEngine);
  every(2000, refreshAlerts);
  every(3000, refreshRace);
})();
