// The abuse team's console: case queue, case detail with evidence and
// actions, tenants and webhook deliveries. Plain ES modules over the public
// API; tenant content is only ever rendered as text.

import { api, get, post, seg, session, describe, ApiError } from './api.js';
import { el, highlight, urgency, time, pct, prevalenceChart } from './dom.js';

const main = document.getElementById('main');
const statusRegion = document.getElementById('status');

const CASE_STATES = ['open', 'noticed', 'plan_submitted', 'verifying', 'escalated', 'suspension_proposed',
  'suspension_ordered', 'suspended', 'reinstated', 'cured', 'dismissed'];
const FINAL_STATES = new Set(['reinstated', 'cured', 'dismissed']);
const SEVERITIES = ['critical', 'high', 'medium', 'low'];
const CONSOLE_ROLES = new Set(['operator', 'approver', 'admin', 'reviewer']);

/** Who is signed in: `{name, role}` from `GET /v1/tokens/self`. */
let me = null;
/** Live countdowns on screen, refreshed every second. */
let countdowns = [];
/** Browser clock minus aupd's clock, in ms, from the last case answer. */
let skewMs = 0;
/** The queue's filters, kept while moving between screens. */
const filters = { state: '', severity: '', category: '', tenant: '' };
/** Which route rendered last, so stale answers are dropped. */
let renderSeq = 0;

const isOperator = () => me && (me.role === 'operator' || me.role === 'admin');

/** Tells screen-reader users about a change, politely. */
function announce(message) {
  statusRegion.textContent = '';
  // A fresh text node makes repeated identical messages heard again.
  setTimeout(() => { statusRegion.textContent = message; }, 30);
}

function problem(err) {
  return el('p', { class: 'error', role: 'alert' }, el('span', { 'aria-hidden': 'true' }, '✖ '), describe(err));
}

function notice(text) {
  return el('p', { class: 'note' }, text);
}

function heading(text) {
  return el('h1', { tabindex: '-1' }, text);
}

function section(title, id, ...body) {
  return el('section', { 'aria-labelledby': `${id}-h`, id },
    el('h2', { id: `${id}-h` }, title), ...body);
}

function badge(kind, value) {
  return el('span', { class: `badge ${kind}-${value}` }, String(value).replaceAll('_', ' '));
}

// ---- countdowns -----------------------------------------------------------

function learnSkew(c) {
  if (c.deadline_due_at && typeof c.seconds_to_deadline === 'number') {
    skewMs = (Date.parse(c.deadline_due_at) - Date.now()) - c.seconds_to_deadline * 1000;
  }
}

function secondsLeft(c) {
  if (!c.deadline_due_at || FINAL_STATES.has(c.state)) return null;
  return Math.floor((Date.parse(c.deadline_due_at) - Date.now() - skewMs) / 1000);
}

/** A countdown cell: icon + words + colour, updated every second. */
function countdown(c, label) {
  const node = el('span', { class: 'countdown' });
  const entry = { node, c, label, level: null };
  paintCountdown(entry, false);
  countdowns.push(entry);
  return node;
}

function paintCountdown(entry, speak) {
  const { node, c } = entry;
  if (c.paused_remaining && !c.deadline_due_at) {
    node.className = 'countdown countdown-paused';
    node.replaceChildren(el('span', { 'aria-hidden': 'true', class: 'icon' }, '‖'), ' Clock paused');
    entry.level = 'paused';
    return;
  }
  const u = urgency(secondsLeft(c));
  node.className = `countdown countdown-${u.level}`;
  node.replaceChildren(el('span', { 'aria-hidden': 'true', class: 'icon' }, u.icon), ` ${u.label}`);
  if (speak && entry.level !== u.level && (u.level === 'overdue' || u.level === 'soon')) {
    announce(`${entry.label}: ${u.level === 'overdue' ? 'deadline passed' : 'deadline within the hour'}.`);
  }
  entry.level = u.level;
}

setInterval(() => {
  for (const entry of countdowns) if (entry.node.isConnected) paintCountdown(entry, true);
  countdowns = countdowns.filter((e) => e.node.isConnected);
}, 1000);

// ---- routing --------------------------------------------------------------

async function whoAmI() {
  if (!session.token()) return null;
  try {
    const who = await get('/v1/tokens/self');
    return CONSOLE_ROLES.has(who.role) ? who : null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) session.clear();
    return null;
  }
}

function showChrome() {
  const signedIn = Boolean(me);
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  document.getElementById('who-name').textContent = signedIn ? `${me.name} (${me.role})` : '';
  for (const a of document.querySelectorAll('#nav a')) {
    const here = location.hash.startsWith(a.getAttribute('href'))
      || (a.getAttribute('href') === '#/queue' && location.hash.startsWith('#/case/'));
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    // A reviewer's token reaches the review routes only.
    a.parentElement.hidden = signedIn && me.role === 'reviewer' && a.getAttribute('href') !== '#/review';
  }
}

async function route() {
  const hash = location.hash || '#/queue';
  // In-page anchors (the skip link) are not routes.
  if (!hash.startsWith('#/')) return;
  const seq = ++renderSeq;
  if (!me) me = await whoAmI();
  if (seq !== renderSeq) return;
  countdowns = [];
  if (!me) {
    showChrome();
    return renderSignIn();
  }
  showChrome();
  const [, view, arg] = hash.split('?')[0].split('/');
  const fresh = () => seq === renderSeq;
  if (view === 'case' && arg) return renderCase(decodeURIComponent(arg), fresh);
  if (view === 'tenants') return renderTenants(fresh);
  if (view === 'deliveries') return renderDeliveries(fresh);
  if (view === 'review' || me.role === 'reviewer') return renderReview(fresh);
  return renderQueue(fresh);
}

/** Whether a screen has been shown since the page loaded. */
let shownOnce = false;

function show(...nodes) {
  main.replaceChildren(...nodes);
  const h1 = main.querySelector('h1');
  if (h1) {
    document.title = `${h1.textContent} · aupd console`;
    // Moving between screens puts focus on the new heading for screen
    // readers; the first load leaves it at the top, before the skip link.
    if (shownOnce) h1.focus();
  }
  shownOnce = true;
}

window.addEventListener('hashchange', route);
document.getElementById('sign-out').addEventListener('click', () => {
  session.clear();
  me = null;
  announce('Signed out.');
  location.hash = '#/signin';
  route();
});

// ---- sign in --------------------------------------------------------------

