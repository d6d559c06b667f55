/* Stacklight live rendering: the live store -> DOM, without React in the hot path.
 *
 * The push loop (web/live_push.py) merges every change into the `live-store`
 * data: {epoch, seq, now, connected, values: {tag: entry}, alarms: {version, rows, summary}}.
 * Each entry has "n", the server version at which it last changed, so only
 * changed tags are redrawn. Elements carry data-sl-tag and data-sl-field (see
 * components/live_fields.py); they are indexed whenever the page changes and
 * drawn at once from the merged state. Without a push for STALE_AFTER_MS (or
 * when the server reports Redis lost) every value is shown stale.
 * Helpers: live_tables.js builds the tag tables, trend_live.js extends the trend,
 * alarm_tone.js sounds the alarm tone from the alarm rows.
 * The alarm engine's health (alarms.summary.engine, web/engine_health.py) fills every
 * [data-sl-engine-notice] element; without live data it is "unknown", never "running".
 * Elements with data-sl-time-ms (server-rendered times) are shown in the browser's local time.
 * When the server says the session ended ("session": "ended": logout, idle timeout, user deleted)
 * the page goes to /login; when the user's role changed ("changed") it reloads.
 */
(function () {
  'use strict';

  var STALE_AFTER_MS = 3000;
  var FIRST_PROBE_AFTER_MS = 15000;
  var MAX_PROBE_DELAY_MS = 300000;

  var state = {
    data: null, epoch: null, drawnVersion: new Map(), alarmsKey: null, alarmRowsKey: null,
    index: new Map(), indexDirty: true, lastPushMs: 0, startedMs: Date.now(), clockOffsetMs: 0,
    disconnected: false, connectedSinceMs: 0, probing: false
  };
  window.stacklight = state;

  // ---- formatting (mirrors web/tag_display.py) ---------------------------------------
  function ageText(rt) {
    if (rt === null || rt === undefined) { return ''; }
    var s = Math.max(0, Math.floor((Date.now() + state.clockOffsetMs - rt) / 1000));
    if (s < 1) { return 'just now'; }
    if (s < 120) { return s + ' s ago'; }
    if (s < 7200) { return Math.floor(s / 60) + ' min ago'; }
    if (s < 172800) { return Math.floor(s / 3600) + ' h ago'; }
    return Math.floor(s / 86400) + ' d ago';
  }
  function percentOf(value, lo, hi) {
    var v = (typeof value === 'boolean') ? (value ? 1 : 0) : Number(value);
    if (value === null || value === undefined || !isFinite(v) || !(hi > lo)) { return null; }
    return Math.max(0, Math.min(100, (v - lo) / (hi - lo) * 100));
  }
  function qualityText(e) {
    if (e.q === null || e.q === undefined) { return ''; }
    return e.qn + ' (0x' + (e.q >>> 0).toString(16).toUpperCase().padStart(8, '0') + ')';
  }
  function effective(entry) {
    if (!entry) { return {f: 'no_data', s: 'NO DATA', d: '', v: null}; }
    if (state.disconnected && (entry.f === 'live' || entry.f === 'uncertain')) {
      return Object.assign({}, entry, {f: 'stale', s: 'STALE'});
    }
    return entry;
  }

  // ---- DOM index ---------------------------------------------------------------------
  function reindex() {
    if (window.stacklightTables) { window.stacklightTables.build(); }
    state.index = new Map();
    document.querySelectorAll('[data-sl-tag]').forEach(function (el) {
      var tag = el.getAttribute('data-sl-tag');
      if (!state.index.has(tag)) { state.index.set(tag, []); }
      state.index.get(tag).push(el);
    });
    state.indexDirty = false;
    state.drawnVersion.clear();
  }
  var observer = new MutationObserver(function (mutations) {
    for (var i = 0; i < mutations.length; i++) {
      var m = mutations[i];
      if (m.type === 'attributes') { scheduleFullDraw(); return; }  // a tag table got a new row model
      if (m.target.closest && m.target.closest('[data-sl-field], [data-sl-rows]')) { continue; }
      for (var j = 0; j < m.addedNodes.length; j++) {
        if (m.addedNodes[j].nodeType === 1) { scheduleFullDraw(); return; }
      }
    }
  });
  var drawScheduled = false;
  function scheduleFullDraw() {
    state.indexDirty = true;
    if (drawScheduled) { return; }
    drawScheduled = true;
    window.requestAnimationFrame(function () { drawScheduled = false; drawAll(); });
  }

  // ---- drawing -----------------------------------------------------------------------
  // Writes only what differs, and text through the existing text node (a characterData change,
  // which the page observer ignores), so a thousand cells a tick stay cheap.
  function setText(el, text) {
    if (el.slText === text) { return; }
    el.slText = text;
    var node = el.firstChild;
    if (node && node.nodeType === 3 && !node.nextSibling) { node.nodeValue = text; } else { el.textContent = text; }
  }
  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) { el.setAttribute(name, value); }
  }
  function drawField(el, field, e, tag) {
    setAttr(el, 'data-f', e.f);
    if (field === 'value') {
      setText(el, (e.d === '' || e.d === null || e.d === undefined) ? '—' : e.d);
    } else if (field === 'status') {
      setText(el, e.s);
    } else if (field === 'age') {
      setText(el, ageText(e.rt));
    } else if (field === 'bar') {
      var pct = percentOf(e.v, Number(el.getAttribute('data-lo')), Number(el.getAttribute('data-hi')));
      var width = (pct === null ? 0 : pct.toFixed(1)) + '%';
      var fill = el.slFill || (el.slFill = el.querySelector('.sl-bar-fill'));
      if (fill && fill.slWidth !== width) { fill.slWidth = width; fill.style.width = width; }
    } else if (field === 'marker') {
      var track = el.parentElement;
      var p = percentOf(e.v, Number(track.getAttribute('data-lo')), Number(track.getAttribute('data-hi')));
      el.style.left = (p === null ? 0 : p) + '%';
      el.hidden = (p === null);
    } else if (field === 'time') {
      setText(el, e.ts ? new Date(e.ts).toLocaleString() + (e.tsr ? ' (receive time: the device sent none)' : '') : '');
    } else if (field === 'quality') {
      setText(el, qualityText(e));
    } else if (field === 'alarm') {
      drawAlarmField(el, tag);
    }
  }
  function drawTag(tag) {
    var els = state.index.get(tag);
    if (!els) { return; }
    var e = effective(state.data && state.data.values ? state.data.values[tag] : null);
    for (var i = 0; i < els.length; i++) { drawField(els[i], els[i].getAttribute('data-sl-field'), e, tag); }
  }
  function drawAlarmField(el, tag) {
    var summary = state.data && state.data.alarms ? state.data.alarms.summary : null;
    var worst = summary && summary.tags ? summary.tags[tag] : null;
    var key = worst ? worst.p + (worst.u ? 'u' : 'a') : '';
    if (el.getAttribute('data-alarm') === key) { return; }
    el.setAttribute('data-alarm', key);
    el.textContent = '';
    if (worst) { el.appendChild(priorityIndicator(worst.p, worst.u)); }
  }
  function priorityIndicator(priority, unacked) {
    var outer = document.createElement('span');
    outer.className = 'sl-prio sl-prio-' + priority + (unacked ? ' sl-unack' : '');
    outer.title = 'priority ' + priority + ' alarm' + (unacked ? ', unacknowledged' : '');
    var inner = document.createElement('span');
    inner.className = 'sl-prio-number';
    inner.textContent = String(priority);
    outer.appendChild(inner);
    return outer;
  }
  window.stacklightPriorityIndicator = priorityIndicator;

  // ---- the alarm engine's health (mirrors web/engine_health.py) ----------------------
  var ENGINE_UNKNOWN_OFFLINE = 'ALARM ENGINE STATE UNKNOWN (no data connection): alarms may not be evaluated';
  function durationText(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 120) { return s + ' s'; }
    if (s < 7200) { return Math.floor(s / 60) + ' min'; }
    if (s < 172800) { return Math.floor(s / 3600) + ' h'; }
    return Math.floor(s / 86400) + ' d';
  }
  function engineNotice() {
    if (!state.data) { return {state: '', text: ''}; }  // nothing heard yet: CONNECTING… says so
    var alarms = state.data.alarms;
    var engine = alarms && alarms.summary ? alarms.summary.engine : null;
    if (state.disconnected || !engine) { return {state: 'unknown', text: ENGINE_UNKNOWN_OFFLINE}; }
    var text = engine.text || '';
    if (engine.heartbeat_ms) {
      text = text.replace('{age}', durationText(Date.now() + state.clockOffsetMs - engine.heartbeat_ms));
    }
    return {state: engine.state, text: engine.state === 'running' ? '' : text};
  }
  function drawEngineNotice() {
    var notice = engineNotice();
    document.body.classList.toggle('sl-engine-down', notice.state !== '' && notice.state !== 'running');
    document.querySelectorAll('[data-sl-engine-notice]').forEach(function (el) {
      setAttr(el, 'data-state', notice.state);
      setText(el, notice.text);
    });
  }

  // ---- server-rendered times, in the browser's time zone -----------------------------
  function localTime(ms) {
    var d = new Date(ms);
    var time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
    return d.toDateString() === new Date().toDateString() ? time : d.toLocaleDateString() + ' ' + time;
  }
  function drawTimes() {
    document.querySelectorAll('[data-sl-time-ms]').forEach(function (el) {
      var ms = Number(el.getAttribute('data-sl-time-ms'));
      if (ms > 0) { setText(el, localTime(ms)); }
    });
  }

  function drawChanged() {
    if (state.indexDirty) { reindex(); }
    var values = (state.data && state.data.values) || {};
    state.index.forEach(function (_els, tag) {
      var e = values[tag];
      var n = e ? e.n : -1;
      if (state.drawnVersion.get(tag) !== n) { drawTag(tag); state.drawnVersion.set(tag, n); }
    });
  }
  function drawAll() {
    reindex();
    state.index.forEach(function (_els, tag) { drawTag(tag); });
    var values = (state.data && state.data.values) || {};
    state.index.forEach(function (_els, tag) { state.drawnVersion.set(tag, values[tag] ? values[tag].n : -1); });
    drawBanner(true);
    drawConnection();
    drawEngineNotice();
    drawTimes();
  }
  function drawBanner(force) {
    var alarms = state.data && state.data.alarms;
    if (!alarms) { return; }
    var key = state.epoch + ':' + alarms.version;
    if (!force && key === state.alarmsKey) { return; }
    state.alarmsKey = key;
    var summary = alarms.summary || {unack: {}};
    document.querySelectorAll('.sl-alarm-count').forEach(function (el) {
      var n = summary.unack[el.getAttribute('data-sl-priority')] || 0;
      el.setAttribute('data-count', String(n));
      var label = el.querySelector('.sl-alarm-count-n');
      if (label) { label.textContent = String(n); }
    });
    var newest = document.getElementById('sl-newest-alarm');
    if (newest) {
      newest.textContent = summary.newest ? summary.newest.message + ' (' + summary.newest.state_text + ')' : 'No alarms';
      newest.setAttribute('data-state', summary.newest ? summary.newest.state_text : '');
    }
    state.index.forEach(function (els, tag) {
      els.forEach(function (el) { if (el.getAttribute('data-sl-field') === 'alarm') { drawAlarmField(el, tag); } });
    });
    if (window.stacklightTone) { window.stacklightTone.update(alarms.rows || []); }
  }
  function drawConnection() {
    var label = document.getElementById('sl-conn');
    var waiting = !state.lastPushMs && Date.now() - state.startedMs < STALE_AFTER_MS;
    document.body.classList.toggle('sl-disconnected', state.disconnected && !waiting);
    if (label) {
      label.textContent = waiting ? 'CONNECTING…' : (state.disconnected ? 'NO DATA CONNECTION' : 'LIVE');
      label.setAttribute('data-state', waiting ? 'connecting' : (state.disconnected ? 'lost' : 'live'));
    }
  }
  function setDisconnected(lost) {
    if (lost === state.disconnected) { return; }
    state.disconnected = lost;
    state.connectedSinceMs = lost ? 0 : Date.now();
    state.drawnVersion.clear();  // every value changes its look
    drawChanged();
    drawConnection();
    drawEngineNotice();
  }

  // ---- once a second: ages, link watchdog, recovery ----------------------------------
  function probeDelayMs() {
    var n = Number(window.sessionStorage.getItem('sl-reloads') || 0);
    return Math.min(FIRST_PROBE_AFTER_MS * Math.pow(2, n), MAX_PROBE_DELAY_MS);
  }
  function probeAndRecover() {
    state.probing = true;
    fetch('/api/session', {credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
      if (r.status === 401) {
        window.location.href = '/login?next=' + encodeURIComponent(window.location.pathname + window.location.search);
      } else if (r.ok) {
        window.sessionStorage.setItem('sl-reloads', String(Number(window.sessionStorage.getItem('sl-reloads') || 0) + 1));
        window.location.reload();
      }
    }).catch(function () { /* server away: keep showing NO DATA CONNECTION */ })
      .finally(function () { state.probing = false; state.lastProbeMs = Date.now(); });
  }
  function tick() {
    var now = Date.now();
    var silentMs = now - (state.lastPushMs || state.startedMs);
    setDisconnected(silentMs > STALE_AFTER_MS || (state.data !== null && state.data.connected === false));
    drawConnection();
    drawEngineNotice();
    document.querySelectorAll('[data-sl-field="age"]').forEach(function (el) {
      var e = state.data && state.data.values ? state.data.values[el.getAttribute('data-sl-tag')] : null;
      setText(el, e ? ageText(e.rt) : '');
    });
    if (window.stacklightTrend) { window.stacklightTrend.follow(state); }
    if (silentMs > probeDelayMs() && !state.probing && now - (state.lastProbeMs || 0) > FIRST_PROBE_AFTER_MS) {
      probeAndRecover();
    }
    if (state.connectedSinceMs && now - state.connectedSinceMs > 60000) {
      window.sessionStorage.removeItem('sl-reloads');
    }
  }

  // ---- the session ended or changed on the server (web/live_push.py) -----------------
  function leaveForSession(reason) {
    if (state.leaving) { return; }
    state.leaving = true;
    if (reason === 'changed') {
      window.location.reload();
    } else {
      window.location.href = '/login?next=' + encodeURIComponent(window.location.pathname + window.location.search);
    }
  }

  // ---- entry points for Dash clientside callbacks ------------------------------------
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.stacklight = {
    onLiveData: function (data) {
      if (data && data.session) { leaveForSession(data.session); return window.dash_clientside.no_update; }
      if (!data || !data.values) { return window.dash_clientside.no_update; }
      if (data.epoch !== state.epoch) { state.epoch = data.epoch; state.drawnVersion.clear(); }
      state.data = data;
      state.lastPushMs = Date.now();
      state.clockOffsetMs = data.now - Date.now();
      setDisconnected(data.connected === false);
      drawChanged();
      drawBanner(false);
      drawConnection();
      drawEngineNotice();
      if (window.stacklightTrend) { window.stacklightTrend.extend(state); }
      return window.dash_clientside.no_update;
    },
    // The four alarm lists of the alarm page and the counts in its tabs (layouts/alarms.py LISTS).
    alarmLists: function (data) {
      var noUpdate = window.dash_clientside.no_update;
      var unchanged = [noUpdate, noUpdate, noUpdate, noUpdate, noUpdate, noUpdate, noUpdate, noUpdate];
      if (!data || !data.alarms) { return unchanged; }
      var ctx = window.dash_clientside.callback_context;
      var initial = !ctx || !ctx.triggered || !ctx.triggered.length || ctx.triggered[0].prop_id === '.';
      var key = data.epoch + ':' + data.alarms.version;
      if (!initial && key === state.alarmRowsKey) { return unchanged; }
      state.alarmRowsKey = key;
      var a = data.alarms;
      var lists = [a.rows || [], a.shelved || [], a.suppressed || [], a.out_of_service || []];
      var names = ['Active alarms', 'Shelved', 'Suppressed by design', 'Out of service'];
      return lists.concat(lists.map(function (rows, i) { return names[i] + ' (' + rows.length + ')'; }));
    },
    // The faceplate's alarm section is redrawn by the server when the alarm view moved (layouts/faceplate.py).
    alarmViewKey: function (data, seen) {
      if (!data || !data.alarms) { return window.dash_clientside.no_update; }
      var key = data.epoch + ':' + data.alarms.version;
      return key === seen ? window.dash_clientside.no_update : key;
    }
  };

  function start() {
    observer.observe(document.body, {childList: true, subtree: true, attributes: true,
                                      attributeFilter: ['data-sl-rows']});
    window.setInterval(tick, 1000);
  }
  if (document.body) { start(); } else { document.addEventListener('DOMContentLoaded', start); }
}());
