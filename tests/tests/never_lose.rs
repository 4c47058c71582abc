//! "Never lose a watched": one test per data-loss path found in the sync rules, each
//! against the fake Plex, Jellyfin and Emby servers (real HTTP, real response shapes),
//! the real clients, the real webhook handler with push in process, import and export
//! over the embedded store. Each test failed on the rules before the fix (see
//! `docs/RELIABILITY.md`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e::fake::player::PlayerAction;
use e2e::fake::{FakeItem, FakeServer, Outgoing, PlayState, EPISODE, MOVIE, SERIES};
use e2e::{fixture, wire, Local, Transport};
use serde_json::{json, Value};
use watchstate::adapters::local_bus::LocalBus;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::push::{LocalPush, Pusher};
use watchstate::app::tasks::export::{ExportOptions, ExportReport, Exporter};
use watchstate::app::tasks::import::{ImportOptions, ImportReport, Importer};
use watchstate::app::tasks::{Budget, Deps, TaskPayload};
use watchstate::domain::model::{BackendKind, Item};
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::ports::store::Store;

const USER: &str = "ana";
const NAMES: [&str; 3] = ["plex", "jellyfin", "emby"];

/// One person with a Plex, a Jellyfin and an Emby backend (import and export on), a
/// webhook handler whose changes are pushed in process, import and export.
struct House {
    plex: FakeServer,
    jf: FakeServer,
    emby: FakeServer,
    local: Local,
    deps: Deps,
    paths: HashMap<&'static str, String>,
}

impl House {
    async fn new() -> House {
        House::with(
            FakeServer::with_sample(BackendKind::Plex).await,
            FakeServer::with_sample(BackendKind::Jellyfin).await,
            FakeServer::with_sample(BackendKind::Emby).await,
        )
        .await
    }

    async fn with(plex: FakeServer, jf: FakeServer, emby: FakeServer) -> House {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("w.db")).expect("store"));
        let clients = Arc::new(HttpClients {
            http: http_client_with(Duration::from_millis(500), Duration::from_secs(3)),
            retry: RetryPolicy::quick(),
        });
        let pusher = Pusher {
            store: store.clone(),
            clients: clients.clone(),
        };
        let mut local = Local::with_store(store.clone(), dir);
        local.webhook = WebhookService {
            store: store.clone(),
            bus: Some(Arc::new(LocalBus::new(Arc::new(LocalPush(pusher))))),
        };
        let deps = Deps {
            store,
            clients,
            bus: None,
        };
        let mut h = House {
            plex,
            jf,
            emby,
            local,
            deps,
            paths: HashMap::new(),
        };
        for name in NAMES {
            let mut body = h.fake(name).backend_body();
            body["import"] = json!({"enabled": true});
            body["export"] = json!({"enabled": true});
            let path = h.local.backend(USER, name, body).await;
            h.paths.insert(name, path);
        }
        h
    }

    fn fake(&self, name: &str) -> &FakeServer {
        match name {
            "plex" => &self.plex,
            "jellyfin" => &self.jf,
            _ => &self.emby,
        }
    }

    fn store(&self) -> &dyn Store {
        self.deps.store.as_ref()
    }

    async fn webhook(&self, name: &str, t: Transport, body: &Value, ua: &str) -> Value {
        let bytes = serde_json::to_vec(body).expect("json");
        let (status, answer) = self
            .local
            .send(&self.paths[name], &wire(t, &bytes, ua))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn import(&self, backend: Option<&str>) -> ImportReport {
        let payload = TaskPayload {
            backend: backend.map(String::from),
            ..Default::default()
        };
        let r = Importer::new(
            &self.deps,
            ImportOptions {
                page_attempts: 2,
                page_backoff: Duration::from_millis(5),
                ..ImportOptions::default()
            },
        )
        .run(&payload, Budget::unlimited())
        .await
        .expect("import");
        assert!(r.complete(), "{r:#?}");
        r
    }

    async fn export_within(&self, budget: Budget) -> ExportReport {
        Exporter::new(&self.deps, ExportOptions::default())
            .run(&TaskPayload::default(), budget)
            .await
            .expect("export")
    }

    async fn export(&self) -> ExportReport {
        self.export_within(Budget::unlimited()).await
    }

    async fn item(&self, backend: &str, id: &str) -> Item {
        self.store()
            .find_item(USER, &[format!("B#{backend}#{id}")])
            .await
            .expect("store")
            .unwrap_or_else(|| panic!("no item for {backend} {id}"))
    }

    /// Whether each server shows the item played: (plex, jellyfin, emby).
    fn played(&self, n: u64) -> (bool, bool, bool) {
        (
            self.plex.state(&self.plex.id(n)).played,
            self.jf.state(&self.jf.id(n)).played,
            self.emby.state(&self.emby.id(n)).played,
        )
    }

    /// Deliver what a fake server sent to the backend's webhook URL.
    async fn deliver(&self, name: &str, hooks: Vec<Outgoing>) {
        for hook in hooks {
            let w = e2e::Wire {
                method: "POST",
                headers: vec![
                    ("user-agent", hook.user_agent.to_string()),
                    ("content-type", hook.content_type.clone()),
                ],
                body: hook.body,
            };
            let (status, answer) = self.local.send(&self.paths[name], &w).await;
            assert_eq!(status, 200, "{} {answer}", hook.event);
        }
    }

    fn clear_calls(&self) {
        for name in NAMES {
            self.fake(name).clear_calls();
        }
    }
}

