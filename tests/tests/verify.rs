//! `PUT .../backends/{name}?verify=true` checks url, token and server id against the
//! media server (a fake built from the real shapes) and answers a clear 4xx.

use e2e::fake::FakeServer;
use e2e::{free_port_url, Local};
use serde_json::{json, Value};
use watchstate::domain::model::BackendKind;

async fn put(l: &Local, body: Value) -> (u16, Value) {
    l.api("PUT", "/v1/users/ana/backends/b?verify=true", Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_a_right_backend_and_names_what_is_wrong() {
    for kind in [BackendKind::Plex, BackendKind::Jellyfin, BackendKind::Emby] {
        let fake = FakeServer::with_sample(kind).await;
        let l = Local::new();
        l.api("PUT", "/v1/users/ana", None).await;

        // Right: accepted, and a missing server id is filled in from the server.
        let mut body = fake.backend_body();
        body.as_object_mut().map(|o| o.remove("server_id"));
        let (s, v) = put(&l, body).await;
        assert_eq!(s, 201, "{kind}: {v}");
        assert_eq!(v["server_id"], json!(fake.server_id()), "{kind}");

        let mut wrong_token = fake.backend_body();
        wrong_token["token"] = json!("not-the-token");
        let (s, v) = put(&l, wrong_token).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("verify_failed")),
            "{kind}: {v}"
        );
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("token"), "{kind}: {msg}");
        assert!(!msg.contains("not-the-token"), "the token is never echoed");

        let mut wrong_server = fake.backend_body();
        wrong_server["server_id"] = json!("another-server");
        let (s, v) = put(&l, wrong_server).await;
        assert_eq!(s, 400, "{kind}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("another-server"));

        let mut nowhere = fake.backend_body();
        nowhere["url"] = json!(free_port_url());
        let (s, v) = put(&l, nowhere).await;
        assert_eq!(s, 400, "{kind}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("cannot reach"),
            "{v}"
        );

        // Nothing failed verification was stored: the first, good one is what is kept.
        let (_, got) = l.api("GET", "/v1/users/ana/backends/b", None).await;
        assert_eq!(got["server_id"], json!(fake.server_id()));
        assert_eq!(got["url"], json!(fake.url()));
    }
}
