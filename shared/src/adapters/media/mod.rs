//! The media servers. One folder per backend holds its webhook parser and its API
//! client; this module owns what is common to all webhooks: taking the JSON out of its
//! transport (multipart, form, raw body) and telling which server sent it.

pub mod address;
#[cfg(feature = "media")]
pub mod client;
pub mod emby;
#[cfg(feature = "media")]
pub mod endpoint;
pub mod jellyfin;
pub(crate) mod lenient;
pub mod mediabrowser;
pub mod plex;
pub mod tautulli;
#[cfg(test)]
mod test_support;

use chrono::{DateTime, Utc};

use crate::domain::model::{Parsed, Source};

/// Why a body could not be read. Both become 4xx answers, never 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    BadPayload(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl ParseError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ParseError::BadPayload(msg.into())
    }
}

/// A webhook request as the handler hands it over: plain values, no HTTP types.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub content_type: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub body: &'a [u8],
}

/// The JSON document a webhook carried, after its transport was taken off.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub json: Vec<u8>,
    /// The multipart/form field it came from, if any (`payload`, `data`).
    pub field: Option<String>,
}

/// The JSON as a parser reads it: without a leading byte-order mark (templates saved
/// by Windows editors start with one). Applied where the transport comes off
/// ([`Payload`]) and to bodies the delivery log kept from before that.
pub fn json_text(json: &[u8]) -> &[u8] {
    json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json)
}

impl Payload {
    /// The payload as [`json_text`] reads it, so that the shape detection, the
    /// parsers and the delivery log all read plain JSON.
    fn new(json: &[u8], field: Option<String>) -> Payload {
        let json = json_text(json);
        Payload {
            json: json.to_vec(),
            field,
        }
    }
}

/// Take the JSON document out of whatever transport carried it.
///
/// - `multipart/form-data`: the part named `payload` (Plex) or `data` (Emby), whether
///   sent as a field or a file part; a `thumb` JPEG part is skipped unread.
/// - `application/x-www-form-urlencoded`: the field `data` or `payload`.
/// - `application/json`, `text/plain`, or no content type: the body itself.
pub async fn unwrap_transport(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Payload, ParseError> {
    let mime = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match mime.as_str() {
        "multipart/form-data" => from_multipart(content_type.unwrap_or(""), body).await,
        "application/x-www-form-urlencoded" => from_form(body),
        "" | "application/json" | "text/plain" | "text/json" | "application/octet-stream" => {
            Ok(Payload::new(body, None))
        }
        other => Err(ParseError::UnsupportedMediaType(format!(
            "content type '{other}' is not accepted; send JSON, multipart/form-data or application/x-www-form-urlencoded"
        ))),
    }
}

const JSON_FIELDS: [&str; 2] = ["payload", "data"];

async fn from_multipart(content_type: &str, body: &[u8]) -> Result<Payload, ParseError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| ParseError::bad(format!("multipart body without a usable boundary: {e}")))?;
    let stream = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(
        bytes::Bytes::copy_from_slice(body),
    )));
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut seen = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(ParseError::bad(format!("unreadable multipart body: {e}"))),
        };
        let name = field.name().unwrap_or("").to_string();
        if JSON_FIELDS.contains(&name.as_str()) {
            let data = field
                .bytes()
                .await
                .map_err(|e| ParseError::bad(format!("unreadable multipart part '{name}': {e}")))?;
            return Ok(Payload::new(&data, Some(name)));
        }
        // Skip thumbnails and anything else without keeping it.
        seen.push(name);
    }
    Err(ParseError::bad(if seen.is_empty() {
        "multipart body has no parts; expected a part named 'payload' (Plex) or 'data' (Emby)"
            .to_string()
    } else {
        format!(
            "multipart body has no part named 'payload' (Plex) or 'data' (Emby); parts seen: {}",
            seen.join(", ")
        )
    }))
}

fn from_form(body: &[u8]) -> Result<Payload, ParseError> {
    let mut seen = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if JSON_FIELDS.contains(&k.as_ref()) {
            return Ok(Payload::new(v.as_bytes(), Some(k.into_owned())));
        }
        seen.push(k.into_owned());
    }
    Err(ParseError::bad(format!(
        "form body has no field 'data' (Emby) or 'payload' (Plex){}",
        if seen.is_empty() {
            String::new()
        } else {
            format!("; fields seen: {}", seen.join(", "))
        }
    )))
}

