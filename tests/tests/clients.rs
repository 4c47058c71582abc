//! The media-server API clients against the fake servers: every call recorded exactly,
//! the fakes' resulting state, find by ids only, retries (5xx and timeouts, never 4xx),
//! token secrecy, and library paging with resumable cursors.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use e2e::fake::{self, FakeItem, FakeServer, PlayState, EPISODE, MOVIE, SERIES};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use watchstate::adapters::media::client::{client_with, http_client_with, RetryPolicy};
use watchstate::domain::model::{Action, BackendKind, Guids, Item, ItemType, Parsed, Source};
use watchstate::domain::remote::RemoteItem;
use watchstate::ports::media::{ClientError, LibraryPage, MediaClient, PageRequest};

const KINDS: [BackendKind; 3] = [BackendKind::Plex, BackendKind::Jellyfin, BackendKind::Emby];

fn http() -> reqwest::Client {
    http_client_with(Duration::from_secs(2), Duration::from_secs(5))
}

fn client(fake: &FakeServer) -> Arc<dyn MediaClient> {
    client_with(&fake.backend("alice", "b"), http(), RetryPolicy::quick())
}

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn guids(pairs: &[(&str, &str)]) -> Guids {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn stored(kind: ItemType) -> Item {
    Item {
        id: "stored-1".into(),
        kind,
        title: None,
        year: None,
        series_title: None,
        season: None,
        episode: None,
        guids: Guids::new(),
        series_guids: Guids::new(),
        watched: false,
        state_updated_at: t(2024, 1, 1, 0, 0, 0),
        unplayed_at: None,
        progress_ms: None,
        progress_at: None,
        via: None,
        backends: BTreeMap::new(),
        version: 0,
    }
}

fn shawshank() -> Item {
    Item {
        title: Some("The Shawshank Redemption".into()),
        year: Some(1994),
        guids: guids(&[("imdb", "tt0111161")]),
        ..stored(ItemType::Movie)
    }
}

fn pilot_by_series() -> Item {
    Item {
        title: Some("Pilot".into()),
        series_title: Some("Breaking Bad".into()),
        season: Some(1),
        episode: Some(1),
        series_guids: guids(&[("tvdb", "81189")]),
        ..stored(ItemType::Episode)
    }
}

/// The user path segment of Jellyfin/Emby calls.
fn users(fake: &FakeServer) -> String {
    format!("/Users/{}", fake.user_id())
}

macro_rules! per_kind {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test]
                async fn plex() {
                    super::$name(BackendKind::Plex).await
                }
                #[tokio::test]
                async fn jellyfin() {
                    super::$name(BackendKind::Jellyfin).await
                }
                #[tokio::test]
                async fn emby() {
                    super::$name(BackendKind::Emby).await
                }
            }
        )*
    };
}

per_kind!(
    identity,
    item_with_state,
    mark_played,
    mark_unplayed,
    set_progress,
    find_movie_by_guid_only,
    find_episode_by_series_guid_and_numbers,
    find_episode_by_own_guid,
    retries_5xx_then_succeeds,
    gives_up_after_three_5xx,
    never_retries_4xx,
    wrong_token_is_401_once,
    retries_a_timeout,
    tokens_never_show_in_errors,
    library_pages_cover_everything,
    library_resumes_from_a_carried_cursor,
    echo_webhook_is_what_the_server_sends,
    accounts_list_the_servers_people,
);

/// The server's accounts with the ids their webhooks carry: Plex `GET /accounts`
/// without the system account 0; Jellyfin and Emby `GET /Users`.
async fn accounts_list_the_servers_people(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let ben = match kind {
        BackendKind::Plex => "23456789",
        _ => "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
    };
    fake.add_account(ben, "Ben");
    let accounts = client(&fake).accounts().await.expect("accounts");
    let got: Vec<(String, String)> = accounts.into_iter().map(|a| (a.id, a.name)).collect();
    assert_eq!(
        got,
        vec![
            (fake.user_id(), "owner".to_string()),
            (ben.to_string(), "Ben".to_string())
        ]
    );
    let path = match kind {
        BackendKind::Plex => "/accounts",
        _ => "/Users",
    };
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("GET", path)
    );
    // A token the server does not know is refused, and said so.
    let mut stranger = fake.backend("alice", "b");
    stranger.token = "not-a-token".into();
    let e = client_with(&stranger, http(), RetryPolicy::quick())
        .accounts()
        .await
        .expect_err("refused");
    assert_eq!(e.status(), Some(401), "{e}");
}

