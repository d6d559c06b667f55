/* Cell renderers for the alarm list (dash-ag-grid looks them up by name). */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

dagcomponentfuncs.PriorityIndicator = function (props) {
  var priority = props.value;
  var unacked = props.data && props.data.unacked;
  return React.createElement(
    'span',
    {className: 'sl-prio sl-prio-' + priority + (unacked ? ' sl-unack' : ''), title: 'priority ' + priority},
    React.createElement('span', {className: 'sl-prio-number'}, String(priority))
  );
};

/* A link to the faceplate that navigates inside the Dash app (like dcc.Link), keeping the live socket. */
dagcomponentfuncs.TagLink = function (props) {
  // A device alarm may name a source node that is no configured tag: no faceplate to go to.
  if (props.data && props.data.has_faceplate === false) { return props.value; }
  var href = '/tag/' + encodeURIComponent(props.value);
  function go(event) {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
    event.preventDefault();
    window.history.pushState({}, '', href);
    window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
    window.scrollTo(0, 0);
  }
  return React.createElement('a', {href: href, onClick: go, className: 'sl-tag-link'}, props.value);
};
