//! The two HTTP faces (DESIGN 6) over plain `http` types, so the same handlers serve
//! API Gateway, `cargo lambda watch` and in-process tests: [`webhook`] for media
//! servers, [`api`] for people and scripts, and [`console`], the web page over the api.

#[cfg(feature = "media")]
pub mod api;
pub mod console;
pub mod webhook;

use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use serde::Serialize;
use serde_json::json;

/// The Lambda invocation's deadline (epoch ms), put on a request's extensions by
/// [`crate::inbound::lambda::to_request`]: work a request starts is budgeted from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub u64);

/// Every answer is JSON.
pub type Reply = Response<String>;

pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> Reply {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    let mut r = Response::new(text);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error": {"code": "..", "message": ".."}}`
pub fn error_reply(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Query parameters, percent-decoded.
#[cfg(feature = "media")]
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(feature = "media")]
pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A request as the handlers take it.
pub type Request = http::Request<Bytes>;
