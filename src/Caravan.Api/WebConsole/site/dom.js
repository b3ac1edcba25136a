// Small DOM helpers. Text always goes in as text nodes, never as HTML, so nothing a server or a
// user typed can become markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'class') {
      element.className = value;
    } else if (name === 'for') {
      element.htmlFor = value;
    } else if (name === 'text') {
      element.textContent = value;
    } else if (name === 'value' || name === 'checked' || name === 'disabled' || name === 'hidden' || name === 'selected') {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(element) {
  while (element.firstChild) element.firstChild.remove();
  return element;
}

/** An alert box, hidden until showAlert fills it; focusable so that focus can move to it. */
export function alertBox(id, kind = 'error') {
  return h('div', { class: `alert ${kind}`, role: 'alert', id, hidden: true, tabindex: '-1' });
}

export function showAlert(box, ...content) {
  clear(box);
  box.append(...content);
  box.hidden = false;
  box.focus();
}

/** A <time> showing how long ago, with the exact UTC time as its title. */
export function when(iso) {
  if (!iso) return h('span', {}, 'never');
  const date = new Date(iso);
  return h('time', { datetime: iso, title: date.toISOString().replace('.000Z', 'Z') }, relative(date));
}

export function relative(date) {
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days < 30) return `${days} d ago`;
  return date.toISOString().slice(0, 10);
}

let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}
