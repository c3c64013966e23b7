// The event explorer's page: plain DOM, no framework, no build step. Every
// text from the API goes through textContent, never innerHTML.
'use strict';

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === 'onclick') node.addEventListener('click', value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const json = (value) => el('pre', {}, JSON.stringify(value, null, 2));
const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '');

function say(text) {
  $('#status').textContent = text || '';
}

// The caller, as GraphQL takes it locally: x-user-id and x-user-roles.
const rolesInput = $('#roles');
rolesInput.value = new URLSearchParams(location.search).get('roles') || localStorage.getItem('explorer-roles') || '';
rolesInput.addEventListener('change', () => localStorage.setItem('explorer-roles', rolesInput.value));

async function api(path, options = {}) {
  const headers = { 'x-user-id': 'explorer', 'x-user-roles': rolesInput.value };
  const response = await fetch('/explorer/api/' + path, { ...options, headers });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function guarded(work) {
  try {
    say('');
    await work();
  } catch (error) {
    say(error.message);
  }
}

// ---------------------------------------------------------------- tabs
const loaders = {};

function showTab() {
  const tab = location.hash.slice(1) || 'events';
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== tab;
  for (const button of document.querySelectorAll('nav button')) {
    button.classList.toggle('active', button.dataset.tab === tab);
  }
  if (loaders[tab]) guarded(loaders[tab]);
}

for (const button of document.querySelectorAll('nav button')) {
  button.addEventListener('click', () => {
    if (location.hash === '#' + button.dataset.tab) showTab();
    else location.hash = button.dataset.tab;
  });
}
window.addEventListener('hashchange', showTab);

// ---------------------------------------------------------------- plugins
loaders.plugins = async () => {
  const manifests = await api('plugins');
  const section = $('#plugins');
  section.replaceChildren();
  for (const manifest of manifests) {
    const rows = manifest.components.map((c) =>
      el('tr', {}, el('td', {}, c.kind), el('td', {}, c.name), el('td', {}, (c.commands || []).join(', ')),
        el('td', {}, c.consumes.join(', ')), el('td', {}, c.produces.join(', ')), el('td', {}, c.table || ''),
        el('td', {}, c.async ? 'async' : '')));
    section.append(el('div', { class: 'plugin' },
      el('h2', {}, manifest.plugin, ' ', el('span', { class: 'muted' }, manifest.version)),
      el('p', {}, 'logs: ', manifest.storage.logs.join(', ') || 'none'),
      el('table', {},
        el('thead', {}, el('tr', {}, ['kind', 'name', 'commands', 'consumes', 'produces', 'table', ''].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows))));
  }
};

// ---------------------------------------------------------------- events
let nextBefore = null;

function eventCard(event) {
  const stream = event.stream ? `${event.stream.id} v${event.stream.version}` : '';
  return el('details', { class: 'event', 'data-position': event.position },
    el('summary', {},
      el('span', { class: 'pos' }, '#', event.position), ' ',
      el('span', { class: 'type' }, event.type), ' ',
      stream ? el('span', { class: 'entity' }, stream, ' ') : null,
      event.tags.map((tag) => el('span', { class: 'tag' }, tag)), ' ',
      el('span', { class: 'time' }, time(event.recordedAt))),
    event.upcastError ? el('p', { class: 'error' }, event.upcastError) : null,
    el('h4', {}, 'payload'), json(event.data),
    el('h4', {}, 'metadata'), json({ eventId: event.eventId, ...event.meta }));
}

async function loadEvents(before) {
  const params = new URLSearchParams({ limit: '50' });
  for (const name of ['log', 'type', 'tag', 'entity']) {
    const value = $('#' + name).value.trim();
    if (value) params.set(name, value);
  }
  if (before) params.set('before', before);
  const page = await api('events?' + params);
  const select = $('#log');
  if (select.options.length === 0) {
    for (const log of page.logs) select.append(el('option', { value: log }, log));
    select.value = page.log;
  }
  $('#head').textContent = `head: ${page.head}`;
  const list = $('#event-list');
  if (!before) list.replaceChildren();
  list.append(...page.events.map(eventCard));
  if (!before && page.events.length === 0) list.append(el('p', { class: 'muted' }, 'No events match.'));
  nextBefore = page.nextBefore;
  $('#older').hidden = nextBefore === null;
}

loaders.events = () => loadEvents(null);
$('#event-filter').addEventListener('submit', (e) => {
  e.preventDefault();
  guarded(() => loadEvents(null));
});
$('#log').addEventListener('change', () => guarded(() => loadEvents(null)));
$('#older').addEventListener('click', () => guarded(() => loadEvents(nextBefore)));

// ---------------------------------------------------------------- read models
let rowsTable = null;
let rowsCursor = null;

async function loadRows(table, after) {
  const params = new URLSearchParams({ first: '50' });
  if (after) params.set('after', after);
  const page = await api(`read-models/${encodeURIComponent(table)}/rows?` + params);
  rowsTable = table;
  $('#rows-title').textContent = `${table}: ${page.totalCount} rows`;
  const list = $('#rows');
  if (!after) list.replaceChildren();
  list.append(...page.rows.map((r) => el('div', { class: 'row', 'data-id': r.id }, el('strong', {}, r.id), json(r.row))));
  rowsCursor = page.hasNextPage ? page.endCursor : null;
  $('#more-rows').hidden = rowsCursor === null;
}

loaders['read-models'] = async () => {
  const models = await api('read-models');
  const body = $('#read-model-list tbody');
  body.replaceChildren();
  for (const model of models) {
    const progress = model.checkpoints
      .map((c) => `${c.log}: ${c.position} / ${c.head}` + (c.error ? ` (${c.error})` : '')).join('; ');
    const row = el('tr', { class: 'clickable', 'data-table': model.table, onclick: () => guarded(() => selectRows(row, model.table)) },
      el('td', {}, model.plugin), el('td', {}, model.name), el('td', {}, model.kind), el('td', {}, model.table),
      el('td', {}, progress), el('td', { class: model.lag > 0 ? 'lagging' : 'caught-up' }, model.lag));
    body.append(row);
  }
  if (rowsTable) await loadRows(rowsTable, null);
};

async function selectRows(row, table) {
  for (const other of document.querySelectorAll('#read-model-list tr')) other.classList.remove('selected');
  row.classList.add('selected');
  await loadRows(table, null);
}
$('#more-rows').addEventListener('click', () => guarded(() => loadRows(rowsTable, rowsCursor)));

// ---------------------------------------------------------------- automations
let itemsTable = null;

function itemCard(table, item) {
  const row = item.row;
  const retry = row.status === 'EXHAUSTED'
    ? el('button', { class: 'retry', onclick: () => guarded(() => retryItem(table, item.id)) }, 'Retry')
    : null;
  return el('div', { class: 'row', 'data-id': item.id },
    el('strong', {}, item.id), ' ',
    el('span', { class: 'status-' + row.status }, row.status), ' ',
    el('span', { class: 'muted' }, `retries ${row.retryCount}`), ' ', retry,
    row.lastError ? el('p', { class: 'status-FAILED' }, 'last error: ', row.lastError) : null,
    json(row.item));
}

let itemsCursor = null;

async function loadItems(table, after) {
  const params = new URLSearchParams({ first: '50' });
  const status = $('#item-status').value;
  if (status) params.set('status', status);
  if (after) params.set('after', after);
  const page = await api(`automations/${encodeURIComponent(table)}/items?` + params);
  itemsTable = table;
  $('#items-filter').hidden = false;
  $('#items-title').textContent = `${table}: ${page.totalCount} ${status ? status.toLowerCase() + ' ' : ''}items`;
  const list = $('#items');
  if (!after) list.replaceChildren();
  list.append(...page.rows.map((item) => itemCard(table, item)));
  itemsCursor = page.hasNextPage ? page.endCursor : null;
  $('#more-items').hidden = itemsCursor === null;
}

$('#item-status').addEventListener('change', () => guarded(() => loadItems(itemsTable, null)));
$('#more-items').addEventListener('click', () => guarded(() => loadItems(itemsTable, itemsCursor)));

async function retryItem(table, id) {
  await api(`automations/${encodeURIComponent(table)}/items/${encodeURIComponent(id)}/retry`, { method: 'POST' });
  say('');
  await loaders.automations();
  $('#status').textContent = `${id} is pending again; the automation retries it within a second.`;
}

loaders.automations = async () => {
  const automations = await api('automations');
  const body = $('#automation-list tbody');
  body.replaceChildren();
  for (const automation of automations) {
    const counts = Object.entries(automation.counts).filter(([, n]) => n > 0)
      .map(([status, n]) => el('span', { class: 'tag status-' + status }, `${status} ${n}`));
    body.append(el('tr', { class: 'clickable', 'data-table': automation.table, onclick: () => guarded(() => loadItems(automation.table, null)) },
      el('td', {}, automation.plugin), el('td', {}, automation.name), el('td', {}, automation.table),
      el('td', {}, automation.maxRetries), el('td', {}, counts)));
  }
  if (automations.length === 0) body.append(el('tr', {}, el('td', { colspan: 5 }, 'No automations.')));
  if (itemsTable) await loadItems(itemsTable, null);
};

showTab();