async fn identity(kind: BackendKind) {
    let fake = FakeServer::start(kind).await;
    fake.set_server_id("server-abc-123");
    let id = client(&fake).identity().await.expect("identity");
    assert_eq!(id.server_id, "server-abc-123");
    assert!(id.version.is_some(), "{kind}: version");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.method, "GET");
    let token = fake.token();
    match kind {
        BackendKind::Plex => {
            assert_eq!(c.path, "/identity");
            assert_eq!(c.header("x-plex-token"), Some(token));
            assert_eq!(c.header("accept"), Some("application/json"));
        }
        BackendKind::Jellyfin => {
            assert_eq!(c.path, "/System/Info");
            assert_eq!(id.name.as_deref(), Some("jellyfin-fake"));
            assert_eq!(
                c.header("authorization"),
                Some(format!("MediaBrowser Token=\"{token}\"").as_str())
            );
        }
        BackendKind::Emby => {
            assert_eq!(c.path, "/System/Info");
            assert_eq!(id.name.as_deref(), Some("emby-fake"));
            assert_eq!(c.header("x-emby-token"), Some(token));
        }
    }
    assert!(
        c.query.is_empty(),
        "token never in the query: {:?}",
        c.query
    );
    assert!(c
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("watchstate-serverless/")));
}

async fn item_with_state(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let movie = fake.id(MOVIE);
    let episode = fake.id(EPISODE);
    let seen = t(2024, 2, 3, 4, 5, 6);
    fake.set_state(&movie, PlayState::played_at(seen));
    fake.set_state(&episode, PlayState::at_position(754_000));
    let c = client(&fake);

    let m = c.item(&movie).await.unwrap().expect("movie");
    assert_eq!(m.id, movie);
    assert_eq!(m.kind, ItemType::Movie);
    assert_eq!(m.title.as_deref(), Some("The Shawshank Redemption"));
    assert_eq!(m.year, Some(1994));
    assert_eq!(m.guids, guids(&[("imdb", "tt0111161"), ("tmdb", "278")]));
    assert!(m.watched);
    assert_eq!(m.last_played_at, Some(seen));
    assert_eq!(m.progress_ms, None);
    assert_eq!(m.duration_ms, Some(8_520_000));

    let e = c.item(&episode).await.unwrap().expect("episode");
    assert_eq!(e.kind, ItemType::Episode);
    assert_eq!(e.series_title.as_deref(), Some("Breaking Bad"));
    assert_eq!((e.season, e.episode), (Some(1), Some(1)));
    assert_eq!(e.guids, guids(&[("imdb", "tt0959621"), ("tvdb", "349232")]));
    assert!(!e.watched);
    assert_eq!(e.progress_ms, Some(754_000));

    assert_eq!(c.item(&fake.id(999)).await.unwrap(), None, "404 is None");

    let reads = fake.calls();
    assert_eq!(reads.len(), 3);
    match kind {
        BackendKind::Plex => {
            assert_eq!(reads[0].path, format!("/library/metadata/{movie}"));
            assert_eq!(reads[0].q("includeGuids"), Some("1"));
        }
        _ => {
            assert_eq!(reads[0].path, format!("{}/Items/{movie}", users(&fake)));
            assert_eq!(reads[0].q("Fields"), Some("ProviderIds,DateCreated,Path"));
            assert_eq!(reads[0].q("EnableUserData"), Some("true"));
        }
    }
}

