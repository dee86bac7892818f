// DOM helpers. Everything a tenant or a reporter wrote reaches the page as a
// text node: nothing here parses HTML, so no string can become markup.

/** An element with attributes (`on*` keys become listeners) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = String(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/**
 * For each UTF-8 byte offset of `text` that starts a character (and its
 * end), the index of that character in the JavaScript string.
 */
function utf16Index(text) {
  const at = new Map();
  let byte = 0;
  let index = 0;
  for (const ch of text) {
    at.set(byte, index);
    const cp = ch.codePointAt(0);
    byte += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    index += ch.length;
  }
  at.set(byte, index);
  return at;
}

/**
 * `text` with the spans' matched words in `<mark>`. A span with `start` and
 * `end` (UTF-8 byte offsets into this excerpt, as the service records them)
 * marks exactly those words. A span without them (its words were cut from
 * the excerpt, or a record from before offsets were kept) falls back to
 * searching the excerpt for its text, case-insensitively and with runs of
 * white space read as one space (the excerpt folds them), marking every
 * occurrence. Returns the fragment and the spans found neither way.
 */
export function highlight(text, spans) {
  const ranges = [];
  const missing = [];
  const index = utf16Index(text);
  const lower = text.toLowerCase();
  // Lower-casing can change lengths for a few scripts; then match exactly.
  const haystack = lower.length === text.length ? lower : text;
  for (const span of spans) {
    const start = Number.isInteger(span.start) ? index.get(span.start) : undefined;
    const end = Number.isInteger(span.end) ? index.get(span.end) : undefined;
    if (start !== undefined && end !== undefined && start < end) {
      ranges.push({ start, end, span });
      continue;
    }
    const needleRaw = String(span.text || '').trim().replace(/\s+/g, ' ');
    if (!needleRaw) continue;
    const needle = haystack === lower ? needleRaw.toLowerCase() : needleRaw;
    let from = 0;
    let found = false;
    for (;;) {
      const at = haystack.indexOf(needle, from);
      if (at < 0) break;
      ranges.push({ start: at, end: at + needle.length, span });
      found = true;
      from = at + Math.max(needle.length, 1);
    }
    if (!found) missing.push(span);
  }
  ranges.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r.start < last.end) {
      last.end = Math.max(last.end, r.end);
      last.spans.push(r.span);
    } else {
      merged.push({ start: r.start, end: r.end, spans: [r.span] });
    }
  }
  const frag = document.createDocumentFragment();
  let pos = 0;
  for (const r of merged) {
    if (r.start > pos) frag.append(document.createTextNode(text.slice(pos, r.start)));
    const why = [...new Set(r.spans.map((s) => `${s.category} (${s.detector})`))].join(', ');
    const mark = el('mark', { title: `Matched: ${why}` });
    mark.append(document.createTextNode(text.slice(r.start, r.end)));
    frag.append(mark);
    pos = r.end;
  }
  if (pos < text.length) frag.append(document.createTextNode(text.slice(pos)));
  return { fragment: frag, marks: merged.length, missing };
}

/** `3d 4h`, `2h 03m`, `4m 05s`, `12s`. */
export function formatDuration(totalSeconds) {
  let s = Math.floor(Math.abs(totalSeconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const p = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${h}h ${p(m)}m`;
  if (h > 0) return `${h}h ${p(m)}m ${p(s)}s`;
  if (m > 0) return `${m}m ${p(s)}s`;
  return `${s}s`;
}

/** Seconds left within which a deadline counts as approaching. */
export const APPROACHING_SECS = 3600;

/** How urgent a deadline is: level, icon and words (never colour alone). */
export function urgency(secondsLeft) {
  if (secondsLeft === null || secondsLeft === undefined) {
    return { level: 'none', icon: '–', label: 'No deadline running' };
  }
  if (secondsLeft < 0) {
    return { level: 'overdue', icon: '✖', label: `OVERDUE by ${formatDuration(secondsLeft)}` };
  }
  if (secondsLeft <= APPROACHING_SECS) {
    return { level: 'soon', icon: '⚠', label: `Due soon: ${formatDuration(secondsLeft)} left` };
  }
  return { level: 'ok', icon: '◷', label: `${formatDuration(secondsLeft)} left` };
}

/** A timestamp for people, with its time zone and the exact instant as a tooltip. */
export function time(iso) {
  if (!iso) return el('span', {}, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return el('span', {}, String(iso));
  // The zone is named: an operator comparing a deadline with a tenant's
  // mail must know which clock it is on.
  const shown = d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  });
  return el('time', { datetime: d.toISOString(), title: d.toISOString() }, shown);
}

/** A percentage with one decimal. */
export const pct = (x) => `${(Number(x) * 100).toFixed(1)}%`;

/**
 * A small chart of each category's prevalence: a bar at the estimate, a
 * whisker for the 95% interval and a tick at the case rule's tolerance.
 */
export function prevalenceChart(rows, title) {
  const rowH = 22;
  const labelW = 170;
  const plotW = 300;
  const h = rows.length * rowH + 30;
  const max = Math.max(0.05, ...rows.map((r) => Number(r.upper) || 0), ...rows.map((r) => Number(r.tolerance) || 0));
  const x = (v) => labelW + (Math.min(Number(v) || 0, max) / max) * plotW;
  const chart = svg('svg', {
    viewBox: `0 0 ${labelW + plotW + 70} ${h}`,
    role: 'img',
    'aria-labelledby': 'prev-chart-title',
    class: 'prev-chart',
  });
  chart.append(svg('title', { id: 'prev-chart-title' }, title));
  rows.forEach((r, i) => {
    const y = i * rowH + 6;
    const cls = r.threshold_crossed ? 'bar bar-crossed' : 'bar';
    chart.append(
      svg('text', { x: labelW - 6, y: y + 13, 'text-anchor': 'end', class: 'chart-label' }, r.category),
      svg('rect', { x: labelW, y: y + 3, width: Math.max(0, x(r.rate) - labelW), height: 12, class: cls }),
      svg('line', { x1: x(r.lower), x2: x(r.upper), y1: y + 9, y2: y + 9, class: 'whisker' }),
      svg('line', { x1: x(r.lower), x2: x(r.lower), y1: y + 4, y2: y + 14, class: 'whisker' }),
      svg('line', { x1: x(r.upper), x2: x(r.upper), y1: y + 4, y2: y + 14, class: 'whisker' }),
      svg('line', { x1: x(r.tolerance), x2: x(r.tolerance), y1: y + 1, y2: y + 17, class: 'tolerance' }),
      svg('text', { x: x(r.upper) + 6, y: y + 13, class: 'chart-value' }, pct(r.rate)),
    );
  });
  const axisY = rows.length * rowH + 12;
  chart.append(
    svg('line', { x1: labelW, x2: labelW + plotW, y1: axisY, y2: axisY, class: 'axis' }),
    svg('text', { x: labelW, y: axisY + 14, class: 'chart-value' }, '0%'),
    svg('text', { x: labelW + plotW, y: axisY + 14, 'text-anchor': 'end', class: 'chart-value' }, pct(max)),
  );
  return chart;
}