function renderSignIn() {
  const input = el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const out = el('div', { id: 'signin-error' });
  const form = el('form', { class: 'card signin', 'aria-describedby': 'signin-help' },
    el('p', { id: 'signin-help' }, 'Sign in with an operator or approver token. It is kept in this tab only (sessionStorage) and sent to aupd as a bearer token.'),
    el('label', { for: 'token' }, 'Token'),
    input,
    el('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    const token = input.value.trim();
    try {
      const who = await api('GET', '/v1/tokens/self', undefined, token);
      if (!CONSOLE_ROLES.has(who.role)) {
        out.append(problem(new Error(`this token's role is ${who.role}; the console is for operators and approvers`)));
        return;
      }
      session.save(token);
      me = who;
      input.value = '';
      announce(`Signed in as ${who.name}.`);
      const home = who.role === 'reviewer' ? '#/review' : '#/queue';
      if (location.hash === home) route(); else location.hash = home;
    } catch (e) {
      out.append(problem(e));
    }
  });
  show(heading('Sign in'), form);
}

// ---- queue ----------------------------------------------------------------

function select(id, label, options, value) {
  const s = el('select', { id, name: id },
    ...options.map(([v, t]) => el('option', { value: v, selected: v === value }, t)));
  return el('div', { class: 'field' }, el('label', { for: id }, label), s);
}

async function renderQueue(fresh) {
  let categories = [];
  try {
    categories = (await get('/v1/policy')).categories.map((c) => c.id);
  } catch { /* the filter falls back to free text */ }
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter cases' },
    select('f-state', 'State', [['', 'Any open state'], ...CASE_STATES.map((s) => [s, s.replaceAll('_', ' ')])], filters.state),
    select('f-severity', 'Severity', [['', 'Any severity'], ...SEVERITIES.map((s) => [s, s])], filters.severity),
    categories.length
      ? select('f-category', 'Category', [['', 'Any category'], ...categories.map((c) => [c, c])], filters.category)
      : el('div', { class: 'field' }, el('label', { for: 'f-category' }, 'Category'), el('input', { id: 'f-category', value: filters.category })),
    el('div', { class: 'field' }, el('label', { for: 'f-tenant' }, 'Tenant'), el('input', { id: 'f-tenant', value: filters.tenant, autocomplete: 'off' })),
    el('div', { class: 'field buttons' },
      el('button', { type: 'submit', class: 'primary' }, 'Apply filters'),
      el('button', { type: 'button', id: 'f-reset', onclick: () => { Object.assign(filters, { state: '', severity: '', category: '', tenant: '' }); route(); } }, 'Reset')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filters.state = form.querySelector('#f-state').value;
    filters.severity = form.querySelector('#f-severity').value;
    filters.category = form.querySelector('#f-category').value.trim();
    filters.tenant = form.querySelector('#f-tenant').value.trim();
    route();
  });
  const results = el('div', { id: 'queue-results' }, notice('Loading cases…'));
  show(heading('Case queue'), form, results);

  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  let body;
  try {
    body = await get(`/v1/cases${q.size ? `?${q}` : ''}`);
  } catch (e) {
    if (fresh()) results.replaceChildren(problem(e));
    return;
  }
  if (!fresh()) return;
  const cases = body.cases || [];
  cases.forEach(learnSkew);
  if (!cases.length) {
    results.replaceChildren(notice('No cases match these filters.'));
    return;
  }
  const overdue = cases.filter((c) => (secondsLeft(c) ?? 1) < 0).length;
  const byState = CASE_STATES.map((st) => [st, cases.filter((c) => c.state === st).length])
    .filter(([, n]) => n > 0).map(([st, n]) => `${n} ${words(st)}`).join(', ');
  const summary = `${body.total} case${body.total === 1 ? '' : 's'}, nearest deadline first` +
    (overdue ? `; ${overdue} overdue` : '') + (body.total > cases.length ? ` (showing ${cases.length})` : '') +
    ` — ${byState}`;
  const rows = cases.map((c) => {
    const left = secondsLeft(c);
    const u = urgency(left);
    return el('tr', { class: `row-${u.level}`, 'data-case': c.id },
      el('td', {}, countdown(c, `Case for ${c.tenant}`)),
      el('td', {}, el('a', { href: `#/case/${seg(c.id)}`, 'aria-label': `Open case for tenant ${c.tenant}, ${c.state.replaceAll('_', ' ')}` }, c.tenant)),
      el('td', {}, badge('sev', c.severity)),
      el('td', {}, badge('state', c.state)),
      el('td', {}, (c.categories || []).join(', ')),
      el('td', { class: 'counts' }, holds(c)),
      el('td', {}, c.owner || '—'),
      el('td', {}, time(c.created_at)),
      el('td', {}, el('code', { class: 'case-id' }, c.id)));
  });
  results.replaceChildren(
    el('p', { id: 'queue-summary', class: 'summary' }, summary),
    el('table', { class: 'queue' },
      el('caption', { class: 'visually-hidden' }, 'Cases, nearest deadline first'),
      el('thead', {}, el('tr', {}, ...['Deadline', 'Tenant', 'Severity', 'State', 'Categories', 'Holds', 'Owner', 'Opened', 'Case id'].map((t) => el('th', { scope: 'col' }, t)))),
      el('tbody', {}, rows)));
  if (overdue) announce(`${overdue} case${overdue === 1 ? ' is' : 's are'} overdue.`);
}

/** What a case holds, counted: evidence items, reports, appeals waiting. */
function holds(c) {
  const n = (xs) => (xs || []).length;
  const plural = (k, word) => `${k} ${word}${k === 1 ? '' : 's'}`;
  const waiting = (c.appeals || []).filter((a) => !a.outcome).length;
  return [`${n(c.evidence)} evidence`, plural(n(c.reports), 'report'), waiting ? plural(waiting, 'appeal') + ' waiting' : null]
    .filter(Boolean).join(' · ');
}

// ---- case detail ----------------------------------------------------------