async fn mark_played(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let movie = fake.id(MOVIE);
    let at = t(2024, 3, 4, 5, 6, 7);
    let before = Utc::now() - chrono::Duration::seconds(2);
    client(&fake)
        .mark_played(&movie, Some(at))
        .await
        .expect("played");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    let state = fake.state(&movie);
    assert!(state.played);
    match kind {
        BackendKind::Plex => {
            assert_eq!((c.method.as_str(), c.path.as_str()), ("GET", "/:/scrobble"));
            assert_eq!(c.q("identifier"), Some("com.plexapp.plugins.library"));
            assert_eq!(c.q("key"), Some(movie.as_str()));
            // Plex records "now": it takes no date.
            assert!(state.last_played.is_some_and(|t| t >= before));
        }
        BackendKind::Jellyfin => {
            assert_eq!(c.method, "POST");
            assert_eq!(c.path, format!("{}/PlayedItems/{movie}", users(&fake)));
            assert_eq!(c.q("DatePlayed"), Some("2024-03-04T05:06:07Z"));
            assert_eq!(state.last_played, Some(at));
        }
        BackendKind::Emby => {
            assert_eq!(c.method, "POST");
            assert_eq!(c.path, format!("{}/PlayedItems/{movie}", users(&fake)));
            assert_eq!(c.q("DatePlayed"), Some("20240304050607"));
            assert_eq!(state.last_played, Some(at));
        }
    }
    // Read back through the client.
    let m = client(&fake).item(&movie).await.unwrap().unwrap();
    assert!(m.watched);
}

async fn mark_unplayed(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let episode = fake.id(EPISODE);
    fake.set_state(&episode, PlayState::played_at(t(2024, 1, 1, 1, 1, 1)));
    client(&fake)
        .mark_unplayed(&episode)
        .await
        .expect("unplayed");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    match kind {
        BackendKind::Plex => {
            assert_eq!(
                (c.method.as_str(), c.path.as_str()),
                ("GET", "/:/unscrobble")
            );
            assert_eq!(c.q("identifier"), Some("com.plexapp.plugins.library"));
            assert_eq!(c.q("key"), Some(episode.as_str()));
        }
        _ => {
            assert_eq!(c.method, "DELETE");
            assert_eq!(c.path, format!("{}/PlayedItems/{episode}", users(&fake)));
            assert!(c.query.is_empty());
        }
    }
    assert!(!fake.state(&episode).played);
}

