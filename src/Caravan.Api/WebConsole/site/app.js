// The Caravan console: a hash-routed single page over the public API. Views:
//   #/sign-in, #/sources (?q=&page=), #/add, #/sources/<id>[/settings|/test|/schemas|/history]

import { h, append, clear, when, alertBox, showAlert } from './dom.js';
import {
  api, getJson, readJson, session, whenUnauthorized, sourceTypes, forgetTypes, streamTest,
  ApiError, Unauthorized,
} from './api.js';
import { typeForm } from './forms.js';
import { isFileType, uploader, filesView, guardDrops } from './files.js';

/** Whether a type's discovery lists tools (an MCP source, whose selection is the tools agents may call). */
function offersTools(type) {
  return type?.type === 'MCP';
}

const main = document.getElementById('main');
const PAGE_SIZE = 20;
let flash = null;
let signInMessage = null;
let routeCount = 0;

whenUnauthorized((detail) => {
  forgetTypes();
  signInMessage = `Your API key was not accepted${detail ? ` (${detail})` : ''}. Sign in again.`;
  go('#/sign-in');
});

document.getElementById('sign-out').addEventListener('click', () => {
  session.signOut();
  forgetTypes();
  signInMessage = 'You are signed out.';
  go('#/sign-in');
});

window.addEventListener('hashchange', route);
guardDrops();
route();

/** Navigates to a hash; when it is the current one, renders it again. */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Whether the page rendered by the current route is still the one shown (for work that outlives a request). */
function stillShown() {
  const count = routeCount;
  return () => count === routeCount;
}

function parseHash() {
  const raw = location.hash.slice(1) || '/sources';
  const [path, query = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean), params: new URLSearchParams(query) };
}

async function route() {
  const count = ++routeCount;
  const { parts, params } = parseHash();
  const signedIn = Boolean(session.key);
  document.getElementById('nav').hidden = !signedIn;
  if (!signedIn && parts[0] !== 'sign-in') {
    go('#/sign-in');
    return;
  }

  let view;
  try {
    if (parts[0] === 'sign-in') view = signInView();
    else if (parts[0] === 'sources' && parts.length === 1) view = await listView(params);
    else if (parts[0] === 'add' && parts.length === 1) view = await addView(params);
    else if (parts[0] === 'sources' && /^\d+$/.test(parts[1]) && parts.length <= 3) view = await sourceView(parts[1], parts[2] ?? 'settings', params);
    else view = message('Page not found', 'There is no such page in the console.');
  } catch (error) {
    if (error instanceof Unauthorized) return;
    view = failure(error);
  }
  if (count !== routeCount) return;
  render(view);
}

function render(view) {
  clear(main);
  if (flash) {
    main.append(h('p', { class: 'flash', role: 'status', id: 'flash' }, flash));
    flash = null;
  }
  main.append(view.element);
  document.title = `${view.title} · Caravan console`;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === view.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  (view.focus ?? main.querySelector('h1') ?? main).focus();
}

function heading(text) {
  return h('h1', { tabindex: '-1' }, text);
}

function message(title, text) {
  return { title, element: h('section', {}, heading(title), h('p', {}, text), h('p', {}, h('a', { href: '#/sources' }, 'Back to the sources'))) };
}

function failure(error) {
  if (error instanceof ApiError && error.status === 404) {
    return message('Not found', 'This source does not exist, or it was deleted.');
  }
  return message('Something went wrong', error.message);
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- sign in ----

function signInView() {
  const notice = signInMessage;
  signInMessage = null;
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'api-key-help' });
  const problem = alertBox('sign-in-error');
  if (notice) {
    problem.textContent = notice;
    problem.hidden = false;
    problem.className = notice === 'You are signed out.' ? 'alert info' : 'alert error';
  }
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { id: 'sign-in', novalidate: true }, problem,
    h('div', { class: 'field' },
      h('label', { for: 'api-key' }, 'API key'),
      input,
      h('p', { class: 'help', id: 'api-key-help' },
        'A key made with “caravan keys create --org <name>”. It is kept in this tab only (sessionStorage) and sent to this server alone.')),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showAlert(problem, 'Enter your API key.');
      return;
    }
    button.disabled = true;
    session.signIn(key);
    input.value = '';
    forgetTypes();
    try {
      await sourceTypes();
      flash = 'Signed in.';
      go('#/sources');
    } catch (error) {
      if (!(error instanceof Unauthorized)) {
        session.signOut();
        showAlert(problem, `Could not sign in: ${error.message}`);
      }
    } finally {
      button.disabled = false;
    }
  });
  return { title: 'Sign in', focus: input, element: h('section', { class: 'narrow' }, heading('Sign in'), form) };
}

