/* Cell renderers for the alarm lists (dash-ag-grid looks them up by name). */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

dagcomponentfuncs.PriorityIndicator = function (props) {
  // Flashing comes from the row's class (sl-alarm-unack, see stacklight.css): AG Grid redraws a
  // cell only when its own value changes, and an acknowledge does not change the priority.
  var priority = props.value;
  return React.createElement(
    'span',
    {className: 'sl-prio sl-prio-' + priority, role: 'img', title: 'priority ' + priority,
     'aria-label': 'alarm priority ' + priority},
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

/* The alarm's state in words; a latched, acknowledged alarm (LA) gets its Reset button here.
 * cellRendererParams.canReset says whether the user's role may reset (the server checks again). */
dagcomponentfuncs.AlarmState = function (props) {
  var data = props.data || {};
  var text = React.createElement('span', {className: 'sl-alarm-state-text'}, props.value);
  if (data.state !== 'LA') { return text; }
  function reset(event) {
    event.stopPropagation();
    props.setData({action: 'reset', alarm_id: data.alarm_id});
  }
  return React.createElement(
    'span', {className: 'sl-alarm-state'}, text,
    React.createElement('button', {
      className: 'sl-button sl-row-button', type: 'button', disabled: !props.canReset, onClick: reset,
      title: props.canReset ? 'Reset this latched alarm' : 'Resetting needs the operator role'
    }, 'Reset')
  );
};