async fn set_progress(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let movie = fake.id(MOVIE);
    client(&fake)
        .set_progress(&movie, 754_000, Some(8_520_000))
        .await
        .expect("progress");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    assert_eq!(c.method, "POST");
    match kind {
        BackendKind::Plex => {
            assert_eq!(c.path, "/:/timeline");
            assert_eq!(c.q("ratingKey"), Some(movie.as_str()));
            assert_eq!(
                c.q("key"),
                Some(format!("/library/metadata/{movie}").as_str())
            );
            assert_eq!(c.q("identifier"), Some("com.plexapp.plugins.library"));
            assert_eq!(c.q("state"), Some("stopped"));
            assert_eq!(c.q("time"), Some("754000"));
            assert_eq!(c.q("duration"), Some("8520000"));
        }
        _ => {
            assert_eq!(c.path, format!("{}/Items/{movie}/UserData", users(&fake)));
            assert_eq!(
                c.json(),
                serde_json::json!({"PlaybackPositionTicks": 7_540_000_000u64})
            );
            assert!(c
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")));
        }
    }
    let state = fake.state(&movie);
    assert_eq!(state.position_ms, 754_000);
    assert!(!state.played);

    // Without a duration, Plex's timeline reads it from the item first.
    fake.clear_calls();
    client(&fake)
        .set_progress(&movie, 900_000, None)
        .await
        .expect("progress");
    let calls = fake.calls();
    match kind {
        BackendKind::Plex => {
            assert_eq!(calls.len(), 2, "{calls:?}");
            assert_eq!(calls[0].path, format!("/library/metadata/{movie}"));
            assert_eq!(calls[1].q("duration"), Some("8520000"));
        }
        _ => assert_eq!(calls.len(), 1),
    }
    assert_eq!(fake.state(&movie).position_ms, 900_000);
}

async fn find_movie_by_guid_only(kind: BackendKind) {
    let fake = FakeServer::start(kind).await;
    // A decoy first: same title and year, other ids.
    fake.add(
        FakeItem::movie(fake.id(102), "The Shawshank Redemption", 1994)
            .guid("imdb", "tt9999999")
            .guid("tmdb", "999"),
    );
    fake.add(
        FakeItem::movie(fake.id(MOVIE), "The Shawshank Redemption", 1994)
            .guid("imdb", "tt0111161")
            .guid("tmdb", "278"),
    );
    let c = client(&fake);
    let found = c.find(&shawshank()).await.unwrap().expect("found");
    assert_eq!(found.id, fake.id(MOVIE));
    assert_eq!(found.guids.get("tmdb").map(String::as_str), Some("278"));

    // Only the decoy shares the title: nothing.
    let mut other = shawshank();
    other.guids = guids(&[("imdb", "tt0000404")]);
    assert_eq!(c.find(&other).await.unwrap(), None);

    // No ids at all: never matched by title.
    let mut bare = shawshank();
    bare.guids.clear();
    assert_eq!(c.find(&bare).await.unwrap(), None);

    let calls = fake.calls();
    match kind {
        BackendKind::Plex => {
            let s = &calls[0];
            assert_eq!(s.path, "/hubs/search");
            assert_eq!(s.q("query"), Some("The Shawshank Redemption"));
            assert_eq!(s.q("includeGuids"), Some("1"));
        }
        BackendKind::Jellyfin => {
            let s = &calls[0];
            assert_eq!(s.path, format!("{}/Items", users(&fake)));
            assert_eq!(s.q("searchTerm"), Some("The Shawshank Redemption"));
            assert_eq!(s.q("Recursive"), Some("true"));
            assert_eq!(s.q("IncludeItemTypes"), Some("Movie,Series"));
            assert_eq!(s.q("Fields"), Some("ProviderIds"));
        }
        BackendKind::Emby => {
            let s = &calls[0];
            assert_eq!(s.path, format!("{}/Items", users(&fake)));
            assert_eq!(s.q("AnyProviderIdEquals"), Some("imdb.tt0111161"));
            assert_eq!(s.q("Recursive"), Some("true"));
            assert_eq!(s.q("IncludeItemTypes"), Some("Movie,Episode"));
            assert_eq!(s.q("Fields"), Some("ProviderIds"));
            assert!(
                calls.iter().all(|c| c.q("searchTerm").is_none()),
                "Emby finds by id"
            );
        }
    }
}

async fn find_episode_by_series_guid_and_numbers(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    // A decoy show of the same name (a remake) with its own S01E01.
    let decoy = FakeItem::series(fake.id(300), "Breaking Bad", 2030).guid("tvdb", "999001");
    fake.add(FakeItem::episode(fake.id(301), &decoy, 1, 1, "Pilot").guid("tvdb", "999002"));
    fake.add(decoy);
    let c = client(&fake);
    let found = c.find(&pilot_by_series()).await.unwrap().expect("found");
    assert_eq!(found.id, fake.id(EPISODE));
    assert_eq!(found.kind, ItemType::Episode);
    assert_eq!(
        found.series_guids.get("tvdb").map(String::as_str),
        Some("81189")
    );

    // Same numbers, but another show's ids: nothing.
    let mut other = pilot_by_series();
    other.series_guids = guids(&[("tvdb", "424242")]);
    assert_eq!(c.find(&other).await.unwrap(), None);
    // Right show, episode it does not have: nothing.
    let mut missing = pilot_by_series();
    missing.episode = Some(9);
    assert_eq!(c.find(&missing).await.unwrap(), None);

    if kind != BackendKind::Plex {
        let walks = fake.calls_matching("GET", &format!("/Shows/{}/Episodes", fake.id(SERIES)));
        let w = walks.first().expect("episodes of the series");
        assert_eq!(w.q("season"), Some("1"));
        assert_eq!(w.q("Fields"), Some("ProviderIds"));
        assert_eq!(w.q("UserId"), Some(fake.user_id().as_str()));
        assert!(
            fake.calls_matching("GET", &format!("/Shows/{}/Episodes", fake.id(300)))
                .is_empty(),
            "a series whose ids contradict the item's is not walked"
        );
    } else {
        assert!(!fake
            .calls_matching(
                "GET",
                &format!("/library/metadata/{}/allLeaves", fake.id(SERIES))
            )
            .is_empty());
        assert!(
            fake.calls_matching(
                "GET",
                &format!("/library/metadata/{}/allLeaves", fake.id(300))
            )
            .is_empty(),
            "a show whose ids contradict the item's is not walked"
        );
    }
}

async fn find_episode_by_own_guid(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let item = Item {
        title: Some("Pilot".into()),
        series_title: Some("Breaking Bad".into()),
        guids: guids(&[("imdb", "tt0959621")]),
        ..stored(ItemType::Episode)
    };
    let found = client(&fake).find(&item).await.unwrap().expect("found");
    assert_eq!(found.id, fake.id(EPISODE));
}

async fn retries_5xx_then_succeeds(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    fake.fail_next(2, 503);
    let m = client(&fake)
        .item(&fake.id(MOVIE))
        .await
        .expect("third try");
    assert!(m.is_some());
    assert_eq!(fake.calls().len(), 3);
}

async fn gives_up_after_three_5xx(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    fake.fail_next(5, 503);
    let e = client(&fake)
        .mark_played(&fake.id(MOVIE), Some(t(2024, 1, 1, 0, 0, 0)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert!(e.retryable());
    assert_eq!(fake.calls().len(), 3);
    assert!(!fake.state(&fake.id(MOVIE)).played);
}

async fn never_retries_4xx(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    fake.fail_next(1, 400);
    let e = client(&fake)
        .mark_played(&fake.id(MOVIE), Some(t(2024, 1, 1, 0, 0, 0)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(!e.retryable());
    assert_eq!(fake.calls().len(), 1);
}

async fn wrong_token_is_401_once(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let mut backend = fake.backend("alice", "b");
    backend.token = "wrong-token-xyz".into();
    let c = client_with(&backend, http(), RetryPolicy::quick());
    let e = c.item(&fake.id(MOVIE)).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(fake.calls().len(), 1);
    if kind != BackendKind::Plex {
        // Jellyfin and Emby check the token on /System/Info (Plex's /identity does not).
        let e = c.identity().await.unwrap_err();
        assert_eq!(e.status(), Some(401));
    }
}

async fn retries_a_timeout(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let quick = http_client_with(Duration::from_secs(1), Duration::from_millis(300));
    let c = client_with(&fake.backend("alice", "b"), quick, RetryPolicy::quick());
    fake.delay_next(1, Duration::from_secs(2));
    let m = c.item(&fake.id(MOVIE)).await.expect("second try");
    assert!(m.is_some());
    assert_eq!(fake.calls().len(), 2);

    fake.clear_calls();
    fake.delay_next(3, Duration::from_secs(2));
    let e = c.item(&fake.id(MOVIE)).await.unwrap_err();
    assert_eq!(e, ClientError::Timeout);
    assert_eq!(fake.calls().len(), 3);
}

async fn tokens_never_show_in_errors(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let token = fake.token().to_string();
    let mut errors: Vec<ClientError> = Vec::new();

    fake.fail_next(3, 503);
    errors.push(client(&fake).item(&fake.id(MOVIE)).await.unwrap_err());

    let quick = http_client_with(Duration::from_secs(1), Duration::from_millis(200));
    fake.delay_next(3, Duration::from_secs(1));
    let c = client_with(&fake.backend("alice", "b"), quick, RetryPolicy::quick());
    errors.push(c.item(&fake.id(MOVIE)).await.unwrap_err());

    // A wrong token: that one must not show either.
    let mut wrong = fake.backend("alice", "b");
    wrong.token = "wrong-secret-token-777".into();
    errors.push(
        client_with(&wrong, http(), RetryPolicy::quick())
            .mark_unplayed(&fake.id(MOVIE))
            .await
            .unwrap_err(),
    );

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut gone = fake.backend("alice", "b");
    gone.url = format!("http://127.0.0.1:{closed}");
    let e = client_with(&gone, http(), RetryPolicy::quick())
        .identity()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    assert!(e.retryable());
    errors.push(e);

    // A bad URL and (Jellyfin/Emby) a missing user id.
    let mut bad = fake.backend("alice", "b");
    bad.url = format!("not a url {token}");
    errors.push(
        client_with(&bad, http(), RetryPolicy::quick())
            .identity()
            .await
            .unwrap_err(),
    );
    if kind != BackendKind::Plex {
        let mut no_user = fake.backend("alice", "b");
        no_user.user_id = None;
        let e = client_with(&no_user, http(), RetryPolicy::quick())
            .item("x")
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::NotConfigured(_)), "{e:?}");
        errors.push(e);
    }

    // The clients' own Debug output.
    let backend = fake.backend("alice", "b");
    let debug = match kind {
        BackendKind::Plex => format!(
            "{:?}",
            watchstate::adapters::media::plex::client::PlexClient::new(
                &backend,
                http(),
                RetryPolicy::quick()
            )
        ),
        BackendKind::Jellyfin => format!(
            "{:?}",
            watchstate::adapters::media::jellyfin::client::new(
                &backend,
                http(),
                RetryPolicy::quick()
            )
        ),
        BackendKind::Emby => format!(
            "{:?}",
            watchstate::adapters::media::emby::client::new(&backend, http(), RetryPolicy::quick())
        ),
    };
    assert!(debug.contains("redacted"), "{debug}");
    assert!(!debug.contains(&token), "{kind}: token in {debug}");

    for e in &errors {
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(&token), "{kind}: token in {shown}");
            assert!(
                !shown.contains("wrong-secret-token-777"),
                "{kind}: token in {shown}"
            );
        }
    }
}

/// Walk a whole library, carrying each cursor through JSON as an import event would.
async fn walk(c: &dyn MediaClient, limit: u32) -> (Vec<RemoteItem>, Vec<LibraryPage>) {
    let mut request = PageRequest::first(limit);
    let mut items = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..1000 {
        let page = c.library_page(&request).await.expect("page");
        items.extend(page.items.iter().cloned());
        let next = page.next.clone();
        pages.push(page);
        match next {
            Some(n) => {
                let carried = serde_json::to_string(&n).unwrap();
                request = serde_json::from_str(&carried).unwrap();
            }
            None => return (items, pages),
        }
    }
    panic!("library walk did not end");
}

async fn library_pages_cover_everything(kind: BackendKind) {
    const N: usize = 45;
    let fake = FakeServer::with_generated(kind, N).await;
    let c = client(&fake);
    let (items, pages) = walk(c.as_ref(), 10).await;

    assert_eq!(items.len(), N, "{kind}: every item once");
    let ids: BTreeSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), N, "no duplicates");
    assert!(pages.iter().all(|p| p.items.len() <= 10));

    for i in 0..N as u64 {
        let id = fake.id(fake::GENERATED_BASE + i);
        let r = items.iter().find(|r| r.id == id).expect("generated item");
        assert_eq!(r.watched, i % 3 == 0, "{kind} item {i}");
        let progress = (i % 3 != 0 && i % 5 == 1).then_some(600_000);
        assert_eq!(r.progress_ms, progress, "{kind} item {i}");
        if i % 2 == 0 {
            assert_eq!(r.kind, ItemType::Movie);
            assert_eq!(
                r.guids.get("imdb").cloned(),
                Some(format!("tt{}", 9_000_000 + i))
            );
            assert!(r.series_guids.is_empty());
        } else {
            assert_eq!(r.kind, ItemType::Episode);
            assert_eq!(
                r.guids.get("tvdb").cloned(),
                Some((7_000_000 + i).to_string())
            );
            let s = i / 20;
            assert_eq!(
                r.series_guids.get("tvdb").cloned(),
                Some((800_000 + s).to_string()),
                "{kind} episode {i} gets its series' guids"
            );
            assert_eq!(r.series_title, Some(format!("Generated Show {s}")));
            assert!(r.season.is_some() && r.episode.is_some());
        }
    }

    match kind {
        BackendKind::Plex => {
            let shows: Vec<_> = fake
                .calls_matching("GET", "/library/sections/2/all")
                .into_iter()
                .filter(|c| c.q("type") == Some("2"))
                .collect();
            assert_eq!(shows.len(), 1, "show guids fetched once");
            let eps: Vec<_> = fake
                .calls_matching("GET", "/library/sections/2/all")
                .into_iter()
                .filter(|c| c.q("type") == Some("4"))
                .collect();
            assert!(eps.len() >= 3, "episodes paged");
            assert_eq!(eps[1].header("x-plex-container-start"), Some("10"));
            assert_eq!(eps[1].header("x-plex-container-size"), Some("10"));
            assert_eq!(eps[1].q("includeGuids"), Some("1"));
            assert!(
                fake.calls_matching("GET", "/library/sections/3").is_empty(),
                "music skipped"
            );
            // Pages never cross a section; movies come first.
            assert_eq!(pages[0].total, Some(23));
        }
        _ => {
            let lists: Vec<_> = fake
                .calls_matching("GET", &format!("{}/Items", users(&fake)))
                .into_iter()
                .filter(|c| c.q("IncludeItemTypes") == Some("Movie,Episode"))
                .collect();
            assert_eq!(lists.len(), 5);
            assert_eq!(lists[1].q("StartIndex"), Some("10"));
            assert_eq!(lists[1].q("Limit"), Some("10"));
            assert_eq!(lists[1].q("Recursive"), Some("true"));
            assert_eq!(lists[1].q("Fields"), Some("ProviderIds,DateCreated,Path"));
            assert_eq!(lists[1].q("EnableUserData"), Some("true"));
            assert_eq!(lists[1].q("EnableImages"), Some("false"));
            assert_eq!(pages[0].total, Some(N as u64));
            let series: Vec<_> = fake
                .calls_matching("GET", &format!("{}/Items", users(&fake)))
                .into_iter()
                .filter(|c| c.q("IncludeItemTypes") == Some("Series"))
                .collect();
            assert_eq!(series.len(), 1, "series guids fetched once");
        }
    }
}

