// Building the page from data without ever parsing data as HTML: every text goes in as
// a text node, so nothing a media server sent can become markup or script.

// el("td", { class: "x", onclick: fn }, "text", childNode, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// RFC 3339 to the reader's local time, "never" for the 1970 stamp.
export function when(t) {
  if (!t) return "";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return t;
  if (d.getTime() <= 0) return "never";
  return d.toLocaleString();
}

export async function copy(text) {
  await navigator.clipboard.writeText(text);
}
