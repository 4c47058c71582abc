//! No input yields a panic or a 500: arbitrary bytes and arbitrary JSON go to every
//! parser and, over every transport, to the webhook handler.

use bytes::Bytes;
use chrono::Utc;
use e2e::{backend_body, wire, Local, Transport};
use proptest::prelude::*;
use serde_json::{json, Value};
use watchstate::adapters::media;
use watchstate::domain::model::Source;

const SOURCES: [Source; 4] = [
    Source::Plex,
    Source::Tautulli,
    Source::Jellyfin,
    Source::Emby,
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        // Values the parsers look for, in the wrong places too.
        prop_oneof![
            Just(json!("media.scrobble")),
            Just(json!("tautulli.watched")),
            Just(json!("PlaybackStop")),
            Just(json!("item.markplayed")),
            Just(json!("movie")),
            Just(json!("Episode")),
            Just(json!("imdb://tt1")),
            Just(json!("com.plexapp.agents.hama://tvdb-1/2/3")),
            Just(json!("0001-01-01T00:00:00.0000000Z")),
            Just(json!(u64::MAX)),
        ],
    ];
    let keys = prop_oneof![
        Just("event".to_string()),
        Just("Event".to_string()),
        Just("Metadata".to_string()),
        Just("Item".to_string()),
        Just("User".to_string()),
        Just("Server".to_string()),
        Just("Account".to_string()),
        Just("NotificationType".to_string()),
        Just("ItemId".to_string()),
        Just("ItemType".to_string()),
        Just("ratingKey".to_string()),
        Just("type".to_string()),
        Just("Type".to_string()),
        Just("Id".to_string()),
        Just("Guid".to_string()),
        Just("Guids".to_string()),
        Just("ProviderIds".to_string()),
        Just("viewOffset".to_string()),
        Just("PlaybackInfo".to_string()),
        Just("PlaybackPositionTicks".to_string()),
        Just("Provider_imdb".to_string()),
        Just("index".to_string()),
        Just("parentIndex".to_string()),
        Just("UserData".to_string()),
        "[a-zA-Z_]{1,8}",
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for s in SOURCES {
            let _ = media::parse(s, &bytes, Utc::now());
        }
        let _ = media::detect(None, &bytes);
    }

    #[test]
    fn parsers_take_any_json(v in arb_json()) {
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        for s in SOURCES {
            let _ = media::parse(s, &bytes, Utc::now());
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const TRANSPORTS: [(Transport, &str, &str); 6] = [
    (Transport::PlexMultipart, "plex", "PlexMediaServer/1.40"),
    (Transport::TautulliPutJson, "plex", "Tautulli/v2.14.3"),
    (
        Transport::JellyfinTextPlain,
        "jellyfin",
        "Jellyfin-Server/10.10.3",
    ),
    (Transport::EmbyFormData, "emby", "Emby Server/4.8.11.0"),
    (Transport::EmbyUrlEncoded, "emby", ""),
    (Transport::EmbyJson, "emby", ""),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn webhook_handler_never_answers_500(
        v in arb_json(),
        junk in prop::collection::vec(any::<u8>(), 0..256),
        ctype in prop_oneof![
            Just("application/json".to_string()), Just("text/plain".to_string()),
            Just("multipart/form-data; boundary=x".to_string()),
            Just("application/x-www-form-urlencoded".to_string()),
            Just("image/jpeg".to_string()), ".{0,20}",
        ],
    ) {
        let rt = runtime();
        rt.block_on(async {
            let l = Local::new();
            let mut paths = Vec::new();
            for kind in ["plex", "jellyfin", "emby"] {
                paths.push(l.backend("ana", kind, backend_body(kind)).await);
            }
            let json = serde_json::to_vec(&v).unwrap_or_default();
            for (t, kind, ua) in TRANSPORTS {
                let i = ["plex", "jellyfin", "emby"].iter().position(|k| *k == kind).unwrap_or(0);
                for body in [&json, &junk] {
                    let (s, answer) = l.send(&paths[i], &wire(t, body, ua)).await;
                    assert!(s < 500, "{s} {answer}");
                }
            }
            // Raw junk with an arbitrary content type.
            let req = http::Request::builder()
                .method("POST")
                .uri(paths[0].as_str())
                .header("content-type", ctype.as_str())
                .body(Bytes::from(junk.clone()))
                .or_else(|_| http::Request::builder().method("POST").uri(paths[0].as_str()).body(Bytes::from(junk.clone())))
                .expect("request");
            let r = l.webhook.handle(req).await;
            assert!(r.status().as_u16() < 500);
            assert!(serde_json::from_str::<Value>(r.body()).is_ok(), "always JSON");
        });
    }
}
