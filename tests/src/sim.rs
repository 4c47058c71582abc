//! The convergence simulation (issue 8, "What to build" 6): a seeded world of two
//! people, one shared Plex server and their own Jellyfin and Emby accounts, a library
//! built to confuse matching, and a random stream of person actions whose webhooks are
//! dropped, delayed and reordered, with imports and exports interleaved. The real
//! library runs in process (webhook service over a temporary SQLite store, the local
//! bus pushing to the fake servers over HTTP, the real importer and exporter); the
//! world knows every person's intent and checks what the servers end up holding.
//!
//! The world:
//!
//! - **Servers.** One Plex, one Jellyfin, one Emby fake, each with an account for
//!   `ana` and one for `bob` (Plex accounts `1` and `2`, Jellyfin/Emby users `u1` and
//!   `u2`), each account with its own token. Webhooks are server-wide: every webhook
//!   a server sends (a person's player event, or the echo of a push) goes to both
//!   people's webhook URLs of that server; `match_user` is on for every backend, so
//!   each person's backend must drop the other's events. Import and export are on for
//!   every backend.
//! - **Library** ([`library`]): same-title remakes (Dune 1984/2021, The Thing
//!   1982/2011, Solaris 1972/2002) with different imdb/tmdb ids; items missing from
//!   one server; a show whose Plex episodes carry only the legacy agent's series guid
//!   (`com.plexapp.agents.thetvdb://300001/1/2`, no episode ids), and a show whose
//!   Jellyfin numbering differs from Plex's and Emby's (Plex S01E01 is tvdb episode
//!   410001, Jellyfin S01E01 is 410002: different episodes that must never merge).
//! - **History before watchstate.** Some items start watched for a person on every
//!   server that has them, a few on one server only (a play long ago); either way the
//!   person's intent starts as "watched". The store starts empty. Before a person
//!   unmarks an item on a server whose account no import has looked at yet, that
//!   import runs (logged as "forced"): a watched nobody ever reported, then unmarked,
//!   leaves no trace any rule could read (a real setup runs its first import first).
//! - **Actions** ([`PlayerAction`]): watch to the end, pause or stop midway, mark
//!   played (only where the server shows it unplayed), mark unplayed (only where the
//!   server shows it played), on a random server of a random person and item. At
//!   least a second passes between two actions of a person on one item (real time:
//!   Plex times have one-second resolution and the library takes the time received
//!   from the clock, so the simulation waits instead of faking time). The same holds
//!   between the library's own work and a person: no action on an item in the wall
//!   clock second of a delivery about it (which pushes), nor in the second an import
//!   or export ran. Without that, "which came first" is undecidable at Plex's
//!   resolution (an import stamps an unplay at 12:00:53.26, the person's play at
//!   12:00:53.27 reaches Plex as 12:00:53) and a failure would say nothing about the
//!   rules. Likewise an unplay that carries no time (a Plex unmark, which sends no
//!   webhook, or a Jellyfin/Emby unmark whose webhook was dropped) can only be seen
//!   by an import, which knows only that it happened since the last time it saw the
//!   item played; so before the person's next action on that item an import of that
//!   account runs (logged as "forced"). Without it no rule could tell whether the
//!   unmark or a later play elsewhere came first.
//! - **Delivery.** Each webhook, to each URL: 30 % dropped, 20 % held back and
//!   delivered later in random order, the rest at once. Echoes of pushes (Jellyfin
//!   `UserDataSaved`, Emby `item.markplayed`) go the same way. Between actions, at
//!   random: an import (all backends, or one person's one backend) and an export.
//! - **Replaced files.** Now and then (2 % of steps) Jellyfin or Plex replaces an
//!   item's file: the server drops the entry and adds it back under a new id with no
//!   play state for anyone (Jellyfin's known limitation). Nobody acted, so every
//!   person's intent stays as it was and the new entry must get it back. Never right
//!   after an unmark only an import can see, before that import ran: the new entry
//!   would be indistinguishable from a plain replacement; nor while the entry holds a
//!   position nobody else heard of (its webhook dropped): the server itself loses it. (Jellyfin's
//!   `ItemAdded` webhook names no user and is refused under `match_user`, so it is not
//!   sent.)
//! - **End.** The held-back webhooks are delivered (shuffled), then `final_rounds`
//!   times: import everything, publish the outbox, export.
//!
//! Intent: the last watch/mark of a person on an item decides "watched"; a partial
//! play decides nothing about "watched" and sets the resume position if the item is
//! unwatched. The checks are in [`Report`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use watchstate::adapters::local_bus::LocalBus;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::app::push::{LocalPush, Pusher};
use watchstate::app::tasks::export::{ExportOptions, Exporter};
use watchstate::app::tasks::import::{ImportOptions, Importer};
use watchstate::app::tasks::{publish_changes, Budget, Deps, TaskPayload};
use watchstate::domain::model::{BackendKind, Item};
use watchstate::ports::bus::Bus;
use watchstate::ports::store::{ItemQuery, Store};

use crate::fake::player::PlayerAction;
use crate::fake::{make_id, FakeItem, FakeServer, Outgoing, PlayState};
use crate::Local;

/// The people of the household (store users).
pub const PEOPLE: [&str; 2] = ["ana", "bob"];

/// The servers, in a fixed order; also each person's backend names.
pub const SERVERS: [BackendKind; 3] = [BackendKind::Plex, BackendKind::Jellyfin, BackendKind::Emby];

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Person actions in the run.
    pub actions: usize,
    /// Share of webhook deliveries dropped.
    pub drop: f64,
    /// Share delivered late, out of order.
    pub late: f64,
    /// Chance, before each action, of an import / an export.
    pub import_rate: f64,
    pub export_rate: f64,
    /// Chance, before each action, that a server replaces a file.
    pub replace_rate: f64,
    /// Import + export rounds at the end.
    pub final_rounds: usize,
    /// Half of the imports run alongside the next action (its webhooks and pushes),
    /// as a scheduled import does in production: the races of an import page against
    /// a push. Off in the test suite: it gives up the one-second separation between the
    /// library's work and a person's actions, so a failure may also be a same-second
    /// ambiguity; judge it from the history.
    pub concurrent: bool,
    /// Print each action as it happens.
    pub verbose: bool,
}

impl Config {
    pub fn new(seed: u64, actions: usize) -> Config {
        Config {
            seed,
            actions,
            drop: 0.30,
            late: 0.20,
            import_rate: 0.06,
            export_rate: 0.04,
            replace_rate: 0.02,
            final_rounds: 1,
            concurrent: false,
            verbose: false,
        }
    }
}

