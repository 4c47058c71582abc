//! Backend urls on AWS (`WATCHSTATE_DEPLOYMENT=aws`, as the template sets it): https
//! and public addresses, unless the backend allows otherwise; each refusal is a 400
//! saying what to do.

use e2e::Local;
use serde_json::json;

#[tokio::test]
async fn on_aws_backend_urls_must_be_https_and_public_unless_allowed() {
    let mut l = Local::new();
    assert_eq!(l.api("PUT", "/v1/users/ana", None).await.0 / 100, 2);
    // Locally (no WATCHSTATE_DEPLOYMENT) a LAN server over http is the normal case.
    let lan = json!({"type": "jellyfin", "url": "http://192.168.1.20:8096", "token": "t"});
    let (s, v) = l
        .api("PUT", "/v1/users/ana/backends/jf", Some(lan.clone()))
        .await;
    assert_eq!(s / 100, 2, "{v}");

    // The rules the api function takes from its `Config` on AWS.
    let on_aws = watchstate::inbound::config::Config::from_lookup(|name| {
        (name == "WATCHSTATE_DEPLOYMENT").then(|| "aws".to_string())
    });
    l.api.url_rules = on_aws.deployment.into();
    let (s, v) = l
        .api("PUT", "/v1/users/ana/backends/jf", Some(lan.clone()))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow_insecure_http"),
        "{v}"
    );

    let https_lan = json!({"type": "jellyfin", "url": "https://192.168.1.20:8920", "token": "t"});
    let (s, v) = l
        .api("PUT", "/v1/users/ana/backends/jf", Some(https_lan))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow_private_address"),
        "{v}"
    );

    let metadata = json!({"type": "emby", "url": "https://169.254.169.254", "token": "t"});
    let (s, _) = l
        .api("PUT", "/v1/users/ana/backends/emby", Some(metadata))
        .await;
    assert_eq!(s, 400);

    let public = json!({"type": "plex", "url": "https://203-0-114-7.0123abcd.plex.direct:32400", "token": "t"});
    let (s, v) = l
        .api("PUT", "/v1/users/ana/backends/plex", Some(public))
        .await;
    assert_eq!(s / 100, 2, "{v}");

    let mut allowed = lan;
    allowed["options"] = json!({"allow_insecure_http": true, "allow_private_address": true});
    let (s, v) = l
        .api("PUT", "/v1/users/ana/backends/jf", Some(allowed))
        .await;
    assert_eq!(s / 100, 2, "{v}");
    assert_eq!(v["options"]["allow_private_address"], true);
}
