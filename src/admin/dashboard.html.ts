/**
 * The live dashboard served at `GET /dashboard/` on the admin port: one self-contained page
 * (inline CSS and JS, no CDN, no build step) that polls `../stats.json` and draws small SVG
 * time series. Every figure is written with textContent, never as HTML.
 *
 * Kept as a string (not a file) so the core serves it on every runtime without a filesystem.
 * The script below avoids template literals so this file needs no escaping.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tidings dashboard</title>
<link rel="icon" href="data:,">
<style>
:root { --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #d0d5dd;
  --accent: #2563eb; --ok: #16a34a; --warn: #d97706; --bad: #dc2626; color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1320; --card: #171c2c; --fg: #e6e8ee; --muted: #98a2b3; --line: #2c3448; --accent: #60a5fa; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: baseline; padding: 14px 20px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.badge.ready { background: var(--ok); } .badge.draining { background: var(--warn); } .badge.down { background: var(--bad); }
main { padding: 16px 20px; display: grid; gap: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card h2 { font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 4px; }
.value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.sub { font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 12px; }
svg.chart { width: 100%; height: 90px; display: block; margin-top: 6px; }
svg.chart polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
svg.chart polygon { fill: var(--accent); opacity: .12; }
svg.chart line { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: var(--muted); }
.dot.up { background: var(--ok); } .dot.down { background: var(--bad); }
footer { padding: 0 20px 16px; font-size: 12px; color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>tidings</h1>
  <span id="state" class="badge">connecting</span>
  <span class="muted">fingerprint <code id="fingerprint">-</code></span>
  <span class="muted">up <span id="uptime">-</span></span>
</header>
<main>
  <section class="cards">
    <div class="card"><h2>Connections</h2><div class="value" id="connections">-</div><div class="sub"><span id="subscriptions">-</span> subscriptions</div></div>
    <div class="card"><h2>Messages / s</h2><div class="value" id="messages-rate">-</div><div class="sub"><span id="messages-total">-</span> received</div></div>
    <div class="card"><h2>Deliveries / s</h2><div class="value" id="deliveries-rate">-</div><div class="sub"><span id="deliveries-total">-</span> delivered</div></div>
    <div class="card"><h2>Dropped and rejected</h2><div class="value" id="problems">-</div><div class="sub">slow <span id="slow">-</span> · frames <span id="bad-frames">-</span> · bodies <span id="bad-bodies">-</span> · limits <span id="limits">-</span></div></div>
    <div class="card"><h2>Runtime</h2><div class="value" id="loop-delay">-</div><div class="sub">event-loop p99 · RSS <span id="rss">-</span></div></div>
  </section>
  <section class="charts">
    <div class="card"><h2>Connections</h2><svg class="chart" id="chart-connections" viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label="connections over time"></svg><div class="sub">max <span id="max-connections">-</span></div></div>
    <div class="card"><h2>Messages / s</h2><svg class="chart" id="chart-messages" viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label="messages per second over time"></svg><div class="sub">max <span id="max-messages">-</span></div></div>
    <div class="card"><h2>Deliveries / s</h2><svg class="chart" id="chart-deliveries" viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label="deliveries per second over time"></svg><div class="sub">max <span id="max-deliveries">-</span></div></div>
  </section>
  <section class="card">
    <h2>Instances</h2>
    <table id="instances"><thead><tr><th>instance</th><th>connections</th><th>subscriptions</th><th>messages in</th><th>messages out</th><th>history</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Cluster peers</h2>
    <table id="peers"><thead><tr><th>peer</th><th>state</th><th>failures</th><th>queue</th><th>sent</th><th>failed</th><th>dropped</th><th>last success</th></tr></thead><tbody></tbody></table>
    <p class="sub" id="no-peers" hidden>No cluster peers configured.</p>
  </section>
  <section class="card">
    <h2>Backplane</h2>
    <table id="backplane"><thead><tr><th>type</th><th>state</th><th>buffered</th><th>published</th><th>received</th><th>dropped</th><th>reconnects</th><th>channels</th><th>publish p50</th></tr></thead><tbody></tbody></table>
    <p class="sub" id="no-backplane" hidden>No backplane configured.</p>
  </section>
</main>
<footer>Refreshing every <span id="interval">-</span> s from <code>stats.json</code> · last update <span id="updated">never</span></footer>
<script>
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var interval = Math.max(250, Number(params.get('interval')) || 2000);
  var keep = 150;
  var series = { connections: [], messages: [], deliveries: [] };
  var previous = null;
  var $ = function (id) { return document.getElementById(id); };
  var text = function (id, value) { $(id).textContent = value; };
  var integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  var decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  var rate = function (n) { return n < 100 ? decimal.format(n) : integer.format(n); };
  text('interval', decimal.format(interval / 1000));

  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return decimal.format(n) + ' ' + units[i];
  }
  function duration(ms) {
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }
  function push(list, value) {
    list.push(value);
    if (list.length > keep) list.shift();
  }
  var SVG = 'http://www.w3.org/2000/svg';
  function chart(id, values) {
    var svg = $(id);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var max = 0;
    for (var i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
    var top = max > 0 ? max * 1.1 : 1;
    var grid = document.createElementNS(SVG, 'line');
    grid.setAttribute('x1', '0'); grid.setAttribute('x2', '300');
    grid.setAttribute('y1', '79.5'); grid.setAttribute('y2', '79.5');
    svg.appendChild(grid);
    if (values.length === 0) return max;
    var step = 300 / (keep - 1);
    var x0 = 300 - (values.length - 1) * step;
    var points = [];
    for (var j = 0; j < values.length; j++) {
      var x = x0 + j * step;
      var y = 80 - (values[j] / top) * 76;
      points.push(x.toFixed(1) + ',' + y.toFixed(1));
    }
    var area = document.createElementNS(SVG, 'polygon');
    area.setAttribute('points', x0.toFixed(1) + ',80 ' + points.join(' ') + ' 300,80');
    svg.appendChild(area);
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.join(' '));
    svg.appendChild(line);
    return max;
  }
  function cell(row, value) {
    var td = document.createElement('td');
    td.textContent = value;
    row.appendChild(td);
    return td;
  }
  function instances(list) {
    var body = $('instances').tBodies[0];
    body.textContent = '';
    list.forEach(function (i) {
      var row = document.createElement('tr');
      row.dataset.instance = i.name;
      cell(row, i.name);
      cell(row, integer.format(i.connections));
      cell(row, integer.format(i.subscriptions));
      cell(row, integer.format(i.messagesIn));
      cell(row, integer.format(i.messagesOut));
      cell(row, integer.format(i.historySize));
      body.appendChild(row);
    });
  }
  function peers(list, now) {
    var body = $('peers').tBodies[0];
    body.textContent = '';
    $('no-peers').hidden = list.length > 0;
    list.forEach(function (p) {
      var row = document.createElement('tr');
      row.dataset.peer = p.peer;
      cell(row, p.peer);
      var state = cell(row, '');
      var dot = document.createElement('span');
      dot.className = 'dot ' + (p.up ? 'up' : 'down');
      state.appendChild(dot);
      state.appendChild(document.createTextNode(p.state));
      cell(row, integer.format(p.failures));
      cell(row, integer.format(p.queueDepth));
      cell(row, integer.format(p.sent));
      cell(row, integer.format(p.failed));
      cell(row, integer.format(p.dropped));
      cell(row, p.lastSuccess === null ? 'never' : duration(Math.max(0, now - p.lastSuccess)) + ' ago');
      body.appendChild(row);
    });
  }
  function quantile(h, q) {
    if (!h || h.count === 0) return null;
    var rank = q * h.count, seen = 0;
    for (var i = 0; i < h.counts.length; i++) {
      seen += h.counts[i];
      if (seen >= rank) return i < h.bounds.length ? h.bounds[i] : h.bounds[h.bounds.length - 1];
    }
    return null;
  }
  function backplane(b) {
    var body = $('backplane').tBodies[0];
    body.textContent = '';
    $('no-backplane').hidden = !!b;
    if (!b) return;
    var row = document.createElement('tr');
    cell(row, b.type);
    var state = cell(row, '');
    var dot = document.createElement('span');
    dot.className = 'dot ' + (b.up ? 'up' : 'down');
    state.appendChild(dot);
    state.appendChild(document.createTextNode(b.state + (b.lastError && !b.up ? ' (' + b.lastError + ')' : '')));
    cell(row, integer.format(b.buffered));
    cell(row, integer.format(b.published));
    cell(row, integer.format(b.received));
    cell(row, integer.format(b.dropped));
    cell(row, integer.format(b.reconnects));
    cell(row, integer.format(b.channels));
    var p50 = quantile(b.latency, 0.5);
    cell(row, p50 === null ? 'n/a' : '≤ ' + decimal.format(p50 * 1000) + ' ms');
    body.appendChild(row);
  }
  function render(stats) {
    var t = stats.totals;
    var badge = $('state');
    badge.className = 'badge ' + (stats.draining ? 'draining' : stats.ready ? 'ready' : 'down');
    badge.textContent = stats.draining ? 'draining' : stats.ready ? 'ready' : 'not ready';
    text('fingerprint', stats.fingerprint);
    text('uptime', duration(stats.time - stats.startedAt));
    text('connections', integer.format(t.connections));
    text('subscriptions', integer.format(t.subscriptions));
    text('messages-total', integer.format(t.messagesIn));
    text('deliveries-total', integer.format(t.deliveries));
    text('slow', integer.format(t.slowConsumerCloses));
    text('bad-frames', integer.format(t.badFrames));
    text('bad-bodies', integer.format(t.badBodies));
    var limits = 0;
    Object.keys(stats.limited || {}).forEach(function (k) { limits += stats.limited[k]; });
    text('limits', integer.format(limits));
    // A body over the size limit is counted both as a bad body and by its limit: count it once.
    var overlap = (stats.limited && stats.limited.bodyBytes) || 0;
    text('problems', integer.format(t.slowConsumerCloses + t.badFrames + t.badBodies + limits - overlap));
    var delay = stats.runtime.eventLoopDelayP99Seconds;
    text('loop-delay', typeof delay === 'number' ? decimal.format(delay * 1000) + ' ms' : 'n/a');
    var rss = stats.runtime.residentMemoryBytes;
    text('rss', typeof rss === 'number' ? bytes(rss) : 'n/a');
    push(series.connections, t.connections);
    if (previous && stats.time > previous.time) {
      var seconds = (stats.time - previous.time) / 1000;
      var messages = Math.max(0, t.messagesIn - previous.totals.messagesIn) / seconds;
      var deliveries = Math.max(0, t.deliveries - previous.totals.deliveries) / seconds;
      push(series.messages, messages);
      push(series.deliveries, deliveries);
      text('messages-rate', rate(messages));
      text('deliveries-rate', rate(deliveries));
    }
    previous = stats;
    text('max-connections', integer.format(chart('chart-connections', series.connections)));
    text('max-messages', rate(chart('chart-messages', series.messages)));
    text('max-deliveries', rate(chart('chart-deliveries', series.deliveries)));
    instances(stats.instances);
    peers(stats.peers, stats.time);
    backplane(stats.backplane);
    text('updated', new Date(stats.time).toLocaleTimeString());
  }
  function poll() {
    fetch('../stats.json', { cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(render, function () {
        var badge = $('state');
        badge.className = 'badge down';
        badge.textContent = 'unreachable';
      })
      .then(function () { setTimeout(poll, interval); });
  }
  poll();
})();
</script>
</body>
</html>
`
