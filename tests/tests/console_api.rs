//! The api routes the console stands on, over HTTP against the fake media servers:
//! the page itself (with its safety headers), a backend's server accounts, a person's
//! "mark played / unplayed" stored and pushed like any change, and the diagnosis.

use std::sync::Arc;
use std::time::Duration;

use e2e::fake::{FakeServer, MOVIE};
use e2e::serve::{serve, Served};
use e2e::{fixture, wire, Transport};
use serde_json::{json, Value};
use watchstate::adapters::local_bus::LocalBus;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::push::{LocalPush, Pusher};
use watchstate::app::tasks::{Deps, Tasks};
use watchstate::domain::model::BackendKind;
use watchstate::domain::token::TokenSecret;
use watchstate::inbound::http::api::ApiService;
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::ports::store::Store;

const KEY: &str = "console-admin-key";

struct House {
    plex: FakeServer,
    jf: FakeServer,
    served: Served,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl House {
    /// Ana with a Plex and a Jellyfin backend (import and export on), both imported.
    async fn new() -> House {
        let plex = FakeServer::with_sample(BackendKind::Plex).await;
        let jf = FakeServer::with_sample(BackendKind::Jellyfin).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("w.db")).expect("store"));
        let clients = Arc::new(HttpClients {
            http: http_client_with(Duration::from_millis(500), Duration::from_secs(5)),
            retry: RetryPolicy::quick(),
        });
        let bus = Arc::new(LocalBus::new(Arc::new(LocalPush(Pusher {
            store: store.clone(),
            clients: clients.clone(),
        }))));
        let deps = Deps {
            store: store.clone(),
            clients,
            bus: Some(bus.clone()),
        };
        let api = ApiService {
            store: store.clone(),
            admin_key: KEY.into(),
            token_secret: TokenSecret::new("console-secret"),
            tasks: Some(Arc::new(Tasks::new(deps))),
            bus: Some(bus.clone()),
            url_rules: Default::default(),
        };
        let webhook = WebhookService {
            store,
            bus: Some(bus),
        };
        let h = House {
            served: serve(webhook, api).await,
            plex,
            jf,
            http: e2e::http_client(),
            _dir: dir,
        };
        assert_eq!(h.api("PUT", "/v1/users/ana", None).await.0, 201);
        for (name, fake) in [("plex", &h.plex), ("jellyfin", &h.jf)] {
            let mut body = fake.backend_body();
            body["import"] = json!({"enabled": true});
            body["export"] = json!({"enabled": true});
            let (s, v) = h
                .api("PUT", &format!("/v1/users/ana/backends/{name}"), Some(body))
                .await;
            assert_eq!(s, 201, "{v}");
        }
        h
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.parse().expect("method"), self.served.url(path))
            .bearer_auth(KEY);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.expect("api");
        let s = resp.status().as_u16();
        (s, resp.json().await.expect("JSON"))
    }

    async fn movie(&self) -> Value {
        let (s, v) = self
            .api("GET", "/v1/users/ana/items?guid=imdb:tt0111161", None)
            .await;
        assert_eq!(s, 200, "{v}");
        v["items"][0].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_played_from_the_console_is_stored_and_pushed_to_every_server() {
    let h = House::new().await;
    let (s, v) = h
        .api("POST", "/v1/tasks/import", Some(json!({"user": "ana"})))
        .await;
    assert_eq!(s, 200, "{v}");
    let movie = h.movie().await;
    assert_eq!(movie["watched"], false, "{movie}");
    let id = movie["id"].as_str().expect("id").to_string();
    h.plex.clear_calls();
    h.jf.clear_calls();

    let before = chrono::Utc::now();
    let (s, v) = h
        .api("POST", &format!("/v1/users/ana/items/{id}/played"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["changed"], &v["pushed"]),
        (&json!(true), &json!(true)),
        "{v}"
    );
    let item = &v["item"];
    assert_eq!(
        (&item["watched"], &item["via"]),
        (&json!(true), &json!("console"))
    );
    let stamp: chrono::DateTime<chrono::Utc> = item["state_updated_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("stamp");
    // A real current time (to the second), not the "never" stamp or an event's time.
    assert!(stamp >= before - chrono::Duration::seconds(1), "{stamp}");
    assert_eq!(item["backends"]["plex"]["watched"], true, "{item}");
    assert_eq!(item["backends"]["jellyfin"]["watched"], true, "{item}");

    // Both servers were told, and now show it played.
    let scrobbles = h.plex.calls_matching("GET", "/:/scrobble");
    assert_eq!(scrobbles.len(), 1, "{:?}", h.plex.calls());
    assert_eq!(scrobbles[0].q("key"), Some(h.plex.id(MOVIE).as_str()));
    assert!(h.plex.state(&h.plex.id(MOVIE)).played);
    let jf_path = format!("/Users/{}/PlayedItems/{}", h.jf.user_id(), h.jf.id(MOVIE));
    assert_eq!(
        h.jf.calls_matching("POST", &jf_path).len(),
        1,
        "{:?}",
        h.jf.calls()
    );
    assert!(h.jf.state(&h.jf.id(MOVIE)).played);

    // The same again changes nothing and calls nobody.
    h.plex.clear_calls();
    h.jf.clear_calls();
    let (s, v) = h
        .api("POST", &format!("/v1/users/ana/items/{id}/played"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (&v["changed"], &v["reason"]),
        (&json!(false), &json!("same state")),
        "{v}"
    );
    assert!(h.plex.calls_matching("GET", "/:/").is_empty());
    assert!(h.jf.calls_matching("POST", "/Users/").is_empty());

    // Unplayed travels the same way (a second later: stamps must be strictly newer).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = h
        .api("POST", &format!("/v1/users/ana/items/{id}/unplayed"), None)
        .await;
    assert_eq!((s, &v["changed"]), (200, &json!(true)), "{v}");
    assert_eq!(h.plex.calls_matching("GET", "/:/unscrobble").len(), 1);
    assert_eq!(h.jf.calls_matching("DELETE", &jf_path).len(), 1);
    assert!(!h.plex.state(&h.plex.id(MOVIE)).played);
    assert!(!h.jf.state(&h.jf.id(MOVIE)).played);

    let (s, v) = h
        .api("POST", "/v1/users/ana/items/no-such-item/played", None)
        .await;
    assert_eq!((s, &v["error"]["code"]), (404, &json!("not_found")), "{v}");
    let (s, _) = h
        .api("GET", &format!("/v1/users/ana/items/{id}/played"), None)
        .await;
    assert_eq!(s, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_of_a_backends_server() {
    let h = House::new().await;
    h.plex.add_account("23456789", "Ben");
    let (s, v) = h
        .api("GET", "/v1/users/ana/backends/plex/accounts", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["accounts"],
        json!([{"id": "1", "name": "owner"}, {"id": "23456789", "name": "Ben"}])
    );
    let (s, v) = h
        .api("GET", "/v1/users/ana/backends/jellyfin/accounts", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["accounts"],
        json!([{"id": h.jf.user_id(), "name": "owner"}])
    );

    // Without url and token there is nobody to ask; with a refused token, say so.
    h.api(
        "PUT",
        "/v1/users/ana/backends/hook-only",
        Some(json!({"type": "emby"})),
    )
    .await;
    let (s, v) = h
        .api("GET", "/v1/users/ana/backends/hook-only/accounts", None)
        .await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (400, &json!("bad_request")),
        "{v}"
    );
    let mut body = h.plex.backend_body();
    body["token"] = json!("someone-elses-token");
    h.api("PUT", "/v1/users/ana/backends/plex2", Some(body))
        .await;
    let (s, v) = h
        .api("GET", "/v1/users/ana/backends/plex2/accounts", None)
        .await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (502, &json!("backend_failed")),
        "{v}"
    );
    assert!(!v.to_string().contains("someone-elses-token"));
    let (s, _) = h
        .api("GET", "/v1/users/ana/backends/nope/accounts", None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnosis_names_other_accounts_and_servers_seen() {
    let h = House::new().await;
    let (s, v) = h.api("GET", "/v1/users/ana/diagnosis", None).await;
    assert_eq!(s, 200, "{v}");
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["never_delivered", "never_delivered"], "{v}");

    // A real Plex scrobble, about account 777 on another server, on Ana's Plex URL.
    let (_, b) = h.api("GET", "/v1/users/ana/backends/plex", None).await;
    let url = b["webhook_url"].as_str().expect("url").to_string();
    let mut payload: Value = serde_json::from_slice(&fixture(
        "webhooks/plex/media.scrobble-movie-plexguid-movary.json",
    ))
    .expect("fixture");
    payload["Account"]["id"] = json!(777);
    let w = wire(
        Transport::PlexMultipart,
        payload.to_string().as_bytes(),
        "PlexMediaServer/1.41.3.9314",
    );
    let mut r = h.http.post(&url).body(w.body);
    for (k, v) in w.headers {
        r = r.header(k, v);
    }
    assert_eq!(r.send().await.expect("webhook").status(), 200);

    let (_, v) = h.api("GET", "/v1/users/ana/diagnosis", None).await;
    let findings = v["findings"].as_array().expect("findings");
    let of = |kind: &str| findings.iter().find(|f| f["kind"] == kind).cloned();
    let other = of("other_accounts").expect("other accounts");
    assert_eq!(
        (&other["backend"], &other["ids"]),
        (&json!("plex"), &json!(["777"]))
    );
    assert!(
        other["message"]
            .as_str()
            .unwrap_or("")
            .contains("Match user"),
        "{other}"
    );
    let server = of("other_server").expect("other server");
    assert_eq!(
        server["ids"],
        json!(["27a04b118b1bf1f25f8e99306785453623e18b67"])
    );
    // Plex now has a delivery; Jellyfin still has none.
    assert_eq!(
        of("never_delivered").expect("jellyfin")["backend"],
        "jellyfin"
    );
}

#[tokio::test]
async fn the_console_page_is_served_with_its_safety_headers() {
    let h = House::new().await;
    let r = h.http.get(h.served.url("/")).send().await.expect("page");
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = r.text().await.expect("html");
    assert!(page.contains("<label for=\"admin-key\">Admin key</label>"));
    let js = h
        .http
        .get(h.served.url("/console/app.js"))
        .send()
        .await
        .expect("js");
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // The page is public; the api behind it is not.
    let r = h
        .http
        .get(h.served.url("/v1/users"))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 401);
}

/// A person added from a Jellyfin server's accounts reuses the server's API key that
/// another backend on that server holds (`token_from`): the key never leaves the
/// store, and import and push then act for the new person's user id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_from_a_jellyfin_account_reuses_the_servers_api_key() {
    let h = House::new().await;
    const BEN: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
    h.jf.add_account(BEN, "Ben");
    assert_eq!(h.api("PUT", "/v1/users/ben", None).await.0, 201);
    let body = json!({
        "type": "jellyfin", "url": h.jf.url(), "server_id": h.jf.server_id(), "user_id": BEN,
        "token_from": {"user": "ana", "backend": "jellyfin"},
        "options": {"match_user": true},
        "import": {"enabled": true}, "export": {"enabled": true},
    });
    let (s, v) = h
        .api("PUT", "/v1/users/ben/backends/jellyfin", Some(body.clone()))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["has_token"], true, "{v}");
    assert!(!v.to_string().contains(h.jf.token()), "{v}");

    // Ben's import reads Ben's library state: the movie Ben never watched.
    let (s, v) = h
        .api(
            "POST",
            "/v1/tasks/import",
            Some(json!({"user": "ben", "backend": "jellyfin"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let read_as_ben = h.jf.calls_matching("GET", &format!("/Users/{BEN}/Items"));
    assert!(!read_as_ben.is_empty(), "{:?}", h.jf.calls());
    let (_, v) = h
        .api("GET", "/v1/users/ben/items?guid=imdb:tt0111161", None)
        .await;
    let movie = v["items"][0].clone();
    assert_eq!(movie["watched"], false, "{v}");
    let id = movie["id"].as_str().expect("id").to_string();

    // Marked played for Ben: pushed with the reused key to Ben's user id, not Ana's.
    h.jf.clear_calls();
    let (s, v) = h
        .api("POST", &format!("/v1/users/ben/items/{id}/played"), None)
        .await;
    assert_eq!((s, &v["pushed"]), (200, &json!(true)), "{v}");
    let path = format!("/Users/{BEN}/PlayedItems/{}", h.jf.id(MOVIE));
    assert_eq!(
        h.jf.calls_matching("POST", &path).len(),
        1,
        "{:?}",
        h.jf.calls()
    );
    assert!(h.jf.state_of(BEN, &h.jf.id(MOVIE)).played);
    assert!(
        !h.jf.state(&h.jf.id(MOVIE)).played,
        "Ana's state is untouched"
    );

    // Only for the same server, only from a backend that exists, never with a token too.
    let mut elsewhere = body.clone();
    elsewhere["url"] = json!("http://127.0.0.1:9");
    let (s, v) = h
        .api("PUT", "/v1/users/ben/backends/other", Some(elsewhere))
        .await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (400, &json!("bad_request")),
        "{v}"
    );
    assert!(!v.to_string().contains(h.jf.token()), "{v}");
    let mut unknown = body.clone();
    unknown["token_from"] = json!({"user": "ana", "backend": "nope"});
    let (s, v) = h
        .api("PUT", "/v1/users/ben/backends/other", Some(unknown))
        .await;
    assert_eq!(s, 404, "{v}");
    let mut both = body.clone();
    both["token"] = json!("x");
    let (s, v) = h
        .api("PUT", "/v1/users/ben/backends/other", Some(both))
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = h.api("GET", "/v1/users/ben/backends/other", None).await;
    assert_eq!(s, 404, "nothing was saved by a refused PUT: {v}");
}

/// A Plex token is one account's own: reusing the owner's for another account would
/// mark the owner's items, so the api refuses and says what to give instead. With the
/// account's own token, push acts as that account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_from_a_plex_account_needs_that_accounts_own_token() {
    let h = House::new().await;
    const BEN: &str = "23456789";
    h.plex.add_user("bens-own-plex-token", BEN);
    assert_eq!(h.api("PUT", "/v1/users/ben", None).await.0, 201);
    let mut body = json!({
        "type": "plex", "url": h.plex.url(), "server_id": h.plex.server_id(), "user_id": BEN,
        "token_from": {"user": "ana", "backend": "plex"},
        "options": {"match_user": true},
        "import": {"enabled": true}, "export": {"enabled": true},
    });
    let (s, v) = h
        .api("PUT", "/v1/users/ben/backends/plex", Some(body.clone()))
        .await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (400, &json!("bad_request")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Plex-Token")),
        "{v}"
    );

    body.as_object_mut().expect("object").remove("token_from");
    body["token"] = json!("bens-own-plex-token");
    let (s, v) = h
        .api("PUT", "/v1/users/ben/backends/plex?verify=true", Some(body))
        .await;
    assert_eq!((s, &v["has_token"]), (201, &json!(true)), "{v}");
    let (s, v) = h
        .api("POST", "/v1/tasks/import", Some(json!({"user": "ben"})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = h
        .api("GET", "/v1/users/ben/items?guid=imdb:tt0111161", None)
        .await;
    let id = v["items"][0]["id"].as_str().expect("id").to_string();
    h.plex.clear_calls();
    let (s, v) = h
        .api("POST", &format!("/v1/users/ben/items/{id}/played"), None)
        .await;
    assert_eq!((s, &v["pushed"]), (200, &json!(true)), "{v}");
    let scrobbles = h.plex.calls_matching("GET", "/:/scrobble");
    assert_eq!(scrobbles.len(), 1, "{:?}", h.plex.calls());
    assert_eq!(
        scrobbles[0].header("x-plex-token"),
        Some("bens-own-plex-token")
    );
    assert!(h.plex.state_of(BEN, &h.plex.id(MOVIE)).played);
    assert!(
        !h.plex.state(&h.plex.id(MOVIE)).played,
        "Ana's state is untouched"
    );
}

/// "Show payload" reads one delivery, with its body, not the whole log again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delivery_with_its_payload() {
    let h = House::new().await;
    let (_, b) = h.api("GET", "/v1/users/ana/backends/plex", None).await;
    let url = b["webhook_url"].as_str().expect("url").to_string();
    let payload = fixture("webhooks/plex/media.scrobble-movie-plexguid-movary.json");
    let w = wire(
        Transport::PlexMultipart,
        &payload,
        "PlexMediaServer/1.41.3.9314",
    );
    let mut r = h.http.post(&url).body(w.body);
    for (k, v) in w.headers {
        r = r.header(k, v);
    }
    assert_eq!(r.send().await.expect("webhook").status(), 200);

    let (_, v) = h.api("GET", "/v1/users/ana/deliveries?limit=5", None).await;
    let listed = v["deliveries"][0].clone();
    assert!(
        listed.get("body").is_none(),
        "the list has no bodies: {listed}"
    );
    let id = listed["id"].as_str().expect("id");
    let (s, one) = h
        .api("GET", &format!("/v1/users/ana/deliveries/{id}"), None)
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(
        (&one["id"], &one["status"]),
        (&listed["id"], &json!("stored"))
    );
    let body: Value =
        serde_json::from_str(one["body"].as_str().expect("body")).expect("body is the JSON");
    assert_eq!(body["event"], "media.scrobble");
    assert_eq!(one["body_truncated"], false);

    // Another person's log, or an id never seen: not found.
    assert_eq!(h.api("PUT", "/v1/users/ben", None).await.0, 201);
    let (s, v) = h
        .api("GET", &format!("/v1/users/ben/deliveries/{id}"), None)
        .await;
    assert_eq!((s, &v["error"]["code"]), (404, &json!("not_found")), "{v}");
    let (s, _) = h
        .api("GET", "/v1/users/ana/deliveries/no-such-delivery", None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = h
        .api("DELETE", &format!("/v1/users/ana/deliveries/{id}"), None)
        .await;
    assert_eq!(s, 405);
}