async fn library_resumes_from_a_carried_cursor(kind: BackendKind) {
    let fake = FakeServer::with_generated(kind, 30).await;
    let first = client(&fake)
        .library_page(&PageRequest::first(7))
        .await
        .unwrap();
    let next = first.next.clone().expect("more");
    let carried: PageRequest =
        serde_json::from_value(serde_json::to_value(&next).unwrap()).unwrap();
    // Another invocation: a new client resumes where the first stopped.
    let other = client(&fake);
    let mut ids: Vec<String> = first.items.iter().map(|i| i.id.clone()).collect();
    let mut request = carried;
    loop {
        let page = other.library_page(&request).await.unwrap();
        ids.extend(page.items.iter().map(|i| i.id.clone()));
        match page.next {
            Some(n) => request = n,
            None => break,
        }
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 30);
    assert_eq!(unique.len(), 30);
}

// ---------------------------------------------------------------------------------
// Echo webhooks: a receiver that records what it gets.
// ---------------------------------------------------------------------------------

type Received = Arc<Mutex<Vec<(Option<String>, Option<String>, Vec<u8>)>>>;

async fn receiver() -> (String, Received, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Received = Arc::default();
    let seen = got.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        };
                        let (ct, ua) = (header("content-type"), header("user-agent"));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen.lock().unwrap().push((ct, ua, body.to_vec()));
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"{}",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/webhook/echo"), got, task)
}

