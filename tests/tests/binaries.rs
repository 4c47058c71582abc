//! The real function binaries under `cargo lambda watch`, driven over HTTP as a user
//! and the media servers would: create a user and backends through the api, POST each
//! server's real payload over its real transport to the returned `webhook_url`, read
//! the item back; then `cargo lambda invoke` every sample event under `events/`.

use std::process::Command;

use e2e::emulator::{workspace_root, Emulator};
use e2e::{fixture, wire, Transport};
use serde_json::{json, Value};

struct Client {
    http: reqwest::Client,
    emu: Emulator,
}

impl Client {
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, self.emu.url(&format!("/lambda-url/api{path}")))
            .bearer_auth(&self.emu.admin_key);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.expect("api request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("api JSON"))
    }

    async fn backend(&self, user: &str, name: &str, body: Value) -> Value {
        let (s, v) = self
            .api(
                reqwest::Method::PUT,
                &format!("/v1/users/{user}/backends/{name}"),
                Some(body),
            )
            .await;
        assert!(s == 200 || s == 201, "{s} {v}");
        v
    }

    async fn post(&self, url: &str, transport: Transport, json: &[u8], ua: &str) -> (u16, Value) {
        let w = wire(transport, json, ua);
        let method = reqwest::Method::from_bytes(w.method.as_bytes()).expect("method");
        let mut r = self.http.request(method, url).body(w.body);
        for (k, v) in w.headers {
            r = r.header(k, v);
        }
        let resp = r.send().await.expect("webhook request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("webhook JSON"))
    }

    async fn item(&self, user: &str, guid: &str) -> Value {
        let (s, v) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/users/{user}/items?guid={guid}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let items = v["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 1, "one item for {guid}: {v}");
        items[0].clone()
    }
}

fn invoke(emu: &Emulator, function: &str, event: &str) -> Value {
    invoke_on(emu.port, function, event, &emu.log_text())
}

fn invoke_on(port: u16, function: &str, event: &str, log: &str) -> Value {
    let out = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--data-file",
            event,
            "--output-format",
            "json",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo lambda invoke");
    assert!(
        out.status.success(),
        "invoke {event}: {}\n{log}",
        String::from_utf8_lossy(&out.stderr),
    );
    serde_json::from_slice(&out.stdout).expect("invoke prints the function's JSON response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_through_the_real_binaries_on_the_embedded_store() {
    flow(vec![]).await;
}

/// `make run STORE=dynamodb`: the same flow with the functions on DynamoDB (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_through_the_real_binaries_on_dynamodb() {
    let moto = e2e::moto::Moto::start();
    let conf = aws_sdk_dynamodb::Config::builder()
        .http_client(watchstate::inbound::config::sdk_http_client())
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "e2e",
        ))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    watchstate::adapters::store::dynamo::create_table(&client, "watchstate-e2e")
        .await
        .expect("table");
    flow(vec![
        ("TABLE_NAME", "watchstate-e2e".into()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ])
    .await;
    // The items really are in the table, not in a SQLite file.
    let scan = client
        .scan()
        .table_name("watchstate-e2e")
        .send()
        .await
        .expect("scan");
    assert!(
        scan.count() > 10,
        "items, keys and deliveries live in DynamoDB"
    );
}

