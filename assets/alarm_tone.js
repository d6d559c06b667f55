/* Stacklight alarm tone: a distinct pattern per priority while new alarms are unacknowledged.
 *
 * live_render.js hands over the alarm rows on every alarm change (update(rows)). An alarm
 * sounds while it is unacknowledged and came after the last Silence; it is known by its id
 * and activation time, so an alarm that comes back sounds again. Only the highest priority
 * sounding plays, repeated every PATTERNS[p].periodMs. Silence quiets the alarms sounding now
 * (kept in sessionStorage, so a reload does not sound them again); Mute is remembered in
 * localStorage. Browsers start audio only after a user gesture: the first click or key
 * anywhere arms it, and the banner says "Sound off (click to enable)" until then.
 * Controls: #sl-tone-silence, #sl-tone-mute, #sl-tone-state in the banner (web/shell.py).
 */
(function () {
  'use strict';

  var MUTE_KEY = 'sl-tone-muted';
  var SILENCED_KEY = 'sl-tone-silenced';
  var TICK_MS = 250;
  var VOLUME = 0.25;
  // Per priority: repeat period, wave form, notes as [frequency Hz, start s, length s].
  var PATTERNS = {
    1: {periodMs: 2000, wave: 'square', notes: [[988, 0, 0.12], [988, 0.2, 0.12], [988, 0.4, 0.12]]},
    2: {periodMs: 3000, wave: 'triangle', notes: [[784, 0, 0.22], [587, 0.3, 0.22]]},
    3: {periodMs: 6000, wave: 'sine', notes: [[659, 0, 0.35]]},
    4: {periodMs: 12000, wave: 'sine', notes: [[440, 0, 0.25]]}
  };

  function readStorage(storage, key) {
    try { return window[storage].getItem(key); } catch (e) { return null; }
  }
  function writeStorage(storage, key, value) {
    try { window[storage].setItem(key, value); } catch (e) { /* private mode: remembered for this page only */ }
  }
  function loadSilenced() {
    try { return new Set(JSON.parse(readStorage('sessionStorage', SILENCED_KEY) || '[]')); } catch (e) { return new Set(); }
  }

  var tone = {
    context: null, armed: false, muted: readStorage('localStorage', MUTE_KEY) === '1', rows: [],
    silenced: loadSilenced(), sounding: null, lastPlayMs: 0, plays: {1: 0, 2: 0, 3: 0, 4: 0}
  };

  function alarmKey(row) { return row.alarm_id + '@' + row.time_ms; }
  function unacked(rows) { return rows.filter(function (r) { return r && r.unacked; }); }

  function soundingPriority() {
    var best = null;
    unacked(tone.rows).forEach(function (row) {
      if (!tone.silenced.has(alarmKey(row)) && PATTERNS[row.priority] && (best === null || row.priority < best)) {
        best = row.priority;
      }
    });
    return best;
  }

  function play(priority) {
    tone.plays[priority] += 1;
    var ctx = tone.context;
    if (!ctx) { return; }
    var pattern = PATTERNS[priority];
    var t0 = ctx.currentTime + 0.02;
    pattern.notes.forEach(function (note) {
      var start = t0 + note[1], end = start + note[2];
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = pattern.wave;
      osc.frequency.value = note[0];
      gain.gain.setValueAtTime(0, start);
      gain.gain.linearRampToValueAtTime(VOLUME, start + 0.01);
      gain.gain.setValueAtTime(VOLUME, end - 0.02);
      gain.gain.linearRampToValueAtTime(0, end);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start);
      osc.stop(end + 0.01);
    });
  }

  // ---- the banner control ------------------------------------------------------------
  // Called every tick: writes only what differs (the banner may be drawn after this script runs).
  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }
  function setAttr(el, name, value) { if (el.getAttribute(name) !== value) { el.setAttribute(name, value); } }
  function draw() {
    var box = document.getElementById('sl-tone');
    if (!box) { return; }
    var state = !tone.armed ? 'off' : (tone.muted ? 'muted' : (tone.sounding ? 'sounding' : 'quiet'));
    setAttr(box, 'data-state', state);
    setAttr(box, 'data-sounding', tone.sounding ? String(tone.sounding) : '');
    setText(document.getElementById('sl-tone-state'), {
      off: tone.context === false ? 'No sound in this browser' : 'Sound off (click to enable)',
      muted: 'Sound muted', sounding: 'Sounding: priority ' + tone.sounding, quiet: 'Sound on'
    }[state]);
    var mute = document.getElementById('sl-tone-mute');
    if (mute) {
      setText(mute, tone.muted ? 'Unmute' : 'Mute');
      setAttr(mute, 'aria-pressed', tone.muted ? 'true' : 'false');
    }
    var silence = document.getElementById('sl-tone-silence');
    if (silence && silence.disabled !== !tone.sounding) { silence.disabled = !tone.sounding; }
  }

  // ---- arming: audio starts only after a user gesture ---------------------------------
  function createContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { tone.context = false; return; }
    try { tone.context = new Context(); } catch (e) { tone.context = false; }
  }
  function arm() {
    if (tone.armed) { return; }
    if (tone.context === null) { createContext(); }
    if (!tone.context) { draw(); return; }
    tone.armed = true;
    if (tone.context.state === 'suspended') { tone.context.resume().catch(function () {}); }
    tone.lastPlayMs = 0;
    draw();
  }

  // ---- the actions -------------------------------------------------------------------
  function update(rows) {
    tone.rows = Array.isArray(rows) ? rows : [];
    // Forget silenced alarms that are no longer unacknowledged (acknowledged, or cleared and gone).
    var current = new Set(unacked(tone.rows).map(alarmKey));
    var kept = Array.from(tone.silenced).filter(function (k) { return current.has(k); });
    if (kept.length !== tone.silenced.size) {
      tone.silenced = new Set(kept);
      writeStorage('sessionStorage', SILENCED_KEY, JSON.stringify(kept));
    }
    tick();
  }
  function silence() {
    unacked(tone.rows).forEach(function (row) { tone.silenced.add(alarmKey(row)); });
    writeStorage('sessionStorage', SILENCED_KEY, JSON.stringify(Array.from(tone.silenced)));
    tick();
  }
  function setMuted(muted) {
    tone.muted = muted;
    writeStorage('localStorage', MUTE_KEY, muted ? '1' : '0');
    tone.lastPlayMs = 0;
    draw();
  }
  function tick() {
    var priority = soundingPriority();
    if (priority !== tone.sounding) {
      var higher = priority !== null && (tone.sounding === null || priority < tone.sounding);
      tone.sounding = priority;
      if (higher) { tone.lastPlayMs = 0; }  // a more urgent alarm is heard at once
    }
    draw();
    if (priority === null || !tone.armed || tone.muted) { return; }
    var now = Date.now();
    if (now - tone.lastPlayMs >= PATTERNS[priority].periodMs) {
      tone.lastPlayMs = now;
      play(priority);
    }
  }

  function onGesture(event) {
    arm();
    var target = event.target && event.target.closest ? event.target : null;
    if (event.type !== 'click' || !target) { return; }
    if (target.closest('#sl-tone-silence')) { silence(); } else if (target.closest('#sl-tone-mute')) { setMuted(!tone.muted); }
  }
  document.addEventListener('click', onGesture, true);
  document.addEventListener('keydown', onGesture, true);

  // A kiosk browser may allow audio without a gesture: then the tone is armed at once.
  function start() {
    createContext();
    if (tone.context && tone.context.state === 'running') { arm(); }
    window.setInterval(tick, TICK_MS);
  }
  if (document.body) { start(); } else { document.addEventListener('DOMContentLoaded', start); }

  window.stacklightTone = {
    update: update,
    silence: silence,
    setMuted: setMuted,
    // For tests and diagnostics: what the tone is doing, without listening.
    status: function () {
      return {armed: tone.armed, muted: tone.muted, sounding: tone.sounding, plays: Object.assign({}, tone.plays),
              silenced: tone.silenced.size};
    }
  };
}());