/// Parse a received echo with the real webhook code.
async fn parse_echo(ct: Option<&str>, ua: Option<&str>, body: &[u8]) -> Parsed {
    let payload = watchstate::adapters::media::unwrap_transport(ct, body)
        .await
        .expect("transport");
    let source = watchstate::adapters::media::source_of(ua, &payload.json).expect("source");
    watchstate::adapters::media::parse(source, &payload.json, Utc::now()).expect("parse")
}

async fn echo_webhook_is_what_the_server_sends(kind: BackendKind) {
    let fake = FakeServer::with_sample(kind).await;
    let (url, got, _task) = receiver().await;
    fake.set_echo(Some(&url));
    let c = client(&fake);
    let movie = fake.id(MOVIE);
    c.mark_played(&movie, Some(t(2024, 3, 4, 5, 6, 7)))
        .await
        .unwrap();
    c.mark_unplayed(&movie).await.unwrap();

    if kind == BackendKind::Plex {
        // Plex sends nothing for API (un)scrobbles...
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(got.lock().unwrap().is_empty());
        assert!(fake.echoes().is_empty());
        // ...unless asked to.
        fake.set_plex_scrobble_echo(true);
        c.mark_played(&movie, Some(t(2024, 3, 4, 5, 6, 7)))
            .await
            .unwrap();
    }
    let expected = if kind == BackendKind::Plex { 1 } else { 2 };
    let echoes = fake.wait_echoes(expected, Duration::from_secs(5)).await;
    assert_eq!(echoes.len(), expected, "{echoes:?}");
    assert!(echoes
        .iter()
        .all(|e| e.status == Some(200) && e.item_id == movie));

    let received = got.lock().unwrap().clone();
    let mut actions = Vec::new();
    for (ct, ua, body) in &received {
        match parse_echo(ct.as_deref(), ua.as_deref(), body).await {
            Parsed::Event(ev) => {
                let want = match kind {
                    BackendKind::Plex => Source::Plex,
                    BackendKind::Jellyfin => Source::Jellyfin,
                    BackendKind::Emby => Source::Emby,
                };
                assert_eq!(ev.source, want);
                assert_eq!(ev.item.as_ref().unwrap().backend_item_id, movie);
                assert_eq!(ev.server_id.as_deref(), Some(fake.server_id().as_str()));
                assert_eq!(
                    ev.item
                        .as_ref()
                        .unwrap()
                        .guids
                        .get("imdb")
                        .map(String::as_str),
                    Some("tt0111161")
                );
                actions.push(ev.action);
            }
            other => panic!("{kind}: echo not understood: {other:?}"),
        }
    }
    match kind {
        BackendKind::Plex => assert_eq!(actions, [Action::Played]),
        _ => assert_eq!(actions, [Action::Played, Action::Unplayed]),
    }
}

