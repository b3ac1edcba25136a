// FILE sources (docs/files.md) are made of files, not of connection fields: Caravan stores each
// upload encrypted and converts it to tables in the background. The upload controls send files
// with their progress; the files view follows each file's conversion (config.files) until every
// one is ready or failed.

import { h, clear, alertBox, showAlert } from './dom.js';
import { upload, getJson, ApiError, Unauthorized } from './api.js';
import { showErrors, clearErrors } from './forms.js';

// The one type made of files: its routes are its own (uploads, files), which the source-types
// catalog does not describe, so the console knows it by name.
const FILE_TYPE = 'FILE';

export function isFileType(type) {
  return type?.type === FILE_TYPE;
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

export function size(bytes) {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/**
 * A file dropped outside a drop zone would make the browser open it in place of the console:
 * nothing happens instead. Drop zones handle their own drops first.
 */
export function guardDrops() {
  for (const name of ['dragover', 'drop']) {
    window.addEventListener(name, (event) => {
      if (event.defaultPrevented || !event.dataTransfer?.types.includes('Files')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    });
  }
}

const UPLOAD_STATES = {
  chosen: 'To upload',
  waiting: 'Waiting',
  uploading: 'Uploading',
  sent: 'Sent',
  stored: '✓ Stored',
  refused: '✗ Refused',
};

/**
 * The upload controls: a drop zone with a file picker (several files at once, added to the
 * files chosen so far), the chosen files with their state, and the progress of the request.
 * Without sourceId the files make a new source, with an optional name; with one they are added
 * to that source. send() answers { id, count } once Caravan stored every file, or null when the
 * upload did not happen (the reasons are shown).
 */
export function uploader({ sourceId = null } = {}) {
  const creating = sourceId === null;
  let items = [];
  let busy = false;
  let done = false;

  const summary = alertBox('upload-errors');
  const inputs = new Map();
  const wrappers = new Map();
  const element = h('div', { class: 'uploader' }, summary);

  let nameInput = null;
  if (creating) {
    const nameId = 'field-account_name';
    nameInput = h('input', {
      id: nameId, name: 'account_name', type: 'text', maxlength: 255, autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': `${nameId}-help ${nameId}-error`,
    });
    const nameWrapper = h('div', { class: 'field' },
      h('label', { for: nameId }, 'Name'),
      nameInput,
      h('p', { class: 'help', id: `${nameId}-help` }, 'Optional; the first file’s name when left empty.'),
      h('p', { class: 'error', id: `${nameId}-error`, hidden: true }));
    inputs.set('account_name', nameInput);
    wrappers.set('account_name', nameWrapper);
    element.append(nameWrapper);
  }

  // The picker is hidden behind its label, styled as a button, but stays in the tab order.
  const picker = h('input', {
    type: 'file', id: 'upload-files', name: 'files', multiple: true, class: 'picker',
    'aria-describedby': 'upload-files-help field-files-error',
  });
  const zone = h('div', { class: 'drop', id: 'drop-zone' },
    h('p', {}, 'Drop files here, or'),
    picker,
    h('label', { for: 'upload-files', class: 'button' }, 'Choose files…'),
    h('p', { class: 'help', id: 'upload-files-help' },
      'CSV, TSV, JSON or NDJSON, Parquet, Excel (.xlsx, .xls) or SQLite files, several at once. Each becomes a table named after its file.'));
  const filesWrapper = h('div', { class: 'field', 'data-field': 'files' },
    h('label', { for: 'upload-files' }, 'Files', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')),
    zone,
    h('p', { class: 'error', id: 'field-files-error', hidden: true }));
  inputs.set('files', picker);
  wrappers.set('files', filesWrapper);

  const rows = h('tbody');
  const list = h('table', { class: 'files', id: 'upload-list', hidden: true },
    h('caption', { class: 'sr-only' }, 'Files to upload'),
    h('thead', {}, h('tr', {}, ['File', 'Size', 'State', ''].map((c) => h('th', { scope: 'col' }, c)))),
    rows);

  const bar = h('progress', { id: 'upload-progress', max: 1, value: 0 });
  const barText = h('span', { id: 'upload-progress-text' });
  const phase = h('p', { id: 'upload-status', role: 'status', class: 'muted' });
  const progress = h('div', { class: 'progress', id: 'upload-progress-box', hidden: true },
    h('label', { for: 'upload-progress' }, 'Sent'), bar, barText);
  element.append(filesWrapper, list, progress, phase);

  function add(files) {
    if (busy) return;
    if (done) {
      items = [];
      done = false;
      progress.hidden = true;
      phase.textContent = '';
    }
    for (const file of files) {
      const known = items.some(({ file: f }) => f.name === file.name && f.size === file.size && f.lastModified === file.lastModified);
      if (!known) items.push({ file, state: 'chosen', note: null });
    }
    paintRows();
  }

  function paintRows() {
    clear(rows);
    list.hidden = items.length === 0;
    items.forEach((item, index) => {
      const remove = busy || done ? null : h('button', {
        type: 'button', class: 'link', 'aria-label': `Remove ${item.file.name}`,
        onclick: () => { items.splice(index, 1); paintRows(); picker.focus(); },
      }, 'Remove');
      item.row = h('tr', { 'data-file': item.file.name, 'data-status': item.state },
        h('td', { 'data-label': 'File', class: 'file' }, item.file.name),
        h('td', { 'data-label': 'Size', class: 'size' }, size(item.file.size)),
        h('td', { 'data-label': 'State', class: 'status' }),
        h('td', { class: 'remove' }, remove));
      rows.append(item.row);
      paintState(item);
    });
  }

  function paintState(item, percent = null) {
    item.row.dataset.status = item.state;
    const text = UPLOAD_STATES[item.state] + (percent === null ? '' : ` ${percent}%`);
    clear(item.row.querySelector('.status')).append(text, item.note ? h('p', { class: 'error' }, item.note) : '');
  }

  function setState(item, state, percent = null, note = null) {
    if (item.state === state && percent === null && note === item.note) return;
    item.state = state;
    item.note = note;
    paintState(item, percent);
  }

  picker.addEventListener('change', () => {
    add(picker.files);
    picker.value = '';
  });
  zone.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = busy ? 'none' : 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('over');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    add(event.dataTransfer?.files ?? []);
  });

  // The files go in order in one request: how far the bytes got says which file is on its way.
  function follow(loaded, total, sending) {
    if (total === null) {
      bar.removeAttribute('value');
      barText.textContent = `${size(loaded)} sent`;
    } else {
      bar.max = total;
      bar.value = loaded;
      barText.textContent = `${size(loaded)} of ${size(total)} sent (${Math.floor((loaded * 100) / total)}%)`;
    }
    let start = 0;
    for (const item of sending) {
      const end = start + item.file.size;
      if (loaded >= end && loaded > 0) setState(item, 'sent');
      else if (loaded > start) setState(item, 'uploading', Math.floor(((loaded - start) * 100) / item.file.size));
      start = end;
    }
  }

  const hold = (event) => event.preventDefault();

  async function send() {
    if (busy) return null;
    clearErrors(element, inputs);
    summary.hidden = true;
    const sending = done ? [] : items;
    if (sending.length === 0) {
      const target = showErrors(element, summary, { files: ['Choose at least one file, or drop files on the box.'] }, inputs, wrappers);
      target?.focus();
      return null;
    }

    const body = new FormData();
    const name = nameInput?.value.trim() ?? '';
    if (name !== '') body.append('account_name', name);
    for (const item of sending) {
      body.append('files', item.file, item.file.name);
      item.note = null;
      item.state = 'waiting';
    }
    busy = true;
    picker.disabled = true;
    if (nameInput) nameInput.disabled = true;
    zone.classList.add('busy');
    paintRows();
    const total = sending.reduce((sum, item) => sum + item.file.size, 0);
    follow(0, total, sending);
    progress.hidden = false;
    phase.textContent = `Uploading ${plural(sending.length, 'file')}…`;
    // Leaving the page would cut the upload off: the browser asks first.
    window.addEventListener('beforeunload', hold);
    try {
      const path = creating ? 'uploads/upload/' : `sources/${sourceId}/files/`;
      const { status, body: answer } = await upload(path, body, {
        onProgress: (loaded, length) => follow(loaded, length, sending),
        onSent: () => {
          for (const item of sending) setState(item, 'sent');
          phase.textContent = 'Every byte is sent; Caravan is storing the files encrypted…';
        },
      });
      if (status === 200 && Number.isInteger(answer?.id)) {
        for (const item of sending) setState(item, 'stored');
        done = true;
        phase.textContent = `${plural(sending.length, 'file')} stored. Caravan converts each into a table in the background.`;
        return { id: answer.id, count: sending.length };
      }
      for (const item of sending) setState(item, 'chosen');
      phase.textContent = 'Nothing was stored.';
      if (status === 400) {
        markRefused(sending, answer?.errors?.files ?? []);
        const target = showErrors(element, summary, answer?.errors, inputs, wrappers);
        if (summary.hidden) showAlert(summary, answer?.error ?? 'Check the files and the name.');
        (target ?? summary).focus();
      } else if (status === 413) {
        showAlert(summary, 'The upload is larger than this server, or a proxy in front of it, accepts.');
      } else if (status === 404) {
        showAlert(summary, 'This source does not exist any more, or it takes no files.');
      } else {
        showAlert(summary, answer?.detail ?? answer?.error ?? `The server answered ${status}.`);
      }
      return null;
    } catch (error) {
      if (!(error instanceof Unauthorized)) {
        for (const item of sending) setState(item, 'chosen');
        phase.textContent = '';
        showAlert(summary, error.message);
      }
      return null;
    } finally {
      window.removeEventListener('beforeunload', hold);
      busy = false;
      picker.disabled = false;
      if (nameInput) nameInput.disabled = false;
      zone.classList.remove('busy');
      paintRows();
    }
  }

  // A refusal names its file ("x.png: not a file Caravan can read ..."): the message goes on its row too.
  function markRefused(sending, messages) {
    for (const message of messages) {
      const item = sending.find(({ file }) => message.startsWith(`${file.name}: `));
      if (item) setState(item, 'refused', null, message.slice(item.file.name.length + 2));
    }
  }

  return { element, send, get busy() { return busy; } };
}

const FILE_STATES = { pending: '… Converting', ready: '✓ Ready', failed: '✗ Failed' };

/**
 * A FILE source's files as config.files lists them (one row per table), followed while any is
 * pending: the config is read again, every second at first and less often as time goes, until
 * every file is ready or failed, or alive() says the page was left. onConfig(config, etag)
 * hears every answer; onSettled() comes when the last pending file settles.
 */
export function filesView(sourceId, config, { alive, onConfig = () => {}, onSettled = () => {} }) {
  const summary = h('p', { id: 'files-summary', role: 'status' });
  const rows = h('tbody');
  const table = h('table', { class: 'files', id: 'files' },
    h('caption', { class: 'sr-only' }, 'Files of this source'),
    h('thead', {}, h('tr', {}, ['File', 'Table', 'Size', 'Rows', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
    rows);
  let timer = null;
  let delay = 1000;
  let pending = false;

  function paint(files) {
    clear(rows);
    table.hidden = files.length === 0;
    for (const file of files) {
      rows.append(h('tr', { 'data-file': file.filename, 'data-table': file.table, 'data-status': file.status },
        h('td', { 'data-label': 'File', class: 'file' }, file.filename),
        h('td', { 'data-label': 'Table', class: 'table' }, h('code', {}, file.table)),
        h('td', { 'data-label': 'Size', class: 'size' }, size(file.bytes)),
        h('td', { 'data-label': 'Rows', class: 'rows' }, file.rows === null ? '–' : file.rows.toLocaleString('en')),
        h('td', { 'data-label': 'State', class: `status ${file.status}` }, FILE_STATES[file.status] ?? file.status,
          file.error ? h('p', { class: 'error' }, file.error) : null)));
    }
    const waiting = files.filter((f) => f.status === 'pending').length;
    const failed = files.filter((f) => f.status === 'failed').length;
    if (files.length === 0) summary.textContent = 'No files yet.';
    else if (waiting > 0) summary.textContent = `Converting ${waiting} of ${plural(files.length, 'file')}… This page follows them.`;
    else if (failed > 0) summary.textContent = `${plural(failed, 'file')} failed: upload a corrected file of the same name to replace it.`;
    else summary.textContent = `Every file is converted: ${plural(files.length, 'table')}, ready to query.`;
    summary.className = failed > 0 && waiting === 0 ? 'failed' : '';
    const settled = pending && waiting === 0;
    pending = waiting > 0;
    if (settled) onSettled();
  }

  function schedule() {
    clearTimeout(timer);
    if (pending && alive()) timer = setTimeout(poll, delay);
  }

  async function poll() {
    if (!alive()) return;
    try {
      const { body, etag } = await getJson(`sources/${sourceId}/config/`);
      if (!alive()) return;
      onConfig(body, etag);
      paint(body.config.files ?? []);
      delay = Math.min(delay * 1.5, 5000);
      schedule();
    } catch (error) {
      if (error instanceof Unauthorized) return;
      if (error instanceof ApiError && error.status === 404) {
        summary.textContent = 'This source does not exist any more.';
        return;
      }
      summary.textContent = `Could not read the files’ state (${error.message}); trying again.`;
      delay = 5000;
      schedule();
    }
  }

  paint(config.config.files ?? []);
  schedule();
  return {
    element: h('div', { class: 'files-view' }, summary, table),
    /** Reads the files now (after an upload), and follows them again. */
    refresh() {
      clearTimeout(timer);
      delay = 1000;
      return poll();
    },
  };
}
