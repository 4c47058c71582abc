// The console in a real browser, the same flow in each: Debian's chromium and Debian's
// firefox-esr, driven by playwright-core (which downloads no browser: chromium over
// CDP, Firefox over WebDriver BiDi), against the real function binaries under
// `cargo lambda watch` with a fake Plex and a fake Jellyfin server
// (`target/debug/console_stack`, built by `make test`). Every step goes through the
// page by the accessible names of DESIGN 6 "The console", and the last step checks
// that every one of those names was used; screenshots of each page land in
// target/console-screenshots/{chromium,firefox}/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, firefox } from "playwright-core";
import { unused } from "./names.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");

// How each browser is started. Both are Debian's packages (`make tools-browser`).
const BROWSERS = {
  chromium: {
    executable: process.env.CHROMIUM ?? "/usr/bin/chromium",
    launch: (profile, executablePath) => chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      // --no-proxy-server: the stack is on loopback; a machine's proxy settings (CI's
      // environment) must not route the page's requests.
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server"],
      viewport: { width: 1100, height: 760 },
      permissions: ["clipboard-read", "clipboard-write"],
    }),
  },
  firefox: {
    executable: process.env.FIREFOX ?? "/usr/bin/firefox-esr",
    // A stock Firefox over WebDriver BiDi: playwright-core's "moz-firefox" channel.
    launch: (profile, executablePath) => firefox.launchPersistentContext(profile, {
      channel: "moz-firefox",
      executablePath,
      headless: true,
      viewport: { width: 1100, height: 760 },
      firefoxUserPrefs: {
        // Let the test read what the page copied (Firefox asks the user otherwise),
        // and keep Firefox from calling home.
        "dom.events.testing.asyncClipboard": true,
        "dom.events.asyncClipboard.readText": true,
        "app.update.enabled": false,
        "browser.shell.checkDefaultBrowser": false,
        "datareporting.policy.dataSubmissionEnabled": false,
        "toolkit.telemetry.enabled": false,
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "extensions.update.enabled": false,
        "browser.safebrowsing.malware.enabled": false,
        "browser.safebrowsing.phishing.enabled": false,
      },
    }),
  },
};