/// What a run found. Every check is over the whole world at the end.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub actions: usize,
    pub webhooks: usize,
    pub dropped: usize,
    pub late: usize,
    pub imports: usize,
    pub exports: usize,
    pub replaced: usize,
    /// (person, item, server) triples checked for watched, and how many match intent.
    pub watched_checked: usize,
    pub watched_ok: usize,
    /// Servers where the last action was a pause of an unwatched item, and how many
    /// hold that position within 5 s.
    pub resume_checked: usize,
    pub resume_ok: usize,
    /// Stored items whose backend ids point at more than one real item.
    pub false_matches: usize,
    /// State-changing calls made on one person's account with no cause in that
    /// person's history, or with another account's token.
    pub leaks: usize,
    /// Deliveries of one person's events to the other person's URL, turned away.
    pub turned_away: usize,
    /// Mark played / unplayed / set progress calls the library made, all servers.
    pub state_calls: usize,
    /// Webhook answers with a status of 500 or more.
    pub server_errors: usize,
    /// One line per broken invariant, with the item's history.
    pub failures: Vec<String>,
    pub elapsed: Duration,
    /// Of which spent waiting to keep the world decidable.
    pub waited: Duration,
}

impl Report {
    pub fn calls_per_action(&self) -> f64 {
        self.state_calls as f64 / self.actions.max(1) as f64
    }

    pub fn resume_share(&self) -> f64 {
        if self.resume_checked == 0 {
            1.0
        } else {
            self.resume_ok as f64 / self.resume_checked as f64
        }
    }

    /// The invariants of the issue, each with a name; empty when all hold.
    pub fn broken(&self) -> Vec<&'static str> {
        let mut b = Vec::new();
        if self.watched_ok != self.watched_checked {
            b.push("watched");
        }
        if self.resume_share() < 0.95 {
            b.push("resume");
        }
        if self.false_matches > 0 {
            b.push("false-match");
        }
        if self.leaks > 0 {
            b.push("leak");
        }
        if self.calls_per_action() > 3.0 {
            b.push("calls");
        }
        if self.server_errors > 0 {
            b.push("5xx");
        }
        b
    }

    pub fn summary(&self) -> String {
        format!(
            "seed={} actions={} webhooks={} dropped={} late={} imports={} exports={} \
             replaced={} watched={}/{} resume={}/{} ({:.1} %) false_matches={} leaks={} turned_away={} 5xx={} \
             calls/action={:.2} time={:.1}s (waiting {:.1}s) {}",
            self.seed,
            self.actions,
            self.webhooks,
            self.dropped,
            self.late,
            self.imports,
            self.exports,
            self.replaced,
            self.watched_ok,
            self.watched_checked,
            self.resume_ok,
            self.resume_checked,
            self.resume_share() * 100.0,
            self.false_matches,
            self.leaks,
            self.turned_away,
            self.server_errors,
            self.calls_per_action(),
            self.elapsed.as_secs_f64(),
            self.waited.as_secs_f64(),
            match self.broken() {
                b if b.is_empty() => "OK".to_string(),
                b => format!("BROKEN: {}", b.join(",")),
            }
        )
    }
}

/// One real-world item and how each server holds it (`None`: not in that library).
#[derive(Debug, Clone)]
pub struct RealItem {
    pub key: String,
    pub label: String,
    pub on: [Option<FakeItem>; 3],
}

impl RealItem {
    fn id_on(&self, s: usize) -> Option<&str> {
        self.on[s].as_ref().map(|i| i.id.as_str())
    }
}

/// Series entries of each server (added to the catalogues with the episodes).
type Shows = [Vec<FakeItem>; 3];

/// key, title, year, imdb, tmdb, on which servers (Plex, Jellyfin, Emby).
type Movie = (
    &'static str,
    &'static str,
    i32,
    &'static str,
    &'static str,
    [bool; 3],
);