#[tokio::test]
async fn plex_episodes_with_legacy_agent_guids_match_by_series_and_numbers() {
    // The shapes of tests/fixtures/api/plex/tv_*-plexapirs.json: legacy thetvdb agent.
    let fake = FakeServer::start(BackendKind::Plex).await;
    let show = FakeItem::series("22", "The 100", 2014)
        .legacy_guid("com.plexapp.agents.thetvdb://268592?lang=en");
    fake.add(
        FakeItem::episode("91", &show, 1, 2, "Earth Skills")
            .legacy_guid("com.plexapp.agents.thetvdb://268592/1/2?lang=en"),
    );
    fake.add(show);
    let c = client(&fake);
    let r = c.item("91").await.unwrap().unwrap();
    assert!(r.guids.is_empty());
    assert_eq!(r.series_guids, guids(&[("tvdb", "268592")]));
    assert_eq!((r.season, r.episode), (Some(1), Some(2)));

    let item = Item {
        series_title: Some("The 100".into()),
        season: Some(1),
        episode: Some(2),
        series_guids: guids(&[("tvdb", "268592")]),
        ..stored(ItemType::Episode)
    };
    assert_eq!(
        c.find(&item).await.unwrap().map(|r| r.id),
        Some("91".into())
    );

    let (items, _) = walk(c.as_ref(), 50).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].series_guids, guids(&[("tvdb", "268592")]));
}

