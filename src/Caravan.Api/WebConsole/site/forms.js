// Forms generated from the API's own field definitions (GET /api/v1/source-types/): adding a
// type or a field to the API adds it here. The API validates; its `errors` are shown next to
// each field, `non_field_errors` (and anything without a field on screen) at the top.

import { h, clear, when } from './dom.js';

const LIST_KINDS = new Set(['name_list']);
const AREA_KINDS = new Set(['pem', 'service_account_key', 'certificate']);

/** The id of a field's control: a group's member (ssh_tunnel.host) gets a dash, so ids need no escaping in selectors. */
function fieldId(name) {
  return `field-${name.replace(/\./g, '-')}`;
}

/** A group's members as fields named group.member, the names the API stores and reports errors under. */
function membersOf(group) {
  return group.members.map((member) => ({ ...member, name: `${group.name}.${member.name}`, member: member.name }));
}

/**
 * The config readback with each group's members also under their dotted names (config and
 * secrets), so a member's control finds its stored value the way a top-level field does.
 */
function flatten(type, config) {
  const flat = { ...config, config: { ...config.config }, secrets: { ...config.secrets } };
  for (const group of type.fields.filter((field) => field.kind === 'group')) {
    const values = config.config[group.name] ?? {};
    const states = config.secrets[group.name] ?? {};
    for (const member of membersOf(group)) {
      flat.config[member.name] = values[member.member] ?? null;
      if (member.secret) flat.secrets[member.name] = states[member.member] ?? { set: false };
    }
  }
  return flat;
}

/** The form of a type a field belongs to; null for fields every form has. */
function formOf(type, name) {
  return type.forms.find((form) => form.fields.includes(name)) ?? null;
}

function isRequired(type, field, formName) {
  const form = formOf(type, field.name);
  return form ? form.name === formName && form.required.includes(field.name) : field.required;
}

/**
 * Builds the fields of a type into `container`. mode is 'create' or 'edit'; in edit mode
 * `config` is the answer of GET /sources/{id}/config/. Returns a controller with collect()
 * (the body to send) and showErrors().
 */
export function typeForm(container, type, mode, config = null) {
  clear(container);
  const inputs = new Map();
  const wrappers = new Map();
  const removals = new Map();
  if (config) config = flatten(type, config);
  let chosenForm = type.forms[0]?.name ?? null;
  if (mode === 'edit' && type.forms.length > 0) {
    // Editing shows the parts even when the source came from a connection string (they are stored as parts).
    chosenForm = type.forms.find((form) => form.name === 'fields')?.name ?? chosenForm;
  }

  const nameId = 'field-account_name';
  const nameInput = h('input', {
    id: nameId, name: 'account_name', type: 'text', maxlength: 255, autocomplete: 'off', spellcheck: 'false',
    placeholder: type.display_name, 'aria-describedby': `${nameId}-help ${nameId}-error`,
    value: mode === 'edit' ? config.account_name : '',
  });
  inputs.set('account_name', nameInput);
  const nameWrapper = h('div', { class: 'field' },
    h('label', { for: nameId }, 'Name'),
    nameInput,
    h('p', { class: 'help', id: `${nameId}-help` }, mode === 'edit' ? 'The name people see in lists.' : `Optional; “${type.display_name}” when left empty.`),
    h('p', { class: 'error', id: `${nameId}-error`, hidden: true }));
  wrappers.set('account_name', nameWrapper);
  container.append(nameWrapper);

  if (type.forms.length > 0) {
    const legendId = `${type.type}-forms`;
    const choice = h('fieldset', { class: 'choice' },
      h('legend', { id: legendId }, mode === 'edit' ? 'Change by' : 'Connect with'),
      type.forms.map((form) => {
        const id = `form-${form.name}`;
        return h('label', { for: id, class: 'radio' },
          h('input', {
            type: 'radio', id, name: 'form', value: form.name, checked: form.name === chosenForm,
            onchange: () => { chosenForm = form.name; refresh(); },
          }),
          ` ${form.label}`);
      }));
    container.append(choice);
  }

  for (const field of type.fields) {
    const wrapper = field.kind === 'group'
      ? groupControl(type, field, mode, config, inputs, wrappers, removals)
      : fieldControl(type, field, mode, config, inputs);
    wrappers.set(field.name, wrapper);
    container.append(wrapper);
  }

  if (type.key_pair && mode === 'create') {
    container.append(h('p', { class: 'note', id: 'key-pair-note' },
      `Leave ${type.key_pair.unless.join(', ')} empty and Caravan generates a key pair; you will get the statement that registers its public key.`));
  }

  function refresh() {
    for (const field of type.fields) {
      if (field.kind === 'group') continue;
      const form = formOf(type, field.name);
      const visible = !form || form.name === chosenForm;
      const wrapper = wrappers.get(field.name);
      wrapper.hidden = !visible;
      const required = isRequired(type, field, chosenForm) && !(mode === 'edit' && field.secret);
      const input = inputs.get(field.name);
      input.setAttribute('aria-required', required ? 'true' : 'false');
      wrapper.querySelector('.req').hidden = !required;
    }
  }
  refresh();

  function visibleFields() {
    return type.fields.filter((field) => !wrappers.get(field.name).hidden);
  }

  /**
   * What a group sends: the members typed or changed (update-config merges them), null when
   * "Remove" is ticked, undefined when nothing changed. Certificates, like secrets, are sent
   * only when typed: the readback describes them, it does not repeat them.
   */
  function collectGroup(group) {
    if (removals.get(group.name)?.checked) return null;
    const part = {};
    for (const member of membersOf(group)) {
      const control = inputs.get(member.name);
      const value = read(member, control);
      if (member.secret || member.kind === 'certificate') {
        if (value !== undefined) part[member.member] = value;
        else if (mode === 'edit' && control.dataset.clear === 'true') part[member.member] = null;
        continue;
      }
      if (mode === 'create') {
        if (value !== undefined) part[member.member] = value;
      } else if (JSON.stringify(value ?? null) !== JSON.stringify(config.config[member.name] ?? null)) {
        part[member.member] = value ?? null;
      }
    }
    return Object.keys(part).length > 0 ? part : undefined;
  }

  return {
    inputs,
    collect() {
      const body = {};
      const name = nameInput.value.trim();
      if (mode === 'create' ? name !== '' : name !== config.account_name) body.account_name = name;
      for (const field of visibleFields()) {
        if (field.kind === 'group') {
          const group = collectGroup(field);
          if (group !== undefined) body[field.name] = group;
          continue;
        }
        const stored = mode === 'edit' ? (config.config[field.name] ?? null) : null;
        const value = read(field, inputs.get(field.name));
        if (field.secret) {
          if (value !== undefined) body[field.name] = value;
          else if (mode === 'edit' && inputs.get(field.name).dataset.clear === 'true') body[field.name] = null;
          continue;
        }
        if (mode === 'create') {
          if (value !== undefined) body[field.name] = value;
        } else if (JSON.stringify(value ?? null) !== JSON.stringify(stored)) {
          body[field.name] = value ?? null;
        }
      }
      return body;
    },
    showErrors(errors, summary) {
      return showErrors(container, summary, errors, inputs, wrappers);
    },
    removals,
    clearErrors() {
      clearErrors(container, inputs, wrappers);
    },
  };
}