/// The library of the world (see the module doc).
pub fn library() -> (Vec<RealItem>, Shows) {
    let mut n: u64 = 500;
    let mut next = |kind: BackendKind| {
        n += 1;
        make_id(kind, n)
    };
    let mut items = Vec::new();
    let movies: [Movie; 10] = [
        (
            "dune-1984",
            "Dune",
            1984,
            "tt0087182",
            "841",
            [true, true, true],
        ),
        (
            "dune-2021",
            "Dune",
            2021,
            "tt1160419",
            "438631",
            [true, true, true],
        ),
        (
            "thing-1982",
            "The Thing",
            1982,
            "tt0084787",
            "1091",
            [true, true, false],
        ),
        (
            "thing-2011",
            "The Thing",
            2011,
            "tt0905372",
            "60935",
            [false, true, true],
        ),
        (
            "solaris-1972",
            "Solaris",
            1972,
            "tt0069293",
            "593",
            [true, false, true],
        ),
        (
            "solaris-2002",
            "Solaris",
            2002,
            "tt0307479",
            "2103",
            [true, true, true],
        ),
        (
            "heat-1995",
            "Heat",
            1995,
            "tt0113277",
            "949",
            [true, true, true],
        ),
        (
            "alien-1979",
            "Alien",
            1979,
            "tt0078748",
            "348",
            [true, true, true],
        ),
        (
            "arrival-2016",
            "Arrival",
            2016,
            "tt2543164",
            "329865",
            [true, true, false],
        ),
        (
            "paterson-2016",
            "Paterson",
            2016,
            "tt5247022",
            "370755",
            [false, true, true],
        ),
    ];
    for (key, title, year, imdb, tmdb, on) in movies {
        let mut reps: [Option<FakeItem>; 3] = [None, None, None];
        for (s, kind) in SERVERS.iter().enumerate() {
            if on[s] {
                reps[s] = Some(
                    FakeItem::movie(next(*kind), title, year)
                        .guid("imdb", imdb)
                        .guid("tmdb", tmdb)
                        .duration(6_000_000 + year as u64 * 1000),
                );
            }
        }
        items.push(RealItem {
            key: key.into(),
            label: format!("{title} ({year}) imdb:{imdb}"),
            on: reps,
        });
    }

    // Harbor Lights: Plex's legacy TheTVDB agent, so its episodes carry only
    // `thetvdb://SERIES/S/E` (as Tautulli-style payloads do); Jellyfin and Emby know
    // each episode's own tvdb id. S02E01 is not on Emby.
    let mut shows: Shows = [Vec::new(), Vec::new(), Vec::new()];
    let alpha: Vec<FakeItem> = SERVERS
        .iter()
        .map(|k| {
            let show = FakeItem::series(next(*k), "Harbor Lights", 2015);
            match k {
                BackendKind::Plex => {
                    show.legacy_guid("com.plexapp.agents.thetvdb://300001?lang=en")
                }
                _ => show.guid("tvdb", "300001").guid("imdb", "tt7000001"),
            }
        })
        .collect();
    let alpha_eps: [(u32, u32, &str, &str, [bool; 3]); 4] = [
        (1, 1, "310011", "Pilot", [true, true, true]),
        (1, 2, "310012", "Low Tide", [true, true, true]),
        (1, 3, "310013", "Fog", [true, true, true]),
        (2, 1, "310021", "Return", [true, true, false]),
    ];
    for (season, ep, tvdb, title, on) in alpha_eps {
        let mut reps: [Option<FakeItem>; 3] = [None, None, None];
        for (s, kind) in SERVERS.iter().enumerate() {
            if !on[s] {
                continue;
            }
            let e = FakeItem::episode(next(*kind), &alpha[s], season, ep, title);
            reps[s] = Some(match kind {
                BackendKind::Plex => e.legacy_guid(&format!(
                    "com.plexapp.agents.thetvdb://300001/{season}/{ep}?lang=en"
                )),
                _ => e.guid("tvdb", tvdb),
            });
        }
        items.push(RealItem {
            key: format!("harbor-tvdb{tvdb}"),
            label: format!("Harbor Lights S{season:02}E{ep:02} \"{title}\" tvdb:{tvdb}"),
            on: reps,
        });
    }
    for (s, show) in alpha.into_iter().enumerate() {
        shows[s].push(show);
    }

    // Pale Orbit: Jellyfin orders the first two episodes the other way round.
    let beta: Vec<FakeItem> = SERVERS
        .iter()
        .map(|k| {
            FakeItem::series(next(*k), "Pale Orbit", 2019)
                .guid("tvdb", "400001")
                .guid("imdb", "tt8000001")
        })
        .collect();
    // (tvdb, title, Plex/Emby number, Jellyfin number)
    let beta_eps: [(&str, &str, u32, u32); 3] = [
        ("410001", "Pilot", 1, 2),
        ("410002", "Drift", 2, 1),
        ("410003", "Burn", 3, 3),
    ];
    for (tvdb, title, usual, jellyfin) in beta_eps {
        let mut reps: [Option<FakeItem>; 3] = [None, None, None];
        for (s, kind) in SERVERS.iter().enumerate() {
            let number = if *kind == BackendKind::Jellyfin {
                jellyfin
            } else {
                usual
            };
            reps[s] =
                Some(FakeItem::episode(next(*kind), &beta[s], 1, number, title).guid("tvdb", tvdb));
        }
        items.push(RealItem {
            key: format!("orbit-tvdb{tvdb}"),
            label: format!(
                "Pale Orbit \"{title}\" tvdb:{tvdb} (Plex/Emby S01E{usual:02}, Jellyfin S01E{jellyfin:02})"
            ),
            on: reps,
        });
    }
    for (s, show) in beta.into_iter().enumerate() {
        shows[s].push(show);
    }
    (items, shows)
}

/// A person's account on one server.
#[derive(Debug, Clone)]
struct Account {
    user_id: String,
    token: String,
    /// `/webhook/{token}` of this person's backend for this server.
    webhook: String,
}

/// What happened to one delivery of a webhook.
#[derive(Debug, Clone)]
enum Fate {
    Dropped,
    Late,
    Answered(u16, String),
}

impl Fate {
    fn short(&self) -> String {
        match self {
            Fate::Dropped => "dropped".into(),
            Fate::Late => "late".into(),
            Fate::Answered(s, st) => format!("{s} {st}"),
        }
    }
}

/// One line of an item's history.
#[derive(Debug, Clone)]
struct Entry {
    at: Duration,
    text: String,
}

/// A webhook on its way to one URL.
struct Delivery {
    to: usize,
    server: usize,
    hook: Outgoing,
    /// The (person, item) whose history records the answer.
    owner: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Default)]
struct Intent {
    watched: bool,
    /// The resume position the last action left, if it was a partial play.
    resume: Option<u64>,
    acted: bool,
    initially_watched: bool,
}

/// The world under test.
pub struct World {
    cfg: Config,
    rng: StdRng,
    started: Instant,
    local: Local,
    deps: Deps,
    fakes: Vec<FakeServer>,
    items: Vec<RealItem>,
    /// (server, server's id) -> real item index.
    by_id: HashMap<(usize, String), usize>,
    accounts: Vec<Vec<Account>>,
    intent: Vec<Vec<Intent>>,
    history: Vec<Vec<Vec<Entry>>>,
    ready_at: Vec<Vec<Instant>>,
    /// No action before this (the second after the last import or export).
    quiet_until: Instant,
    /// The last catalogue number given to a replaced file.
    next_id: u64,
    /// A time-less unplay of (person, item) on this server that no import saw yet.
    unseen_unplay: Vec<Vec<Option<usize>>>,
    /// Per person and item: the server holding a position only it knows (the pause's
    /// webhook to the owner was dropped) until an import of that account looks.
    unseen_position: Vec<Vec<Option<usize>>>,
    /// Per person and server: whether an import of that account has run yet.
    imported: Vec<[bool; 3]>,
    late: Vec<Delivery>,
    tasks_log: Vec<Entry>,
    report: Report,
}

impl World {
    pub async fn new(cfg: Config) -> World {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let (items, shows) = library();
        let mut fakes = Vec::new();
        for kind in SERVERS {
            fakes.push(FakeServer::start(kind).await);
        }
        let mut by_id = HashMap::new();
        for (s, fake) in fakes.iter().enumerate() {
            for show in &shows[s] {
                fake.add(show.clone());
            }
            for (i, item) in items.iter().enumerate() {
                if let Some(rep) = &item.on[s] {
                    fake.add(rep.clone());
                    by_id.insert((s, rep.id.clone()), i);
                }
            }
            fake.capture_echoes(true);
        }

        let local = Local::new();
        let store = local.store.clone();
        let clients = Arc::new(HttpClients {
            http: http_client_with(Duration::from_millis(500), Duration::from_secs(5)),
            retry: RetryPolicy::quick(),
        });
        let pusher = Pusher {
            store: store.clone(),
            clients: clients.clone(),
        };
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(Arc::new(LocalPush(pusher))));
        let mut local = local;
        local.webhook.bus = Some(bus.clone());
        let deps = Deps {
            store,
            clients,
            bus: Some(bus),
        };

