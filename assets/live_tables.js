/* Stacklight tag tables: rows built in the browser from their row model (components/tag_table.py).
 *
 * One Dash component per table instead of a dozen per row keeps every live update cheap;
 * the rows carry the same data-sl-tag / data-sl-field hooks that live_render.js fills.
 */
(function () {
  'use strict';

  function element(tagName, className, attrs, text) {
    var el = document.createElement(tagName);
    if (className) { el.className = className; }
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }
  function liveSpan(tag, field, extraClass, text) {
    return element('span', 'sl-live sl-live-' + field + (extraClass ? ' ' + extraClass : ''),
                   {'data-sl-tag': tag, 'data-sl-field': field}, text || '');
  }
  function buildRow(row) {
    var tr = element('tr', 'sl-tag-row', {'data-sl-tag': row.tag, 'data-sl-field': 'row'});
    var cells = [
      [liveSpan(row.tag, 'alarm')],
      [element('a', 'sl-tag-link', {href: row.href, 'data-sl-nav': ''}, row.tag)].concat(
        row.discovered ? [element('span', 'sl-discovered-mark', {title: 'discovered at run time'}, 'D')] : []),
      [document.createTextNode(row.description)],
      [liveSpan(row.tag, 'value', '', '…'), element('span', 'sl-unit', {}, row.unit)],
      [],
      [liveSpan(row.tag, 'status')],
      [liveSpan(row.tag, 'age')]
    ];
    if (row.range) {
      var bar = element('div', 'sl-bar', {'data-sl-tag': row.tag, 'data-sl-field': 'bar', 'data-lo': row.range[0],
                                          'data-hi': row.range[1], title: row.range[0] + ' .. ' + row.range[1] + ' ' + row.unit});
      bar.appendChild(element('div', 'sl-bar-fill'));
      row.marks.forEach(function (m) {
        var tick = element('span', 'sl-bar-tick', {title: m[0]});
        tick.style.left = m[1] + '%';
        bar.appendChild(tick);
      });
      cells[4].push(bar);
    }
    var classes = ['sl-cell-alarm', 'sl-cell-name', 'sl-cell-description', 'sl-cell-value', 'sl-cell-bar',
                   'sl-cell-status', 'sl-cell-age'];
    cells.forEach(function (content, i) {
      var td = element('td', classes[i]);
      content.forEach(function (c) { td.appendChild(c); });
      tr.appendChild(td);
    });
    return tr;
  }
  // A host is built once per row model; Dash may hand an existing host a new model
  // (the overview's discovered tags), which replaces its table.
  function buildTagTables() {
    document.querySelectorAll('[data-sl-rows]').forEach(function (host) {
      var source = host.getAttribute('data-sl-rows');
      if (host.slBuiltFrom === source) { return; }
      host.slBuiltFrom = source;
      while (host.firstChild) { host.removeChild(host.firstChild); }
      var model = JSON.parse(source);
      var table = element('table', 'sl-tag-table');
      var head = element('tr');
      model.columns.forEach(function (c, i) { head.appendChild(element('th', 'sl-col-' + i, {}, c)); });
      table.appendChild(element('thead')).appendChild(head);
      var body = table.appendChild(element('tbody'));
      model.rows.forEach(function (row) { body.appendChild(buildRow(row)); });
      host.appendChild(table);
    });
  }
  // Links drawn here navigate inside the Dash app, like dcc.Link (no page reload).
  document.addEventListener('click', function (event) {
    var link = event.target.closest && event.target.closest('a[data-sl-nav]');
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
    event.preventDefault();
    window.history.pushState({}, '', link.getAttribute('href'));
    window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
    window.scrollTo(0, 0);
  });

  window.stacklightTables = {build: buildTagTables};
}());