// `when`: the states the state machine accepts the action in (the API
// decides; the console only explains why a choice is not offered).
const OPEN = ['open', 'noticed', 'plan_submitted', 'verifying', 'escalated', 'suspension_proposed'];
// Where a tenant may appeal: once told, until the case is final.
const APPEALABLE = ['noticed', 'plan_submitted', 'verifying', 'escalated', 'suspension_proposed', 'suspension_ordered', 'suspended'];
const ACTIONS = [
  { id: 'send_notice', label: 'Send notice', help: 'Tell the tenant and start the cure clock.', when: ['open', 'escalated'], operator: true },
  { id: 'extend', label: 'Extend deadline', help: 'Give the tenant more time.', when: ['noticed', 'plan_submitted'], operator: true },
  { id: 'accept_plan', label: 'Accept plan', help: 'Accept the remediation plan; the evidence is re-fetched to verify removal.', when: ['plan_submitted'], operator: true },
  { id: 'reject_plan', label: 'Reject plan', help: 'Reject the plan; the clock resumes.', when: ['plan_submitted'], operator: true },
  { id: 'dismiss', label: 'Dismiss', help: 'Not a violation; closes the case.', when: OPEN, operator: true },
  { id: 'escalate', label: 'Escalate', help: 'Escalate now, without waiting for the deadline.', when: ['open', 'noticed', 'plan_submitted', 'verifying'], operator: true },
  { id: 'propose_suspension', label: 'Propose suspension', help: 'Ask approvers to suspend the tenant or some resources.', when: ['escalated'], operator: true },
  { id: 'approve_suspension', label: 'Approve suspension', help: 'Approve the proposed suspension.', when: ['suspension_proposed'] },
  { id: 'reinstate', label: 'Reinstate', help: 'Lift the suspension.', when: ['suspension_ordered', 'suspended'], operator: true },
  { id: 'assign', label: 'Assign', help: 'Give the case to a person (the name on their token).', when: OPEN, operator: true },
  { id: 'grant_appeal', label: 'Grant appeal', help: 'The tenant is right: the case is dismissed, or the suspension lifted.', when: APPEALABLE, appeal: 'granted' },
  { id: 'deny_appeal', label: 'Deny appeal', help: 'The case stays where it is.', when: APPEALABLE, appeal: 'denied' },
];

const words = (state) => state.replaceAll('_', ' ');

/** Why the signed-in person may not take `a` on case `c` now, if so. */
function actionBlockers(a, c) {
  if (a.id === 'approve_suspension') return approvalBlockers(c);
  if (a.appeal) return appealBlockers(c);
  const why = [];
  if (a.operator && !isOperator()) why.push(`Operators take this action; you are signed in as ${me.role}.`);
  if (!a.when.includes(c.state)) why.push(`Possible when the case is ${a.when.map(words).join(', ')}; it is ${words(c.state)}.`);
  return why;
}

/** Why the signed-in person may not approve this case's suspension, if so. */
function approvalBlockers(c) {
  const why = [];
  if (me.role !== 'approver') why.push(`Only approvers may approve a suspension; you are signed in as ${me.role}.`);
  if ((c.reports || []).some((r) => r.reporter === me.name)) why.push('You reported this tenant on this case; someone other than the reporter must approve.');
  if ((c.approvals || []).some((a) => a.approver === me.name)) why.push('You have already approved this suspension.');
  if (c.state !== 'suspension_proposed') why.push(`No suspension is waiting for approval (the case is ${c.state.replaceAll('_', ' ')}).`);
  return why;
}

/** Why the signed-in person may not decide this case's appeal, if so. */
function appealBlockers(c) {
  const why = [];
  if (me.role !== 'approver') why.push(`Only approvers decide appeals; you are signed in as ${me.role}.`);
  if (!(c.appeals || []).some((a) => !a.outcome)) why.push('No appeal is waiting for a decision.');
  const tookPart = (c.participants || []).includes(me.name) || c.owner === me.name
    || (c.reports || []).some((r) => r.reporter === me.name)
    || (c.approvals || []).some((a) => a.approver === me.name)
    || (c.suspension && c.suspension.proposed_by && c.suspension.proposed_by.id === me.name);
  if (tookPart) why.push('You took part in this case; an approver who did not decides its appeal.');
  return why;
}

async function renderCase(id, fresh) {
  show(heading('Case'), notice('Loading case…'));
  let c;
  try {
    c = await get(`/v1/cases/${seg(id)}`);
  } catch (e) {
    if (fresh()) show(heading('Case'), problem(e), el('p', {}, el('a', { href: '#/queue' }, 'Back to the queue')));
    return;
  }
  if (!fresh()) return;
  learnSkew(c);
  const sections = {
    evidence: section('Evidence', 'evidence', notice('Loading evidence…')),
    tenant: section('Tenant and prevalence', 'tenant', notice('Loading tenant…')),
    deliveries: section('Deliveries and receipts', 'deliveries', notice('Loading deliveries…')),
  };
  show(
    el('p', { class: 'crumbs' }, el('a', { href: '#/queue' }, '← Case queue')),
    heading(`Case for tenant ${c.tenant}`),
    caseSummary(c),
    actionForm(c),
    sections.evidence,
    sections.tenant,
    reportsSection(c),
    planSection(c),
    suspensionSection(c),
    sections.deliveries,
    historySection(c));
  loadEvidence(c, sections.evidence, fresh);
  loadTenant(c, sections.tenant, fresh);
  loadDeliveries(c, sections.deliveries, fresh);
}

