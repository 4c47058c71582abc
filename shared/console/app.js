// The console: sign in, pick a person, and work on their backends, deliveries, tasks
// and items through the /v1 api. One page; each section reloads what it shows from the
// api after every action, so what is on screen is what is stored.

import { api, key, enc, ApiError } from "./api.js";
import { el, clear, when, copy } from "./dom.js";
import { guide } from "./guides.js";

const $ = (id) => document.getElementById(id);
const state = { person: null, backends: [], deliveries: [] };
const PERSON = "watchstate.person";

function status(msg, isError = false) {
  const s = $("status");
  s.textContent = msg;
  s.classList.toggle("error", isError);
}

function fail(e, where = $("status")) {
  const msg = e instanceof ApiError ? e.message : String(e?.message ?? e);
  if (e instanceof ApiError && e.status === 401) return signOut("Your admin key is no longer accepted: sign in again.");
  where.textContent = msg;
  where.classList.add("error");
}

// A person's or backend's name as the api takes it: letters, digits, '-', '_', '.'.
export function plainName(s, fallback) {
  const n = String(s ?? "").trim().toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
  return n || fallback;
}

// ---------------------------------------------------------------- sign in / out

async function signIn(ev) {
  ev.preventDefault();
  const k = $("admin-key").value.trim();
  const out = $("signin-error");
  out.textContent = "";
  try {
    await api("GET", "users", undefined, k);
  } catch (e) {
    out.textContent = e instanceof ApiError && e.status === 401
      ? "That admin key was refused: check it and try again (make run prints it; it is also in .watchstate/admin-key)."
      : `Cannot sign in: ${e.message}`;
    return;
  }
  key.set(k);
  $("admin-key").value = "";
  await start();
}

function signOut(msg = "Signed out.") {
  key.clear();
  $("app").hidden = true;
  $("nav").hidden = true;
  $("people").hidden = true;
  $("signin").hidden = false;
  status(msg);
}

async function start() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("people").hidden = false;
  status("");
  await loadPeople(sessionStorage.getItem(PERSON));
}

// ---------------------------------------------------------------- people

async function loadPeople(choose) {
  const { users } = await api("GET", "users");
  const sel = clear($("person"));
  for (const u of users) sel.append(el("option", { value: u.name }, u.name));
  const names = users.map((u) => u.name);
  const pick = names.includes(choose) ? choose : names.includes(state.person) ? state.person : names[0] ?? null;
  if (pick) sel.value = pick;
  await choosePerson(pick);
}

async function choosePerson(name) {
  state.person = name;
  $("accounts").hidden = true;
  if (name) sessionStorage.setItem(PERSON, name);
  $("no-person").hidden = !!name;
  for (const id of ["backends", "deliveries", "tasks", "items"]) $(id).hidden = !name;
  if (name) await refreshAll();
}

async function refreshAll() {
  await loadBackends();
  await Promise.all([loadDeliveries(), loadRuns()]);
}

// Forms are cloned from their templates when opened and removed when closed, so the
// page never holds two fields of one name (both forms have a "Name").
function openForm(kind) {
  for (const f of document.querySelectorAll("form.panel")) f.remove();
  const form = $(`${kind}-form-tpl`).content.firstElementChild.cloneNode(true);
  $(`${kind}-form-slot`).append(form);
  form.querySelector(".cancel").addEventListener("click", () => form.remove());
  form.querySelector("input:not([type=checkbox]), select")?.focus();
  return form;
}

async function addPerson(ev) {
  ev?.preventDefault();
  const form = $("person-form");
  const name = $("person-name").value.trim();
  try {
    await api("PUT", `users/${enc(name)}`);
  } catch (e) {
    return fail(e, form.querySelector(".error"));
  }
  form.remove();
  status(`Added ${name}.`);
  await loadPeople(name);
}

// ---------------------------------------------------------------- backends