// Registers the whole flow for one browser (one test file per browser).
export function consoleFlow(browser) {
  const shots = path.join(target, "console-screenshots", browser);
  const used = new Set();
  let stack, lines, env, context, page, profile;

  // One JSON line from the stack process.
  function nextLine() {
    return new Promise((resolve, reject) => {
      const onLine = (l) => { cleanup(); resolve(JSON.parse(l)); };
      const onClose = () => { cleanup(); reject(new Error("console_stack exited")); };
      const cleanup = () => { lines.off("line", onLine); lines.off("close", onClose); };
      lines.once("line", onLine);
      lines.once("close", onClose);
    });
  }

  async function ask(command) {
    stack.stdin.write(`${command}\n`);
    return nextLine();
  }

  // Poll a locator's text until it matches (playwright-core has no `expect`).
  async function textMatches(locator, re, timeout = 15000) {
    const end = Date.now() + timeout;
    let last = "";
    while (Date.now() < end) {
      last = (await locator.count()) ? await locator.first().innerText() : "";
      if (re.test(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${re} not seen; last text: ${JSON.stringify(last)}`);
  }

  async function until(check, what, timeout = 15000) {
    const end = Date.now() + timeout;
    while (Date.now() < end) {
      const v = await check();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  // Every lookup by accessible name goes through these, which note the name used.
  const button = (name, scope = page) => (used.add(name), scope.getByRole("button", { name, exact: true }));
  const label = (name, scope = page) => (used.add(name), scope.getByLabel(name, { exact: true }));
  const heading = (name) => (used.add(name), page.getByRole("heading", { name, exact: true }));
  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());
  const backendRow = (name) => page.locator("#backend-table tbody tr").filter({ has: page.getByRole("rowheader", { name, exact: true }) });
  const shot = (name, locator = page) => locator.screenshot({ path: path.join(shots, `${name}.png`), ...(locator === page ? { fullPage: true } : {}) });

  // What the page went through, kept so that a failing step can say why (a CI log is
  // all there is of a run on a fresh machine): script errors, failed and refused
  // requests, navigations. Webhook tokens are cut from URLs.
  const trail = [];
  const redact = (s) => String(s).replace(/wst_[A-Za-z0-9_-]+/g, "wst_…");
  const note = (s) => {
    trail.push(`${new Date().toISOString().slice(11, 23)} ${redact(s)}`);
    if (trail.length > 200) trail.shift();
  };
  function watch(p) {
    p.on("console", (m) => ["error", "warning"].includes(m.type()) && note(`console ${m.type()}: ${m.text()}`));
    p.on("pageerror", (e) => note(`page error: ${e.message}`));
    p.on("requestfailed", (r) => note(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`));
    p.on("response", (r) => r.status() >= 400 && note(`${r.status()} ${r.request().method()} ${r.url()}`));
    p.on("framenavigated", (f) => f === p.mainFrame() && note(`navigated to ${f.url()}`));
    p.on("crash", () => note("the page crashed"));
  }

  // cargo lambda watch (1.9.2) now and then loses a function's larger answer and replies
  // 500 with its own problem document, or never (measured here: 1 page load in 52 of
  // this flow; 2 to 13 losses in 150 rounds of the page's 7 files, serial or
  // concurrent, those seen all the 25 KB app.js but one of the 8 KB page). That is the
  // emulator, not the api, which never sends that document: the page is loaded again
  // then, at most twice, and only on that signature; CI's log says when it happened.
  const EMULATOR_LOST = '"type":"https://httpstatuses.com/500"';
  async function openConsole(p, ready) {
    for (let attempt = 1; ; attempt++) {
      const reads = [];
      const onResponse = (r) => r.status() === 500 && reads.push(r.text().then((t) => t.includes(EMULATOR_LOST) && r.url(), () => false));
      p.on("response", onResponse);
      const res = await p.goto(env.console);
      const isReady = await ready();
      p.off("response", onResponse);
      const lost = (await Promise.all(reads)).filter(Boolean);
      if (isReady || lost.length === 0 || attempt === 3) return res;
      const msg = `the emulator lost ${lost.join(", ")} (its own 500), loading the page again`;
      note(msg);
      console.error(`${browser}: ${redact(msg)}`);
    }
  }

  // One step of the flow; when it fails, the trail, a screenshot and the tail of the
  // emulator's log go to stderr (the TAP output) before the failure, and the steps
  // after it are skipped (each builds on the one before).
  let explained = false;
  const step = (t, name, fn) => t.test(name, { skip: explained && "an earlier step failed" }, async () => {
    try {
      await fn();
    } catch (e) {
      if (!explained) {
        explained = true;
        await page.screenshot({ path: path.join(shots, "failed.png"), fullPage: true }).catch(() => {});
        const log = await Promise.race([ask("log"), new Promise((r) => setTimeout(() => r({ log: "(no answer)" }), 5000))]);
        console.error([`${browser}: "${name}" failed at ${page.url()}`, "page trail:", ...trail,
          "emulator log (tail):", ...String(log.log ?? "").split("\n").slice(-60)].map(redact).join("\n"));
      }
      throw e;
    }
  });

  async function adminApi(method, p, body) {
    const res = await fetch(new URL(`v1/${p}`, env.console), {
      method,
      headers: { Authorization: `Bearer ${env.admin_key}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }

  before(async () => {
    await mkdir(shots, { recursive: true });
    stack = spawn(path.join(target, "debug", "console_stack"), [], { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
    lines = createInterface({ input: stack.stdout });
    env = await nextLine();
    const { executable, launch } = BROWSERS[browser];
    await access(executable).catch(() => assert.fail(`${browser} is not at ${executable}: make tools-browser installs it`));
    profile = await mkdtemp(path.join(tmpdir(), `watchstate-${browser}-`));
    context = await launch(profile, executable);
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20000);
    watch(page);
  });

  after(async () => {
    await context?.close();
    if (stack) {
      stack.stdin.end("quit\n");
      await new Promise((r) => (stack.exitCode !== null ? r() : stack.once("exit", r)));
    }
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  test(`the console in ${browser}, from sign-in to a pushed mark played`, async (t) => {
    const plex = env.plex;
    const jf = env.jellyfin;

    await step(t, "sign in refuses a wrong key, takes the right one", async () => {
      // Until its script runs, the page cannot be submitted (natively, the form would
      // reload the page with nothing signed in), and says why if scripts are off.
      const bare = await context.newPage();
      await bare.route("**/console/app.js", (r) => r.abort());
      await openConsole(bare, async () => (await bare.locator("#signin-submit").count()) === 1);
      assert.equal(await button("Sign in", bare).isDisabled(), true, "Sign in waits for the script");
      await bare.close();
      const res = await openConsole(page, () => page.locator("#signin-submit").isEnabled());
      assert.equal(res.headers()["x-frame-options"], "DENY");
      assert.match(res.headers()["content-security-policy"], /script-src 'self'/);
      await label("Admin key").fill("not-the-key");
      await button("Sign in").click();
      await textMatches(page.getByRole("alert"), /admin key was refused/);
      await shot("sign-in");
      await label("Admin key").fill(env.admin_key);
      await button("Sign in").click();
      await button("Sign out").waitFor();
      assert.equal(await page.evaluate(() => location.href.includes(sessionStorage.getItem("watchstate.admin-key") ?? "\u0000")), false,
        "the key is never in the URL");
    });

    await step(t, "add a person", async () => {
      await button("Add person").click();
      await label("Name").fill("ana");
      await button("Save").click();
      await until(async () => (await label("Person").inputValue()) === "ana", "ana chosen in the Person switcher");
      await heading("Backends").waitFor();
    });

    await step(t, "add a Plex backend, verified against the server", async () => {
      await button("Add backend").click();
      await label("Name").fill("plex");
      await label("Type").selectOption("plex");
      await label("URL").fill(plex.url);
      await label("Token").fill(plex.token);
      assert.equal(await label("Server id").inputValue(), "", "left empty: Verify fills it in");
      await label("User id").fill(plex.user_id);
      await label("Import").check();
      await label("Export").check();
      await button("Save").click();
      const row = backendRow("plex");
      await textMatches(row, /plex\s+plex\s+http:\/\/127\.0\.0\.1:\d+\s+yes\s+none yet/);
      // Verify filled in the server id the fake reported.
      await button("Edit", row).click();
      assert.equal(await label("Server id").inputValue(), plex.server_id);
      await button("Cancel", page.locator("#backend-form")).click();
      assert.ok(!(await page.content()).includes(plex.token), "the token is never shown");
    });

    let webhookUrl;
    await step(t, "copy its webhook URL and the Tautulli template", async () => {
      await button("Copy webhook URL", backendRow("plex")).click();
      webhookUrl = await until(clipboard, "the clipboard");
      assert.ok(webhookUrl.startsWith(`${env.base}/lambda-url/webhook/webhook/wst_`), webhookUrl);
      const guide = page.locator("details.guide").filter({ hasText: "Setup guide for plex" });
      await guide.locator("summary").click();
      await textMatches(guide, new RegExp(`Paste this URL: ${webhookUrl.replace(/[.?*+^$()[\]{}|\\/]/g, "\\$&")}`));
      await textMatches(guide, /Match user/);
      await button("Copy Tautulli template", guide).click();
      const template = await clipboard();
      assert.ok(template.startsWith('{"event": "tautulli.{action}"'), template.slice(0, 40));
      JSON.parse(template.replace(/"\{[a-z_]+\}"/g, '"x"').replace(/\{action\}/g, "x"));
      await shot("backends", page.locator("#backends"));
    });

    await step(t, "a real Plex payload posted to it shows in Deliveries", async () => {
      const json = await readFile(path.join(root, "tests/fixtures/webhooks/plex/media.scrobble-movie-plexguid-movary.json"));
      const form = new FormData();
      form.append("payload", new Blob([json], { type: "application/json" }));
      form.append("thumb", new Blob([Buffer.from([0xff, 0xd8, 0xff, 0xd9])], { type: "image/jpeg" }), "thumb.jpg");
      const res = await fetch(webhookUrl, { method: "POST", body: form, headers: { "User-Agent": "PlexMediaServer/1.30.0.6486" } });
      const answer = await res.json();
      assert.equal(res.status, 200, JSON.stringify(answer));
      assert.equal(answer.status, "stored");

      await heading("Deliveries").waitFor();
      await button("Refresh").click();
      const row = page.locator("#delivery-table tbody tr").filter({ hasText: "media.scrobble" });
      await textMatches(row, /plex\s+media\.scrobble\s+stored/);
      // The payload comes from that one delivery's route, not from the list again.
      const asked = [];
      const onRequest = (r) => asked.push(new URL(r.url()));
      page.on("request", onRequest);
      await button("Show payload", row).click();
      await textMatches(page.locator("#delivery-table tr.payload pre"), /"event": "media\.scrobble"/);
      page.off("request", onRequest);
      const api = asked.filter((u) => u.pathname.includes("/v1/"));
      assert.equal(api.length, 1, api.join(" "));
      assert.match(api[0].pathname, /\/v1\/users\/ana\/deliveries\/[^/]+$/);
      await button("Hide payload", row).click();
      assert.equal(await page.locator("#delivery-table tr.payload").count(), 0);
      await textMatches(backendRow("plex"), /stored/);
      // Filters: by outcome, by backend.
      await label("Show outcome").selectOption("stored");
      await textMatches(page.locator("#delivery-table tbody tr").first(), /media\.scrobble\s+stored/);
      await label("Show outcome").selectOption("");
      await shot("deliveries", page.locator("#deliveries"));
    });

    await step(t, "household members from the Plex server's accounts", async () => {
      await button("List accounts", backendRow("plex")).click();
      const box = page.locator("#accounts");
      await textMatches(box, /Ana — user id 1 \(this is ana\)/);
      // A Plex token is one account's own: the page asks for Ben's, and says where it is.
      await textMatches(box.locator(".hint"), /X-Plex-Token/);
      await label("Plex token for ben", box).fill(plex.ben_token);
      await shot("accounts", box);
      await button("Add ben as a person", box).click();
      await textMatches(page.getByRole("status").first(), /Added ben \(user id 23456789\) with backend plex and ben's own Plex token/);
      const { json } = await adminApi("GET", "users/ben/backends/plex");
      assert.equal(json.user_id, plex.accounts.ben);
      assert.equal(json.options.match_user, true);
      assert.equal(json.url, plex.url);
      assert.equal(json.has_token, true, "ben's backend can be pushed to");
      assert.deepEqual([json.import.enabled, json.export.enabled], [true, true], "as ana's plex has them");
      assert.ok(!(await page.content()).includes(plex.ben_token), "the token is not shown again");
      await label("Person").selectOption("ben");
      await textMatches(backendRow("plex"), /plex\s+plex/);
      await button("Copy webhook URL", backendRow("plex")).click();
      const bensUrl = await clipboard();
      assert.notEqual(bensUrl, webhookUrl, "each person has their own URL");
      // Ben's backend goes again, after a confirmation.
      page.once("dialog", (d) => d.accept());
      await button("Delete", backendRow("plex")).click();
      await until(async () => (await backendRow("plex").count()) === 0, "ben's backend deleted");
      await label("Person").selectOption("ana");
      await backendRow("plex").waitFor();
    });

    await step(t, "add a Jellyfin backend with Match server", async () => {
      await button("Add backend").click();
      await label("Name").fill("jellyfin");
      await label("Type").selectOption("jellyfin");
      await label("URL").fill(jf.url);
      await label("Token").fill(jf.token);
      await label("Server id").fill(jf.server_id);
      await label("User id").fill(jf.user_id);
      await label("Match user").check();
      await label("Match server").check();
      await label("Import").check();
      await label("Export").check();
      await button("Save").click();
      await textMatches(backendRow("jellyfin"), /jellyfin\s+jellyfin\s+http/);
      // Cleo from the Jellyfin server's accounts: the server's API key is reused for her
      // on the server side (it never comes to the page), so push and import act for her.
      await button("List accounts", backendRow("jellyfin")).click();
      const box = page.locator("#accounts");
      await textMatches(box.locator(".hint"), /API key stored with jellyfin acts for every user id/);
      await button("Add cleo as a person", box).click();
      await textMatches(page.getByRole("status").first(), /Added cleo \(user id c1e0\w+\) with backend jellyfin and the server's API key from jellyfin/);
      const cleo = (await adminApi("GET", "users/cleo/backends/jellyfin")).json;
      assert.deepEqual([cleo.user_id, cleo.has_token, cleo.export.enabled], [jf.accounts.cleo, true, true], JSON.stringify(cleo));
      assert.ok(!(await page.content()).includes(jf.token), "the API key is never shown");
      await label("Show backend").selectOption("jellyfin");
      await textMatches(page.locator("#delivery-table tbody"), /^No delivery to show\.$/);
      await label("Show backend").selectOption("");
    });

    await step(t, "run an import (dry run first) and an export", async () => {
      await heading("Tasks").waitFor();
      await label("Dry run").check();
      await button("Run import").click();
      await textMatches(page.locator("#t-result"), /import finished \(dry run/);
      assert.equal((await adminApi("GET", "users/ana/items?guid=imdb:tt0111161")).json.items.length, 0, "a dry run writes nothing");
      await label("Dry run").uncheck();
      await button("Run import").click();
      await textMatches(page.locator("#t-result"), /import finished: 2 backend\(s\), 4 seen, 2 created/);
      const runs = page.locator("#run-table tbody tr");
      // Newest first: the real run, with its duration and counts (pages, then 2 seen).
      await textMatches(runs.filter({ hasText: "jellyfin" }), /import\s+ana\s+jellyfin\s+\S.*\s(\d+ ms|\d+\.\d s)\s+no\s+\d+\s+2\s/);
      await button("Run export").click();
      await textMatches(page.locator("#t-result"), /export finished: 1 person\(s\)/);
      await shot("tasks", page.locator("#tasks"));
    });

    await step(t, "find an item, mark it played: the fake servers receive it", async () => {
      await heading("Items").waitFor();
      await label("Find").fill("imdb:tt0111161");
      await button("Find").click();
      const card = page.getByRole("article", { name: "The Shawshank Redemption (1994)" });
      await textMatches(card, /Not watched/);
      await textMatches(card, /plex\s+\d+\s+no/);
      await ask("calls plex"); // (the answer is the history so far; the checks below count from here)
      const before = (await ask("calls plex")).calls.length;
      const jfBefore = (await ask("calls jellyfin")).calls.length;
      await button("Mark played", card).click();
      await textMatches(page.locator("#i-result"), /Marked played and pushed to the backends/);
      await textMatches(page.getByRole("article", { name: "The Shawshank Redemption (1994)" }), /Watched since .+ \(via console\)/);
      const plexCalls = (await ask("calls plex")).calls.slice(before);
      assert.ok(plexCalls.some((c) => c.path === "/:/scrobble" && c.query.some(([k, v]) => k === "key" && v === plex.movie_id)),
        JSON.stringify(plexCalls));
      const jfCalls = (await ask("calls jellyfin")).calls.slice(jfBefore);
      assert.ok(jfCalls.some((c) => c.method === "POST" && c.path === `/Users/${jf.user_id}/PlayedItems/${jf.movie_id}`),
        JSON.stringify(jfCalls));
      await shot("items", page.locator("#items"));

      await new Promise((r) => setTimeout(r, 1100)); // stamps are to the second, and must be newer
      await button("Mark unplayed", page.getByRole("article", { name: "The Shawshank Redemption (1994)" })).click();
      await textMatches(page.locator("#i-result"), /Marked unplayed and pushed/);
      const unscrobbles = (await ask("calls plex")).calls.filter((c) => c.path === "/:/unscrobble");
      assert.equal(unscrobbles.length, 1);
      await shot("console", page);
      // The README's picture (docs/console.png is a copy): the top of the page, the
      // setup guides closed (the backend list re-renders them so).
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(shots, "overview.png") });
    });

    await step(t, "rotate the URL, then sign out", async () => {
      page.once("dialog", (d) => d.accept());
      await button("Rotate URL", backendRow("plex")).click();
      await textMatches(page.getByRole("status").first(), /New webhook URL for plex/);
      await button("Copy webhook URL", backendRow("plex")).click();
      const rotated = await clipboard();
      assert.notEqual(rotated, webhookUrl);
      const old = await fetch(webhookUrl, { method: "POST", body: "{}" });
      assert.equal(old.status, 401, "the old URL stopped working");
      await button("Sign out").click();
      await label("Admin key").waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem("watchstate.admin-key")), null);
    });

    await step(t, "every accessible name of DESIGN 6 \"The console\" was used", () => {
      assert.deepEqual(unused(used), [], `names of DESIGN 6 no step of the ${browser} flow used`);
    });
  });
}