function dl(pairs) {
  return el('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function caseSummary(c) {
  return el('div', { class: 'card' }, dl([
    ['State', badge('state', c.state)],
    ['Severity', badge('sev', c.severity)],
    ['Deadline', c.deadline_due_at || c.paused_remaining
      ? [countdown(c, `Case for ${c.tenant}`), ' ', c.deadline_due_at ? el('span', { class: 'muted' }, '(due ', time(c.deadline_due_at), ')') : '']
      : 'No deadline running'],
    ['Categories', (c.categories || []).join(', ')],
    ['Owner', c.owner || 'unassigned'],
    ['Opened', time(c.created_at)],
    ['Case id', el('code', {}, c.id)],
  ]));
}

function actionForm(c) {
  // Approvers see the one action that is theirs; operators see every
  // action, those possible now first, the others with the reason why not.
  const offered = ACTIONS.filter((a) => isOperator() || !a.operator)
    .map((a) => ({ a, blockers: actionBlockers(a, c) }))
    .sort((x, y) => Number(x.blockers.length > 0) - Number(y.blockers.length > 0));
  const radios = offered.map(({ a, blockers }) => {
    const disabled = blockers.length > 0;
    const input = el('input', {
      type: 'radio', name: 'action', id: `act-${a.id}`, value: a.id, disabled,
      'aria-describedby': `act-${a.id}-help`,
    });
    const help = disabled
      ? el('span', { id: `act-${a.id}-help`, class: 'help blocked' }, el('span', { 'aria-hidden': 'true' }, '⊘ '), 'Not available: ', blockers.join(' '))
      : el('span', { id: `act-${a.id}-help`, class: 'help' }, a.help);
    return el('div', { class: `choice${disabled ? ' choice-disabled' : ''}` }, input, el('label', { for: `act-${a.id}` }, a.label), help);
  });
  const by = el('div', { class: 'field', id: 'by-field', hidden: true },
    el('label', { for: 'act-by' }, 'Extend by (e.g. 24h, 90m, 3d)'),
    el('input', { id: 'act-by', name: 'by', value: '24h', autocomplete: 'off' }));
  const owner = el('div', { class: 'field', id: 'owner-field', hidden: true },
    el('label', { for: 'act-owner' }, 'Assign to (the name on their token)'),
    el('input', { id: 'act-owner', name: 'owner', value: c.owner || me.name || '', autocomplete: 'off' }));
  const resources = el('div', { class: 'field', id: 'resources-field', hidden: true },
    el('label', { for: 'act-resources' }, 'Resources to suspend (comma-separated; leave empty for the whole tenant)'),
    el('input', { id: 'act-resources', name: 'resources', autocomplete: 'off' }));
  const reason = el('textarea', { id: 'act-reason', name: 'reason', required: true, rows: 3, maxlength: 4000 });
  const out = el('div', { id: 'action-result' });
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Submit action');
  const form = el('form', { class: 'card actions', 'aria-labelledby': 'actions-h' },
    el('h2', { id: 'actions-h' }, 'Take an action'),
    FINAL_STATES.has(c.state) ? notice(`This case is ${c.state}; it is final and no action changes it.`) : null,
    el('fieldset', {}, el('legend', {}, 'Action'), radios),
    isOperator() ? null : notice('Other actions on a case are taken by operators.'),
    by, owner, resources,
    el('div', { class: 'field' }, el('label', { for: 'act-reason' }, 'Reason (required, recorded in the audit log)'), reason),
    submit, out);
  form.addEventListener('change', () => {
    const chosen = form.querySelector('input[name=action]:checked');
    by.hidden = !chosen || chosen.value !== 'extend';
    owner.hidden = !chosen || chosen.value !== 'assign';
    resources.hidden = !chosen || chosen.value !== 'propose_suspension';
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    const chosen = form.querySelector('input[name=action]:checked');
    if (!chosen) {
      out.append(problem(new Error('choose an action first')));
      return;
    }
    if (!reason.value.trim()) {
      out.append(problem(new Error('every action needs a reason')));
      reason.focus();
      return;
    }
    const picked = ACTIONS.find((a) => a.id === chosen.value);
    const body = { action: picked.appeal ? 'decide_appeal' : chosen.value, reason: reason.value.trim() };
    if (picked.appeal) body.outcome = picked.appeal;
    if (chosen.value === 'extend') body.by = form.querySelector('#act-by').value.trim();
    if (chosen.value === 'assign') body.owner = form.querySelector('#act-owner').value.trim();
    if (chosen.value === 'propose_suspension') {
      const ids = form.querySelector('#act-resources').value.split(',').map((s) => s.trim()).filter(Boolean);
      if (ids.length) body.resources = ids;
    }
    const label = picked.label;
    submit.disabled = true;
    try {
      const res = await post(`/v1/cases/${seg(c.id)}/actions`, body);
      const state = words(res.case.state);
      announce(`${label} recorded. The case is now ${state}.`);
      await route();
      const done = document.getElementById('action-result');
      if (done) done.append(el('p', { class: 'ok' }, el('span', { 'aria-hidden': 'true' }, '✔ '), `${label} recorded. The case is now ${state}.`));
    } catch (e) {
      out.append(problem(e));
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * Evidence items in order, findings of one category whose excerpts are the
 * same but for numbers, case and spacing gathered into one group.
 */
function groupEvidence(items, findingOf) {
  const groups = [];
  const byKey = new Map();
  for (const ev of items) {
    const f = ev.kind === 'finding' ? findingOf(ev) : null;
    const key = f && f.excerpt
      ? `${ev.category}\u0000${f.excerpt.toLowerCase().replace(/[0-9]+/g, '#').replace(/[^\p{L}#]+/gu, ' ').trim()}`
      : null;
    if (key && byKey.has(key)) {
      byKey.get(key).push(ev);
    } else {
      const group = [ev];
      if (key) byKey.set(key, group);
      groups.push(group);
    }
  }
  return groups;
}

/** An excerpt, blurred until the reviewer chooses to read it. */
function evidenceText(text, spans) {
  const { fragment, marks, missing } = highlight(text, spans);
  const body = el('blockquote', { class: 'evidence-text blurred', 'aria-hidden': 'true' }, fragment);
  const hidden = el('span', { class: 'visually-hidden' }, 'Evidence text hidden.');
  const toggle = el('button', { type: 'button', class: 'reveal', 'aria-pressed': 'false' }, 'Show text');
  const flip = () => {
    const shown = body.classList.toggle('blurred') === false;
    toggle.setAttribute('aria-pressed', String(shown));
    toggle.textContent = shown ? 'Hide text' : 'Show text';
    body.setAttribute('aria-hidden', String(!shown));
    hidden.hidden = shown;
  };
  toggle.addEventListener('click', flip);
  body.addEventListener('click', () => { if (body.classList.contains('blurred')) flip(); });
  return el('div', { class: 'evidence-body' },
    el('div', { class: 'evidence-controls' }, toggle, hidden,
      el('span', { class: 'muted' }, `${marks} highlighted span${marks === 1 ? '' : 's'}`)),
    body,
    missing.length ? el('p', { class: 'muted' }, 'Matched text not in this excerpt: ', missing.map((s) => `“${s.text}”`).join(', ')) : null);
}

async function loadEvidence(c, target, fresh) {
  const body = [];
  let findings = [];
  let samples = [];
  let readError = null;
  try {
    [findings, samples] = await Promise.all([
      get(`/v1/tenants/${seg(c.tenant)}/findings?limit=1000`).then((b) => b.findings || []),
      get(`/v1/tenants/${seg(c.tenant)}/samples?limit=1000`).then((b) => b.samples || []),
    ]);
  } catch (e) {
    readError = e;
  }
  if (!fresh()) return;
  if (readError && readError.status === 403) {
    body.push(notice('The API keeps sampled content to operators, so the text of the evidence is not shown to you; the references below are from the case record.'));
  } else if (readError) {
    body.push(problem(readError), notice('The evidence references below are from the case record.'));
  }
  const items = c.evidence || [];
  if (!items.length) body.push(notice('This case holds no evidence items.'));
  // A sample flagged in two categories has a finding in each: the one for
  // this item's category carries that category's own matches.
  const findingOf = (ev) => findings.find((x) => x.sample === ev.finding_id && x.category === ev.category);
  const list = el('ol', { class: 'evidence-list' });
  for (const group of groupEvidence(items, findingOf)) {
    const ev = group[0];
    const li = el('li', { class: 'evidence-item' });
    const facts = [['Kind', ev.kind], ['Category', ev.category]];
    if (group.length > 1) {
      li.dataset.count = String(group.length);
      facts.unshift(['Findings', `${group.length} near-identical findings (the same words but for numbers and spacing)`]);
      facts.push(['Seen at', el('ul', { class: 'urls' }, group.map((g) => el('li', {}, el('code', {}, g.url || '—'), ` score ${Number(g.score).toFixed(2)}`)))]);
    } else if (ev.url) facts.push(['Seen at', el('code', {}, ev.url)]);
    if (ev.policy_version) facts.push(['Policy version', el('code', { title: ev.policy_version }, ev.policy_version.slice(0, 12))]);
    if (ev.kind === 'finding') {
      if (group.length === 1) facts.push(['Score', Number(ev.score).toFixed(2)]);
      const f = findingOf(ev);
      li.append(dl(facts));
      if (f) {
        const spans = (f.evidence || []).filter((x) => !x.category || x.category === ev.category);
        li.append(el('p', { class: 'muted' }, 'Detectors: ',
          el('span', { class: 'detectors' }, [...new Set(spans.map((x) => x.detector))].join(', ') || 'none recorded'),
          ' · found ', time(f.found_at)));
        li.append(evidenceText(f.excerpt || '', spans));
        li.append(feedbackButtons(c.tenant, f.sample, ev.category, true));
      } else if (!readError) {
        li.append(notice('The finding is no longer in the tenant\'s recent findings.'));
      }
    } else if (ev.kind === 'prevalence') {
      facts.push(['Prevalence', `${ev.flagged} of ${ev.sampled} sampled (95% interval ${pct(ev.lower)}–${pct(ev.upper)})`]);
      li.append(dl(facts));
    } else if (ev.kind === 'label_estimate') {
      facts.push(['Reviewers\' labels', `${ev.estimate} estimate ${pct(ev.rate)} (95% interval ${pct(ev.lower)}–${pct(ev.upper)}) over ${ev.reviewed} reviewed items`]);
      li.append(dl(facts));
    } else {
      if (ev.report_id) facts.push(['Report', el('code', {}, ev.report_id)]);
      li.append(dl(facts));
      const s = ev.url && samples.find((x) => x.url === ev.url && x.verdict);
      if (s) {
        li.append(el('p', { class: 'muted' }, 'Fetched for the report ', time(s.fetched_at)));
        li.append(evidenceText(s.excerpt || '', (s.verdict.evidence || []).filter((x) => !x.category || x.category === ev.category)));
        li.append(feedbackButtons(c.tenant, s.id, ev.category, (s.verdict.flagged || []).some((x) => x.category === ev.category)));
      } else if (ev.url && samples.find((x) => x.url === ev.url && x.status === 'gone')) {
        li.append(notice(`The content is gone (the URL answered ${samples.find((x) => x.url === ev.url).http_status}).`));
      }
    }
    list.append(li);
  }
  body.push(list);
  target.replaceChildren(target.querySelector('h2'),
    el('p', { class: 'muted' }, 'Evidence text is blurred until you choose to show it.'), ...body);
}

async function loadTenant(c, target, fresh) {
  const out = [];
  try {
    const [tenant, prev] = await Promise.all([
      get(`/v1/tenants/${seg(c.tenant)}`),
      get(`/v1/tenants/${seg(c.tenant)}/prevalence`),
    ]);
    if (!fresh()) return;
    out.push(dl([
      ['Tenant', el('code', {}, tenant.id)],
      ['Name', tenant.name],
      ['Status', badge('tenant', tenant.status)],
      ['Risk tier', tenant.risk_tier],
      ['Contacts', String((tenant.contacts || []).length)],
    ]));
    const rows = [...(prev.categories || [])].sort((a, b) =>
      Number(c.categories.includes(b.category)) - Number(c.categories.includes(a.category)) || b.rate - a.rate);
    const secs = prev.window_secs || 0;
    const span = secs % 86400 === 0 ? `${secs / 86400} days` : `${Math.round(secs / 3600)} hours`;
    out.push(
      el('h3', {}, `Prevalence over the last ${span}`),
      el('p', { class: 'muted' }, 'aupd keeps no prevalence time series yet, so the chart shows the current window only: each category\'s rate (bar), its 95% interval (whisker) and the case rule\'s tolerance (dark tick).'),
      prevalenceChart(rows, `Prevalence per category for ${c.tenant}`),
      el('table', {},
        el('caption', { class: 'visually-hidden' }, 'Prevalence per category'),
        el('thead', {}, el('tr', {}, ...['Category', 'Rate', '95% interval', 'Flagged / sampled', 'Tolerance', 'Threshold', 'Estimate used', 'From labels', 'Corrected', 'Reviewed'].map((t) => el('th', { scope: 'col' }, t)))),
        el('tbody', {}, rows.map((r) => el('tr', { class: c.categories.includes(r.category) ? 'this-case' : '' },
          el('th', { scope: 'row' }, r.category, c.categories.includes(r.category) ? ' (this case)' : ''),
          el('td', {}, pct(r.rate)),
          el('td', {}, `${pct(r.lower)} – ${pct(r.upper)}`),
          el('td', {}, `${r.flagged} / ${r.sampled}`),
          el('td', {}, pct(r.tolerance)),
          el('td', {}, r.threshold_crossed ? '⚠ crossed' : 'not crossed'),
          el('td', {}, r.estimate || 'model'),
          el('td', {}, r.labelled ? `${pct(r.labelled.rate)} (${pct(r.labelled.lower)} – ${pct(r.labelled.upper)})` : '—'),
          el('td', {}, r.corrected ? `${pct(r.corrected.rate)} (${pct(r.corrected.lower)} – ${pct(r.corrected.upper)})` : '—'),
          el('td', {}, `${r.reviewed ?? 0} (evidence ${r.labelled_evidence ?? 0})`))))));
  } catch (e) {
    if (!fresh()) return;
    out.push(e instanceof ApiError && e.status === 403
      ? notice(`The API keeps tenant records and prevalence to operators; you are signed in as ${me.role}.`)
      : problem(e));
  }
  target.replaceChildren(target.querySelector('h2'), ...out);
}

function reportsSection(c) {
  const reports = c.reports || [];
  if (!reports.length) return section('Reports', 'reports', notice('No employee report is linked to this case.'));
  return section('Reports', 'reports',
    isOperator() ? null : notice('Reporter identities are shown to operators only.'),
    el('ul', {}, reports.map((r) => el('li', {}, 'Report ', el('code', {}, r.report_id),
      isOperator() ? [' filed by ', el('strong', {}, r.reporter)] : ''))));
}

function historyOf(c, kinds) {
  return (c.history || []).filter((h) => kinds.some((k) => h.kind.startsWith(k)));
}

/**
 * An event with reporters' names replaced for viewers who are not
 * operators: the API sends them to every case reader, the console shows
 * them to operators only.
 */
function redacted(ev) {
  if (isOperator()) return ev;
  return JSON.parse(JSON.stringify(ev ?? {}, (k, v) => {
    if (k === 'reporter' && typeof v === 'string') return '(hidden)';
    if (v && typeof v === 'object' && v.kind === 'reporter' && 'id' in v) return { ...v, id: '(hidden)' };
    return v;
  }));
}

function eventFacts(h) {
  const ev = redacted(h.event);
  const actor = ev.actor ? `${ev.actor.kind}: ${ev.actor.id}` : '';
  const data = ev.data || {};
  const move = data.from && data.to && data.from !== data.to ? `${data.from} → ${data.to}` : '';
  return { actor, reason: ev.reason || data.reason || '', move };
}

function planSection(c) {
  const parts = [];
  if (c.plan) {
    parts.push(dl([
      ['Submitted by', c.plan.submitted_by ? `${c.plan.submitted_by.kind}: ${c.plan.submitted_by.id}` : '—'],
      ['Submitted', time(c.plan.submitted_at)],
      ['Complete by', c.plan.complete_by ? time(c.plan.complete_by) : '—'],
    ]), el('h3', {}, 'Removed'), el('blockquote', { class: 'plan-text' }, c.plan.removed || '—'),
    el('h3', {}, 'Moderation changes'), el('blockquote', { class: 'plan-text' }, c.plan.moderation_changes || '—'));
  } else {
    parts.push(notice('The tenant has not submitted a remediation plan.'));
  }
  if (c.paused_remaining) parts.push(notice(`The cure clock is paused while the plan is reviewed (${c.paused_remaining} left when paused).`));
  const reviews = historyOf(c, ['case.plan_']);
  if (reviews.length) {
    parts.push(el('h3', {}, 'Review'), el('ul', {}, reviews.map((h) => {
      const f = eventFacts(h);
      return el('li', {}, time(h.at), ` ${h.kind.replace('case.', '').replaceAll('_', ' ')}`, f.actor ? ` by ${f.actor}` : '', f.reason ? ` — “${f.reason}”` : '');
    })));
  }
  if ((c.appeals || []).length) {
    parts.push(el('h3', {}, 'Appeals'), el('ul', {}, c.appeals.map((a) => el('li', {}, time(a.at), ' ', el('q', {}, a.text), ' — ',
      a.outcome
        ? [el('strong', {}, a.outcome), ` by ${a.decided_by} `, time(a.decided_at), a.decision_reason ? ` — “${a.decision_reason}”` : '']
        : el('strong', {}, 'waiting for an approver who took no part in the case')))));
  }
  return section('Remediation plan and review', 'plan', parts);
}

function suspensionSection(c) {
  const parts = [];
  if (c.suspension) {
    const s = c.suspension;
    parts.push(dl([
      ['Scope', s.scope && s.scope.kind === 'resources' ? `resources: ${s.scope.ids.join(', ')}` : 'the whole tenant'],
      ['Proposed by', s.proposed_by ? `${s.proposed_by.kind}: ${s.proposed_by.id}` : '—'],
      ['Proposed', time(s.proposed_at)],
      ['Reason', s.reason],
    ]));
  } else {
    parts.push(notice('No suspension has been proposed.'));
  }
  const approvals = c.approvals || [];
  parts.push(el('h3', {}, 'Approvals'), approvals.length
    ? el('ul', {}, approvals.map((a) => el('li', {}, el('strong', {}, a.approver), ' approved ', time(a.at), ` — “${a.reason}”`)))
    : notice('No approvals yet.'));
  return section('Suspension and approvals', 'suspension', parts);
}

function historySection(c) {
  const rows = (c.history || []).map((h) => {
    const f = eventFacts(h);
    return el('tr', {},
      el('td', {}, time(h.at)),
      el('td', {}, h.kind.replace('case.', '').replaceAll('_', ' ')),
      el('td', {}, f.move),
      el('td', {}, f.actor),
      el('td', {}, f.reason),
      el('td', {}, el('details', {}, el('summary', {}, `Event ${h.seq}`), el('pre', {}, JSON.stringify(redacted(h.event), null, 2)))));
  });
  return section('History', 'history', rows.length
    ? el('table', { class: 'history' },
      el('caption', { class: 'visually-hidden' }, 'Every event of this case, oldest first'),
      el('thead', {}, el('tr', {}, ...['When', 'Event', 'State', 'Actor', 'Reason', 'Record'].map((t) => el('th', { scope: 'col' }, t)))),
      el('tbody', {}, rows))
    : notice('No events recorded.'));
}

// ---- deliveries -----------------------------------------------------------

/** `GET /v1/deliveries?…`, or a message when this aupd has no such route. */
async function fetchDeliveries(query) {
  try {
    const body = await get(`/v1/deliveries?${query}`);
    return { list: Array.isArray(body) ? body : (body.deliveries || []) };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return { unavailable: 'Webhook deliveries cannot be shown: this aupd has no deliveries API yet (it answered 404).' };
    }
    throw e;
  }
}

function deliveryTable(list, { replay } = {}) {
  const pick = (d, ...keys) => keys.map((k) => d[k]).find((v) => v !== undefined && v !== null);
  return el('table', { class: 'deliveries' },
    el('thead', {}, el('tr', {}, ...['Delivery', 'Event', 'Status', 'Attempts', 'Last attempt', 'Last error', 'Receipt', replay ? 'Replay' : null]
      .filter(Boolean).map((t) => el('th', { scope: 'col' }, t)))),
    el('tbody', {}, list.map((d) => {
      const receipt = pick(d, 'receipt', 'receipts');
      const status = String(pick(d, 'status', 'state') ?? '?');
      const attempts = pick(d, 'attempts', 'attempt') ?? [];
      const last = Array.isArray(attempts) ? attempts[attempts.length - 1] : null;
      return el('tr', {},
        el('td', {}, el('code', {}, String(pick(d, 'id', 'webhook_id', 'message_id') ?? '?'))),
        el('td', {}, String(pick(d, 'event_type', 'type', 'kind') ?? '')),
        el('td', {}, badge('delivery', status)),
        el('td', {}, String(attempts.length ?? attempts ?? '')),
        el('td', {}, time(last ? last.at : pick(d, 'last_attempt_at', 'updated_at', 'created_at'))),
        el('td', { class: 'last-error' }, lastError(d, last)),
        el('td', {}, receipt ? el('pre', {}, JSON.stringify(receipt, null, 2)) : '—'),
        replay ? el('td', {}, replay(d)) : null);
    })));
}

/** What went wrong on a delivery's last attempt; a success is no error. */
function lastError(d, last) {
  if (last) {
    if (last.error) return String(last.error);
    if (last.status && (last.status < 200 || last.status >= 300)) return `HTTP ${last.status}`;
    return '—';
  }
  return String(d.last_error ?? d.error ?? '—');
}

/** The case a delivery belongs to, when the API says. */
const caseOf = (d) => d.case ?? d.case_id ?? (d.payload && d.payload.case_id) ?? null;

async function loadDeliveries(c, target, fresh) {
  const out = [];
  try {
    let r;
    try {
      r = await fetchDeliveries(`case=${seg(c.id)}`);
    } catch (e) {
      // A deliveries API without a case filter: filter here if it can be.
      if (!(e instanceof ApiError && e.status === 400)) throw e;
      r = await fetchDeliveries('limit=1000');
      if (r.list && r.list.length && !r.list.some((d) => caseOf(d) !== null)) {
        r = { unlinked: true };
      } else if (r.list) {
        r.list = r.list.filter((d) => caseOf(d) === c.id);
      }
    }
    if (r.unavailable) out.push(notice(r.unavailable));
    else if (r.unlinked) {
      out.push(el('p', { class: 'note' }, 'The deliveries API does not say which case a delivery belongs to, so they are not listed here; see ',
        el('a', { href: '#/deliveries?status=dead' }, 'all dead deliveries'), '.'));
    } else if (r.list.length) out.push(deliveryTable(r.list));
    else out.push(notice('No webhook deliveries for this case.'));
  } catch (e) {
    out.push(problem(e));
  }
  if (!fresh()) return;
  const receipts = historyOf(c, ['case.suspended', 'case.receipt', 'case.reinstated']);
  out.push(el('h3', {}, 'Action receipts'), receipts.length
    ? el('ul', {}, receipts.map((h) => {
      const f = eventFacts(h);
      return el('li', {}, time(h.at), ` ${h.kind.replace('case.', '').replaceAll('_', ' ')}`, f.actor ? ` — ${f.actor}` : '', f.reason ? ` — “${f.reason}”` : '');
    }))
    : notice('No executor has confirmed an action on this case.'));
  target.replaceChildren(target.querySelector('h2'), ...out);
}

async function renderDeliveries(fresh) {
  const status = new URLSearchParams(location.hash.split('?')[1] || '').get('status') || 'dead';
  const picker = el('form', { class: 'filters', 'aria-label': 'Delivery status' },
    select('d-status', 'Status', [['dead', 'Dead (gave up)'], ['pending', 'Pending'], ['delivered', 'Delivered']], status),
    el('div', { class: 'field buttons' }, el('button', { type: 'submit', class: 'primary' }, 'Show')));
  picker.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/deliveries?status=${seg(picker.querySelector('#d-status').value)}`;
  });
  const results = el('div', {}, notice('Loading deliveries…'));
  show(heading('Webhook deliveries'), picker, results);
  let out;
  try {
    const r = await fetchDeliveries(`status=${seg(status)}`);
    const replay = (d) => {
      const b = el('button', { type: 'button' }, 'Replay');
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await post(`/v1/deliveries/${seg(d.id)}/replay`, {});
          b.replaceWith(el('span', { class: 'ok' }, '✔ queued again'));
          announce('Delivery queued again.');
        } catch (e) {
          b.disabled = false;
          b.after(problem(e));
        }
      });
      return b;
    };
    out = r.unavailable ? [notice(r.unavailable)]
      : r.list.length ? [deliveryTable(r.list, status === 'dead' ? { replay } : {})] : [notice(`No ${status} deliveries.`)];
  } catch (e) {
    out = [problem(e)];
  }
  if (fresh()) results.replaceChildren(...out);
}

// ---- tenants --------------------------------------------------------------

function healthLabel(state) {
  const h = state ? state.health : 'unknown';
  const icon = { healthy: '✔', unhealthy: '✖', unknown: '?' }[h] || '?';
  return el('span', { class: `health health-${h}` }, el('span', { 'aria-hidden': 'true' }, `${icon} `), h);
}

async function renderTenants(fresh) {
  const results = el('div', {}, notice('Loading tenants…'));
  show(heading('Tenants'), results);
  let tenants;
  try {
    tenants = (await get('/v1/tenants')).tenants || [];
  } catch (e) {
    if (fresh()) results.replaceChildren(problem(e));
    return;
  }
  if (!fresh()) return;
  if (!tenants.length) {
    results.replaceChildren(notice('No tenants are registered.'));
    return;
  }
  const cells = new Map();
  results.replaceChildren(el('table', { class: 'tenants' },
    el('thead', {}, el('tr', {}, ...['Tenant', 'Name', 'Status', 'Risk tier', 'Sources and health', 'Cases'].map((t) => el('th', { scope: 'col' }, t)))),
    el('tbody', {}, tenants.map((t) => {
      const cell = el('td', {}, 'Loading…');
      cells.set(t.id, cell);
      const show = el('button', { type: 'button', class: 'link' }, 'Show cases');
      show.addEventListener('click', () => {
        Object.assign(filters, { state: '', severity: '', category: '', tenant: t.id });
        location.hash = '#/queue';
      });
      return el('tr', {},
        el('th', { scope: 'row' }, el('code', {}, t.id)),
        el('td', {}, t.name),
        el('td', {}, badge('tenant', t.status)),
        el('td', {}, t.risk_tier),
        cell,
        el('td', {}, show));
    }))));
  await Promise.all(tenants.map(async (t) => {
    const cell = cells.get(t.id);
    try {
      const sources = (await get(`/v1/tenants/${seg(t.id)}/sources`)).sources || [];
      if (!fresh()) return;
      cell.replaceChildren(sources.length
        ? el('ul', { class: 'sources' }, sources.map((s) => el('li', {},
          healthLabel(s.state), ' ', el('code', {}, s.url), ` (${s.kind && s.kind.type ? s.kind.type : s.kind || 'source'}${s.enabled ? '' : ', disabled'})`,
          s.state && s.state.last_error ? el('div', { class: 'muted' }, `Last error: ${s.state.last_error}`) : null,
          s.state && s.state.last_fetch_at ? el('div', { class: 'muted' }, 'Last fetch ', time(s.state.last_fetch_at)) : null)))
        : 'No sources (pushed content only)');
    } catch (e) {
      cell.replaceChildren(problem(e));
    }
  }));
}

route();

// ---- review ---------------------------------------------------------------

/** The key handler of the review screen, replaced on each render. */
let reviewKeys = null;

const ANSWERS = { v: 'violates', n: 'does_not', u: 'unsure' };

async function renderReview(fresh) {
  if (reviewKeys) document.removeEventListener('keydown', reviewKeys);
  reviewKeys = null;
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const tenant = params.get('tenant') || '';
  const queue = params.get('queue') === 'second' ? 'second' : 'first';
  const tenantInput = el('input', { id: 'r-tenant', name: 'tenant', value: tenant, required: true, spellcheck: 'false' });
  const picker = el('form', { class: 'filters', id: 'r-pick' },
    el('div', { class: 'field' }, el('label', { for: 'r-tenant' }, 'Tenant'), tenantInput),
    select('r-queue', 'Queue', [['first', 'First review'], ['second', 'Second opinion']], queue),
    el('button', { type: 'submit' }, 'Review'));
  picker.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/review?tenant=${seg(tenantInput.value.trim())}&queue=${seg(picker.querySelector('#r-queue').value)}`;
  });
  const out = [heading('Review'),
    el('p', { class: 'muted' }, 'Keys: s show or hide the text, v violates, n does not, u unsure (for the category chosen), j next item. The note is sent with the label.'),
    picker];
  if (!tenant) return show(...out);
  try {
    const [next, agreement] = await Promise.all([
      get(`/v1/review/next?tenant=${seg(tenant)}&queue=${queue}`),
      get(`/v1/review/agreement?tenant=${seg(tenant)}`),
    ]);
    if (!fresh()) return;
    out.push(next.item ? reviewCard(next.item) : notice('Nothing waits in this queue.'));
    out.push(el('p', { class: 'muted', id: 'review-progress' },
      `Reviewed per score band (lowest first): ${next.reviewed.join(' · ')} of ${next.targets.join(' · ')} targeted.`));
    out.push(agreementTable(agreement.agreement));
  } catch (e) {
    if (!fresh()) return;
    out.push(problem(e));
  }
  show(...out);
}

function reviewCard(item) {
  const text = evidenceText(item.excerpt, item.evidence);
  const first = item.flagged.find((c) => item.categories.includes(c)) || item.categories[0];
  const category = select('r-category', 'Category', item.categories.map((c) => [c, c]), first);
  const note = el('textarea', { id: 'r-note', name: 'note', rows: 2, maxlength: 2000 });
  const result = el('div', { id: 'review-result', role: 'status' });
  const send = async (answer) => {
    const cat = category.querySelector('select').value;
    const body = { labels: { [cat]: answer } };
    if (note.value.trim()) body.note = note.value.trim();
    try {
      const r = await api('POST', `/v1/review/${seg(item.item)}/label?tenant=${seg(item.tenant)}`, body);
      const where = r.categories[0];
      announce(`Labelled ${cat}: ${answer.replace('_', ' ')}.`);
      result.replaceChildren(el('p', {}, `Labelled ${cat}: ${answer.replace('_', ' ')}`,
        where.evidence ? ' — two reviewers agree: suspension evidence.' : ''));
      route();
    } catch (e) {
      result.replaceChildren(problem(e));
    }
  };
  const buttons = Object.entries(ANSWERS).map(([key, answer]) =>
    el('button', { type: 'button', id: `r-${answer}`, onclick: () => send(answer) }, `${answer.replace('_', ' ')} (${key})`));
  reviewKeys = (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')) return;
    if (ANSWERS[ev.key]) { ev.preventDefault(); send(ANSWERS[ev.key]); }
    else if (ev.key === 's') { ev.preventDefault(); text.querySelector('button.reveal').click(); }
    else if (ev.key === 'j') { ev.preventDefault(); route(); }
  };
  document.addEventListener('keydown', reviewKeys);
  return el('section', { id: 'review-item', 'aria-labelledby': 'review-item-h' },
    el('h2', { id: 'review-item-h' }, `Item in band ${item.band} (score ${item.score.toFixed(2)})`),
    dl([
      ['Tenant', el('code', {}, item.tenant)],
      ['Flagged', item.flagged.length ? item.flagged.join(', ') : 'nothing'],
      ['Where', item.url || 'pushed content'],
    ]),
    text,
    category,
    el('div', { class: 'field' }, el('label', { for: 'r-note' }, 'Note (optional)'), note),
    el('div', { class: 'actions' }, ...buttons),
    result);
}

function agreementTable(rows) {
  if (!rows.length) return el('section', { id: 'agreement' }, el('h2', {}, 'Agreement'), notice('No labels yet.'));
  return el('section', { id: 'agreement' }, el('h2', {}, 'Agreement per reviewer and category'),
    el('table', {},
      el('thead', {}, el('tr', {}, ...['Reviewer', 'Category', 'Labels', 'Compared', 'Agreed', 'Rate'].map((t) => el('th', { scope: 'col' }, t)))),
      el('tbody', {}, rows.map((r) => el('tr', {},
        el('th', { scope: 'row' }, r.reviewer),
        el('td', {}, r.category),
        el('td', {}, String(r.labels)),
        el('td', {}, String(r.compared)),
        el('td', {}, String(r.agreed)),
        el('td', {}, r.rate === null ? '—' : pct(r.rate)))))));
}

/**
 * Feedback on a verdict from the evidence: a wrong flag or a miss is a
 * label like any other (origin `feedback`), for operators and admins.
 */
function feedbackButtons(tenant, sample, category, flagged) {
  if (!['operator', 'admin'].includes(me.role)) return null;
  const out = el('span', { class: 'muted', role: 'status' });
  const answer = flagged ? 'does_not' : 'violates';
  const button = el('button', { type: 'button', class: 'feedback', id: `fb-${sample}-${category}` },
    flagged ? 'Wrong flag' : 'Missed');
  button.addEventListener('click', async () => {
    try {
      await api('POST', `/v1/review/${seg(sample)}/label?tenant=${seg(tenant)}`,
        { labels: { [category]: answer }, origin: 'feedback' });
      out.textContent = flagged ? ' Recorded: not a violation of this category.' : ' Recorded: a violation the model missed.';
      button.disabled = true;
    } catch (e) {
      out.replaceChildren(problem(e));
    }
  });
  return el('div', { class: 'evidence-controls' }, button, out);
}