// ---- sources list ----

function describeTest(test) {
  if (!test) return h('span', { class: 'muted' }, 'Never tested');
  if (test.ok) return h('span', { class: 'ok' }, h('span', { 'aria-hidden': 'true' }, '✓ '), 'Passed · ', when(test.at));
  return h('span', { class: 'failed' }, h('span', { 'aria-hidden': 'true' }, '✗ '),
    `Failed at ${test.failed_step} (${test.code}) · `, when(test.at));
}

async function listView(params) {
  const search = params.get('q') ?? '';
  const page = params.get('page') ?? '1';
  const query = new URLSearchParams({ include: 'last_test', page_size: String(PAGE_SIZE), page });
  if (search) query.set('search', search);
  const [response, types] = await Promise.all([api(`sources/?${query}`), sourceTypes()]);
  const body = await readJson(response);
  if (response.status === 404 && page !== '1') {
    flash = 'That page does not exist any more; here is the first one.';
    go(search ? `#/sources?q=${encodeURIComponent(search)}` : '#/sources');
    return message('Sources', '');
  }
  if (!response.ok) throw new ApiError(response.status, body);

  const names = new Map(types.map((t) => [t.type, t.display_name]));
  const input = h('input', { id: 'search', type: 'search', name: 'q', value: search, autocomplete: 'off', spellcheck: 'false' });
  const searchForm = h('form', { class: 'search', role: 'search', id: 'search-form' },
    h('label', { for: 'search' }, 'Search by name'), input, h('button', { type: 'submit' }, 'Search'));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = input.value.trim();
    go(q ? `#/sources?q=${encodeURIComponent(q)}` : '#/sources');
  });

  let content;
  if (body.results.length === 0) {
    content = h('p', { class: 'empty', id: 'empty' }, search
      ? `No source’s name contains “${search}”.`
      : 'No sources yet. ', search ? null : h('a', { href: '#/add' }, 'Add the first one.'));
  } else {
    content = h('table', { class: 'sources', id: 'sources' },
      h('caption', { class: 'sr-only' }, 'Data sources'),
      h('thead', {}, h('tr', {}, ['Name', 'Type', 'Configured', 'Last test'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, body.results.map((source) => h('tr', { 'data-id': source.id },
        h('td', { 'data-label': 'Name' }, h('a', { href: `#/sources/${source.id}` }, source.account_name)),
        h('td', { 'data-label': 'Type' }, names.get(source.type) ?? source.type),
        h('td', { 'data-label': 'Configured' }, source.is_fully_configured ? 'Yes' : h('span', { class: 'warn' }, 'Not yet')),
        h('td', { 'data-label': 'Last test', class: 'last-test' }, describeTest(source.last_test))))));
  }

  const current = Number(page) || 1;
  const pages = Math.max(1, Math.ceil(body.count / PAGE_SIZE));
  const link = (p) => `#/sources?${new URLSearchParams({ ...(search ? { q: search } : {}), page: String(p) })}`;
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    body.previous ? h('a', { href: link(current - 1), rel: 'prev', id: 'prev' }, '← Previous') : h('span', {}),
    h('span', { id: 'page-info' }, `Page ${current} of ${pages} · ${body.count} source${body.count === 1 ? '' : 's'}`),
    body.next ? h('a', { href: link(current + 1), rel: 'next', id: 'next' }, 'Next →') : h('span', {}));

  return {
    title: 'Sources',
    nav: '#/sources',
    element: h('section', {},
      h('div', { class: 'title-row' }, heading('Sources'), h('a', { class: 'button primary', href: '#/add' }, 'Add source')),
      searchForm, content, pager),
  };
}