/**
 * A group (ssh_tunnel, tls) as a section collapsed by default, holding its members' controls;
 * a source that has the group can remove it. Errors about the group as a whole show under its title.
 */
function groupControl(type, group, mode, config, inputs, wrappers, removals) {
  const id = fieldId(group.name);
  const present = mode === 'edit' && config.config[group.name] !== null && config.config[group.name] !== undefined;
  const title = h('summary', { id: `${id}-title` }, group.label, present ? ' · set' : '');
  inputs.set(group.name, title);
  const section = h('details', { class: 'group', id, 'data-field': group.name },
    title,
    h('p', { class: 'help' }, group.help),
    h('p', { class: 'error', id: `${id}-error`, hidden: true }));
  for (const member of membersOf(group)) {
    const wrapper = fieldControl(type, member, mode, config, inputs);
    // Required within the group, once there is one.
    wrapper.querySelector('.req').hidden = !member.required;
    inputs.get(member.name).setAttribute('aria-required', member.required && !present ? 'true' : 'false');
    wrappers.set(member.name, wrapper);
    section.append(wrapper);
  }
  if (present) {
    const removeId = `${id}-remove`;
    const box = h('input', { type: 'checkbox', id: removeId });
    removals.set(group.name, box);
    section.append(h('p', {}, h('label', { for: removeId, class: 'inline' }, box, ` Remove the ${group.label}`)));
  }
  return section;
}

/** What the readback says of stored certificates: subject, issuer, expiry, and a warning within 30 days. */
function certificateStatus(id, described) {
  if (!Array.isArray(described) || described.length === 0) return null;
  return h('ul', { class: 'secret-state', id: `${id}-state` }, described.map((certificate) =>
    h('li', { class: certificate.expires_soon ? 'expires-soon' : null },
      `${certificate.subject}, issued by ${certificate.issuer}, valid until `, when(certificate.not_after),
      certificate.expires_soon ? ' · expires within 30 days' : '')));
}