async function loadBackends() {
  const person = state.person;
  const [{ backends }, { deliveries }] = await Promise.all([
    api("GET", `users/${enc(person)}/backends`),
    api("GET", `users/${enc(person)}/deliveries?limit=200`),
  ]);
  state.backends = backends;
  state.deliveries = deliveries;
  const body = clear($("backend-table").tBodies[0]);
  const guides = clear($("guides"));
  if (!backends.length) {
    body.append(el("tr", {}, el("td", { colspan: 6 }, "No backend yet: Add backend, then paste its webhook URL into the media server.")));
  }
  for (const b of backends) {
    const last = deliveries.find((d) => d.backend === b.name);
    body.append(el("tr", {},
      el("th", { scope: "row" }, b.name),
      el("td", {}, b.type),
      el("td", {}, b.url || "(none: webhooks only)"),
      el("td", {}, b.has_token ? "yes" : "no (webhooks only: push, import and export need one)"),
      el("td", {}, last ? [when(last.received_at), " ", el("span", { class: `outcome ${last.status}` }, last.status)] : "none yet"),
      el("td", { class: "actions" },
        el("button", { type: "button", disabled: !b.webhook_url, onclick: () => copyUrl(b) }, "Copy webhook URL"),
        el("button", { type: "button", onclick: () => editBackend(b) }, "Edit"),
        el("button", { type: "button", onclick: () => rotate(b) }, "Rotate URL"),
        el("button", { type: "button", onclick: () => listAccounts(b) }, "List accounts"),
        el("button", { type: "button", class: "danger", onclick: () => removeBackend(b) }, "Delete"),
      ),
    ));
    guides.append(el("details", { class: "guide" },
      el("summary", {}, `Setup guide for ${b.name} (${b.type})`),
      el("p", {}, "Webhook URL: ", el("code", { class: "url" }, b.webhook_url ?? "(none: the token secret changed; Rotate URL makes a new one)")),
      guide(b.type, b.webhook_url, person),
    ));
  }
  fillBackendSelects();
  renderTaskBackends();
}