// ---- connection tests, live ----

const STATUS = { ok: '✓ ok', failed: '✗ failed', skipped: '– skipped', pending: '… waiting' };

function testPanel() {
  const summary = h('p', { class: 'test-summary', id: 'test-summary', role: 'status' });
  const list = h('ol', { class: 'steps', id: 'steps' });
  const element = h('section', { class: 'test-panel', id: 'test-panel', 'aria-labelledby': 'test-title', hidden: true },
    h('h2', { id: 'test-title' }, 'Connection test'), summary, list);
  const items = new Map();

  function item(name) {
    let li = items.get(name);
    if (!li) {
      li = h('li', { 'data-step': name });
      items.set(name, li);
      list.append(li);
    }
    return li;
  }

  function paint(step) {
    const li = item(step.name);
    li.className = `step ${step.status}`;
    li.dataset.status = step.status;
    append(clear(li), [
      h('span', { class: 'status' }, STATUS[step.status] ?? step.status),
      h('span', { class: 'name' }, step.name),
      h('span', { class: 'duration' }, step.status === 'ok' || step.status === 'failed' ? `${step.duration_ms} ms` : ''),
      step.code ? h('code', { class: 'code' }, step.code) : null,
      step.message ? h('span', { class: 'message' }, step.message) : null,
    ]);
  }

  return {
    element,
    start() {
      element.hidden = false;
      clear(list);
      items.clear();
      summary.className = 'test-summary running';
      summary.textContent = 'Testing…';
    },
    line(event) {
      for (const name of event.plan ?? []) if (!items.has(name)) paint({ name, status: 'pending' });
      if (event.step) paint(event.step);
      if (event.report) {
        for (const step of event.report.steps) paint(step);
        for (const step of event.report.steps) list.append(items.get(step.name));
        const failed = event.report.steps.find((s) => s.status === 'failed');
        summary.className = `test-summary ${event.report.ok ? 'ok' : 'failed'}`;
        summary.textContent = event.report.ok
          ? `The connection works (${event.report.duration_ms} ms).`
          : `The test failed at “${failed?.name}”: ${failed?.message ?? failed?.code}`;
      }
    },
    fail(text) {
      element.hidden = false;
      summary.className = 'test-summary failed';
      summary.textContent = text;
    },
    hide() {
      element.hidden = true;
    },
  };
}

// ---- add a source ----

