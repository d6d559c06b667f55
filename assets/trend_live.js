/* Stacklight trend (layouts/trend.py), the browser's part:
 * - extends the pens of a live preset of up to an hour with every live push (Plotly.extendTraces),
 *   dropping points that slid out of the window, and slides the window with the clock;
 * - sends zooms and pans by the operator to the server, debounced (it re-queries that span);
 * - writes the trend into the address, downloads the PNG, keeps the CSV link on "now" while live.
 * x values are the browser's wall clock in ms read as UTC (web/trend_figure.py axis_x).
 * Defines window.stacklightTrend: live_render.js calls
 * extend() on every push and follow() once a second.
 */
(function () {
  'use strict';

  var ZOOM_DEBOUNCE_MS = 400;
  var SLIDE_TICK_MS = 250;
  var MARGIN_POINTS = 2;  // kept left of the window, so the line enters from the edge

  function graph() {
    var gd = document.querySelector('.sl-trend-graph .js-plotly-plot');
    return (gd && gd.data && gd.layout && window.Plotly) ? gd : null;
  }
  function meta(gd) { return (gd && gd.layout && gd.layout.meta) || null; }
  function clockNow() {
    var live = window.stacklight;
    return Date.now() + ((live && live.clockOffsetMs) || 0);
  }
  function axisX(ms, offsetMin) { return ms + offsetMin * 60000; }
  // The first index whose x is at least `x` (x ascending).
  function firstAtLeast(xs, x) {
    var lo = 0, hi = xs.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (xs[mid] < x) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }
  function scaled(value, scale) {
    if (value === null || !scale) { return value; }
    return (value - scale[0]) / (scale[1] - scale[0]) * 100;
  }

  function extend(state) {
    var gd = graph(), m = meta(gd);
    if (!m || !m.extend) { return; }
    var values = (state.data && state.data.values) || {};
    var offset = m.utc_offset_min || 0, now = clockNow(), windowMs = m.window_ms;
    // At most ~1500 points across the window from the live push, whatever its rate.
    var stepMs = Math.max(200, windowMs / 1500), holdMs = Math.max(1000, windowMs / 1500);
    var keepFrom = axisX(now - windowMs, offset);
    // Normalised pens (meta.scale) also carry the real value (customdata): one call for each kind.
    var groups = {plain: {x: [], y: [], idx: [], max: []}, scaled: {x: [], y: [], customdata: [], idx: [], max: []}};
    gd.data.forEach(function (trace, i) {
      var tm = trace.meta || {};
      var e = tm.tag ? values[tm.tag] : null;
      if (!e || e.ts === null || e.ts === undefined) { return; }
      if (trace.slLastX === undefined) { trace.slLastX = trace.slLastSampleTs = tm.last_ts || 0; }
      var live = e.f === 'live' || e.f === 'uncertain';
      var v = (!live || e.v === null) ? null : (typeof e.v === 'boolean' ? (e.v ? 1 : 0) : Number(e.v));
      var x;
      if (e.ts > trace.slLastSampleTs && (v === null || e.ts - trace.slLastX >= stepMs)) {
        trace.slLastSampleTs = e.ts;
        x = Math.max(e.ts, trace.slLastX);  // a new sample; never drawn before a held point
      } else if (now - trace.slLastX >= holdMs) {
        x = Math.max(now, trace.slLastX);   // unchanged (or too soon to draw): held while live, a gap when not
        trace.slLastSampleTs = Math.max(trace.slLastSampleTs, e.ts);
      } else {
        return;
      }
      trace.slLastX = x;
      var xs = trace.x || [];
      var dropped = Math.max(0, firstAtLeast(xs, keepFrom) - MARGIN_POINTS);
      var group = tm.scale ? groups.scaled : groups.plain;
      group.idx.push(i);
      group.x.push([axisX(x, offset)]);
      group.y.push([scaled(v, tm.scale)]);
      if (tm.scale) { group.customdata.push([v]); }
      group.max.push(xs.length - dropped + 1);
    });
    [groups.plain, groups.scaled].forEach(function (group) {
      if (!group.idx.length) { return; }
      var update = {x: group.x, y: group.y}, limits = {x: group.max, y: group.max};
      if (group.customdata) { update.customdata = group.customdata; limits.customdata = group.max; }
      window.Plotly.extendTraces(gd, update, group.idx, limits);
    });
  }

  // The window of a live preset follows the clock, a step about every pixel; not after the operator
  // zoomed or panned (the figure of that span is on its way), so the zoom is neither undone nor lost.
  var lastSlide = 0, zoomedFigure = null;
  // Zooms and pans by the operator, from Plotly's own event (a drag or pan reports xaxis.range[0]
  // and [1]; our slide() sets xaxis.range and is not one): the slide stops at once, and the span
  // goes to the server debounced, through the trend-zoom store. Not through the graph's
  // relayoutData: a slide or a new figure in between could replace it before Dash read it.
  var zoomSeq = 0;
  function watchZoom(gd) {
    if (!gd || gd.slZoomWatched || typeof gd.on !== 'function') { return; }
    gd.slZoomWatched = true;
    gd.on('plotly_relayout', function (ev) {
      if (!ev || ev['xaxis.range[0]'] === undefined || ev['xaxis.range[1]'] === undefined) { return; }
      zoomedFigure = meta(gd);
      var seq = ++zoomSeq, start = ev['xaxis.range[0]'], end = ev['xaxis.range[1]'];
      window.setTimeout(function () {
        if (seq === zoomSeq && window.dash_clientside && window.dash_clientside.set_props) {
          window.dash_clientside.set_props('trend-zoom', {data: {start: start, end: end, seq: seq}});
        }
      }, ZOOM_DEBOUNCE_MS);
    });
  }
  function slide() {
    var gd = graph(), m = meta(gd);
    watchZoom(gd);
    pngName(gd, m);
    if (!m || !m.extend || document.hidden || m === zoomedFigure) { return; }
    var now = clockNow();
    if (now - lastSlide < Math.max(SLIDE_TICK_MS, m.window_ms / 1200)) { return; }
    lastSlide = now;
    var offset = m.utc_offset_min || 0;
    // 'xaxis.range' as a whole: the zoom handler below knows this is not the operator.
    window.Plotly.relayout(gd, {'xaxis.range': [axisX(now - m.window_ms, offset), axisX(now, offset)]});
  }
  window.setInterval(slide, SLIDE_TICK_MS);

  // The modebar's camera names its file like the PNG button (the figure says the name; the
  // graph's config stays the same, so a new figure is not a new plot).
  function pngName(gd, m) {
    if (!gd || !m || !gd._context) { return; }
    var options = gd._context.toImageButtonOptions || {};
    if (options.filename !== m.png_name) {
      gd._context.toImageButtonOptions = {format: 'png', filename: m.png_name, scale: 2};
    }
  }

  // While live, the CSV link asks for the window as it is at the click (or key press).
  function csvOnNow(ev) {
    var link = ev.target && ev.target.closest ? ev.target.closest('#trend-csv') : null;
    var gd = graph(), m = meta(gd);
    if (!link || !m || !m.live || !link.getAttribute('href')) { return; }
    var url = new URL(link.href, window.location.href), now = clockNow();
    url.searchParams.set('start', new Date(now - m.window_ms).toISOString());
    url.searchParams.set('end', new Date(now).toISOString());
    link.setAttribute('href', url.pathname + url.search);
  }
  ['mousedown', 'click', 'keydown'].forEach(function (name) { document.addEventListener(name, csvOnNow, true); });

  function plotWidth() {
    var el = document.querySelector('.sl-trend-graph');
    return el ? Math.max(200, el.clientWidth - 140) : 1200;
  }
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () {
      if (!graph() || !window.dash_clientside.set_props) { return; }
      window.dash_clientside.set_props('trend-client', {data: {utc_offset_min: -new Date().getTimezoneOffset(),
                                                               plot_px: plotWidth()}});
    }, 800);
  });

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.stacklightTrend = {
    client: function () {
      return {utc_offset_min: -new Date().getTimezoneOffset(), plot_px: plotWidth()};
    },
    address: function (query) {
      if (typeof query !== 'string') { return window.dash_clientside.no_update; }
      var target = '/trend' + (query ? '?' + query : '');
      if (window.location.pathname === '/trend' && window.location.pathname + window.location.search !== target) {
        window.history.replaceState(null, '', target);
      }
      return window.dash_clientside.no_update;
    },
    png: function () {
      var gd = graph(), m = meta(gd);
      if (gd) {
        window.Plotly.downloadImage(gd, {format: 'png', filename: (m && m.png_name) || 'trend',
                                         width: gd._fullLayout.width, height: gd._fullLayout.height});
      }
      return window.dash_clientside.no_update;
    }
  };

  window.stacklightTrend = {extend: extend, follow: function () { /* slide() runs on its own timer */ }};
}());