function fillBackendSelects() {
  for (const [id, first] of [["d-backend", "all"], ["t-backend", "all of this person's backends"], ["find-by", "guid"]]) {
    const sel = $(id);
    const keep = sel.value;
    clear(sel).append(el("option", { value: "" }, first));
    for (const b of state.backends) sel.append(el("option", { value: b.name }, id === "find-by" ? `${b.name} item id` : b.name));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
}

async function copyUrl(b) {
  try {
    await copy(b.webhook_url);
    status(`Copied the webhook URL of ${b.name}: paste it into the ${b.type} server.`);
  } catch (e) {
    status(`The browser did not allow copying; the URL is in the setup guide below. (${e.message})`, true);
  }
}

function showBackendGuide() {
  const kind = $("b-type").value;
  const editing = state.backends.find((b) => b.name === $("b-name").value);
  clear($("b-guide")).append(el("h4", {}, "Setup guide"), guide(kind, editing?.webhook_url, state.person));
}

function backendForm(b) {
  const form = openForm("backend");
  form.addEventListener("submit", (e) => saveBackend(e).catch(fail));
  $("b-type").addEventListener("change", showBackendGuide);
  $("backend-form-title").textContent = b ? `Edit ${b.name}` : "New backend";
  $("b-name").value = b?.name ?? "";
  $("b-name").readOnly = !!b;
  $("b-type").value = b?.type ?? "plex";
  $("b-url").value = b?.url ?? "";
  $("b-token").value = "";
  $("b-server-id").value = b?.server_id ?? "";
  $("b-user-id").value = b?.user_id ?? "";
  $("b-match-user").checked = !!b?.options?.match_user;
  $("b-match-server").checked = !!b?.options?.match_server;
  $("b-import").checked = !!b?.import?.enabled;
  $("b-export").checked = !!b?.export?.enabled;
  $("b-token-hint").textContent = b?.has_token ? "A token is stored: leave Token empty to keep it." : "";
  showBackendGuide();
}

const editBackend = (b) => backendForm(b);

async function saveBackend(ev) {
  ev.preventDefault();
  const form = $("backend-form");
  const out = form.querySelector(".error");
  const name = $("b-name").value.trim();
  const body = {
    type: $("b-type").value,
    url: $("b-url").value.trim(),
    server_id: $("b-server-id").value.trim() || null,
    user_id: $("b-user-id").value.trim() || null,
    options: { match_user: $("b-match-user").checked, match_server: $("b-match-server").checked },
    import: { enabled: $("b-import").checked },
    export: { enabled: $("b-export").checked },
  };
  const token = $("b-token").value;
  if (token) body.token = token;
  const verify = $("b-verify").checked && body.url;
  out.textContent = verify ? "Checking with the server..." : "";
  try {
    await api("PUT", `users/${enc(state.person)}/backends/${enc(name)}${verify ? "?verify=true" : ""}`, body);
  } catch (e) {
    return fail(e, out);
  }
  form.remove();
  status(`Saved ${name}${verify ? " (verified with the server)" : ""}. Copy its webhook URL into the server.`);
  await loadBackends();
}

async function rotate(b) {
  if (!confirm(`Make a new webhook URL for ${b.name}? The old one stops working at once: paste the new one into the ${b.type} server.`)) return;
  try {
    await api("PUT", `users/${enc(state.person)}/backends/${enc(b.name)}?rotate_token=true`, {
      type: b.type, url: b.url, server_id: b.server_id, user_id: b.user_id, options: b.options,
      import: { enabled: !!b.import?.enabled }, export: { enabled: !!b.export?.enabled },
    });
  } catch (e) {
    return fail(e);
  }
  status(`New webhook URL for ${b.name}: copy it into the server.`);
  await loadBackends();
}

async function removeBackend(b) {
  if (!confirm(`Delete backend ${b.name} of ${state.person}? Its webhook URL stops working; stored play state stays.`)) return;
  try {
    await api("DELETE", `users/${enc(state.person)}/backends/${enc(b.name)}`);
  } catch (e) {
    return fail(e);
  }
  status(`Deleted ${b.name}.`);
  await loadBackends();
}

// The server's accounts, each addable as a person with a backend that matches only
// their events (user id + Match user), on the same server.
async function listAccounts(b) {
  const person = state.person;
  const box = $("accounts");
  box.hidden = false;
  $("accounts-title").textContent = `Accounts on ${b.name}'s server`;
  const hint = box.querySelector(".hint");
  const ul = clear(box.querySelector("ul"));
  hint.textContent = "Asking the server...";
  hint.classList.remove("error");
  let accounts;
  try {
    ({ accounts } = await api("GET", `users/${enc(state.person)}/backends/${enc(b.name)}/accounts`));
  } catch (e) {
    return fail(e, hint);
  }
  const { users } = await api("GET", "users");
  // The person may have been switched meanwhile: this list was theirs, not the new one's.
  if (state.person !== person) return;
  const plex = b.type === "plex";
  hint.textContent = `Add a person per account: each gets a ${b.type} backend named ${b.name} on this server with the account's user id and Match user on. `
    + (plex
      ? "A Plex token acts for one account only, so give each account's own token to let watchstate push and import for them. "
        + "To find it: sign in to Plex Web as that account (a Plex Home user: switch to them), open any item, ⋯ → Get Info → View XML; "
        + "the address ends in X-Plex-Token=…. Without it the person's backend receives webhooks only, until you add the token with Edit."
      : b.has_token
        ? `The server's API key stored with ${b.name} acts for every user id: it is reused for each new person (it stays on the server side), with import and export as ${b.name} has them.`
        : `${b.name} has no token to reuse: the new backends receive webhooks only until you add a token with Edit.`);
  for (const a of accounts) {
    const name = plainName(a.name, `account-${a.id}`);
    const taken = users.some((u) => u.name === name);
    const mine = b.user_id === a.id;
    const li = el("li", {}, `${a.name || "(no name)"} — user id ${a.id} `);
    if (mine) li.append(el("em", {}, `(this is ${person})`));
    else if (taken) li.append(el("em", {}, `(person ${name} exists)`));
    else {
      const field = plex ? el("input", { type: "password", id: `token-${a.id}`, spellcheck: "false", autocomplete: "off", placeholder: "X-Plex-Token" }) : null;
      if (field) li.append(el("label", { for: field.id }, `Plex token for ${name}`), " ", field, " ");
      li.append(el("button", { type: "button", onclick: () => addFromAccount(b, a, name, field?.value.trim()) }, `Add ${name} as a person`));
    }
    ul.append(li);
  }
}

// The new person's backend on the same server. Jellyfin and Emby: the source's token
// (the server's API key) is reused server-side, it never comes to the page. Plex: the
// account's own token when given, else webhooks only (and the page says so).
async function addFromAccount(b, a, name, plexToken) {
  const body = {
    type: b.type, url: b.url, server_id: b.server_id, user_id: a.id,
    options: { match_user: true, match_server: false },
    import: { enabled: false }, export: { enabled: false },
  };
  let token = false;
  if (b.type === "plex" ? plexToken : b.has_token) {
    if (b.type === "plex") body.token = plexToken;
    else body.token_from = { user: state.person, backend: b.name };
    body.import.enabled = !!b.import?.enabled;
    body.export.enabled = !!b.export?.enabled;
    token = true;
  }
  const hint = $("accounts").querySelector(".hint");
  try {
    await api("PUT", `users/${enc(name)}`);
    // A Plex token typed here is checked with the server before it is saved.
    await api("PUT", `users/${enc(name)}/backends/${enc(b.name)}${b.type === "plex" && token ? "?verify=true" : ""}`, body);
  } catch (e) {
    return fail(e, hint);
  }
  const { users } = await api("GET", "users");
  const sel = clear($("person"));
  for (const u of users) sel.append(el("option", { value: u.name }, u.name));
  sel.value = state.person;
  await listAccounts(b);
  const how = token
    ? b.type === "plex" ? ` and ${name}'s own Plex token` : ` and the server's API key from ${b.name}`
    : "";
  const limits = token ? ""
    : ` It receives webhooks but cannot be pushed to or imported until it has ${b.type === "plex" ? `${name}'s own Plex token` : "a token"} (Edit → Token).`;
  status(`Added ${name} (user id ${a.id}) with backend ${b.name}${how}: switch to ${name} to copy their webhook URL.${limits}`);
}

// ---------------------------------------------------------------- deliveries

async function loadDeliveries() {
  const person = state.person;
  const [{ deliveries }, { findings }] = await Promise.all([
    api("GET", `users/${enc(person)}/deliveries?limit=200`),
    api("GET", `users/${enc(person)}/diagnosis`),
  ]);
  state.deliveries = deliveries;
  const diag = clear($("diagnosis"));
  if (findings.length) {
    diag.append(el("h3", {}, "Diagnosis"), el("ul", { class: "findings" }, findings.map((f) =>
      el("li", { class: `finding ${f.kind}` }, f.message))));
  } else {
    diag.append(el("p", { class: "hint" }, deliveries.length ? "Diagnosis: nothing looks wrong." : "Diagnosis: no delivery yet."));
  }
  const sel = $("d-outcome");
  const keep = sel.value;
  clear(sel).append(el("option", { value: "" }, "all"));
  for (const s of [...new Set(deliveries.map((d) => d.status))].sort()) sel.append(el("option", { value: s }, s));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  renderDeliveries();
}

function renderDeliveries() {
  const b = $("d-backend").value;
  const o = $("d-outcome").value;
  const body = clear($("delivery-table").tBodies[0]);
  const shown = state.deliveries.filter((d) => (!b || d.backend === b) && (!o || d.status === o));
  if (!shown.length) body.append(el("tr", {}, el("td", { colspan: 7 }, "No delivery to show.")));
  for (const d of shown) {
    const row = el("tr", {},
      el("td", {}, when(d.received_at)),
      el("td", {}, d.backend ?? ""),
      el("td", {}, d.event ?? ""),
      el("td", {}, el("span", { class: `outcome ${d.status}` }, d.status)),
      el("td", {}, d.reason ?? ""),
      el("td", {}, d.item_id ?? ""),
      el("td", {}, el("button", { type: "button", onclick: (e) => showPayload(d, row, e.target) }, "Show payload")),
    );
    body.append(row);
  }
}

async function showPayload(d, row, button) {
  const next = row.nextElementSibling;
  if (next?.classList.contains("payload")) {
    next.remove();
    button.textContent = "Show payload";
    return;
  }
  let text = "(not kept)";
  try {
    // Only this delivery, with its body: the list itself carries none.
    const found = await api("GET", `users/${enc(state.person)}/deliveries/${enc(d.id)}`);
    if (found?.body) {
      try {
        text = JSON.stringify(JSON.parse(found.body), null, 2);
      } catch {
        text = found.body;
      }
      if (found.body_truncated) text += "\n(cut at 64 KiB)";
    }
  } catch (e) {
    return fail(e);
  }
  row.after(el("tr", { class: "payload" }, el("td", { colspan: 7 }, el("pre", {}, text))));
  button.textContent = "Hide payload";
}

// ---------------------------------------------------------------- tasks

function renderTaskBackends() {
  const body = clear($("task-backends").tBodies[0]);
  for (const b of state.backends) {
    const toggle = (task) => {
      const on = !!b[task]?.enabled;
      return el("td", {}, on ? "on " : "off ",
        el("button", { type: "button", onclick: () => setTask(b, task, !on) }, `Turn ${task} ${on ? "off" : "on"} for ${b.name}`));
    };
    body.append(el("tr", {}, el("th", { scope: "row" }, b.name), toggle("import"), toggle("export")));
  }
}

async function setTask(b, task, enabled) {
  const body = {
    type: b.type, url: b.url, server_id: b.server_id, user_id: b.user_id, options: b.options,
    import: { enabled: !!b.import?.enabled }, export: { enabled: !!b.export?.enabled },
  };
  body[task] = { enabled };
  try {
    await api("PUT", `users/${enc(state.person)}/backends/${enc(b.name)}`, body);
  } catch (e) {
    return fail(e, $("t-result"));
  }
  status(`${task} ${enabled ? "on" : "off"} for ${b.name}.`);
  await loadBackends();
}

async function runTask(task) {
  const out = $("t-result");
  out.classList.remove("error");
  const backend = $("t-backend").value || undefined;
  const dry_run = $("t-dry-run").checked;
  out.textContent = `Running ${task}${dry_run ? " (dry run)" : ""}...`;
  let report;
  try {
    report = await api("POST", `tasks/${task}`, { user: state.person, backend, dry_run });
  } catch (e) {
    return fail(e, out);
  }
  out.textContent = `${task} finished${dry_run ? " (dry run: nothing written)" : ""}: ${summary(task, report)}`;
  await Promise.all([loadRuns(), loadDeliveries()]);
}

// A task report's counts in words: import reports per backend (`backends[].counts`),
// export per person (`users[]`).
function summary(task, report) {
  const rows = task === "import"
    ? (report?.backends ?? []).map((b) => ({ ...b.counts, failed: b.error ? 1 : 0 }))
    : report?.users ?? [];
  const sum = (k) => rows.reduce((n, r) => n + (Number(r?.[k]) || 0), 0);
  const counts = task === "import"
    ? `${sum("items_seen")} seen, ${sum("created")} created, ${sum("changed")} changed, ${sum("pushed")} to push`
    : `${sum("items_seen")} compared, ${sum("pushed")} pushed`;
  const took = report?.duration_ms ?? rows.reduce((n, r) => n + (Number(r?.duration_ms) || 0), 0);
  const none = rows.length ? "" : " (no backend of this person has it turned on)";
  return `${rows.length} ${task === "import" ? "backend(s)" : "person(s)"}${none}, ${counts}, ${sum("failed")} failed, in ${took} ms`;
}

function duration(r) {
  if (!r.started_at || !r.finished_at) return "";
  const ms = new Date(r.finished_at) - new Date(r.started_at);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

async function loadRuns() {
  const { runs } = await api("GET", "tasks/runs?limit=20");
  const body = clear($("run-table").tBodies[0]);
  if (!runs.length) body.append(el("tr", {}, el("td", { colspan: 13 }, "No run yet.")));
  for (const r of runs) {
    body.append(el("tr", {},
      el("td", {}, r.task), el("td", {}, r.user ?? "everyone"), el("td", {}, r.backend ?? "all"),
      el("td", {}, when(r.started_at)), el("td", {}, duration(r)), el("td", {}, r.dry_run ? "yes" : "no"),
      el("td", {}, r.pages), el("td", {}, r.items_seen), el("td", {}, r.created), el("td", {}, r.changed),
      el("td", {}, r.pushed), el("td", {}, r.failed), el("td", {}, (r.errors ?? []).join("; ")),
    ));
  }
}

// ---------------------------------------------------------------- items

async function findItems(ev) {
  ev?.preventDefault();
  const q = $("find").value.trim();
  const by = $("find-by").value;
  const out = $("i-result");
  out.classList.remove("error");
  const query = by ? `backend=${enc(by)}&backend_item_id=${enc(q)}` : `guid=${enc(q)}`;
  let items;
  try {
    ({ items } = await api("GET", `users/${enc(state.person)}/items?${query}`));
  } catch (e) {
    clear($("item-list"));
    return fail(e, out);
  }
  out.textContent = items.length ? `${items.length} item(s) for ${q}.` : `No item for ${q}: an item is known once a webhook or an import reported it.`;
  const list = clear($("item-list"));
  for (const i of items) list.append(itemCard(i));
}

function itemCard(i) {
  const title = i.type === "episode"
    ? `${i.series_title ?? "?"} S${String(i.season ?? "?").padStart(2, "0")}E${String(i.episode ?? "?").padStart(2, "0")} ${i.title ?? ""}`
    : `${i.title ?? "(no title)"}${i.year ? ` (${i.year})` : ""}`;
  const guids = Object.entries(i.guids ?? {}).map(([k, v]) => `${k}:${v}`).join(", ");
  const card = el("article", { class: "item", "aria-label": title },
    el("h3", {}, title),
    el("p", {}, el("strong", { class: i.watched ? "watched" : "unwatched" }, i.watched ? "Watched" : "Not watched"),
      ` since ${when(i.state_updated_at)}`, i.via ? ` (via ${i.via})` : "",
      i.progress_ms ? `; resume at ${Math.round(i.progress_ms / 60000)} min` : ""),
    el("p", { class: "hint" }, `${i.type}; ids: ${guids || "none"}`),
    el("table", { class: "list" },
      el("thead", {}, el("tr", {}, el("th", {}, "Backend"), el("th", {}, "Item id"), el("th", {}, "Watched there"), el("th", {}, "Progress"))),
      el("tbody", {}, Object.entries(i.backends ?? {}).map(([name, s]) => el("tr", {},
        el("th", { scope: "row" }, name), el("td", {}, s.item_id ?? ""),
        el("td", {}, s.watched === true ? "yes" : s.watched === false ? "no" : "unknown"),
        el("td", {}, s.progress_ms ? `${Math.round(s.progress_ms / 1000)} s` : ""))))),
    el("button", { type: "button", onclick: () => mark(i, true) }, "Mark played"),
    el("button", { type: "button", onclick: () => mark(i, false) }, "Mark unplayed"),
  );
  return card;
}

async function mark(i, watched) {
  const out = $("i-result");
  out.classList.remove("error");
  let r;
  try {
    r = await api("POST", `users/${enc(state.person)}/items/${enc(i.id)}/${watched ? "played" : "unplayed"}`);
  } catch (e) {
    return fail(e, out);
  }
  const msg = r.changed
    ? `Marked ${watched ? "played" : "unplayed"}${r.pushed ? " and pushed to the backends with export on" : "; the push waits in the outbox"}.`
    : `Nothing changed (${r.reason}${r.detail ? `: ${r.detail}` : ""}).`;
  await findItems();
  out.textContent = msg;
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("person").addEventListener("change", (e) => choosePerson(e.target.value).catch(fail));
  $("add-person").addEventListener("click", () => {
    // A second click with a name typed adds the person, as the form's button does.
    if ($("person-form") && $("person-name").value.trim()) return addPerson().catch(fail);
    openForm("person").addEventListener("submit", (e) => addPerson(e).catch(fail));
  });
  $("add-backend").addEventListener("click", () => backendForm(null));
  $("d-backend").addEventListener("change", renderDeliveries);
  $("d-outcome").addEventListener("change", renderDeliveries);
  $("d-refresh").addEventListener("click", () => refreshAll().catch(fail));
  $("run-import").addEventListener("click", () => runTask("import").catch(fail));
  $("run-export").addEventListener("click", () => runTask("export").catch(fail));
  $("find-form").addEventListener("submit", (e) => findItems(e).catch(fail));
  // Last: the page can be used from here on (index.html keeps it disabled until then).
  $("signin-submit").disabled = false;
}

wire();
if (key.get()) start().catch(fail);