async function addView(params) {
  const types = await sourceTypes();
  let type = null;
  let controller = null;
  let idempotencyKey = null;

  const select = h('select', { id: 'type', name: 'type', 'aria-describedby': 'type-help' },
    h('option', { value: '' }, 'Choose a type…'),
    types.map((t) => h('option', { value: t.type }, t.display_name)));
  const summary = alertBox('form-errors');
  const fields = h('div', { id: 'fields' });
  const tests = testPanel();
  const testButton = h('button', { type: 'button', id: 'test-unsaved', disabled: true }, 'Test connection');
  const saveButton = h('button', { type: 'submit', class: 'primary', id: 'save', disabled: true }, 'Add source');
  const created = h('section', { id: 'created', class: 'created', hidden: true });
  const form = h('form', { id: 'add-form', novalidate: true, autocomplete: 'off' },
    summary,
    h('div', { class: 'field' }, h('label', { for: 'type' }, 'Type', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')), select,
      h('p', { class: 'help', id: 'type-help' }, 'The kind of database, File Upload for data files, or MCP server for a remote tool server. The form below follows it.')),
    fields,
    h('div', { class: 'actions' }, saveButton, testButton));

  function choose(name) {
    type = types.find((t) => t.type === name) ?? null;
    idempotencyKey = null;
    summary.hidden = true;
    tests.hide();
    clear(fields);
    if (!type) {
      controller = null;
    } else if (isFileType(type)) {
      // A FILE source is made of files: the form uploads them, and there is nothing to test before.
      controller = uploader();
      fields.append(controller.element);
    } else {
      controller = typeForm(fields, type, 'create');
    }
    saveButton.textContent = isFileType(type) ? 'Upload and add source' : 'Add source';
    testButton.hidden = isFileType(type);
    saveButton.disabled = testButton.disabled = !type;
  }
  select.addEventListener('change', () => choose(select.value));
  // A changed form is another request: a new Idempotency-Key. A repeat of the same (a double
  // click, a retry) keeps the key, so the server creates one source.
  form.addEventListener('input', () => { idempotencyKey = null; });
  const wanted = (params.get('type') ?? '').toUpperCase();
  if (types.some((t) => t.type === wanted)) {
    select.value = wanted;
    choose(wanted);
  }

  const shown = stillShown();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!controller) return;
    if (isFileType(type)) {
      const uploaded = await controller.send();
      if (uploaded && shown()) {
        flash = `Uploaded ${uploaded.count === 1 ? 'a file' : `${uploaded.count} files`}. Caravan converts each into a table; this page follows them.`;
        go(`#/sources/${uploaded.id}`);
      }
      return;
    }
    const body = { type: type.type, ...controller.collect() };
    idempotencyKey ??= randomKey();
    saveButton.disabled = true;
    try {
      const response = await api('sources/', { method: 'POST', body, headers: { 'Idempotency-Key': idempotencyKey } });
      const answer = await readJson(response);
      if (response.ok) {
        if (answer.public_key_sql) {
          showKeyPair(created, answer, form);
        } else {
          flash = 'Source added.';
          go(`#/sources/${answer.id}`);
        }
      } else if (response.status === 400) {
        const target = controller.showErrors(answer.errors, summary);
        if (summary.hidden) showAlert(summary, answer.error ?? 'Check the fields marked below.');
        (target ?? summary).focus();
      } else {
        showAlert(summary, answer?.detail ?? `The server answered ${response.status}.`);
      }
    } catch (error) {
      if (!(error instanceof Unauthorized)) showAlert(summary, error.message);
    } finally {
      saveButton.disabled = false;
    }
  });

  testButton.addEventListener('click', async () => {
    if (!controller || isFileType(type)) return;
    controller.clearErrors();
    summary.hidden = true;
    testButton.disabled = true;
    tests.start();
    try {
      await streamTest('sources/test/', { type: type.type, ...controller.collect() }, tests.line);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        tests.hide();
        const target = controller.showErrors(error.body.errors, summary);
        (target ?? summary).focus();
      } else if (!(error instanceof Unauthorized)) {
        tests.fail(error.message);
      }
    } finally {
      testButton.disabled = false;
    }
  });

  return {
    title: 'Add a source',
    nav: '#/add',
    element: h('section', {}, heading('Add a source'), form, tests.element, created),
  };
}

function showKeyPair(panel, answer, form) {
  form.hidden = true;
  const sql = h('pre', { id: 'public-key-sql', class: 'mono wrap', tabindex: '0' }, answer.public_key_sql);
  const copied = h('span', { role: 'status', id: 'copied' });
  const copy = h('button', { type: 'button', id: 'copy-sql' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(answer.public_key_sql);
    } catch {
      const range = document.createRange();
      range.selectNodeContents(sql);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand('copy');
    }
    copied.textContent = 'Copied.';
  });
  clear(panel).append(
    h('h2', {}, 'Register the public key'),
    h('p', {}, 'Caravan generated a key pair for this source and keeps the private key encrypted. Run this statement in Snowflake (as a user who may alter the user) so the key is accepted:'),
    sql,
    h('div', { class: 'actions' }, copy, copied, h('a', { href: `#/sources/${answer.id}`, class: 'button primary' }, 'Continue to the source')));
  panel.hidden = false;
  copy.focus();
}

// ---- one source ----

