//! On AWS the admin key is an SSM SecureString (moto here), read by the api at its
//! first request: never during init (docs/PERFORMANCE.md).

use std::process::Command;
use std::sync::Arc;

use e2e::moto::Moto;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use watchstate::adapters::media::client::http_client;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::tasks::Deps;
use watchstate::inbound::lambda::LazyApi;

/// Put a SecureString with boto3 (installed with moto), as `aws ssm put-parameter` would.
fn put_parameter(endpoint: &str, name: &str, value: &str) {
    let put = Command::new("python3")
        .args([
            "-c",
            "import boto3,sys; boto3.client('ssm', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='x', aws_secret_access_key='x').put_parameter(Name=sys.argv[2], \
             Value=sys.argv[3], Type='SecureString')",
            endpoint,
            name,
            value,
        ])
        .status()
        .expect("python3");
    assert!(put.success());
}

fn users_request(key: &str) -> lambda_http::Request {
    http::Request::builder()
        .uri("/v1/users")
        .header("authorization", format!("Bearer {key}"))
        .header("host", "api.example")
        .body(Body::Empty)
        .expect("request")
        .with_request_context(RequestContext::ApiGatewayV2(Default::default()))
}

/// The only test here that sets the environment (the AWS config of `LazyApi`); the
/// other builds its client explicitly.
#[tokio::test]
async fn the_api_reads_the_admin_key_at_its_first_request_and_retries_a_failed_read() {
    let moto = Moto::start();
    std::env::remove_var("WATCHSTATE_ADMIN_KEY");
    std::env::set_var("WATCHSTATE_ADMIN_KEY_PARAMETER", "/watchstate/lazy-key");
    std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint());
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "x");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "x");
    let dir = tempfile::tempdir().expect("tempdir");
    let deps = Deps {
        store: Arc::new(SqliteStore::open(&dir.path().join("watchstate.db")).expect("store")),
        clients: Arc::new(HttpClients {
            http: http_client(),
            retry: Default::default(),
        }),
        bus: None,
    };
    // Built like the api function's `main`: nothing is read from SSM yet.
    let api = LazyApi::new(deps, watchstate::inbound::config::Config::from_env());

    let missing = api.handle(users_request("lazy-k3y")).await;
    assert_eq!(missing.status(), 503);
    let body = format!("{:?}", missing.body());
    assert!(
        body.contains("unavailable") && !body.contains("lazy-k3y"),
        "{body}"
    );

    put_parameter(&moto.endpoint(), "/watchstate/lazy-key", "lazy-k3y");
    assert_eq!(api.handle(users_request("lazy-k3y")).await.status(), 200);
    assert_eq!(api.handle(users_request("not-the-key")).await.status(), 401);
}

#[tokio::test]
async fn the_admin_key_comes_from_an_ssm_secure_string() {
    let moto = Moto::start();
    put_parameter(&moto.endpoint(), "/watchstate/admin-key", "k3y-from-ssm");
    let conf = aws_sdk_ssm::Config::builder()
        .http_client(watchstate::inbound::config::sdk_http_client())
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "x", "x", None, None, "t",
        ))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(conf);
    let key = watchstate::inbound::config::admin_key_from_ssm(&ssm, "/watchstate/admin-key")
        .await
        .expect("read");
    assert_eq!(key, "k3y-from-ssm");
    let err = watchstate::inbound::config::admin_key_from_ssm(&ssm, "/nope")
        .await
        .expect_err("missing parameter");
    assert!(err.contains("/nope") && !err.contains("k3y"), "{err}");
}
