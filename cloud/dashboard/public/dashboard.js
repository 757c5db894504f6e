// The live dashboard of cose-flow (served by cloud/dashboard/routes.ts). Plain browser JavaScript,
// no build step: a `state` server-sent event carries one LiveSnapshot (cloud/dashboard/live-state.ts)
// about once a second. Every value shown comes from devices or the network: text only (textContent),
// never markup, and every field is checked before use (a malformed snapshot shows an error line).

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 600;
  const H = 160;
  const $ = (id) => document.getElementById(id);

  const isObj = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const int = (v) => {
    const n = num(v);
    return n === null ? '—' : Math.round(n).toLocaleString('en-US');
  };
  const str = (v) => (typeof v === 'string' ? v : v === null || v === undefined ? '—' : String(v));
  const scalar = (v) => typeof v === 'string' || num(v) !== null;
  const pad = (n) => String(n).padStart(2, '0');
  const clock = (ms) => {
    const d = new Date(ms);
    return num(ms) === null ? '—' : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };

  /** A duration, human: "12 s", "3 min", "2 h 5 min", "4 d 3 h". */
  const duration = (ms) => {
    if (num(ms) === null) return '—';
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  };
  const bytes = (n) =>
    n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`;
  const truncate = (s, max) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

  const json = (v) => {
    try {
      const s = JSON.stringify(v);
      return s === undefined ? '—' : s;
    } catch {
      return '?';
    }
  };

  /** The last reading: temp, heap and uptime of a simulated device, else compact JSON. */
  const reading = (r) => {
    if (r === undefined) return '—';
    if (isObj(r)) {
      const parts = [];
      if (num(r.temp) !== null) parts.push(`${r.temp.toFixed(1)} °C`);
      if (num(r.heap) !== null) parts.push(`heap ${bytes(r.heap)}`);
      if (num(r.up) !== null) parts.push(`up ${duration(r.up * 1000)}`);
      if (parts.length > 0) return parts.join(' · ');
    }
    return truncate(json(r), 60);
  };

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const row = (cells) => {
    const tr = document.createElement('tr');
    for (const [text, cls] of cells) tr.append(el('td', text, cls));
    return tr;
  };
  const emptyRow = (cols, text) => {
    const td = el('td', text, 'muted');
    td.colSpan = cols;
    const tr = document.createElement('tr');
    tr.append(td);
    return tr;
  };
  const setText = (id, text) => {
    const e = $(id);
    if (e.textContent !== text) e.textContent = text;
  };

  // ---- header -------------------------------------------------------------------------------------

  const renderHeader = (s, now) => {
    const t = isObj(s.totals) ? s.totals : {};
    setText('uptime', num(s.startedAt) === null ? '—' : duration(now - s.startedAt));
    setText('total-sessions', int(t.sessions));
    setText('total-accepted', int(t.accepted));
    setText('total-rate', num(s.perSecond) === null || offlineSince !== null ? '—' : s.perSecond.toFixed(1));
    setText('total-duplicates', int(t.duplicates));
    setText('total-rejected', int(t.rejected));
    setText('duplicates', int(t.duplicates));
    const demo = isObj(s.extra) && isObj(s.extra.demo) ? s.extra.demo : null;
    $('demo').hidden = demo === null;
    if (demo !== null) {
      const parts = ['demo'];
      if (scalar(demo.devices)) parts.push(`${demo.devices} simulated devices`);
      if (scalar(demo.rate)) parts.push(`${demo.rate} msg/s each`);
      if (scalar(demo.broker)) parts.push(`broker ${demo.broker}`);
      if (scalar(demo.store)) parts.push(`store ${demo.store}`);
      setText('demo', parts.join(' · '));
    }
  };

  // ---- rate chart ---------------------------------------------------------------------------------

  let updates = 0;
  const svgEl = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  };

  const renderChart = (s) => {
    const rate = Array.isArray(s.rate) ? s.rate.map((v) => Math.max(0, num(v) ?? 0)) : [];
    const svg = $('rate-chart');
    const peak = rate.reduce((a, b) => Math.max(a, b), 0);
    // A round y-axis maximum: 1, 2, 5 × 10^k, at least the peak.
    let max = 1;
    for (let k = 1; max < peak; k *= 10) max = [1, 2, 5, 10].map((m) => m * k).find((m) => m >= peak) ?? k * 10;
    const x = (i) => (rate.length > 1 ? (i / (rate.length - 1)) * W : W);
    const y = (v) => H - (v / max) * (H - 4);
    const points = rate.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    const children = [
      svgEl('line', { x1: 0, y1: H / 2, x2: W, y2: H / 2, class: 'grid' }),
      svgEl('line', { x1: 0, y1: 4, x2: W, y2: 4, class: 'grid' }),
    ];
    if (points.length > 0) {
      children.push(
        svgEl('polygon', { points: `0,${H} ${points.join(' ')} ${x(rate.length - 1)},${H}`, class: 'area' }),
      );
      children.push(
        svgEl('polyline', { points: points.join(' '), class: 'line', 'vector-effect': 'non-scaling-stroke' }),
      );
    }
    svg.replaceChildren(...children);
    updates++;
    svg.setAttribute('data-last', String(rate.length > 0 ? rate[rate.length - 1] : 0));
    svg.setAttribute('data-points', String(rate.filter((v) => v > 0).length));
    svg.setAttribute('data-updates', String(updates));
    setText('rate-max', `${max.toLocaleString('en-US')} msg/s`);
    setText('rate-span', `last ${rate.length} s`);
  };

  // ---- devices ------------------------------------------------------------------------------------

  const renderDevices = (s, now) => {
    const devices = Array.isArray(s.devices) ? s.devices.filter(isObj) : [];
    const rows = devices.map((d) => {
      const tr = row([
        [str(d.deviceId), 'mono'],
        [typeof d.kid === 'string' ? d.kid : '—', 'mono'],
        [int(d.seq), 'num'],
        [num(d.sessionAt) === null ? '—' : duration(now - d.sessionAt)],
        [int(d.messages), 'num'],
        [reading(d.reading), 'reading'],
        [num(d.lastAt) === null ? '—' : `${duration(now - d.lastAt)} ago`],
        [int(d.rejected), num(d.rejected) > 0 ? 'num bad' : 'num'],
      ]);
      tr.dataset.deviceId = str(d.deviceId);
      return tr;
    });
    $('devices').tBodies[0].replaceChildren(...(rows.length > 0 ? rows : [emptyRow(8, 'no devices yet')]));
    setText('devices-count', `(${devices.length})`);
    const dropped = num(s.devicesDropped) ?? 0;
    $('devices-dropped').hidden = dropped === 0;
    setText('devices-dropped', `${int(dropped)} devices not heard of recently are no longer shown`);
  };

  // ---- cloud keys (rotation progress) -------------------------------------------------------------

  const renderCloudKeys = (s, now) => {
    const keys = Array.isArray(s.cloudKeys) ? s.cloudKeys.filter(isObj) : [];
    const rows = keys.map((k) => {
      const role = k.current === true ? 'current' : k.loaded === false ? 'retired (no longer accepted)' : 'older';
      let retire = '—';
      if (num(k.retireAt) !== null) {
        retire = `${new Date(k.retireAt).toISOString().replace('.000Z', 'Z')} (${k.retireAt > now ? `in ${duration(k.retireAt - now)}` : 'passed'})`;
      }
      const tr = row([[str(k.kid), 'mono'], [role], [int(k.devices), 'num'], [retire]]);
      tr.dataset.kid = str(k.kid);
      tr.dataset.devices = String(num(k.devices) ?? 0);
      if (k.current === true) tr.dataset.current = 'true';
      return tr;
    });
    $('cloud-keys').tBodies[0].replaceChildren(...(rows.length > 0 ? rows : [emptyRow(4, 'no cloud keys')]));
    const older = keys.filter((k) => k.current !== true).reduce((a, k) => a + (num(k.devices) ?? 0), 0);
    setText('cloud-keys-summary', older > 0 ? `${int(older)} devices still on older keys` : '');
  };

  // ---- rejections ---------------------------------------------------------------------------------

  const renderRejections = (s) => {
    const reasons = isObj(s.rejections) ? Object.entries(s.rejections) : [];
    reasons.sort((a, b) => (num(b[1]) ?? 0) - (num(a[1]) ?? 0));
    const rows = reasons.map(([reason, count]) => {
      const tr = row([
        [reason, 'mono'],
        [int(count), 'num'],
      ]);
      tr.dataset.reason = reason;
      return tr;
    });
    $('rejections').tBodies[0].replaceChildren(...(rows.length > 0 ? rows : [emptyRow(2, 'none')]));
    const recent = Array.isArray(s.recentRejections) ? s.recentRejections.filter(isObj).reverse() : [];
    const recentRows = recent.map((r) =>
      row([
        [clock(r.at)],
        [str(r.reason), 'mono'],
        [str(r.deviceId), 'mono'],
        [typeof r.kid === 'string' ? r.kid : '—', 'mono'],
        [int(r.seq), 'num'],
        [truncate(str(r.detail), 160), 'detail'],
      ]),
    );
    $('recent-rejections').tBodies[0].replaceChildren(
      ...(recentRows.length > 0 ? recentRows : [emptyRow(6, 'no rejected messages')]),
    );
  };

  // ---- latency and attack -------------------------------------------------------------------------

  const ms = (v) => (num(v) === null ? '—' : `${v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ms`);
  const renderLatency = (s) => {
    const l = isObj(s.latency) ? s.latency : {};
    setText('latency-p50', ms(l.p50Ms));
    setText('latency-p95', ms(l.p95Ms));
    setText('latency-max', ms(l.maxMs));
    setText('latency-samples', int(l.samples));
  };

  const injectedText = (injected) => {
    const entries = Object.entries(injected).filter(([, n]) => num(n) !== null);
    const total = entries.reduce((a, [, n]) => a + n, 0);
    return `injected ${total}: ${entries.map(([k, n]) => `${k} ${n}`).join(', ') || 'nothing'}`;
  };

  const renderAttack = (s, now) => {
    const attack = isObj(s.extra) ? s.extra.attack : undefined;
    const box = $('attack-box');
    box.hidden = attack === undefined || attack === null;
    if (box.hidden || !isObj(attack)) {
      setText('attack-info', '');
      return;
    }
    const parts = [`${int(attack.rounds)} attack rounds so far`];
    if (num(attack.lastAt) !== null) parts.push(`last ${duration(now - attack.lastAt)} ago`);
    if (isObj(attack.injected) && Object.keys(attack.injected).length > 0) parts.push(injectedText(attack.injected));
    setText('attack-info', parts.join(' · '));
  };

  const attack = async () => {
    const button = $('attack');
    const result = $('attack-result');
    button.disabled = true;
    result.className = 'small';
    result.textContent = 'attacking…';
    try {
      const res = await fetch('/api/attack', { method: 'POST', headers: { 'X-Cose-Flow-Action': 'attack' } });
      let body = null;
      try {
        body = await res.json();
      } catch {}
      if (res.ok && isObj(body) && isObj(body.injected)) result.textContent = injectedText(body.injected);
      else {
        result.className = 'small error';
        result.textContent = `attack failed: ${isObj(body) && body.error !== undefined ? str(body.error) : `HTTP ${res.status}`}`;
      }
    } catch (e) {
      result.className = 'small error';
      result.textContent = `attack failed: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      button.disabled = false;
    }
  };

  // ---- render and connection ----------------------------------------------------------------------

  const render = (s) => {
    const errors = [];
    if (!isObj(s)) errors.push('snapshot is not an object');
    else {
      const now = num(s.at) ?? Date.now();
      const parts = [
        renderHeader,
        renderChart,
        renderDevices,
        renderCloudKeys,
        renderRejections,
        renderLatency,
        renderAttack,
      ];
      for (const part of parts) {
        try {
          part(s, now);
        } catch (e) {
          errors.push(`${part.name}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    $('error').hidden = errors.length === 0;
    setText('error', errors.length === 0 ? '' : `could not show the last update (${errors.join('; ')})`);
  };

  // While the service cannot be reached, the page says so: the figures are dimmed and marked as of
  // the last update, the rate shows no number it does not know, and Attack is off.
  let offlineSince = null;
  const setConn = (state, text) => {
    const conn = $('conn');
    conn.className = `conn ${state}`;
    conn.dataset.state = state;
    setText('conn', text);
    const offline = state !== 'live' && state !== 'connecting';
    if (offline && offlineSince === null) offlineSince = Date.now();
    if (!offline) offlineSince = null;
    document.body.classList.toggle('offline', offline);
    $('attack').disabled = offline;
    const banner = $('offline');
    banner.hidden = !offline;
    if (offline) {
      setText('total-rate', '—');
      setText(
        'offline',
        `the service is stopped or cannot be reached (since ${new Date(offlineSince).toLocaleTimeString()}): ` +
          'the figures below are as of its last update',
      );
    }
  };

  let received = false;
  let lastEventAt = 0;
  const onState = (ev) => {
    received = true;
    lastEventAt = Date.now();
    setConn('live', 'live');
    let s;
    try {
      s = JSON.parse(ev.data);
    } catch (e) {
      $('error').hidden = false;
      setText('error', `could not read the last update: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    render(s);
  };

  const connect = () => {
    const source = new EventSource('/api/events');
    source.addEventListener('open', () => setConn('live', 'live'));
    source.addEventListener('state', onState);
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered, but not with an event stream): try again later.
        setConn('down', 'disconnected — retrying…');
        setTimeout(connect, 5000);
      } else setConn('reconnecting', 'reconnecting…');
    });
  };

  // A stream that stays open but stops delivering (a stalled proxy) is not live either.
  setInterval(() => {
    if (received && Date.now() - lastEventAt > 5000 && $('conn').dataset.state === 'live') setConn('stale', 'stale');
  }, 1000);

  $('attack').addEventListener('click', attack);
  fetch('/api/state', { cache: 'no-store' })
    .then((res) => (res.ok ? res.json() : null))
    .then((s) => {
      if (s !== null && !received) render(s);
    })
    .catch(() => {});
  connect();
})();