const TABS = [
  ['settings', 'Settings'],
  ['test', 'Test'],
  ['schemas', 'Schemas'],
  ['history', 'History'],
];

async function sourceView(id, tab, params) {
  if (!TABS.some(([name]) => name === tab)) return message('Page not found', 'There is no such page in the console.');
  const [{ body: source, etag }, types] = await Promise.all([getJson(`sources/${id}/`), sourceTypes()]);
  const type = types.find((t) => t.type === source.type);
  const panel = h('div', { class: 'tab-panel', id: `tab-${tab}` });
  // A FILE source's settings are its files, and what discovery lists are its tables; an MCP source's are its tools.
  const labelOf = (name, text) => (isFileType(type) ? { settings: 'Files', schemas: 'Tables' }[name]
    : offersTools(type) ? { schemas: 'Tools' }[name] : null) ?? text;
  const label = labelOf(tab, TABS.find(([name]) => name === tab)[1]);
  const deleteButton = h('button', { type: 'button', class: 'danger', id: 'delete' }, 'Delete…');
  deleteButton.addEventListener('click', () => openDelete(id, source, deleteButton));

  const element = h('section', {},
    h('div', { class: 'title-row' }, heading(source.account_name), deleteButton),
    h('p', { class: 'meta' },
      h('span', { id: 'source-type' }, type?.display_name ?? source.type), ' · ',
      h('span', { id: 'configured' }, configured(source)), ' · added ', when(source.created_at)),
    h('nav', { class: 'tabs', 'aria-label': 'Source' },
      TABS.map(([name, text]) => h('a', {
        href: `#/sources/${id}/${name}`, id: `tab-link-${name}`, 'aria-current': name === tab ? 'page' : undefined,
      }, labelOf(name, text)))),
    panel);

  if (tab === 'settings') await settingsTab(id, type, panel, element);
  else if (tab === 'test') testTab(id, type, panel);
  else if (tab === 'schemas') await schemasTab(id, type, panel, etag);
  else await historyTab(id, type, panel, params);
  return { title: `${label} · ${source.account_name}`, nav: '', element };
}

function configured(source) {
  return source.is_fully_configured ? 'configured' : h('span', { class: 'warn' }, 'not fully configured');
}

function conflictBox() {
  const box = alertBox('conflict', 'warning');
  return {
    box,
    show() {
      showAlert(box,
        h('p', {}, 'Someone else changed this source after you opened it, so your changes were not saved.'),
        h('button', { type: 'button', id: 'reload', onclick: () => { flash = 'Reloaded the current settings.'; route(); } }, 'Reload'),
        ' to see the current version, then make your change again.');
    },
  };
}

async function settingsTab(id, type, panel, page) {
  const { body: config, etag: loaded } = await getJson(`sources/${id}/config/`);
  let etag = loaded;
  if (isFileType(type)) {
    // Conversions give the source new versions: an answer that shows the name this form was
    // opened with is no one else's change, so the rename below takes its ETag.
    const files = fileSettings(id, config, page, (current, tag) => {
      if (current.account_name === config.account_name) etag = tag;
    });
    panel.append(h('h2', {}, 'Files'), files);
  }
  const summary = alertBox('form-errors');
  const conflict = conflictBox();
  const status = h('p', { role: 'status', id: 'save-status', class: 'muted' });
  const fields = h('div', { id: 'fields' });
  const controller = typeForm(fields, type, 'edit', config);
  const save = h('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save changes');
  const form = h('form', { id: 'edit-form', novalidate: true, autocomplete: 'off' }, conflict.box, summary, fields,
    h('p', { class: 'help' }, type.fields.some((f) => f.secret)
      ? 'Secrets are write-only: leave one empty to keep it. Only what you change is sent.'
      : 'Only what you change is sent.'),
    h('div', { class: 'actions' }, save, status));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = controller.collect();
    controller.clearErrors();
    summary.hidden = true;
    if (Object.keys(body).length === 0) {
      status.textContent = 'Nothing changed.';
      return;
    }
    save.disabled = true;
    try {
      const response = await api(`sources/${id}/update-config/`, { method: 'PATCH', body, headers: { 'If-Match': etag } });
      const answer = await readJson(response);
      if (response.ok) {
        flash = 'Saved.';
        route();
      } else if (response.status === 412) {
        conflict.show();
      } else if (response.status === 400) {
        const target = controller.showErrors(answer.errors, summary);
        (target ?? summary).focus();
      } else {
        showAlert(summary, answer?.detail ?? `The server answered ${response.status}.`);
      }
    } catch (error) {
      if (!(error instanceof Unauthorized)) showAlert(summary, error.message);
    } finally {
      save.disabled = false;
    }
  });
  panel.append(h('h2', {}, 'Settings'), form);
}