async fn flow(mut env: Vec<(&'static str, String)>) {
    // The sample events carry tokens made with the local secret `make run` uses.
    env.push(("WATCHSTATE_TOKEN_SECRET", "watchstate-local".into()));
    let emu = Emulator::start(&env).await;
    let c = Client {
        http: e2e::http_client(),
        emu,
    };
    let (s, _) = c.api(reqwest::Method::PUT, "/v1/users/ana", None).await;
    assert_eq!(s, 201);

    // Plex: multipart with the JPEG thumb, to the URL exactly as the api returned it.
    let plex = c
        .backend(
            "ana",
            "plex",
            json!({"type": "plex", "url": "http://plex.invalid:32400", "token": "t"}),
        )
        .await;
    let url = plex["webhook_url"].as_str().expect("webhook_url");
    let prefix = format!(
        "http://127.0.0.1:{}/lambda-url/webhook/webhook/wst_",
        c.emu.port
    );
    assert!(url.starts_with(&prefix), "{url}");
    // Reached by another address (`make run HOST=0.0.0.0`, from the LAN), the api hands
    // out webhook URLs on that address, so a media server on another machine can use them.
    let lan = c
        .http
        .get(c.emu.url("/lambda-url/api/v1/users/ana/backends/plex"))
        .header("host", format!("192.168.1.50:{}", c.emu.port))
        .bearer_auth(&c.emu.admin_key)
        .send()
        .await
        .expect("api by LAN address")
        .json::<Value>()
        .await
        .expect("JSON");
    let lan_url = lan["webhook_url"].as_str().expect("webhook_url");
    assert_eq!(
        lan_url.replace(
            &format!("192.168.1.50:{}", c.emu.port),
            &format!("127.0.0.1:{}", c.emu.port)
        ),
        url,
        "same token, the address asked"
    );
    // The console, at the api function's root.
    for path in ["/lambda-url/api/", "/lambda-url/api/console/app.js"] {
        let r = c.http.get(c.emu.url(path)).send().await.expect("console");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
        assert!(
            r.headers().contains_key("content-security-policy"),
            "{path}"
        );
    }
    let scrobble = fixture("webhooks/plex/media.scrobble-movie-plexguid-movary.json");
    let (s, v) = c
        .post(
            url,
            Transport::PlexMultipart,
            &scrobble,
            "PlexMediaServer/1.30.0.6486",
        )
        .await;
    assert_eq!(
        (s, &v["status"], &v["changed"]),
        (200, &json!("stored"), &json!(true)),
        "{v}"
    );
    let item = c.item("ana", "imdb:tt0090728").await;
    assert_eq!(item["watched"], true);
    assert_eq!(item["via"], "plex");

    // Jellyfin (text/plain), Emby (form field `data`), Tautulli (PUT JSON).
    let jf = c
        .backend("ana", "jellyfin", json!({"type": "jellyfin"}))
        .await;
    let body = fixture("webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json");
    let (s, v) = c
        .post(
            jf["webhook_url"].as_str().expect("url"),
            Transport::JellyfinTextPlain,
            &body,
            "Jellyfin-Server/10.8.8",
        )
        .await;
    assert_eq!((s, &v["status"]), (200, &json!("stored")), "{v}");
    assert_eq!(c.item("ana", "imdb:tt9764362").await["watched"], true);

    let emby = c.backend("ana", "emby", json!({"type": "emby"})).await;
    let body = fixture("written/emby/item.markplayed-movie-4.8.json");
    let (s, v) = c
        .post(
            emby["webhook_url"].as_str().expect("url"),
            Transport::EmbyFormData,
            &body,
            "",
        )
        .await;
    assert_eq!((s, &v["status"]), (200, &json!("stored")), "{v}");
    let item = c.item("ana", "tmdb:255914").await;
    assert_eq!(
        (&item["watched"], &item["via"]),
        (&json!(true), &json!("emby"))
    );

    let body = fixture("written/tautulli/watched-episode.json");
    let (s, v) = c
        .post(url, Transport::TautulliPutJson, &body, "Tautulli/v2.14.3")
        .await;
    assert_eq!((s, &v["status"]), (200, &json!("stored")), "{v}");
    let item = c.item("ana", "tvdb:431877/1/6").await;
    assert_eq!(item["watched"], true);
    assert_eq!(item["series_guids"]["imdb"], "tt28104417");

    // The delivery log saw all four.
    let (_, log) = c
        .api(
            reqwest::Method::GET,
            "/v1/users/ana/deliveries?limit=10",
            None,
        )
        .await;
    assert_eq!(log["deliveries"].as_array().map(Vec::len), Some(4), "{log}");

    // `cargo lambda invoke` with every sample event, against the demo backends.
    let (s, _) = c.api(reqwest::Method::PUT, "/v1/users/demo", None).await;
    assert_eq!(s, 201);
    for b in ["plex", "jellyfin", "emby"] {
        c.backend(
            "demo",
            b,
            json!({"type": b, "webhook_nonce": format!("demo-{b}-nonce")}),
        )
        .await;
    }
    for event in [
        "webhook-plex-scrobble",
        "webhook-tautulli-watched",
        "webhook-jellyfin-playbackstop",
        "webhook-emby-markplayed",
    ] {
        let r = invoke(&c.emu, "webhook", &format!("events/{event}.json"));
        assert_eq!(r["statusCode"], 200, "{event}: {r}");
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap_or("")).expect("body");
        assert_eq!(body["status"], "stored", "{event}: {body}");
    }
    // The push queue's batch shape: an item nobody has is nothing to push, no failure.
    let r = invoke(&c.emu, "push", "events/push-sqs-batch.json");
    assert_eq!(r["batchItemFailures"], json!([]), "{r}");
    let r = invoke(&c.emu, "api", "events/api-health.json");
    assert_eq!(r["statusCode"], 200, "{r}");
    let r = invoke(&c.emu, "api", "events/api-list-users.json");
    assert_eq!(
        r["statusCode"], 401,
        "the sample's placeholder key is refused: {r}"
    );
    assert_eq!(c.item("demo", "imdb:tt31847206").await["watched"], true);

    // Secrets never reach the logs.
    let logs = c.emu.log_text();
    assert!(!logs.contains("wst_"), "webhook tokens must not be logged");
    assert!(
        !logs.contains(&c.emu.admin_key),
        "the admin key must not be logged"
    );
}