fn ago(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - secs, 0).expect("time")
}

/// A Plex webhook about the sample movie, as Plex sends it (from the captured
/// scrobble), with `event` and the given `Metadata` fields.
fn plex_event(h: &House, event: &str, metadata: Value) -> Value {
    let mut v: Value = serde_json::from_slice(&fixture(
        "webhooks/plex/media.scrobble-movie-plexguid-movary.json",
    ))
    .expect("json");
    v["event"] = json!(event);
    let m = v["Metadata"].as_object_mut().expect("metadata");
    // Plex omits a zero viewCount; this event says nothing about earlier plays.
    m.remove("viewCount");
    m.remove("lastViewedAt");
    m.insert("ratingKey".into(), json!(h.plex.id(MOVIE)));
    m.insert("title".into(), json!("The Shawshank Redemption"));
    m.insert("year".into(), json!(1994));
    m.insert(
        "Guid".into(),
        json!([{"id": "imdb://tt0111161"}, {"id": "tmdb://278"}]),
    );
    for (k, val) in metadata.as_object().expect("fields") {
        m.insert(k.clone(), val.clone());
    }
    v["Account"]["id"] = json!(1);
    v
}

fn emby_unplayed(h: &House) -> Value {
    json!({
        "Title": "ana marked unplayed", "Date": Utc::now().to_rfc3339(),
        "Event": "item.markunplayed",
        "User": {"Name": "ana", "Id": h.emby.user_id()},
        "Item": {"Name": "The Shawshank Redemption", "Id": h.emby.id(MOVIE), "Type": "Movie",
                 "ProviderIds": {"Imdb": "tt0111161", "Tmdb": "278"},
                 "UserData": {"Played": false, "PlayCount": 0}},
        "Server": {"Name": "emby", "Id": h.emby.server_id(), "Version": "4.8.11.0"}
    })
}

fn jellyfin_pause(h: &House, position_ms: u64, at: DateTime<Utc>) -> Value {
    json!({
        "NotificationType": "PlaybackProgress", "ServerId": h.jf.server_id(),
        "UserId": h.jf.user_id(), "ItemId": h.jf.id(EPISODE), "ItemType": "Episode",
        "Name": "Pilot", "SeriesName": "Breaking Bad", "SeasonNumber": 1, "EpisodeNumber": 1,
        "Provider_imdb": "tt0959621", "Provider_tvdb": "349232",
        "RunTimeTicks": 34_800_000_000u64, "PlaybackPositionTicks": position_ms * 10_000,
        "IsPaused": true, "UtcTimestamp": at.to_rfc3339()
    })
}