/**
 * A FILE source's settings are its files: the list, followed while any converts, and the upload
 * form that adds or replaces files. `page` holds the source's configured state, which changes
 * when conversions settle.
 */
function fileSettings(id, config, page, onConfig) {
  const shown = stillShown();
  const header = async () => {
    try {
      const { body: source } = await getJson(`sources/${id}/`);
      const state = page.querySelector('#configured');
      if (shown() && state) clear(state).append(configured(source));
    } catch {
      // The files view says what went wrong; the header keeps its last state.
    }
  };
  const files = filesView(id, config, { alive: shown, onConfig, onSettled: header });
  const upload = uploader({ sourceId: id });
  const send = h('button', { type: 'submit', class: 'primary', id: 'upload' }, 'Upload');
  const form = h('form', { id: 'upload-form', novalidate: true },
    h('h3', {}, 'Add or replace files'),
    h('p', { class: 'help' }, 'A file named like one the source holds replaces its tables once it is converted; until then queries see the old ones.'),
    upload.element,
    h('div', { class: 'actions' }, send));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    send.disabled = true;
    try {
      if (await upload.send()) await Promise.all([files.refresh(), header()]);
    } finally {
      send.disabled = false;
    }
  });
  return h('div', {}, files.element, form);
}

function testTab(id, type, panel) {
  const tests = testPanel();
  const run = h('button', { type: 'button', class: 'primary', id: 'run-test' }, 'Test connection');
  run.addEventListener('click', async () => {
    run.disabled = true;
    tests.start();
    try {
      await streamTest(`sources/${id}/test/`, undefined, tests.line);
    } catch (error) {
      if (!(error instanceof Unauthorized)) tests.fail(error.message);
    } finally {
      run.disabled = false;
    }
  });
  panel.append(h('p', {}, isFileType(type)
    ? 'Checks that every file is converted, then opens and counts each table, step by step; changes nothing.'
    : 'Connects to the database with the stored settings, step by step, and changes nothing.'), run, tests.element);
}

