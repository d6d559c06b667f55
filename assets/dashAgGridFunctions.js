/* Value formatters for the alarm lists (dash-ag-grid looks them up by name). */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

dagfuncs.stacklightTime = function (ms) {
  if (!ms) { return ''; }
  var d = new Date(ms);
  var today = new Date();
  var time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
  return d.toDateString() === today.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
};

/* A shelved alarm's end: a time, or (one-shot) when its condition clears, bounded by a time. */
dagfuncs.stacklightShelvedUntil = function (data) {
  if (!data) { return ''; }
  var until = data.shelved_until_ms ? dagfuncs.stacklightTime(data.shelved_until_ms) : '';
  if (data.shelve_one_shot) { return 'until it clears' + (until ? ' (at most ' + until + ')' : ''); }
  return until;
};