/// Tell which server sent a payload: by `User-Agent` first, then by its shape.
pub fn detect(user_agent: Option<&str>, json: &[u8]) -> Option<Source> {
    if let Some(ua) = user_agent {
        let ua = ua.trim();
        if ua.starts_with("PlexMediaServer/") {
            return Some(Source::Plex);
        }
        if ua.starts_with("Tautulli/") {
            return Some(Source::Tautulli);
        }
        if ua.starts_with("Jellyfin-Server/") || ua.starts_with("Jellyfin/") {
            return Some(Source::Jellyfin);
        }
        if ua.starts_with("Emby Server/") || ua.starts_with("Emby/") {
            return Some(Source::Emby);
        }
    }
    detect_shape(json)
}

/// Shape detection reads only the top-level keys, so it costs one shallow pass.
fn detect_shape(json: &[u8]) -> Option<Source> {
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<Source>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            let mut has_metadata = false;
            let mut has_event_lower = false;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match key.as_ref() {
                    "event" => {
                        let v: serde_json::Value = map.next_value()?;
                        has_event_lower = true;
                        if v.as_str().is_some_and(|s| s.starts_with("tautulli.")) {
                            found = Some(Source::Tautulli);
                        }
                    }
                    "Metadata" | "Account" => {
                        has_metadata = true;
                        map.next_value::<IgnoredAny>()?;
                    }
                    "NotificationType" => {
                        found = found.or(Some(Source::Jellyfin));
                        map.next_value::<IgnoredAny>()?;
                    }
                    "Event" => {
                        found = found.or(Some(Source::Emby));
                        map.next_value::<IgnoredAny>()?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            if found.is_none() && (has_event_lower || has_metadata) {
                found = Some(Source::Plex);
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::Deserializer::deserialize_map(&mut de, Keys)
        .ok()
        .flatten()
}

/// Parse a payload with its source's parser.
pub fn parse(
    source: Source,
    json: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Parsed, ParseError> {
    match source {
        Source::Plex => plex::webhook::parse(json, received_at),
        Source::Tautulli => tautulli::parse(json, received_at),
        Source::Jellyfin => jellyfin::webhook::parse(json, received_at),
        Source::Emby => emby::webhook::parse(json, received_at),
    }
}

/// Fields of a payload that nothing reads (not a parser, so not the diagnosis, which
/// reads bodies with the parsers): the delivery log leaves them out, so that every
/// source's delivery record fits one DynamoDB write unit (docs/PERFORMANCE.md, "Cost").
/// `object` names the member that holds them (`""`: the top level); a name ending in
/// `*` is a prefix. Each server's folder lists its own.
#[derive(Clone, Copy)]
pub(crate) struct Unread {
    pub object: &'static str,
    pub names: &'static [&'static str],
}

/// The payload as the delivery log keeps it: without what `unread` lists. `None` when
/// nothing was left out (or it is no JSON object): the bytes are kept as received.
pub(crate) fn without(json: &[u8], unread: &[Unread]) -> Option<Vec<u8>> {
    let mut doc: serde_json::Value = serde_json::from_slice(json).ok()?;
    let mut dropped = false;
    for u in unread {
        let fields = match u.object {
            "" => doc.as_object_mut(),
            member => doc
                .get_mut(member)
                .and_then(serde_json::Value::as_object_mut),
        };
        let Some(fields) = fields else { continue };
        let before = fields.len();
        fields.retain(|k, _| {
            !u.names.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => k.starts_with(prefix),
                None => k == n,
            })
        });
        dropped |= fields.len() != before;
    }
    if dropped {
        serde_json::to_vec(&doc).ok()
    } else {
        None
    }
}

/// The payload as the delivery log keeps it, by its source's list of unread fields.
pub fn for_log(source: Source, json: &[u8]) -> Option<Vec<u8>> {
    let unread = match source {
        Source::Plex => plex::webhook::UNREAD,
        Source::Tautulli => tautulli::UNREAD,
        Source::Jellyfin => jellyfin::webhook::UNREAD,
        Source::Emby => emby::webhook::UNREAD,
    };
    without(json, unread)
}

/// Shared by the parsers: a readable message for a JSON error.
pub(crate) fn json_error(source: Source, e: serde_json::Error) -> ParseError {
    ParseError::bad(format!(
        "{source} payload is not valid JSON of the expected shape: {e}"
    ))
}

/// [`detect`], with a message that says what was wrong when it cannot tell.
pub fn source_of(user_agent: Option<&str>, json: &[u8]) -> Result<Source, ParseError> {
    detect(user_agent, json).ok_or_else(|| {
        if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
            ParseError::bad("body is not valid JSON")
        } else {
            ParseError::bad(
                "cannot tell which media server sent this: no known User-Agent and not the shape of a Plex, Tautulli, Jellyfin or Emby webhook",
            )
        }
    })
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn the_delivery_log_leaves_out_what_nothing_reads() {
        let unread = [
            Unread {
                object: "",
                names: &["Video_*", "Overview"],
            },
            Unread {
                object: "Item",
                names: &["Path"],
            },
        ];
        let body = br#"{"Video_0_Codec":"h264","Video_1_Title":"x","Overview":"long",
            "Name":"Film","Video":"kept: not the prefix","Item":{"Path":"/m","Id":"7"}}"#;
        let kept: serde_json::Value =
            serde_json::from_slice(&without(body, &unread).unwrap()).unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"Name":"Film","Video":"kept: not the prefix","Item":{"Id":"7"}})
        );
        assert_eq!(
            without(br#"{"Name":"Film"}"#, &unread),
            None,
            "nothing to leave out"
        );
        assert_eq!(without(b"not json", &unread), None);
        assert_eq!(without(b"[1]", &unread), None);
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;
    use crate::domain::model::Action;

    const BOM: &[u8] = b"\xEF\xBB\xBF";

    /// A body with a byte-order mark (templates saved by Windows editors start with one)
    /// reads as the same JSON in every transport: the shape tells the server without a
    /// User-Agent, the parser reads it, and the delivery log keeps JSON.
    #[tokio::test]
    async fn a_byte_order_mark_is_taken_off_in_every_transport() {
        let json = br#"{"NotificationType":"PlaybackStart","ServerId":"s1","UserId":"u1","ItemId":"i1","ItemType":"Movie","Overview":"long"}"#;
        let with_bom = [BOM, &json[..]].concat();
        let form = [
            &b"data="[..],
            &form_urlencoded::byte_serialize(&with_bom)
                .collect::<String>()
                .into_bytes(),
        ]
        .concat();
        let multipart = [
            &b"--b\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n"[..],
            &with_bom,
            b"\r\n--b--\r\n",
        ]
        .concat();
        for (content_type, body) in [
            (None, with_bom.clone()),
            (Some("application/json"), with_bom.clone()),
            (Some("application/x-www-form-urlencoded"), form),
            (Some("multipart/form-data; boundary=b"), multipart),
        ] {
            let payload = unwrap_transport(content_type, &body).await.unwrap();
            assert_eq!(payload.json, json, "{content_type:?}");
            let source = source_of(None, &payload.json).unwrap();
            assert_eq!(source, Source::Jellyfin);
            match parse(source, &payload.json, Utc::now()).unwrap() {
                Parsed::Event(e) => assert_eq!(e.action, Action::Progress),
                other => panic!("{other:?}"),
            }
            let logged = for_log(source, &payload.json).expect("Overview left out");
            serde_json::from_slice::<serde_json::Value>(&logged).unwrap();
        }
        // Plex's own multipart, its JSON part with a mark: known by its shape, read whole.
        let plex = br#"{"event":"media.play","Account":{"id":9},"Server":{"uuid":"srv"},"Metadata":{"type":"movie","ratingKey":"9"}}"#;
        let body = [
            &b"--b\r\nContent-Disposition: form-data; name=\"payload\"\r\nContent-Type: application/json\r\n\r\n"[..],
            BOM,
            plex,
            b"\r\n--b--\r\n",
        ]
        .concat();
        let payload = unwrap_transport(Some("multipart/form-data; boundary=b"), &body)
            .await
            .unwrap();
        let source = source_of(None, &payload.json).unwrap();
        assert_eq!(source, Source::Plex);
        match parse(source, &payload.json, Utc::now()).unwrap() {
            Parsed::Event(e) => {
                assert_eq!(e.item.map(|i| i.backend_item_id).as_deref(), Some("9"));
                assert_eq!(
                    (e.user_id.as_deref(), e.server_id.as_deref()),
                    (Some("9"), Some("srv"))
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