async function schemasTab(id, type, panel, etag) {
  const field = type.fields.find((f) => f.kind === 'name_list');
  const summary = alertBox('schema-errors');
  const conflict = conflictBox();
  panel.append(conflict.box, summary);
  const response = await api(`sources/${id}/schemas/`);
  const discovery = await readJson(response);
  if (!response.ok) {
    if (response.status === 404) throw new ApiError(404, discovery);
    summary.append(`Caravan could not list the ${isFileType(type) ? 'tables' : offersTools(type) ? 'tools' : 'schemas'}: ${discovery?.detail ?? response.status}${discovery?.code ? ` (${discovery.code})` : ''}`);
    summary.hidden = false;
    return;
  }
  const kind = discovery.kind;
  if (!field) {
    panel.append(discoveredTables(kind, discovery.results));
    return;
  }
  // Tools (MCP sources) come with what they do; with none chosen, every one is offered, so each shows checked.
  const tools = kind === 'tools';
  const chosenBefore = new Set(tools ? (await getJson(`sources/${id}/config/`)).body.config[field.name] ?? [] : []);
  const boxes = discovery.results.map((entry, index) => {
    const boxId = `schema-${index}`;
    const box = h('label', { for: boxId, class: 'check' },
      h('input', { type: 'checkbox', id: boxId, name: 'schema', value: entry.name, checked: tools ? chosenBefore.has(entry.name) : entry.selected }),
      tools ? h('code', {}, entry.name) : ` ${entry.name}`);
    const argumentNames = Object.keys(entry.input_schema?.properties ?? {});
    return tools
      ? h('div', { class: 'tool', 'data-tool': entry.name, 'data-offered': String(entry.selected) }, box,
        h('p', { class: 'help' }, (entry.selected ? 'Offered to agents. ' : 'Not offered. ') + (entry.description ?? '')),
        argumentNames.length ? h('p', { class: 'help' }, 'Arguments: ',
          argumentNames.flatMap((name, at) => [at ? ', ' : '', h('code', {}, name)])) : null)
      : box;
  });
  const save = h('button', { type: 'submit', class: 'primary', id: 'save-schemas' }, 'Save selection');
  const form = h('form', { id: 'schemas-form' },
    h('fieldset', {}, h('legend', {}, tools ? 'The tools agents may call' : `The ${kind} to include`),
      boxes.length ? boxes : h('p', { class: 'muted' }, tools ? 'The server offers no tools.' : `The database has no ${kind} Caravan may read.`)),
    h('p', { class: 'help' }, tools
      ? `With none chosen, every tool of the server is offered, also tools it adds later. Agents call them at Caravan's /mcp as ${id}__<tool>. Saved as ${field.name}.`
      : `With none chosen, every non-system one is included. Saved as ${field.name}.`),
    h('div', { class: 'actions' }, save));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll('input[name=schema]:checked')].map((box) => box.value);
    save.disabled = true;
    try {
      const answer = await api(`sources/${id}/update-config/`, { method: 'PATCH', body: { [field.name]: chosen }, headers: { 'If-Match': etag } });
      const result = await readJson(answer);
      if (answer.ok) {
        flash = 'Selection saved.';
        route();
      } else if (answer.status === 412) {
        conflict.show();
      } else {
        const errors = result?.errors ? Object.values(result.errors).flat().join(' ') : result?.detail;
        showAlert(summary, errors ?? `The server answered ${answer.status}.`);
      }
    } catch (error) {
      if (!(error instanceof Unauthorized)) showAlert(summary, error.message);
    } finally {
      save.disabled = false;
    }
  });
  panel.append(form);
}

/** What discovery found for a type with nothing to select (FILE: its tables), with the columns it lists. */
function discoveredTables(kind, entries) {
  if (entries.length === 0) {
    return h('p', { class: 'muted', id: 'tables-empty' }, `No ${kind} yet: they appear here once their files are converted.`);
  }
  return h('section', { id: 'tables', 'aria-labelledby': 'tables-title' },
    h('h2', { id: 'tables-title' }, `${entries.length} ${entries.length === 1 ? kind.replace(/s$/, '') : kind}`),
    entries.map((entry) => h('details', { class: 'discovered', 'data-name': entry.name, open: entries.length <= 10 },
      h('summary', {}, h('code', {}, entry.name), entry.columns ? ` · ${entry.columns.length} column${entry.columns.length === 1 ? '' : 's'}` : ''),
      entry.columns ? h('table', { class: 'columns' },
        h('caption', { class: 'sr-only' }, `Columns of ${entry.name}`),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Column'), h('th', { scope: 'col' }, 'Type'))),
        h('tbody', {}, entry.columns.map((column) => h('tr', { 'data-column': column.name },
          h('td', {}, h('code', {}, column.name)), h('td', {}, column.type))))) : null)));
}

const ACTIONS = { create: 'Created', update: 'Changed', delete: 'Deleted', rotate: 'Secrets re-encrypted' };
const SECRET_WORDS = { set: 'was set', changed: 'was changed', cleared: 'was cleared' };

