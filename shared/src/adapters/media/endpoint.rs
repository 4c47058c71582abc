//! Plumbing every media-server client shares: [`Endpoint`] (one request with auth,
//! status mapping, retries and token redaction), [`Call`] and [`Answer`], path
//! segments, and [`Secret`], a token that never shows itself.
//!
//! Secrets: the media server token only ever travels in a request header. It is never
//! logged, never part of an error message (messages are scrubbed of it anyway, in case
//! a server echoes it) and never shown by `Debug`.
//!
//! Retries: timeouts, connection errors and 5xx answers are retried with exponential
//! backoff and jitter ([`RetryPolicy`], default 3 attempts); 4xx answers never are.
//! Redirects are not followed: a custom token header must not be carried to another
//! host, and a POST turned into a GET would silently do nothing; a 3xx is reported
//! with its `Location` so the backend URL can be corrected.

use super::client::RetryPolicy;
use crate::domain::model::BackendKind;
use crate::ports::media::ClientError;
use backon::Retryable;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::fmt;

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id made safe to put in a URL path.
pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// One request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: reqwest::Method,
    /// Path below the base URL, segments already encoded (see [`seg`]).
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub json: Option<serde_json::Value>,
}

impl Call {
    pub(crate) fn new(method: reqwest::Method, path: impl Into<String>) -> Self {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            json: None,
        }
    }

    pub(crate) fn get(path: impl Into<String>) -> Self {
        Call::new(reqwest::Method::GET, path)
    }

    pub(crate) fn post(path: impl Into<String>) -> Self {
        Call::new(reqwest::Method::POST, path)
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Call::new(reqwest::Method::DELETE, path)
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(crate) fn header(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((key, value.into()));
        self
    }

    pub(crate) fn json(mut self, body: serde_json::Value) -> Self {
        self.json = Some(body);
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub(crate) fn header_u64(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A media server's API as one backend reaches it: base URL, auth header, retries.
#[derive(Clone)]
pub(crate) struct Endpoint {
    http: reqwest::Client,
    kind: BackendKind,
    /// The base URL without a trailing `/`, or why it is not usable.
    base: Result<String, String>,
    auth_header: &'static str,
    auth_value: Secret,
    token: Secret,
    extra_headers: &'static [(&'static str, &'static str)],
    retry: RetryPolicy,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("base", &self.base)
            .field("auth_header", &self.auth_header)
            .field("auth_value", &self.auth_value)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Endpoint {
    /// `auth_value` is the whole header value (it contains the token).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        kind: BackendKind,
        base_url: &str,
        token: &str,
        auth_header: &'static str,
        auth_value: String,
        extra_headers: &'static [(&'static str, &'static str)],
        http: reqwest::Client,
        retry: RetryPolicy,
    ) -> Self {
        Endpoint {
            http,
            kind,
            base: check_base(base_url),
            auth_header,
            auth_value: Secret::new(auth_value),
            token: Secret::new(token),
            extra_headers,
            retry,
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        self.kind
    }

    /// `kind METHOD /path`, for messages.
    pub(crate) fn label(&self, call: &Call) -> String {
        format!("{} {} {}", self.kind, call.method, call.path)
    }

    /// Send with retries on retryable errors; a non-2xx answer is an error.
    pub(crate) async fn send(&self, call: &Call) -> Result<Answer, ClientError> {
        let attempt = || self.send_once(call);
        attempt
            .retry(self.retry.backoff())
            .when(ClientError::retryable)
            .notify(|e, delay| {
                tracing::debug!(
                    backend = %self.kind,
                    method = %call.method,
                    path = %call.path,
                    error = %e,
                    delay_ms = delay.as_millis() as u64,
                    "media server call failed; retrying"
                );
            })
            .await
    }

    /// Send and decode the JSON answer.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call,
    ) -> Result<T, ClientError> {
        let answer = self.send(call).await?;
        self.decode(call, &answer.body)
    }

    /// Decode an answer's JSON; the error names the request.
    pub(crate) fn decode<'a, T: Deserialize<'a>>(
        &self,
        call: &Call,
        body: &'a [u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body)
            .map_err(|e| ClientError::BadResponse(self.scrub(format!("{}: {e}", self.label(call)))))
    }

    async fn send_once(&self, call: &Call) -> Result<Answer, ClientError> {
        let base = self
            .base
            .as_ref()
            .map_err(|e| ClientError::NotConfigured(e.clone()))?;
        let url = format!("{base}{}", call.path);
        let mut rb = self
            .http
            .request(call.method.clone(), url)
            .header(self.auth_header, self.auth_value.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        for (k, v) in self.extra_headers {
            rb = rb.header(*k, *v);
        }
        for (k, v) in &call.headers {
            rb = rb.header(*k, v.as_str());
        }
        if !call.query.is_empty() {
            rb = rb.query(&call.query);
        }
        if let Some(body) = &call.json {
            rb = rb.json(body);
        }
        let started = std::time::Instant::now();
        let response = rb.send().await.map_err(|e| self.request_error(call, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.request_error(call, e))?;
        tracing::debug!(
            backend = %self.kind,
            method = %call.method,
            path = %call.path,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "media server call"
        );
        if status.is_success() {
            return Ok(Answer { headers, body });
        }
        let message = if status.is_redirection() {
            let to = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            format!("redirected to {to}; redirects are not followed, set the backend URL to the final address")
        } else {
            excerpt(&body)
        };
        Err(ClientError::Status {
            status: status.as_u16(),
            request: self.label(call),
            message: self.scrub(message),
        })
    }

    fn request_error(&self, call: &Call, e: reqwest::Error) -> ClientError {
        if e.is_timeout() {
            return ClientError::Timeout;
        }
        if e.is_builder() {
            return ClientError::NotConfigured(format!(
                "{}: the request cannot be built (is the token a valid header value?)",
                self.label(call)
            ));
        }
        // The chain of causes without the URL; the token is never in a URL, but scrub
        // anyway.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let s_text = s.to_string();
            if !text.contains(&s_text) {
                text.push_str(": ");
                text.push_str(&s_text);
            }
            source = s.source();
        }
        let message = self.scrub(format!("{}: {text}", self.label(call)));
        if e.is_decode() {
            ClientError::BadResponse(message)
        } else {
            ClientError::Transport(message)
        }
    }

    /// Remove the token from a text that might echo it.
    pub(crate) fn scrub(&self, text: String) -> String {
        scrub(text, self.token.expose())
    }
}

pub(crate) fn scrub(text: String, token: &str) -> String {
    let token = token.trim();
    if token.len() < 4 || !text.contains(token) {
        text
    } else {
        text.replace(token, "<redacted>")
    }
}

/// The start of an error body, on one line.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.len() + word.len() + 1 > MAX {
            out.push_str(" ...");
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn check_base(url: &str) -> Result<String, String> {
    let url = url.trim();
    match reqwest::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            Ok(url.trim_end_matches('/').to_string())
        }
        Ok(u) => Err(format!(
            "backend URL must be http(s) with a host, got scheme '{}'",
            u.scheme()
        )),
        Err(e) => Err(format!("backend URL is not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show() {
        let s = Secret::new("super-secret-token");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let e = Endpoint::new(
            BackendKind::Plex,
            "http://plex.local:32400/",
            "super-secret-token",
            "X-Plex-Token",
            "super-secret-token".into(),
            &[],
            crate::adapters::media::client::http_client(),
            RetryPolicy::default(),
        );
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("super-secret-token"), "{dbg}");
        assert_eq!(
            e.scrub("echo super-secret-token back".into()),
            "echo <redacted> back"
        );
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base("http://h:8096/jellyfin/").as_deref(),
            Ok("http://h:8096/jellyfin")
        );
        assert!(check_base("ftp://h").is_err());
        assert!(check_base("not a url").is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(seg("a/b c?"), "a%2Fb%20c%3F");
    }
}
