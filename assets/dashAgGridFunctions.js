/* Value formatters for the alarm list (dash-ag-grid looks them up by name). */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

dagfuncs.stacklightTime = function (ms) {
  if (!ms) { return ''; }
  var d = new Date(ms);
  var today = new Date();
  var time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
  return d.toDateString() === today.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
};
