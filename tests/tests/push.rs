//! Push, end to end: a household member with a Plex, a Jellyfin and an Emby backend
//! (fake servers built from the real API shapes, answering over HTTP). Webhooks go to
//! the real webhook handler behind an HTTP listener; the in-process bus hands each
//! change to push, which calls the other servers through the real clients. The fakes
//! echo the webhooks a real server sends when its state changes.

use std::sync::Arc;
use std::time::Duration;

use e2e::fake::{FakeItem, FakeServer, PlayState, EPISODE, MOVIE};
use e2e::serve::{serve, Served};
use e2e::{fixture, wire, Transport};
use serde_json::{json, Value};
use watchstate::adapters::local_bus::LocalBus;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::push::{LocalPush, Pusher};
use watchstate::domain::model::BackendKind;
use watchstate::domain::token::TokenSecret;
use watchstate::inbound::http::api::ApiService;
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::ports::store::Store;

struct House {
    plex: FakeServer,
    jf: FakeServer,
    emby: FakeServer,
    store: Arc<dyn Store>,
    served: Served,
    http: reqwest::Client,
    urls: std::collections::HashMap<&'static str, String>,
    _dir: tempfile::TempDir,
}

const KEY: &str = "push-admin";

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
        let pusher = Pusher {
            store: store.clone(),
            clients: Arc::new(HttpClients {
                // Short timeouts so a stalled backend is retried quickly.
                http: http_client_with(Duration::from_millis(500), Duration::from_millis(800)),
                retry: RetryPolicy::quick(),
            }),
        };
        let webhook = WebhookService {
            store: store.clone(),
            bus: Some(Arc::new(LocalBus::new(Arc::new(LocalPush(pusher))))),
        };
        let api = ApiService {
            store: store.clone(),
            admin_key: KEY.into(),
            token_secret: TokenSecret::new("push-secret"),
            tasks: None,
            bus: None,
            url_rules: Default::default(),
        };
        let served = serve(webhook, api).await;
        let mut h = House {
            plex,
            jf,
            emby,
            store,
            served,
            http: e2e::http_client(),
            urls: Default::default(),
            _dir: dir,
        };
        h.api("PUT", "/v1/users/ana", None).await;
        for name in ["plex", "jellyfin", "emby"] {
            let mut body = h.fake(name).backend_body();
            body["export"] = json!({"enabled": true});
            let (_, v) = h
                .api("PUT", &format!("/v1/users/ana/backends/{name}"), Some(body))
                .await;
            let url = v["webhook_url"].as_str().expect("webhook_url").to_string();
            // A real server calls back the URL it was given.
            h.fake(name).set_echo(Some(&url));
            h.urls.insert(name, url);
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

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("m"),
                self.served.url(path),
            )
            .bearer_auth(KEY);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.expect("api");
        let s = resp.status().as_u16();
        (s, resp.json().await.expect("json"))
    }

    async fn webhook(&self, name: &str, t: Transport, json: &[u8], ua: &str) -> Value {
        let w = wire(t, json, ua);
        let mut r = self
            .http
            .request(
                reqwest::Method::from_bytes(w.method.as_bytes()).expect("m"),
                &self.urls[name],
            )
            .body(w.body);
        for (k, v) in w.headers {
            r = r.header(k, v);
        }
        let resp = r.send().await.expect("webhook");
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.expect("json")
    }

    /// Every call that changes play state, per server.
    fn mutations(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for name in ["plex", "jellyfin", "emby"] {
            for c in self.fake(name).calls() {
                let mutates = c.method != "GET"
                    || c.path.starts_with("/:/scrobble")
                    || c.path.starts_with("/:/unscrobble");
                if mutates {
                    out.push((name.to_string(), c.method.clone(), c.path.clone()));
                }
            }
        }
        out
    }

    async fn settle(&self) {
        // Echo webhooks are sent asynchronously by the fakes; give them time to land.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

/// The sample movie's Plex scrobble, as Plex sends it for this fake's item.
fn plex_scrobble(house: &House) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(
        "webhooks/plex/media.scrobble-movie-plexguid-movary.json",
    ))
    .expect("json");
    v["Metadata"]["ratingKey"] = json!(house.plex.id(MOVIE));
    v["Metadata"]["title"] = json!("The Shawshank Redemption");
    v["Metadata"]["year"] = json!(1994);
    v["Metadata"]["Guid"] = json!([{"id": "imdb://tt0111161"}, {"id": "tmdb://278"}]);
    v["Metadata"]["lastViewedAt"] = json!(chrono::Utc::now().timestamp() - 60);
    v["Account"]["id"] = json!(1);
    serde_json::to_vec(&v).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plex_scrobble_marks_played_on_jellyfin_and_emby_without_ping_pong() {
    let h = House::new().await;
    let answer = h
        .webhook(
            "plex",
            Transport::PlexMultipart,
            &plex_scrobble(&h),
            "PlexMediaServer/1.41",
        )
        .await;
    assert_eq!(
        (answer["status"].as_str(), answer["changed"].as_bool()),
        (Some("stored"), Some(true))
    );
    h.settle().await;

    let jf_movie = h.jf.id(MOVIE);
    let emby_movie = h.emby.id(MOVIE);
    let played_jf = h.jf.calls_matching(
        "POST",
        &format!("/Users/{}/PlayedItems/{jf_movie}", h.jf.user_id()),
    );
    let played_emby = h.emby.calls_matching(
        "POST",
        &format!("/Users/{}/PlayedItems/{emby_movie}", h.emby.user_id()),
    );
    assert_eq!(played_jf.len(), 1, "{:?}", h.mutations());
    assert_eq!(played_emby.len(), 1, "{:?}", h.mutations());
    assert!(
        played_jf[0].q("DatePlayed").is_some(),
        "the play time goes along"
    );
    assert!(h.jf.state(&jf_movie).played && h.emby.state(&emby_movie).played);
    assert!(
        h.plex.calls_matching("GET", "/:/scrobble").is_empty(),
        "never back to the origin"
    );

    // Both servers echoed their own webhook; each was "same state", and nothing more
    // was pushed: exactly two mutations in total.
    let jf_echo = h.jf.wait_echoes(1, Duration::from_secs(5)).await;
    let emby_echo = h.emby.wait_echoes(1, Duration::from_secs(5)).await;
    for e in jf_echo.iter().chain(emby_echo.iter()) {
        assert_eq!(e.status, Some(200), "{e:?}");
        assert!(e.answer.contains("same state"), "{e:?}");
    }
    h.settle().await;
    assert_eq!(h.mutations().len(), 2, "{:?}", h.mutations());

    // The same webhook again (a redelivery) changes nothing and pushes nothing.
    let again = h
        .webhook(
            "plex",
            Transport::PlexMultipart,
            &plex_scrobble(&h),
            "PlexMediaServer/1.41",
        )
        .await;
    assert_eq!(again["changed"], false);
    h.settle().await;
    assert_eq!(h.mutations().len(), 2);

    // The item knows where it lives now.
    let (_, v) = h
        .api("GET", "/v1/users/ana/items?guid=imdb:tt0111161", None)
        .await;
    let item = &v["items"][0];
    assert_eq!(item["backends"]["jellyfin"]["item_id"], json!(jf_movie));
    assert_eq!(item["backends"]["emby"]["watched"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emby_markunplayed_unmarks_on_plex_and_jellyfin() {
    let h = House::new().await;
    h.webhook(
        "plex",
        Transport::PlexMultipart,
        &plex_scrobble(&h),
        "PlexMediaServer/1.41",
    )
    .await;
    h.settle().await;
    h.plex
        .set_state(&h.plex.id(MOVIE), PlayState::played_at(chrono::Utc::now()));
    for f in [&h.plex, &h.jf, &h.emby] {
        f.clear_calls();
    }
    let unplayed = json!({
        "Title": "ana marked unplayed", "Date": chrono::Utc::now().to_rfc3339(),
        "Event": "item.markunplayed",
        "User": {"Name": "ana", "Id": h.emby.user_id()},
        "Item": {"Name": "The Shawshank Redemption", "Id": h.emby.id(MOVIE), "Type": "Movie",
                 "ProviderIds": {"Imdb": "tt0111161", "Tmdb": "278"},
                 "UserData": {"Played": false, "PlayCount": 0}},
        "Server": {"Name": "emby", "Id": h.emby.server_id(), "Version": "4.8.11.0"}
    });
    let answer = h
        .webhook(
            "emby",
            Transport::EmbyJson,
            unplayed.to_string().as_bytes(),
            "Emby Server/4.8.11.0",
        )
        .await;
    assert_eq!(answer["changed"], true, "{answer}");
    h.settle().await;
    let unscrobbles = h.plex.calls_matching("GET", "/:/unscrobble");
    assert_eq!(unscrobbles.len(), 1);
    assert_eq!(unscrobbles[0].q("key"), Some(h.plex.id(MOVIE).as_str()));
    let jf_movie = h.jf.id(MOVIE);
    assert_eq!(
        h.jf.calls_matching(
            "DELETE",
            &format!("/Users/{}/PlayedItems/{jf_movie}", h.jf.user_id())
        )
        .len(),
        1
    );
    assert!(!h.plex.state(&h.plex.id(MOVIE)).played);
    assert!(!h.jf.state(&jf_movie).played);
    assert!(
        h.emby.calls_matching("DELETE", "/Users/").is_empty(),
        "not back to Emby"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jellyfin_pause_at_20_minutes_sets_the_resume_point_elsewhere() {
    let h = House::new().await;
    let jf_ep = h.jf.id(EPISODE);
    let pause = json!({
        "NotificationType": "PlaybackProgress", "ServerId": h.jf.server_id(),
        "UserId": h.jf.user_id(), "ItemId": jf_ep, "ItemType": "Episode",
        "Name": "Pilot", "SeriesName": "Breaking Bad", "SeasonNumber": 1, "EpisodeNumber": 1,
        "Provider_imdb": "tt0959621", "Provider_tvdb": "349232",
        "RunTimeTicks": 34_800_000_000u64, "PlaybackPositionTicks": 12_000_000_000u64,
        "IsPaused": true, "UtcTimestamp": chrono::Utc::now().to_rfc3339()
    });
    let answer = h
        .webhook(
            "jellyfin",
            Transport::JellyfinTextPlain,
            pause.to_string().as_bytes(),
            "Jellyfin-Server/10.10.3",
        )
        .await;
    assert_eq!(answer["changed"], true, "{answer}");
    h.settle().await;
    let timeline = h.plex.calls_matching("POST", "/:/timeline");
    assert_eq!(timeline.len(), 1, "{:?}", h.mutations());
    assert_eq!(timeline[0].q("time"), Some("1200000"));
    assert_eq!(
        timeline[0].q("ratingKey"),
        Some(h.plex.id(EPISODE).as_str())
    );
    let emby_ep = h.emby.id(EPISODE);
    let userdata = h.emby.calls_matching(
        "POST",
        &format!("/Users/{}/Items/{emby_ep}/UserData", h.emby.user_id()),
    );
    assert_eq!(userdata.len(), 1);
    assert_eq!(
        userdata[0].json()["PlaybackPositionTicks"],
        json!(12_000_000_000u64)
    );
    assert_eq!(h.emby.state(&emby_ep).position_ms, 1_200_000);
    assert!(
        h.jf.calls_matching("POST", "/Users/").is_empty(),
        "not back to Jellyfin"
    );

    // A progress tick (not paused) is stored but not pushed.
    for f in [&h.plex, &h.jf, &h.emby] {
        f.clear_calls();
    }
    let mut tick = pause.clone();
    tick["IsPaused"] = json!(false);
    tick["PlaybackPositionTicks"] = json!(12_600_000_000u64);
    h.webhook(
        "jellyfin",
        Transport::JellyfinTextPlain,
        tick.to_string().as_bytes(),
        "Jellyfin-Server/10.10.3",
    )
    .await;
    h.settle().await;
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_on_two_servers_is_pushed_to_those_two_only() {
    let plex = FakeServer::with_sample(BackendKind::Plex).await;
    let jf = FakeServer::with_sample(BackendKind::Jellyfin).await;
    let emby = FakeServer::with_sample(BackendKind::Emby).await;
    // A film only Plex and Jellyfin have; Emby has another film with the same title.
    plex.add(FakeItem::movie(plex.id(7), "Heat", 1995).guid("imdb", "tt0113277"));
    jf.add(FakeItem::movie(jf.id(7), "Heat", 1995).guid("imdb", "tt0113277"));
    emby.add(FakeItem::movie(emby.id(7), "Heat", 1986).guid("imdb", "tt0091187"));
    let h = House::with(plex, jf, emby).await;
    let mut v: Value = serde_json::from_slice(&plex_scrobble(&h)).expect("json");
    v["Metadata"]["ratingKey"] = json!(h.plex.id(7));
    v["Metadata"]["title"] = json!("Heat");
    v["Metadata"]["Guid"] = json!([{"id": "imdb://tt0113277"}]);
    h.webhook(
        "plex",
        Transport::PlexMultipart,
        &serde_json::to_vec(&v).expect("j"),
        "PlexMediaServer/1.41",
    )
    .await;
    h.settle().await;
    assert!(h.jf.state(&h.jf.id(7)).played);
    assert!(
        !h.emby.state(&h.emby.id(7)).played,
        "a title match is not a match"
    );
    let muts = h.mutations();
    assert_eq!(muts.len(), 1, "{muts:?}");
    assert_eq!(muts[0].0, "jellyfin");
    let (_, items) = h
        .api("GET", "/v1/users/ana/items?guid=imdb:tt0113277", None)
        .await;
    assert_eq!(
        items["items"][0]["backends"]["emby"]["item_id"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_backend_is_retried_and_a_dead_one_is_logged_without_holding_up_others() {
    let h = House::new().await;
    // Jellyfin answers 503 twice, Emby stalls once past the client timeout: both are
    // retried and get the change.
    h.jf.fail_next(2, 503);
    h.emby.delay_next(1, Duration::from_secs(2));
    h.webhook(
        "plex",
        Transport::PlexMultipart,
        &plex_scrobble(&h),
        "PlexMediaServer/1.41",
    )
    .await;
    h.settle().await;
    assert!(h.jf.state(&h.jf.id(MOVIE)).played, "{:?}", h.jf.calls());
    assert!(
        h.emby.state(&h.emby.id(MOVIE)).played,
        "{:?}",
        h.emby.calls()
    );

    // Now Jellyfin keeps failing: Plex still gets the next change, Jellyfin's failure
    // lands in the delivery log with the reason.
    h.plex
        .set_state(&h.plex.id(MOVIE), PlayState::played_at(chrono::Utc::now()));
    h.jf.fail_next(50, 503);
    let unplayed = json!({
        "Event": "item.markunplayed", "Date": chrono::Utc::now().to_rfc3339(),
        "User": {"Id": h.emby.user_id()},
        "Item": {"Id": h.emby.id(MOVIE), "Type": "Movie", "Name": "The Shawshank Redemption",
                 "ProviderIds": {"Imdb": "tt0111161"}},
        "Server": {"Id": h.emby.server_id()}
    });
    h.webhook(
        "emby",
        Transport::EmbyJson,
        unplayed.to_string().as_bytes(),
        "Emby Server/4.8.11.0",
    )
    .await;
    h.settle().await;
    assert_eq!(
        h.plex.calls_matching("GET", "/:/unscrobble").len(),
        1,
        "Plex is not held up"
    );
    let (_, log) = h
        .api("GET", "/v1/users/ana/deliveries?limit=20", None)
        .await;
    let failures: Vec<&Value> = log["deliveries"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| d["status"] == "push_failed")
        .collect();
    assert_eq!(failures.len(), 1, "{log}");
    assert_eq!(failures[0]["backend"], "jellyfin");
    assert!(
        failures[0]["reason"].as_str().unwrap_or("").contains("503"),
        "{}",
        failures[0]
    );
}

/// On AWS the push function fails the invocation when a backend keeps failing in a way a
/// retry can fix, so EventBridge retries and then dead-letters it; a change whose
/// backends all answered (or do not have the item) succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_push_function_fails_only_on_retryable_backend_errors() {
    let h = House::new().await;
    h.webhook(
        "plex",
        Transport::PlexMultipart,
        &plex_scrobble(&h),
        "PlexMediaServer/1.41",
    )
    .await;
    h.settle().await;
    let (_, v) = h
        .api("GET", "/v1/users/ana/items?guid=imdb:tt0111161", None)
        .await;
    let item_id = v["items"][0]["id"].as_str().expect("id").to_string();
    let change = watchstate::domain::model::StateChange {
        id: "c-1".into(),
        user: "ana".into(),
        item_id,
        origin: Some("plex".into()),
        watched: true,
        progress_ms: None,
        state_updated_at: chrono::Utc::now(),
        kind: watchstate::domain::model::ChangeKind::Watched,
    };
    let event = |c: &watchstate::domain::model::StateChange| {
        lambda_runtime::LambdaEvent::new(
            json!({"source": "watchstate", "detail-type": "StateChange", "detail": c}),
            lambda_runtime::Context::default(),
        )
    };
    let pusher = Pusher {
        store: h.store.clone(),
        clients: Arc::new(HttpClients {
            http: http_client_with(Duration::from_millis(500), Duration::from_millis(800)),
            retry: RetryPolicy::quick(),
        }),
    };
    // Everything already in sync: success, and a redelivery is the same no-op.
    let ok = watchstate::inbound::lambda::push_event(&pusher, None, event(&change)).await;
    assert!(ok.is_ok(), "{ok:?}");
    // Jellyfin down for good: the invocation fails and says why.
    h.jf.fail_next(50, 503);
    let mut unplayed = change.clone();
    unplayed.id = "c-2".into();
    // Make Jellyfin differ from the stored state so push must call it.
    h.jf.set_state(&h.jf.id(MOVIE), PlayState::default());
    let err = watchstate::inbound::lambda::push_event(&pusher, None, event(&unplayed))
        .await
        .expect_err("a retryable failure fails the invocation");
    assert!(err.to_string().contains("jellyfin"), "{err}");
    // A malformed event is an error too (EventBridge parks it after its retries).
    let bad =
        lambda_runtime::LambdaEvent::new(json!({"detail": 1}), lambda_runtime::Context::default());
    assert!(watchstate::inbound::lambda::push_event(&pusher, None, bad)
        .await
        .is_err());
}