function show(value) {
  if (value === null || value === undefined) return 'none';
  if (Array.isArray(value)) return value.length ? value.join(', ') : '(empty list)';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function describeChange(change) {
  if (typeof change === 'string') return `${SECRET_WORDS[change] ?? change} (secret)`;
  if ('old' in change || 'new' in change) return `${show(change.old)} → ${show(change.new)}`;
  // What a source holds besides its fields, such as a FILE source's files: {"added": [...]}.
  return Object.entries(change).map(([what, value]) => `${what}: ${show(value)}`).join('; ');
}

async function historyTab(id, type, panel, params) {
  const page = params.get('page') ?? '1';
  const { body } = await getJson(`sources/${id}/revisions/?page=${encodeURIComponent(page)}&page_size=${PAGE_SIZE}`);
  const labels = new Map(type.fields.map((f) => [f.name, f.label]));
  labels.set('account_name', 'Name');
  labels.set('options', 'Connection options');
  labels.set('secret_options', 'Secret connection options');
  labels.set('files', 'Files');
  const list = h('ol', { class: 'revisions', id: 'revisions' }, body.results.map((revision) => {
    const actor = revision.actor.key_id
      ? `by API key ${revision.actor.key_id} (${revision.actor.org})`
      : `by an operator on the command line (${revision.actor.org})`;
    const changes = Object.entries(revision.changes);
    return h('li', { class: 'revision', 'data-number': revision.number },
      h('h3', {}, `#${revision.number} · ${ACTIONS[revision.action] ?? revision.action}`),
      h('p', { class: 'meta' }, when(revision.at), ` · ${actor}`),
      changes.length === 0
        ? h('p', { class: 'muted' }, 'No field changed.')
        : h('dl', { class: 'changes' }, changes.map(([name, change]) => [
          h('dt', {}, labels.get(name) ?? name),
          h('dd', {}, describeChange(change)),
        ])));
  }));
  const current = Number(page) || 1;
  const pager = h('nav', { class: 'pager', 'aria-label': 'History pages' },
    body.previous ? h('a', { href: `#/sources/${id}/history?page=${current - 1}` }, '← Newer') : h('span', {}),
    h('span', {}, `${body.count} change${body.count === 1 ? '' : 's'}`),
    body.next ? h('a', { href: `#/sources/${id}/history?page=${current + 1}` }, 'Older →') : h('span', {}));
  panel.append(h('h2', {}, 'History'), list, pager);
}

function openDelete(id, source, opener) {
  const input = h('input', { id: 'confirm-name', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'delete-text' });
  const confirm = h('button', { type: 'submit', class: 'danger', id: 'confirm-delete', disabled: true }, 'Delete this source');
  const problem = alertBox('delete-error');
  const dialog = h('dialog', { id: 'delete-dialog', 'aria-labelledby': 'delete-title' });
  const form = h('form', { method: 'dialog' },
    h('h2', { id: 'delete-title' }, `Delete “${source.account_name}”?`),
    h('p', { id: 'delete-text' },
      `“${source.account_name}” disappears from every route and its stored secrets are erased at once. This cannot be undone. Type its name to confirm.`),
    problem,
    h('div', { class: 'field' }, h('label', { for: 'confirm-name' }, 'Name of the source'), input),
    h('div', { class: 'actions' }, confirm, h('button', { type: 'button', id: 'cancel-delete', onclick: () => dialog.close() }, 'Cancel')));
  dialog.append(form);
  input.addEventListener('input', () => { confirm.disabled = input.value !== source.account_name; });
  dialog.addEventListener('close', () => { dialog.remove(); opener.focus(); });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (input.value !== source.account_name) return;
    confirm.disabled = true;
    try {
      const response = await api(`sources/${id}/`, { method: 'DELETE' });
      if (response.status === 204 || response.status === 404) {
        flash = `Deleted “${source.account_name}”.`;
        dialog.close();
        go('#/sources');
      } else {
        showAlert(problem, (await readJson(response))?.detail ?? `The server answered ${response.status}.`);
        confirm.disabled = false;
      }
    } catch (error) {
      if (!(error instanceof Unauthorized)) showAlert(problem, error.message);
    }
  });
  main.append(dialog);
  dialog.showModal();
  input.focus();
}