        let mut accounts = Vec::new();
        for (p, person) in PEOPLE.iter().enumerate() {
            let mut mine = Vec::new();
            for (s, fake) in fakes.iter().enumerate() {
                let (user_id, token) = if p == 0 {
                    (fake.user_id(), fake.token().to_string())
                } else {
                    let user_id = match fake.kind() {
                        BackendKind::Plex => "2".to_string(),
                        _ => "u2".to_string(),
                    };
                    let token = format!("{}-{person}-token-5566778899", fake.kind());
                    fake.add_user(&token, &user_id);
                    (user_id, token)
                };
                let mut body = fake.backend_body();
                body["user_id"] = json!(user_id);
                body["token"] = json!(token);
                body["options"] = json!({"match_user": true});
                body["import"] = json!({"enabled": true});
                body["export"] = json!({"enabled": true});
                let webhook = local.backend(person, SERVERS[s].as_str(), body).await;
                mine.push(Account {
                    user_id,
                    token,
                    webhook,
                });
            }
            accounts.push(mine);
        }

        // History before watchstate: a quarter watched everywhere, a few on one server.
        let long_ago = Utc
            .with_ymd_and_hms(2024, 3, 2, 20, 0, 0)
            .single()
            .unwrap_or_else(Utc::now);
        let mut intent = vec![vec![Intent::default(); items.len()]; PEOPLE.len()];
        for (p, row) in intent.iter_mut().enumerate() {
            for (i, item) in items.iter().enumerate() {
                let roll: f64 = rng.random();
                let on: Vec<usize> = (0..3).filter(|s| item.on[*s].is_some()).collect();
                let watched_on: Vec<usize> = if roll < 0.25 {
                    on.clone()
                } else if roll < 0.32 {
                    vec![on[rng.random_range(0..on.len())]]
                } else {
                    Vec::new()
                };
                for s in &watched_on {
                    let id = item.id_on(*s).unwrap_or_default();
                    let user = &accounts[p][*s].user_id;
                    fakes[*s].set_state_of(user, id, PlayState::played_at(long_ago));
                }
                row[i].watched = !watched_on.is_empty();
                row[i].initially_watched = row[i].watched;
            }
        }

