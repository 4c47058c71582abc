//! The console: the web page a person uses instead of curl, served by the api function
//! at its root (`/lambda-url/api/` locally, `/` of the HTTP API on AWS), its assets
//! under `console/`. Plain HTML, CSS and JavaScript modules compiled into the binary
//! (`shared/console/`); nothing is fetched from anywhere else. The page talks to the
//! `/v1` api with the admin key the person signs in with (kept in session storage).
//!
//! Every answer carries a Content-Security-Policy that allows only this origin's
//! scripts and styles (no inline script), `X-Frame-Options: DENY` and
//! `Referrer-Policy: no-referrer`.

use http::{header, HeaderValue, Method, Response, StatusCode};

use super::Reply;

const INDEX: &str = include_str!("../../../console/index.html");
const STYLE: &str = include_str!("../../../console/style.css");
const APP: &str = include_str!("../../../console/app.js");
const API: &str = include_str!("../../../console/api.js");
const GUIDES: &str = include_str!("../../../console/guides.js");
const DOM: &str = include_str!("../../../console/dom.js");
const ICON: &str = include_str!("../../../console/icon.svg");

/// Only this origin; no inline script or style, no framing, no forms posted elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset at `rel` (the path below the api function's root: `""` or `/` for the
/// page, `/console/{file}` for the rest), or `None` when `rel` is not the console's.
pub fn serve(method: &Method, path: &str, rel: &str) -> Option<Reply> {
    let asset = match rel {
        "" | "/" => Some((INDEX, "text/html; charset=utf-8")),
        _ => match rel.strip_prefix("/console/")? {
            "style.css" => Some((STYLE, "text/css; charset=utf-8")),
            "app.js" => Some((APP, "text/javascript; charset=utf-8")),
            "api.js" => Some((API, "text/javascript; charset=utf-8")),
            "guides.js" => Some((GUIDES, "text/javascript; charset=utf-8")),
            "dom.js" => Some((DOM, "text/javascript; charset=utf-8")),
            "icon.svg" => Some((ICON, "image/svg+xml")),
            _ => None,
        },
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(page(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".into(),
            "text/plain; charset=utf-8",
        ));
    }
    let Some((body, content_type)) = asset else {
        return Some(page(
            StatusCode::NOT_FOUND,
            "not found".into(),
            "text/plain; charset=utf-8",
        ));
    };
    // The page links its assets relatively (`console/app.js`): served without the
    // trailing slash it would resolve them one level up, so send the browser there.
    if rel.is_empty() && !path.ends_with('/') {
        let mut r = page(StatusCode::PERMANENT_REDIRECT, String::new(), "text/plain");
        if let Ok(v) = HeaderValue::from_str(&format!("{path}/")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Some(r);
    }
    Some(page(StatusCode::OK, body.to_string(), content_type))
}

fn page(status: StatusCode, body: String, content_type: &'static str) -> Reply {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Assets change with the binary; a redeploy must not leave an old page behind.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_and_assets_with_safe_headers() {
        for rel in [
            "/",
            "/console/app.js",
            "/console/style.css",
            "/console/api.js",
        ] {
            let r = serve(&Method::GET, rel, rel).expect("console asset");
            assert_eq!(r.status(), StatusCode::OK, "{rel}");
            let h = r.headers();
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The CSP forbids them; a `<script>` with a body or a style attribute would
        // silently not run in the browser.
        assert!(!INDEX.contains("<script>"));
        assert!(!INDEX.contains("style="));
        assert!(!INDEX.contains("onclick"));
        for s in INDEX.split("<script").skip(1) {
            assert!(s.contains("src="), "every script is a file: {s:.80}");
        }
        assert!(!CSP.contains("unsafe-inline"));
    }

    #[test]
    fn root_without_slash_redirects() {
        let r = serve(&Method::GET, "/lambda-url/api", "").expect("page");
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "/lambda-url/api/");
    }

    #[test]
    fn other_paths_are_not_the_console() {
        assert!(serve(&Method::GET, "/v1/users", "/v1/users").is_none());
        let r = serve(&Method::GET, "/console/nope.js", "/console/nope.js").expect("404");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