function fieldControl(type, field, mode, config, inputs) {
  const id = fieldId(field.name);
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const describedBy = `${helpId} ${errorId}`;
  const stored = mode === 'edit' ? config.config[field.name] : undefined;
  const secretState = mode === 'edit' && field.secret ? config.secrets[field.name] : null;
  let control;
  const common = { id, name: field.name, 'aria-describedby': describedBy, autocomplete: 'off', spellcheck: 'false' };

  if (field.kind === 'choice') {
    control = h('select', common,
      h('option', { value: '' }, ''),
      field.choices.map((choice) => h('option', { value: choice, selected: stored === choice }, choice)));
  } else if (field.kind === 'boolean') {
    control = h('select', common,
      h('option', { value: '' }, 'Default'),
      h('option', { value: 'true', selected: stored === true }, 'Yes'),
      h('option', { value: 'false', selected: stored === false }, 'No'));
  } else if (LIST_KINDS.has(field.kind)) {
    control = h('textarea', { ...common, rows: 3 });
    control.value = Array.isArray(stored) ? stored.join('\n') : '';
  } else if (AREA_KINDS.has(field.kind)) {
    control = h('textarea', { ...common, rows: 4, class: 'mono' });
    if (!field.secret && typeof stored === 'string') control.value = stored;
  } else if (field.secret) {
    control = h('input', { ...common, type: 'password', maxlength: field.max_length ?? undefined,
      placeholder: secretState?.set ? 'Leave empty to keep the stored value' : '' });
  } else if (field.kind === 'port') {
    control = h('input', { ...common, type: 'text', inputmode: 'numeric', maxlength: 12,
      placeholder: field.default === null ? '' : String(field.default) });
    control.value = stored === null || stored === undefined ? '' : String(stored);
  } else {
    control = h('input', { ...common, type: 'text', maxlength: field.max_length ?? undefined });
    control.value = typeof stored === 'string' ? stored : '';
  }
  inputs.set(field.name, control);

  const help = [field.help + '.'];
  if (field.default !== null && field.default !== undefined && field.kind !== 'boolean') help.push(`Default: ${field.default}.`);
  if (LIST_KINDS.has(field.kind)) help.push('One per line.');
  if (field.secret && mode === 'create') help.push('Write-only: it is stored encrypted and never shown again.');

  const wrapper = h('div', { class: 'field', 'data-field': field.name },
    h('label', { for: id }, field.label, h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')),
    secretState ? secretStatus(field, secretState, control) : null,
    field.kind === 'certificate' ? certificateStatus(id, stored) : null,
    control,
    h('p', { class: 'help', id: helpId }, help.join(' ')),
    h('p', { class: 'error', id: errorId, hidden: true }));
  return wrapper;
}

function secretStatus(field, state, control) {
  if (!state.set) return h('p', { class: 'secret-state', id: `${fieldId(field.name)}-state` }, 'Not set');
  const clearId = `${fieldId(field.name)}-clear`;
  const parts = [h('span', {}, 'set · updated '), when(state.updated_at)];
  const box = field.required ? null : h('label', { for: clearId, class: 'inline' },
    h('input', { type: 'checkbox', id: clearId, onchange: (event) => {
      control.dataset.clear = event.target.checked ? 'true' : 'false';
      control.disabled = event.target.checked;
    } }), ' Clear it');
  return h('p', { class: 'secret-state', id: `${fieldId(field.name)}-state` }, parts, box ? ' · ' : null, box);
}

/** The value of a control as the API wants it; undefined when empty (omitted). */
function read(field, control) {
  if (control.disabled) return undefined;
  const text = control.value;
  if (field.kind === 'boolean') return text === '' ? undefined : text === 'true';
  if (LIST_KINDS.has(field.kind)) {
    const items = text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
    return items.length === 0 ? undefined : items;
  }
  if (field.kind === 'port') {
    const trimmed = text.trim();
    if (trimmed === '') return undefined;
    // Digits go as a number; anything else as typed, so the API says what is wrong with it.
    return /^\d{1,6}$/.test(trimmed) ? Number(trimmed) : trimmed;
  }
  if (field.secret) return text === '' ? undefined : text;
  return text.trim() === '' ? undefined : text;
}

export function clearErrors(container, inputs) {
  for (const input of inputs.values()) input.removeAttribute('aria-invalid');
  for (const error of container.querySelectorAll('.error')) {
    error.textContent = '';
    error.hidden = true;
  }
}

/**
 * Shows a 400's errors: each field's next to it; the rest in `summary` (an element at the
 * top of the form). Answers the element to focus: the first field in error, else the summary.
 */
export function showErrors(container, summary, errors, inputs, wrappers) {
  clearErrors(container, inputs);
  clear(summary);
  summary.hidden = true;
  let first = null;
  const loose = [];
  for (const [name, messages] of Object.entries(errors ?? {})) {
    const input = inputs.get(name);
    const wrapper = wrappers.get(name);
    if (input && wrapper && !wrapper.hidden) {
      // A member of a collapsed group is opened to show its error.
      input.closest('details')?.setAttribute('open', '');
      const error = wrapper.querySelector('.error');
      error.textContent = messages.join(' ');
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      first ??= input;
    } else {
      for (const message of messages) loose.push(name === 'non_field_errors' ? message : `${name}: ${message}`);
    }
  }
  if (loose.length > 0) {
    summary.append(h('ul', {}, loose.map((message) => h('li', {}, message))));
    summary.hidden = false;
  }
  return loose.length > 0 ? summary : first;
}