        let now = Instant::now();
        World {
            report: Report {
                seed: cfg.seed,
                ..Report::default()
            },
            rng,
            started: now,
            local,
            deps,
            history: vec![vec![Vec::new(); items.len()]; PEOPLE.len()],
            ready_at: vec![vec![now; items.len()]; PEOPLE.len()],
            quiet_until: now,
            unseen_unplay: vec![vec![None; items.len()]; PEOPLE.len()],
            imported: vec![[false; 3]; PEOPLE.len()],
            unseen_position: vec![vec![None; items.len()]; PEOPLE.len()],
            next_id: 9000,
            intent,
            fakes,
            by_id,
            items,
            accounts,
            late: Vec::new(),
            tasks_log: Vec::new(),
            cfg,
        }
    }

    fn at(&self) -> Duration {
        self.started.elapsed()
    }

    fn note(&mut self, p: usize, i: usize, text: String) {
        let at = self.at();
        if self.cfg.verbose {
            println!(
                "[{:7.3}] {} {}: {text}",
                at.as_secs_f64(),
                PEOPLE[p],
                self.items[i].key
            );
        }
        self.history[p][i].push(Entry { at, text });
    }

    /// Run the whole simulation and check the world.
    pub async fn run(mut self) -> Report {
        for _ in 0..self.cfg.actions {
            let mut alongside = None;
            if self.rng.random_bool(self.cfg.import_rate) {
                if self.cfg.concurrent && self.rng.random_bool(0.5) {
                    let (payload, what) = self.import_payload();
                    let what = format!("{what} (alongside the next action)");
                    alongside = Some(self.start_import(payload, what));
                } else {
                    self.import().await;
                }
            }
            if self.rng.random_bool(self.cfg.export_rate) {
                self.export().await;
            }
            if self.rng.random_bool(self.cfg.replace_rate) {
                self.replace_file();
            }
            self.deliver_some_late().await;
            self.act().await;
            if let Some(task) = alongside {
                let text = task
                    .await
                    .unwrap_or_else(|e| format!("import task failed: {e}"));
                self.log_task(text);
                self.flush_echoes(true).await;
            }
        }
        // The end: everything held back arrives, then the scheduled tasks run.
        let mut late = std::mem::take(&mut self.late);
        shuffle(&mut self.rng, &mut late);
        for d in late {
            self.deliver(d).await;
        }
        self.flush_echoes(false).await;
        for _ in 0..self.cfg.final_rounds {
            self.import_all().await;
            self.flush_echoes(false).await;
            self.export().await;
            self.flush_echoes(false).await;
        }
        self.check().await;
        self.report.elapsed = self.started.elapsed();
        self.report
    }

    async fn act(&mut self) {
        self.wait_until(self.quiet_until).await;
        let (p, i) = self.pick().await;
        if let Some(s) = self.unseen_unplay[p][i] {
            let payload = TaskPayload {
                user: Some(PEOPLE[p].into()),
                backend: Some(SERVERS[s].as_str().into()),
                ..TaskPayload::default()
            };
            let what = format!(
                "import {}/{} (forced: an unplay of {} only import can see)",
                PEOPLE[p], SERVERS[s], self.items[i].key
            );
            self.run_import(payload, what).await;
            self.wait_until(self.quiet_until).await;
        }
        let item = self.items[i].clone();
        let on: Vec<usize> = (0..3).filter(|s| item.on[*s].is_some()).collect();
        let s = on[self.rng.random_range(0..on.len())];
        let id = item.id_on(s).unwrap_or_default().to_string();
        let user = self.accounts[p][s].user_id.clone();
        let shown = self.fakes[s].state_of(&user, &id);
        let duration = item.on[s]
            .as_ref()
            .and_then(|x| x.duration_ms)
            .unwrap_or(3_000_000);
        let roll: f64 = self.rng.random();
        let action = if roll < 0.30 {
            PlayerAction::WatchToEnd
        } else if roll < 0.65 {
            let secs = duration / 1000;
            let position_ms = self.rng.random_range(secs / 10..secs * 8 / 10) * 1000;
            PlayerAction::Partial {
                position_ms,
                stop: self.rng.random_bool(0.5),
            }
        } else if shown.played {
            PlayerAction::MarkUnplayed
        } else {
            PlayerAction::MarkPlayed
        };
        // History before watchstate: a watched nobody reported (no webhook, no import
        // yet), then unmarked there. Nothing could ever show it was watched, so the
        // unmark is undecidable; a real setup runs its first import first.
        if action == PlayerAction::MarkUnplayed && !self.imported[p][s] {
            let payload = TaskPayload {
                user: Some(PEOPLE[p].into()),
                backend: Some(SERVERS[s].as_str().into()),
                ..TaskPayload::default()
            };
            let what = format!(
                "import {}/{} (forced: the first look at {} before an unmark)",
                PEOPLE[p], SERVERS[s], self.items[i].key
            );
            self.run_import(payload, what).await;
            self.wait_until(self.quiet_until).await;
        }
        let intent = &mut self.intent[p][i];
        intent.acted = true;
        match action {
            PlayerAction::WatchToEnd | PlayerAction::MarkPlayed => {
                intent.watched = true;
                intent.resume = None;
            }
            PlayerAction::MarkUnplayed => {
                intent.watched = false;
                intent.resume = None;
            }
            PlayerAction::Partial { position_ms, .. } => intent.resume = Some(position_ms),
        }
        let hooks = self.fakes[s].act(&user, &id, action).unwrap_or_default();
        self.report.actions += 1;
        self.ready_at[p][i] = Instant::now() + Duration::from_millis(1010);
        let names: Vec<&str> = hooks.iter().map(|h| h.event.as_str()).collect();
        self.note(
            p,
            i,
            format!(
                "ACTION {action:?} on {} (was played={} pos={}); sends {:?}",
                SERVERS[s], shown.played, shown.position_ms, names
            ),
        );
        let mut owner_dropped = false;
        for hook in hooks {
            owner_dropped |= self.send_everywhere(s, hook, Some((p, i))).await;
        }
        if action == PlayerAction::MarkUnplayed
            && (SERVERS[s] == BackendKind::Plex || owner_dropped)
        {
            self.unseen_unplay[p][i] = Some(s);
        }
        self.unseen_position[p][i] = match action {
            PlayerAction::Partial { .. } if owner_dropped => Some(s),
            _ => None,
        };
        self.flush_echoes(true).await;
    }

    /// Jellyfin or Plex replaces the file of a random item it has.
    fn replace_file(&mut self) {
        let s = if self.rng.random_bool(0.7) { 1 } else { 0 };
        let i = self.rng.random_range(0..self.items.len());
        let Some(old) = self.items[i].id_on(s).map(str::to_string) else {
            return;
        };
        // An unmark only an import can see, then the file replaced before any import
        // looked: the new entry (no play state) is indistinguishable from a plain
        // replacement, so no rule could tell the person meant "unwatched".
        // Likewise a position only this entry holds: the server itself loses it.
        if (0..PEOPLE.len())
            .any(|p| self.unseen_unplay[p][i] == Some(s) || self.unseen_position[p][i] == Some(s))
        {
            return;
        }
        self.next_id += 1;
        let new_id = make_id(SERVERS[s], self.next_id);
        let Some(item) = self.fakes[s].replace_file(&old, &new_id) else {
            return;
        };
        self.report.replaced += 1;
        self.items[i].on[s] = Some(item);
        self.by_id.insert((s, new_id.clone()), i);
        for p in 0..PEOPLE.len() {
            let text = format!(
                "FILE REPLACED on {}: id {old} is now {new_id}, no play state",
                SERVERS[s]
            );
            self.note(p, i, text);
        }
    }

    /// Sleep until `t`, counting the time spent waiting.
    async fn wait_until(&mut self, t: Instant) {
        let d = t.saturating_duration_since(Instant::now());
        self.report.waited += d;
        tokio::time::sleep(d).await;
    }

    /// A random (person, item), once its last action (and the library's last work on
    /// it) is at least a second old: the choice never depends on timing, so a seed
    /// always makes the same stream of actions.
    async fn pick(&mut self) -> (usize, usize) {
        let p = self.rng.random_range(0..PEOPLE.len());
        let i = self.rng.random_range(0..self.items.len());
        self.wait_until(self.ready_at[p][i]).await;
        (p, i)
    }

    /// A server-wide webhook: to every person's URL for that server. Returns whether
    /// the owner's copy was dropped.
    async fn send_everywhere(
        &mut self,
        s: usize,
        hook: Outgoing,
        owner: Option<(usize, usize)>,
    ) -> bool {
        let mut owner_dropped = false;
        for to in 0..PEOPLE.len() {
            self.report.webhooks += 1;
            let d = Delivery {
                to,
                server: s,
                hook: hook.clone(),
                owner: owner.filter(|(p, _)| *p == to),
            };
            let roll: f64 = self.rng.random();
            if roll < self.cfg.drop {
                self.report.dropped += 1;
                owner_dropped |= d.owner.is_some();
                self.record(&d, Fate::Dropped);
            } else if roll < self.cfg.drop + self.cfg.late {
                self.report.late += 1;
                self.record(&d, Fate::Late);
                self.late.push(d);
            } else {
                self.deliver(d).await;
            }
        }
        owner_dropped
    }

    fn record(&mut self, d: &Delivery, fate: Fate) {
        if let Some((p, i)) = d.owner {
            let text = format!(
                "  {} {} -> {}: {}",
                SERVERS[d.server],
                d.hook.event,
                PEOPLE[d.to],
                fate.short()
            );
            self.note(p, i, text);
        }
    }

    async fn deliver(&mut self, d: Delivery) {
        let path = self.accounts[d.to][d.server].webhook.clone();
        let req = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", d.hook.content_type.as_str())
            .header("user-agent", d.hook.user_agent)
            .body(Bytes::from(d.hook.body.clone()))
            .expect("request");
        let reply = self.local.webhook.handle(req).await;
        if let Some(&i) = self.by_id.get(&(d.server, d.hook.item_id.clone())) {
            let next = next_second();
            let ready = &mut self.ready_at[d.to][i];
            *ready = (*ready).max(next);
        }
        let status = reply.status().as_u16();
        if status >= 500 {
            self.report.server_errors += 1;
        }
        let body: Value = serde_json::from_str(reply.body()).unwrap_or(Value::Null);
        let outcome = body["status"]
            .as_str()
            .or(body["error"]["code"].as_str())
            .or(body["code"].as_str())
            .unwrap_or("?")
            .to_string();
        let changed = match body["changed"].as_bool() {
            Some(true) => " changed",
            _ => "",
        };
        // Another person's event must be turned away (`match_user`), never stored.
        let from = hook_user(&d.hook);
        if from.as_deref() != Some(self.accounts[d.to][d.server].user_id.as_str()) {
            if status < 300 && outcome == "stored" {
                self.report.leaks += 1;
                self.report.failures.push(format!(
                    "LEAK seed={} {} {} of user {:?} (item {}) stored for {}: {}",
                    self.cfg.seed,
                    SERVERS[d.server],
                    d.hook.event,
                    from,
                    d.hook.item_id,
                    PEOPLE[d.to],
                    body
                ));
            } else {
                self.report.turned_away += 1;
            }
        }
        self.record(&d, Fate::Answered(status, format!("{outcome}{changed}")));
    }

    async fn deliver_some_late(&mut self) {
        if self.late.is_empty() {
            return;
        }
        let mut keep = Vec::new();
        let mut now = Vec::new();
        for d in std::mem::take(&mut self.late) {
            if self.rng.random_bool(0.2) {
                now.push(d);
            } else {
                keep.push(d);
            }
        }
        self.late = keep;
        shuffle(&mut self.rng, &mut now);
        for d in now {
            self.note_late(&d);
            self.deliver(d).await;
        }
        self.flush_echoes(true).await;
    }

    fn note_late(&mut self, d: &Delivery) {
        if let Some((p, i)) = d.owner {
            let text = format!(
                "  (late) {} {} -> {} arrives now",
                SERVERS[d.server], d.hook.event, PEOPLE[d.to]
            );
            self.note(p, i, text);
        }
    }

    /// Deliver the echo webhooks the servers sent because of pushes (with the run's
    /// drops and delays when `faults`), until no more come.
    async fn flush_echoes(&mut self, faults: bool) {
        for _ in 0..8 {
            let mut any = false;
            for s in 0..3 {
                for hook in self.fakes[s].take_captured() {
                    any = true;
                    if faults {
                        self.send_everywhere(s, hook, None).await;
                    } else {
                        for to in 0..PEOPLE.len() {
                            self.report.webhooks += 1;
                            let d = Delivery {
                                to,
                                server: s,
                                hook: hook.clone(),
                                owner: None,
                            };
                            self.deliver(d).await;
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    fn log_task(&mut self, text: String) {
        self.quiet_until = next_second();
        let at = self.at();
        if self.cfg.verbose {
            println!("[{:7.3}] TASK {text}", at.as_secs_f64());
        }
        self.tasks_log.push(Entry { at, text });
    }

    /// An import of everything, or of one person's one backend.
    fn import_payload(&mut self) -> (TaskPayload, String) {
        if self.rng.random_bool(0.5) {
            return (TaskPayload::default(), "import all".into());
        }
        let p = self.rng.random_range(0..PEOPLE.len());
        let s = self.rng.random_range(0..3);
        let payload = TaskPayload {
            user: Some(PEOPLE[p].into()),
            backend: Some(SERVERS[s].as_str().into()),
            ..TaskPayload::default()
        };
        (payload, format!("import {}/{}", PEOPLE[p], SERVERS[s]))
    }

    async fn import(&mut self) {
        let (payload, what) = self.import_payload();
        self.run_import(payload, what).await;
    }

    async fn import_all(&mut self) {
        self.run_import(TaskPayload::default(), "import all".into())
            .await;
    }

    /// Start an import in its own task (it runs alongside whatever comes next).
    fn start_import(
        &mut self,
        payload: TaskPayload,
        what: String,
    ) -> tokio::task::JoinHandle<String> {
        self.report.imports += 1;
        for (p, row) in self.imported.iter_mut().enumerate() {
            for (s, cell) in row.iter_mut().enumerate() {
                *cell |= payload.user.as_deref().is_none_or(|u| u == PEOPLE[p])
                    && payload
                        .backend
                        .as_deref()
                        .is_none_or(|b| b == SERVERS[s].as_str());
            }
        }
        for (p, row) in self
            .unseen_unplay
            .iter_mut()
            .chain(self.unseen_position.iter_mut())
            .enumerate()
            .map(|(k, row)| (k % PEOPLE.len(), row))
        {
            for cell in row.iter_mut() {
                let covered = cell.is_some_and(|s| {
                    payload.user.as_deref().is_none_or(|u| u == PEOPLE[p])
                        && payload
                            .backend
                            .as_deref()
                            .is_none_or(|b| b == SERVERS[s].as_str())
                });
                if covered {
                    *cell = None;
                }
            }
        }
        let deps = self.deps.clone();
        tokio::spawn(async move { import_and_publish(deps, payload, what).await })
    }

    async fn run_import(&mut self, payload: TaskPayload, what: String) {
        let text = self
            .start_import(payload, what)
            .await
            .unwrap_or_else(|e| format!("import task failed: {e}"));
        self.log_task(text);
        self.flush_echoes(true).await;
    }

    async fn export(&mut self) {
        self.report.exports += 1;
        let exporter = Exporter::new(&self.deps, ExportOptions::default());
        let text = match exporter
            .run(&TaskPayload::default(), Budget::unlimited())
            .await
        {
            Ok(r) => format!(
                "export: {}",
                serde_json::to_string(&r.users).unwrap_or_default()
            ),
            Err(e) => format!("export: failed: {e}"),
        };
        self.log_task(text);
        self.flush_echoes(true).await;
    }

    /// The stored items of a person.
    async fn stored(&self, person: &str) -> Vec<Item> {
        let store: &dyn Store = self.local.store.as_ref();
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .list_items(person, &ItemQuery::All, 200, cursor.as_deref())
                .await
                .expect("list items");
            out.extend(page.items);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    fn history_of(&self, p: usize, i: usize) -> String {
        let mut out = String::new();
        for e in &self.history[p][i] {
            let _ = writeln!(out, "      [{:7.3}] {}", e.at.as_secs_f64(), e.text);
        }
        if self.history[p][i].is_empty() {
            out.push_str("      (no action of this person on this item)\n");
        }
        out
    }

    /// What the store last saw of a backend, for failure messages.
    fn seen_line(s: &watchstate::domain::model::BackendState) -> String {
        let t = |x: Option<chrono::DateTime<chrono::Utc>>| {
            x.map(|t| t.format("%H:%M:%S%.3f").to_string())
        };
        let mut out = String::new();
        for (label, v) in [
            ("seen", t(s.seen_at)),
            ("last_played", t(s.last_played_at)),
            ("unplayed", t(s.unplayed_at)),
            ("plays", s.play_count.map(|c| c.to_string())),
        ] {
            if let Some(v) = v {
                out.push_str(&format!(" {label}={v}"));
            }
        }
        if s.missing {
            out.push_str(" missing");
        }
        out
    }

    fn stored_line(item: &Item) -> String {
        let backends: Vec<String> = item
            .backends
            .iter()
            .map(|(b, s)| {
                format!(
                    "{b}:{}{}{}{}",
                    s.item_id.as_deref().unwrap_or("-"),
                    match s.watched {
                        Some(true) => " watched",
                        Some(false) => " unwatched",
                        None => "",
                    },
                    s.progress_ms
                        .map(|p| format!(" @{p}ms"))
                        .unwrap_or_default(),
                    Self::seen_line(s)
                )
            })
            .collect();
        format!(
            "stored {} watched={} at {} via {:?} progress={:?} [{}]",
            item.id,
            item.watched,
            item.state_updated_at.to_rfc3339(),
            item.via,
            item.progress_ms,
            backends.join(", ")
        )
    }

    // Indices run over people, items and servers together (parallel tables).
    #[allow(clippy::needless_range_loop)]
    async fn check(&mut self) {
        let mut stored: Vec<Vec<Item>> = Vec::new();
        for person in PEOPLE {
            stored.push(self.stored(person).await);
        }
        // Which stored item holds each (person, server, id).
        let mut holder: HashMap<(usize, usize, String), usize> = HashMap::new();
        for (p, items) in stored.iter().enumerate() {
            for (k, it) in items.iter().enumerate() {
                for (name, st) in &it.backends {
                    if let (Some(s), Some(id)) = (
                        SERVERS.iter().position(|x| x.as_str() == name),
                        st.item_id.clone(),
                    ) {
                        holder.insert((p, s, id), k);
                    }
                }
            }
        }
        let tasks: String = self
            .tasks_log
            .iter()
            .map(|e| format!("[{:.3}] {}", e.at.as_secs_f64(), e.text))
            .collect::<Vec<_>>()
            .join("\n      ");

        // 1. Watched: every server equals each person's intent.
        for p in 0..PEOPLE.len() {
            for i in 0..self.items.len() {
                let want = self.intent[p][i].watched;
                for s in 0..3 {
                    let Some(id) = self.items[i].id_on(s) else {
                        continue;
                    };
                    let user = &self.accounts[p][s].user_id;
                    let got = self.fakes[s].state_of(user, id);
                    self.report.watched_checked += 1;
                    if got.played == want {
                        self.report.watched_ok += 1;
                        continue;
                    }
                    let mut stored_item = holder
                        .get(&(p, s, id.to_string()))
                        .map(|k| Self::stored_line(&stored[p][*k]))
                        .unwrap_or_else(|| "not stored under this server's id".into());
                    // Every other stored item holding this real item on some server:
                    // more than one means the store split one item in two.
                    let holders: Vec<usize> = (0..stored[p].len())
                        .filter(|&k| {
                            stored[p][k].backends.iter().any(|(name, st)| {
                                SERVERS
                                    .iter()
                                    .position(|x| x.as_str() == name)
                                    .is_some_and(|s2| {
                                        st.item_id.is_some()
                                            && st.item_id.as_deref() == self.items[i].id_on(s2)
                                    })
                            })
                        })
                        .collect();
                    if holders.len() > 1 {
                        for k in &holders {
                            stored_item.push_str("\n    also held by: ");
                            stored_item.push_str(&Self::stored_line(&stored[p][*k]));
                        }
                    }
                    let msg = format!(
                        "WATCHED seed={} person={} item={} [{}] server={} id={}: intended {} but the server shows {} (play_count={}, last_played={:?}); initially watched={}\n    {}\n    history:\n{}",
                        self.cfg.seed,
                        PEOPLE[p],
                        self.items[i].key,
                        self.items[i].label,
                        SERVERS[s],
                        id,
                        if want { "watched" } else { "unwatched" },
                        if got.played { "watched" } else { "unwatched" },
                        got.play_count,
                        got.last_played.map(|t| t.to_rfc3339()),
                        self.intent[p][i].initially_watched,
                        stored_item,
                        self.history_of(p, i)
                    );
                    self.report.failures.push(msg);
                }
            }
        }

        // 2. Resume positions where the last action was a pause of an unwatched item.
        let mut resume_misses = Vec::new();
        for p in 0..PEOPLE.len() {
            for i in 0..self.items.len() {
                let intent = &self.intent[p][i];
                let (Some(want), false) = (intent.resume, intent.watched) else {
                    continue;
                };
                for s in 0..3 {
                    let Some(id) = self.items[i].id_on(s) else {
                        continue;
                    };
                    let user = &self.accounts[p][s].user_id;
                    let got = self.fakes[s].state_of(user, id);
                    self.report.resume_checked += 1;
                    if got.position_ms.abs_diff(want) <= 5_000 {
                        self.report.resume_ok += 1;
                    } else {
                        resume_misses.push(format!(
                            "RESUME seed={} person={} item={} server={} id={}: intended {} ms, server holds {} ms\n    history:\n{}",
                            self.cfg.seed,
                            PEOPLE[p],
                            self.items[i].key,
                            SERVERS[s],
                            id,
                            want,
                            got.position_ms,
                            self.history_of(p, i)
                        ));
                    }
                }
            }
        }
        if self.report.resume_share() < 0.95 {
            self.report.failures.extend(resume_misses);
        }

        // 3. No false match: a stored item's backend ids all name one real item.
        for (p, items) in stored.iter().enumerate() {
            for it in items {
                let mut real: BTreeSet<usize> = BTreeSet::new();
                let mut named: Vec<String> = Vec::new();
                for (name, st) in &it.backends {
                    let Some(s) = SERVERS.iter().position(|x| x.as_str() == name) else {
                        continue;
                    };
                    if let Some(id) = &st.item_id {
                        match self.by_id.get(&(s, id.clone())) {
                            Some(r) => {
                                real.insert(*r);
                                named.push(format!("{name}:{id}={}", self.items[*r].key));
                            }
                            None => named.push(format!("{name}:{id}=not a playable item")),
                        }
                    }
                }
                if real.len() > 1 {
                    self.report.false_matches += 1;
                    let histories: String = real
                        .iter()
                        .map(|r| {
                            format!(
                                "    history of {}:\n{}",
                                self.items[*r].key,
                                self.history_of(p, *r)
                            )
                        })
                        .collect();
                    self.report.failures.push(format!(
                        "FALSE MATCH seed={} person={}: one stored item joins {}\n    {}\n{}",
                        self.cfg.seed,
                        PEOPLE[p],
                        named.join(", "),
                        Self::stored_line(it),
                        histories
                    ));
                }
            }
        }

        // 4. Isolation and 5. call count: every state-changing call, whose account.
        for (s, fake) in self.fakes.iter().enumerate() {
            for call in fake.calls() {
                let Some(target) = state_change_target(SERVERS[s], &call) else {
                    continue;
                };
                self.report.state_calls += 1;
                let by_token: Option<usize> = (0..PEOPLE.len()).find(|p| {
                    let t = &self.accounts[*p][s].token;
                    call.headers.iter().any(|(_, v)| v.contains(t.as_str()))
                        || call.query.iter().any(|(_, v)| v == t)
                });
                let by_path: Option<usize> = target
                    .user
                    .as_ref()
                    .and_then(|u| (0..PEOPLE.len()).find(|p| &self.accounts[*p][s].user_id == u));
                let person = by_path.or(by_token);
                let real = self.by_id.get(&(s, target.item.clone())).copied();
                let problem = match (person, by_token, real) {
                    (Some(p), Some(t), _) if p != t => Some(format!(
                        "{}'s token used on {}'s account",
                        PEOPLE[t], PEOPLE[p]
                    )),
                    (Some(p), _, Some(r))
                        if !self.intent[p][r].acted && !self.intent[p][r].initially_watched =>
                    {
                        Some(format!(
                            "{} never did anything with {} and it was never watched",
                            PEOPLE[p], self.items[r].key
                        ))
                    }
                    (None, _, _) => Some("call on no known account".into()),
                    _ => None,
                };
                if let Some(problem) = problem {
                    self.report.leaks += 1;
                    self.report.failures.push(format!(
                        "LEAK seed={} server={} {} {} {:?}: {problem}",
                        self.cfg.seed, SERVERS[s], call.method, call.path, call.query
                    ));
                }
            }
        }
        if self.report.calls_per_action() > 3.0 {
            self.report.failures.push(format!(
                "CALLS seed={}: {} state-changing calls for {} actions ({:.2} per action, budget 3)",
                self.cfg.seed,
                self.report.state_calls,
                self.report.actions,
                self.report.calls_per_action()
            ));
        }
        if !self.report.failures.is_empty() {
            self.report
                .failures
                .push(format!("TASKS seed={}:\n      {tasks}", self.cfg.seed));
        }
    }
}

/// The account and item a state-changing call is about.
struct Target {
    /// Jellyfin/Emby user in the path; Plex calls name none (the token does).
    user: Option<String>,
    item: String,
}

/// `Some` for the calls that change play state: Plex scrobble, unscrobble and
/// timeline; Jellyfin/Emby played items (mark, unmark) and user data.
fn state_change_target(kind: BackendKind, call: &crate::fake::Call) -> Option<Target> {
    let segs: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    match kind {
        BackendKind::Plex => match segs.as_slice() {
            [":", "scrobble" | "unscrobble"] => Some(Target {
                user: None,
                item: call.q("key")?.to_string(),
            }),
            [":", "timeline"] => Some(Target {
                user: None,
                item: call.q("ratingKey")?.to_string(),
            }),
            _ => None,
        },
        _ => {
            let segs: Vec<&str> = match segs.first() {
                Some(s) if s.eq_ignore_ascii_case("emby") => segs[1..].to_vec(),
                _ => segs,
            };
            match (call.method.as_str(), segs.as_slice()) {
                ("POST" | "DELETE", ["Users", u, "PlayedItems", id, ..])
                | ("POST", ["Users", u, "Items", id, "UserData"]) => Some(Target {
                    user: Some(u.to_string()),
                    item: id.to_string(),
                }),
                _ => None,
            }
        }
    }
}

/// Import, then publish what it stored; a line for the task log.
async fn import_and_publish(deps: Deps, payload: TaskPayload, what: String) -> String {
    let importer = Importer::new(
        &deps,
        ImportOptions {
            page_size: 7,
            page_attempts: 2,
            page_backoff: Duration::from_millis(5),
            ..ImportOptions::default()
        },
    );
    match importer.run(&payload, Budget::unlimited()).await {
        Ok(r) => {
            let published = publish_changes(&deps, 500).await;
            let counts: Vec<String> = r
                .backends
                .iter()
                .map(|b| {
                    format!(
                        "{}/{} changed={} unplayed={} created={}",
                        b.user, b.backend, b.counts.changed, b.counts.unplayed, b.counts.created
                    )
                })
                .collect();
            format!("{what}: {} published={published}", counts.join("; "))
        }
        Err(e) => format!("{what}: failed: {e}"),
    }
}

/// The account a webhook is about: Plex `Account.id`, Jellyfin `UserId`, Emby
/// `User.Id` (the JSON is the whole body, or Plex's multipart `payload` part).
fn hook_user(hook: &Outgoing) -> Option<String> {
    let text = String::from_utf8_lossy(&hook.body);
    let json = &text[text.find('{')?..=text.rfind('}')?];
    let v: Value = serde_json::from_str(json).ok()?;
    match (&v["Account"]["id"], &v["UserId"], &v["User"]["Id"]) {
        (Value::Number(n), _, _) => Some(n.to_string()),
        (_, Value::String(u), _) | (_, _, Value::String(u)) => Some(u.clone()),
        _ => None,
    }
}

/// The start of the next wall-clock second (and a little), as an `Instant`.
fn next_second() -> Instant {
    let into = Utc::now().timestamp_subsec_millis() as u64;
    Instant::now() + Duration::from_millis(1000 - into.min(999) + 5)
}

fn shuffle<T>(rng: &mut StdRng, v: &mut [T]) {
    for k in (1..v.len()).rev() {
        let j = rng.random_range(0..=k);
        v.swap(k, j);
    }
}

/// Run one seed.
pub async fn run(cfg: Config) -> Report {
    World::new(cfg).await.run().await
}

/// Totals over many runs, for the soak's last line.
pub fn totals(reports: &[Report]) -> String {
    let sum = |f: fn(&Report) -> usize| reports.iter().map(f).sum::<usize>();
    let actions = sum(|r| r.actions);
    let calls = sum(|r| r.state_calls);
    let resume_checked = sum(|r| r.resume_checked);
    let resume_ok = sum(|r| r.resume_ok);
    let mut broken: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in reports {
        for b in r.broken() {
            broken.entry(b).or_default().push(r.seed);
        }
    }
    format!(
        "TOTAL seeds={} actions={} watched={}/{} resume={}/{} ({:.1} %) false_matches={} leaks={} calls/action={:.2}; broken: {}",
        reports.len(),
        actions,
        sum(|r| r.watched_ok),
        sum(|r| r.watched_checked),
        resume_ok,
        resume_checked,
        if resume_checked == 0 { 100.0 } else { resume_ok as f64 * 100.0 / resume_checked as f64 },
        sum(|r| r.false_matches),
        sum(|r| r.leaks),
        calls as f64 / actions.max(1) as f64,
        if broken.is_empty() {
            "none".to_string()
        } else {
            broken
                .iter()
                .map(|(k, seeds)| format!("{k} (seeds {seeds:?})"))
                .collect::<Vec<_>>()
                .join("; ")
        }
    )
}
