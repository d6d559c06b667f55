/* Stacklight trend: extends the history drawn by the server with every live push (Plotly.extendTraces),
 * and keeps the time axis on "now" unless the operator zooms or pans (double-click resumes).
 */
(function () {
  'use strict';

  var TREND_MAX_POINTS = 20000;
  // Sources report on change: an unchanged live value is drawn held, one point a second at most.
  var HOLD_INTERVAL_MS = 1000;

  function localTimeText(ms, offsetMin) {
    return new Date(ms + offsetMin * 60000).toISOString().replace('T', ' ').slice(0, 23);
  }
  function trendGraph() {
    var gd = document.querySelector('.sl-trend-graph .js-plotly-plot');
    return (gd && gd.data && window.Plotly) ? gd : null;
  }
  function extendTrend(state) {
    var gd = trendGraph();
    if (!gd) { return; }
    var values = state.data.values || {};
    var offset = (gd.layout.meta && gd.layout.meta.utc_offset_min) || 0;
    var now = Date.now() + (state.clockOffsetMs || 0);
    var xs = [], ys = [], idx = [];
    gd.data.forEach(function (trace, i) {
      var tag = trace.meta && trace.meta.tag;
      var e = tag ? values[tag] : null;
      if (!e || e.ts === null || e.ts === undefined) { return; }
      if (trace.slLastX === undefined) { trace.slLastX = trace.slLastSampleTs = trace.meta.last_ts || 0; }
      var live = e.f === 'live' || e.f === 'uncertain';
      var y = (!live || e.v === null) ? null : (typeof e.v === 'boolean' ? (e.v ? 1 : 0) : Number(e.v));
      var x;
      if (e.ts > trace.slLastSampleTs) {
        trace.slLastSampleTs = e.ts;
        x = Math.max(e.ts, trace.slLastX);  // a new sample; never drawn before a held point
      } else if (now - trace.slLastX >= HOLD_INTERVAL_MS) {
        x = now;  // no change: the value holds while live; a gap when stale or bad
      } else {
        return;
      }
      trace.slLastX = x;
      xs.push([localTimeText(x, offset)]); ys.push([y]); idx.push(i);
    });
    if (idx.length) { window.Plotly.extendTraces(gd, {x: xs, y: ys}, idx, TREND_MAX_POINTS); }
  }
  function followTrend(state) {
    var gd = trendGraph();
    if (!gd || !gd.layout.meta) { return; }
    if (!gd.slHooked) {
      gd.slHooked = true;
      gd.slFollow = true;
      // A zoom or pan by the user (xaxis.range[0]/[1]) stops following; a double-click (autorange) resumes.
      // Our own moves set 'xaxis.range' as a whole and change nothing here.
      gd.on('plotly_relayout', function (ev) {
        if (ev['xaxis.autorange']) { gd.slFollow = true; } else if (ev['xaxis.range[0]'] !== undefined) { gd.slFollow = false; }
      });
    }
    if (!gd.slFollow) { return; }
    var now = Date.now() + state.clockOffsetMs, offset = gd.layout.meta.utc_offset_min || 0;
    window.Plotly.relayout(gd, {'xaxis.range': [localTimeText(now - gd.layout.meta.window_ms, offset), localTimeText(now, offset)]});
  }

  window.stacklightTrend = {extend: extendTrend, follow: followTrend};
}());