/// `make run` itself (`infra/local/run.sh`), in its own process group; TERM, then KILL,
/// the whole group on drop (cargo lambda watch, its functions, the [::1] forwarder).
struct MakeRun {
    child: std::process::Child,
    port: u16,
    key: String,
    _data: tempfile::TempDir,
}

impl MakeRun {
    async fn start(env: &[(&str, &str)]) -> MakeRun {
        use std::os::unix::process::CommandExt;
        let data = tempfile::tempdir().expect("tempdir");
        let port = e2e::emulator::free_port();
        let key = "make-run-key".to_string();
        let log = std::fs::File::create(data.path().join("run.log")).expect("log");
        let mut cmd = Command::new("infra/local/run.sh");
        cmd.current_dir(workspace_root())
            .env("PORT", port.to_string())
            .env("WATCHSTATE_DATA_DIR", data.path())
            .env("WATCHSTATE_ADMIN_KEY", &key)
            .env_remove("WATCHSTATE_DEMO")
            .env_remove("WATCHSTATE_TOKEN_SECRET")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = MakeRun {
            child: cmd.spawn().expect("infra/local/run.sh"),
            port,
            key,
            _data: data,
        };
        let http = e2e::http_client();
        for _ in 0..600 {
            if let Ok(r) = http.get(run.url("/v1/health")).send().await {
                if r.status().is_success() {
                    return run;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        panic!("make run did not answer:\n{}", run.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/api{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._data.path().join("run.log")).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = e2e::http_client()
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("api");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for MakeRun {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The demo person (and the sample events' flow) only with `WATCHSTATE_DEMO=1`;
/// `HOST=0.0.0.0` still answers on loopback and prints the console's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_creates_the_demo_person_only_when_asked() {
    let plain = MakeRun::start(&[]).await;
    let (s, v) = plain.get("/v1/users").await;
    assert_eq!(
        (s, &v["users"]),
        (200, &json!([])),
        "no demo person by default: {v}"
    );
    assert!(
        plain.log().contains("/lambda-url/api/"),
        "prints the console: {}",
        plain.log()
    );
    drop(plain);

    let demo = MakeRun::start(&[("WATCHSTATE_DEMO", "1"), ("HOST", "0.0.0.0")]).await;
    let mut backends = Value::Null;
    for _ in 0..120 {
        let (s, v) = demo.get("/v1/users/demo/backends").await;
        if s == 200 && v["backends"].as_array().is_some_and(|b| b.len() == 3) {
            backends = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(backends.is_object(), "demo backends:\n{}", demo.log());
    let r = invoke_on(
        demo.port,
        "webhook",
        "events/webhook-plex-scrobble.json",
        &demo.log(),
    );
    assert_eq!(r["statusCode"], 200, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap_or("")).expect("body");
    assert_eq!(body["status"], "stored", "{body}");
}