/// The reported bug: a movie watchstate never saw is played, then paused, on Plex;
/// Jellyfin, where it was watched long ago, must keep its watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_seen_pause_never_erases_a_watched_elsewhere() {
    let h = House::new().await;
    let jf_movie = h.jf.id(MOVIE);
    h.jf.set_state(&jf_movie, PlayState::played_at(ago(2 * 365 * 86_400)));
    for event in ["media.play", "media.pause"] {
        let body = plex_event(&h, event, json!({"viewOffset": 1_200_000}));
        h.webhook(
            "plex",
            Transport::PlexMultipart,
            &body,
            "PlexMediaServer/1.41",
        )
        .await;
    }
    assert!(
        h.jf.calls_matching("DELETE", "/Users/").is_empty(),
        "{:?}",
        h.jf.calls()
    );
    assert!(h.jf.state(&jf_movie).played, "Jellyfin kept its watched");
    // Nor does the scheduled repair erase it.
    h.import(None).await;
    h.export().await;
    assert!(h.jf.calls_matching("DELETE", "/Users/").is_empty());
    assert!(h.jf.state(&jf_movie).played);
}

/// Path 1: a push that lands between the page's creation and its merge must not make
/// the watched item look unplayed on that backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path1_a_stale_import_page_invents_no_unplay() {
    let h = House::new().await;
    h.import(None).await;
    // Plex's next library page is made now (movie unwatched) and arrives in 1.5 s.
    h.plex
        .answer_late("/library/sections/", Duration::from_millis(1500));
    let importing = {
        let deps = h.deps.clone();
        tokio::spawn(async move {
            Importer::new(&deps, ImportOptions::default())
                .run(
                    &TaskPayload {
                        backend: Some("plex".into()),
                        ..Default::default()
                    },
                    Budget::unlimited(),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile the movie is watched to the end on Jellyfin; push marks it on Plex.
    h.jf.set_state(&h.jf.id(MOVIE), PlayState::played_at(ago(5)));
    let stop = json!({
        "NotificationType": "PlaybackStop", "ServerId": h.jf.server_id(),
        "UserId": h.jf.user_id(), "ItemId": h.jf.id(MOVIE), "ItemType": "Movie",
        "Name": "The Shawshank Redemption", "Provider_imdb": "tt0111161",
        "PlayedToCompletion": true, "UtcTimestamp": ago(5).to_rfc3339()
    });
    h.webhook(
        "jellyfin",
        Transport::JellyfinTextPlain,
        &stop,
        "Jellyfin-Server/10.10.3",
    )
    .await;
    assert!(h.plex.state(&h.plex.id(MOVIE)).played, "pushed to Plex");
    importing.await.expect("task").expect("import");
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert!(
        movie.watched,
        "the late page is older than the push: {movie:#?}"
    );
    h.export().await;
    assert_eq!(h.played(MOVIE), (true, true, true));
    assert!(h.jf.calls_matching("DELETE", "/Users/").is_empty());
}

/// A show numbered differently on two servers: Plex's S01E01 is tvdb 1001,
/// Jellyfin's S01E01 is tvdb 2002 (same show, same numbers, different episodes).
async fn differently_ordered() -> House {
    let plex = FakeServer::start(BackendKind::Plex).await;
    let jf = FakeServer::start(BackendKind::Jellyfin).await;
    for (fake, own) in [(&plex, "1001"), (&jf, "2002")] {
        let series = FakeItem::series(fake.id(SERIES), "Cowboy Bebop", 1998).guid("tvdb", "76885");
        let ep = FakeItem::episode(fake.id(EPISODE), &series, 1, 1, "Asteroid Blues")
            .guid("tvdb", own)
            .duration(1_500_000);
        fake.add(series);
        fake.add(ep);
    }
    House::with(plex, jf, FakeServer::start(BackendKind::Emby).await).await
}

/// Path 2: a relative key (`tvdb:SHOW/S/E`) never merges episodes whose own ids
/// disagree, in import and in push's search.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path2_relative_keys_never_merge_contradicting_episodes() {
    let h = differently_ordered().await;
    h.import(None).await;
    let a = h.item("plex", &h.plex.id(EPISODE)).await;
    let b = h.item("jellyfin", &h.jf.id(EPISODE)).await;
    assert_ne!(a.id, b.id, "two episodes, two items: {a:#?} {b:#?}");
    // Watched on Plex (missed webhook: import sees it), exported.
    h.plex
        .set_state(&h.plex.id(EPISODE), PlayState::played_at(ago(60)));
    h.import(None).await;
    h.export().await;
    assert!(
        !h.jf.state(&h.jf.id(EPISODE)).played,
        "{:?}",
        h.jf.calls_matching("POST", "/Users/")
    );
    assert!(h.jf.calls_matching("POST", "/Users/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path2_push_search_rejects_a_contradicting_episode() {
    let h = differently_ordered().await;
    // Only Plex is imported: push must find the episode on Jellyfin by searching.
    h.import(Some("plex")).await;
    h.plex
        .set_state(&h.plex.id(EPISODE), PlayState::played_at(ago(60)));
    h.import(Some("plex")).await;
    let report = h.export().await;
    assert!(
        !h.jf.state(&h.jf.id(EPISODE)).played,
        "the search result contradicts the item: {report:#?}"
    );
}

/// Path 3: marked played, then unmarked a second later while the first push is still
/// calling the other servers: every server ends unwatched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path3_a_push_in_flight_never_outruns_a_newer_unplay() {
    let h = Arc::new(House::new().await);
    h.import(None).await;
    // Jellyfin answers the first push's first call slowly.
    h.jf.delay_next(1, Duration::from_millis(1200));
    h.plex
        .set_state(&h.plex.id(MOVIE), PlayState::played_at(ago(1)));
    let first = {
        let h = h.clone();
        tokio::spawn(async move {
            let body = plex_event(
                &h,
                "media.scrobble",
                json!({"viewCount": 1, "lastViewedAt": ago(1).timestamp()}),
            );
            h.webhook(
                "plex",
                Transport::PlexMultipart,
                &body,
                "PlexMediaServer/1.41",
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    h.emby.set_state(&h.emby.id(MOVIE), PlayState::default());
    let answer = h
        .webhook(
            "emby",
            Transport::EmbyJson,
            &emby_unplayed(&h),
            "Emby Server/4.8.11.0",
        )
        .await;
    assert_eq!(answer["changed"], true, "{answer}");
    first.await.expect("first webhook");
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert!(!movie.watched);
    assert_eq!(
        h.played(MOVIE),
        (false, false, false),
        "the person's last action was the unmark"
    );
}

/// Path 4: after an unmark, a pause on a server that still shows the item watched
/// moves its last-viewed time; that is no play.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path4_a_partial_play_is_not_a_new_play() {
    let h = House::new().await;
    for name in NAMES {
        let f = h.fake(name);
        f.set_state(&f.id(MOVIE), PlayState::played_at(ago(86_400)));
    }
    h.import(None).await;
    // Unmarked on Emby; the push to Jellyfin fails (Jellyfin is down for a moment).
    h.emby.set_state(&h.emby.id(MOVIE), PlayState::default());
    h.jf.fail_next(20, 503);
    h.webhook(
        "emby",
        Transport::EmbyJson,
        &emby_unplayed(&h),
        "Emby Server/4.8.11.0",
    )
    .await;
    h.jf.clear_failures();
    assert!(!h.plex.state(&h.plex.id(MOVIE)).played);
    // Then ten minutes into the movie on Jellyfin, paused: still watched there (one
    // play), its last-viewed time moved.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.jf.set_state(
        &h.jf.id(MOVIE),
        PlayState {
            played: true,
            last_played: Some(Utc::now()),
            position_ms: 600_000,
            play_count: 1,
        },
    );
    h.import(None).await;
    h.export().await;
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert!(!movie.watched, "{movie:#?}");
    assert_eq!(h.played(MOVIE), (false, false, false));
}

/// Path 5: an item imported watched without a play time is marked played with no
/// date (the server records "now"), never with 1970.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path5_no_1970_play_date() {
    let h = House::new().await;
    h.plex.set_state(
        &h.plex.id(MOVIE),
        PlayState {
            played: true,
            last_played: None,
            position_ms: 0,
            play_count: 1,
        },
    );
    h.import(None).await;
    h.export().await;
    for fake in [&h.jf, &h.emby] {
        let calls = fake.calls_matching("POST", &format!("/Users/{}/PlayedItems/", fake.user_id()));
        assert_eq!(calls.len(), 1, "{calls:#?}");
        if let Some(date) = calls[0].q("DatePlayed") {
            assert!(!date.starts_with("1970"), "a made-up play date: {date}");
        }
        assert!(fake.state(&fake.id(MOVIE)).played);
    }
}

/// Path 6: resume positions are carried by import and export, and an older pause
/// that arrives late never overwrites a newer position.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path6_resume_positions_travel_through_import_and_export() {
    let h = House::new().await;
    // Paused 20 minutes into the episode on Jellyfin; the webhook never arrived.
    h.jf.set_state(
        &h.jf.id(EPISODE),
        PlayState {
            position_ms: 1_200_000,
            last_played: Some(ago(30)),
            ..PlayState::default()
        },
    );
    h.import(None).await;
    h.export().await;
    for fake in [&h.plex, &h.emby] {
        let pos = fake.state(&fake.id(EPISODE)).position_ms;
        assert!(pos.abs_diff(1_200_000) <= 5_000, "{}: {pos}", fake.kind());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path6_a_late_older_pause_never_overwrites_a_newer_position() {
    let h = House::new().await;
    let newer = jellyfin_pause(&h, 1_800_000, ago(10));
    let older = jellyfin_pause(&h, 600_000, ago(600));
    for body in [newer, older] {
        h.webhook(
            "jellyfin",
            Transport::JellyfinTextPlain,
            &body,
            "Jellyfin-Server/10.10.3",
        )
        .await;
    }
    let ep = h.item("jellyfin", &h.jf.id(EPISODE)).await;
    assert_eq!(ep.progress_ms, Some(1_800_000));
    assert_eq!(h.plex.state(&h.plex.id(EPISODE)).position_ms, 1_800_000);
}

/// Path 7: an export that runs out of time goes on where it stopped, and does not
/// search again for items a backend does not have, so the tail is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path7_export_resumes_and_reaches_the_tail() {
    let plex = FakeServer::start(BackendKind::Plex).await;
    let jf = FakeServer::start(BackendKind::Jellyfin).await;
    let n = 40u64;
    for i in 0..n {
        let imdb = format!("tt{:07}", 1_000_000 + i);
        plex.add(
            FakeItem::movie(plex.id(1000 + i), &format!("Movie {i}"), 2000).guid("imdb", &imdb),
        );
        plex.set_state(&plex.id(1000 + i), PlayState::played_at(ago(3600)));
        // Jellyfin has only every fourth movie.
        if i % 4 == 3 {
            jf.add(
                FakeItem::movie(jf.id(1000 + i), &format!("Movie {i}"), 2000).guid("imdb", &imdb),
            );
        }
    }
    let h = House::with(plex, jf, FakeServer::start(BackendKind::Emby).await).await;
    h.import(Some("plex")).await;
    // Every Jellyfin answer takes 40 ms; a run has 400 ms.
    h.jf.delay_next(10_000, Duration::from_millis(40));
    let mut runs = 0;
    let wanted: Vec<String> = (0..n)
        .filter(|i| i % 4 == 3)
        .map(|i| h.jf.id(1000 + i))
        .collect();
    let mut complete = false;
    while runs < 12 && !complete {
        let r = h
            .export_within(Budget::of(Duration::from_millis(400)))
            .await;
        runs += 1;
        let user = r.users.iter().find(|u| u.user == USER).expect("user");
        complete = user.complete;
        if runs > 1 {
            assert!(
                user.resumed,
                "run {runs} goes on where the last stopped: {r:#?}"
            );
        }
    }
    assert!(complete, "export never reached the end in {runs} runs");
    assert!(runs > 1, "the budget is meant to cut the first run short");
    let done = wanted.iter().filter(|id| h.jf.state(id).played).count();
    assert_eq!(done, wanted.len(), "after {runs} runs");
    // Each movie Jellyfin lacks was searched for once, not once per run.
    h.clear_calls();
    h.export().await;
    assert!(h.jf.calls().is_empty(), "{:?}", h.jf.calls());
}

/// Path 8: a replaced file (a new id with no play state) gets its watched back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path8_a_replaced_file_gets_its_watched_back() {
    let h = House::new().await;
    for name in NAMES {
        let f = h.fake(name);
        f.set_state(&f.id(MOVIE), PlayState::played_at(ago(86_400)));
    }
    h.import(None).await;
    let new_id = "0123456789abcdef0123456789abcdef";
    assert!(h.jf.replace_file(&h.jf.id(MOVIE), new_id).is_some());
    assert!(!h.jf.state(new_id).played);
    let r = h.import(None).await;
    for b in &r.backends {
        assert_eq!(b.counts.unplayed, 0, "a replaced file is no unplay: {b:#?}");
    }
    h.export().await;
    assert!(h.jf.state(new_id).played, "{:?}", h.jf.calls());
    let movie = h.item("jellyfin", new_id).await;
    assert!(movie.watched);
    let (plex, _, emby) = h.played(MOVIE);
    assert!(plex && emby, "nothing else moved");
}

/// One episode stored twice: Plex's legacy agent reports only the show's id and the
/// numbers, Jellyfin's webhook only the episode's own id, so each made its own item and
/// Jellyfin's watched could not reach Plex. The next report that joins them (Jellyfin's
/// listing carries the show's id too) merges the two, and the watched reaches Plex.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_episode_stored_twice_is_merged_and_its_watched_reaches_plex() {
    let plex = FakeServer::start(BackendKind::Plex).await;
    let jf = FakeServer::start(BackendKind::Jellyfin).await;
    let show = FakeItem::series(plex.id(SERIES), "Harbor Lights", 2015)
        .legacy_guid("com.plexapp.agents.thetvdb://300001?lang=en");
    plex.add(
        FakeItem::episode(plex.id(EPISODE), &show, 1, 2, "Low Tide")
            .legacy_guid("com.plexapp.agents.thetvdb://300001/1/2?lang=en")
            .duration(2_400_000),
    );
    plex.add(show);
    let show = FakeItem::series(jf.id(SERIES), "Harbor Lights", 2015).guid("tvdb", "300001");
    jf.add(
        FakeItem::episode(jf.id(EPISODE), &show, 1, 2, "Low Tide")
            .guid("tvdb", "310012")
            .duration(2_400_000),
    );
    jf.add(show);
    let h = House::with(plex, jf, FakeServer::start(BackendKind::Emby).await).await;

    // Marked played on Jellyfin (push finds no such episode on Plex: Plex's has no
    // own id), then paused midway on Plex: two webhooks, two items, and the position's
    // push finds Jellyfin's episode by the show's id and numbers.
    let hooks =
        h.jf.act(&h.jf.user_id(), &h.jf.id(EPISODE), PlayerAction::MarkPlayed);
    h.deliver("jellyfin", hooks.expect("on jellyfin")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pause = PlayerAction::Partial {
        position_ms: 600_000,
        stop: false,
    };
    let hooks = h.plex.act(&h.plex.user_id(), &h.plex.id(EPISODE), pause);
    h.deliver("plex", hooks.expect("on plex")).await;
    h.import(None).await;
    h.export().await;
    let on_plex = h.item("plex", &h.plex.id(EPISODE)).await;
    let on_jf = h.item("jellyfin", &h.jf.id(EPISODE)).await;
    assert_eq!(on_plex.id, on_jf.id, "one item: {on_plex:#?} {on_jf:#?}");
    assert!(on_plex.watched);
    let all = h
        .store()
        .list_items(USER, &watchstate::ports::store::ItemQuery::All, 10, None)
        .await
        .expect("list");
    assert_eq!(all.items.len(), 1, "{:#?}", all.items);
    assert!(
        h.plex.state(&h.plex.id(EPISODE)).played,
        "Jellyfin's watched reaches Plex: {:?}",
        h.plex.calls()
    );
    assert!(
        h.jf.state(&h.jf.id(EPISODE)).played,
        "and stays on Jellyfin"
    );
}