#[tokio::test]
async fn fakes_check_tokens_on_every_route() {
    for kind in KINDS {
        let fake = FakeServer::with_sample(kind).await;
        let http = e2e::http_client();
        let path = match kind {
            BackendKind::Plex => "/library/sections".to_string(),
            _ => format!("{}/Items", users(&fake)),
        };
        let r = http
            .get(format!("{}{path}", fake.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{kind}");
        assert_eq!(fake.calls().len(), 1, "recorded even when refused");
    }
}

/// A large library through the fakes (the import budget of docs/PERFORMANCE.md needs this to be
/// cheap): `WATCHSTATE_FAKE_ITEMS=100000 cargo test -p e2e --release --test clients -- --ignored`.
#[tokio::test]
#[ignore]
async fn large_library_walk() {
    let n: usize = std::env::var("WATCHSTATE_FAKE_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for kind in KINDS {
        let started = std::time::Instant::now();
        let fake = FakeServer::with_generated(kind, n).await;
        let (items, pages) = walk(client(&fake).as_ref(), 500).await;
        assert_eq!(items.len(), n, "{kind}");
        eprintln!(
            "{kind}: {n} items in {} pages, {:?}",
            pages.len(),
            started.elapsed()
        );
    }
}

/// An import pages hundreds of times: the Plex client lists the sections once.
#[tokio::test]
async fn plex_lists_its_sections_once_per_walk() {
    let fake = FakeServer::with_generated(BackendKind::Plex, 1_000).await;
    let (items, pages) = walk(client(&fake).as_ref(), 100).await;
    assert_eq!(items.len(), 1_000);
    assert!(pages.len() >= 10, "{} pages", pages.len());
    let listings = fake
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path == "/library/sections")
        .count();
    assert_eq!(listings, 1);
}
