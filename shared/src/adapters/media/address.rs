//! Which backend urls a deployment accepts. On AWS ([`Deployment::Aws`]:
//! `WATCHSTATE_DEPLOYMENT=aws`, set by the template) a url must be `https` unless the backend sets `allow_insecure_http`
//! (the media server token travels with every call), and must not name a loopback,
//! link-local or private address unless it sets `allow_private_address` (such an
//! address reaches nothing from Lambda, or something of AWS's own, like the instance
//! metadata service). Locally every url is fine: the media servers are on the LAN.
//!
//! Host names are not resolved (a name can resolve differently later); names that are
//! local by definition (`localhost`, `.local`, `.internal`, `.lan`, `.home.arpa`) and
//! Plex's `plex.direct` names, which spell their address, are checked as addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::domain::model::{BackendOptions, Deployment};

/// The rules of this deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UrlRules {
    #[default]
    /// The local emulation: anything http(s).
    Local,
    /// AWS: https and public addresses, unless the backend allows otherwise.
    Aws,
}

impl From<Deployment> for UrlRules {
    fn from(deployment: Deployment) -> UrlRules {
        match deployment {
            Deployment::Aws => UrlRules::Aws,
            Deployment::Local => UrlRules::Local,
        }
    }
}

impl UrlRules {
    /// `Err` holds the message of the 400 answer.
    pub fn check(self, url: &str, options: &BackendOptions) -> Result<(), String> {
        if url.is_empty() {
            return Ok(());
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("url '{url}' is not a url: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("url '{url}' must start with http:// or https://"));
        }
        let host = parsed
            .host()
            .ok_or_else(|| format!("url '{url}' names no host"))?;
        if self == UrlRules::Local {
            return Ok(());
        }
        if parsed.scheme() == "http" && !options.allow_insecure_http {
            return Err(format!(
                "url '{url}' is plain http: the media server token would cross the internet in clear. \
                 Use https (Plex: its https://*.plex.direct address; Jellyfin/Emby: a reverse proxy or \
                 tunnel with a certificate), or set options.allow_insecure_http"
            ));
        }
        let private = match host {
            ::url::Host::Ipv4(a) => private_v4(a).then(|| a.to_string()),
            ::url::Host::Ipv6(a) => private_v6(a).then(|| a.to_string()),
            ::url::Host::Domain(d) => private_name(d),
        };
        if let (Some(addr), false) = (private, options.allow_private_address) {
            return Err(format!(
                "url '{url}' points at {addr}, a loopback, link-local or private address that AWS \
                 cannot reach. Use the server's public address (Plex remote access, a reverse proxy \
                 or tunnel), or set options.allow_private_address when watchstate runs inside your network"
            ));
        }
        Ok(())
    }
}

/// Loopback, private (RFC 1918), shared (CGNAT), link-local (metadata service),
/// unspecified, broadcast, documentation.
fn private_v4(a: Ipv4Addr) -> bool {
    let [x, y, ..] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_documentation()
        || (x == 100 && (64..128).contains(&y))
}

fn private_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return private_v4(v4);
    }
    let first = a.segments()[0];
    a.is_loopback()
        || a.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
}

/// The address a local-by-definition name stands for, if it is one.
fn private_name(host: &str) -> Option<String> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let local_suffix = [".localhost", ".local", ".internal", ".lan", ".home.arpa"];
    if h == "localhost" || local_suffix.iter().any(|s| h.ends_with(s)) {
        return Some(h);
    }
    // `192-168-1-10.<hash>.plex.direct` resolves to 192.168.1.10.
    if h.ends_with(".plex.direct") {
        let first = h.split('.').next().unwrap_or_default();
        if let Ok(ip) = first.replace('-', ".").parse::<Ipv4Addr>() {
            return private_v4(ip).then(|| ip.to_string());
        }
        if let Ok(ip) = first.replace('-', ":").parse::<Ipv6Addr>() {
            return private_v6(ip).then(|| ip.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(url: &str) -> Result<(), String> {
        UrlRules::Aws.check(url, &BackendOptions::default())
    }

    #[test]
    fn aws_wants_https_and_public_addresses() {
        assert!(aws("https://plex.example.com:32400").is_ok());
        assert!(aws("https://203-0-114-7.0123abcd.plex.direct:32400").is_ok());
        assert!(aws("").is_ok(), "no url yet");
        let e = aws("http://jellyfin.example.com").unwrap_err();
        assert!(
            e.contains("plain http") && e.contains("allow_insecure_http"),
            "{e}"
        );
        for private in [
            "https://127.0.0.1:8096",
            "https://10.0.0.5",
            "https://192.168.1.20:8920",
            "https://172.16.0.1",
            "https://169.254.169.254/latest",
            "https://100.64.0.1",
            "https://0.0.0.0",
            "https://[::1]:8096",
            "https://[fd00::1]",
            "https://[fe80::1]",
            "https://[::ffff:192.168.1.1]",
            "https://localhost:32400",
            "https://nas.local",
            "https://media.home.arpa",
            "https://192-168-1-10.0123abcd.plex.direct:32400",
        ] {
            let e = aws(private).unwrap_err();
            assert!(e.contains("allow_private_address"), "{private}: {e}");
        }
        assert!(aws("ftp://x.example")
            .unwrap_err()
            .contains("http:// or https://"));
        assert!(aws("not a url").unwrap_err().contains("not a url"));
    }

    #[test]
    fn options_and_local_allow_them() {
        let both = BackendOptions {
            allow_insecure_http: true,
            allow_private_address: true,
            ..BackendOptions::default()
        };
        assert!(UrlRules::Aws
            .check("http://192.168.1.20:8096", &both)
            .is_ok());
        let http_only = BackendOptions {
            allow_insecure_http: true,
            ..BackendOptions::default()
        };
        assert!(UrlRules::Aws
            .check("http://192.168.1.20:8096", &http_only)
            .is_err());
        assert!(UrlRules::Local
            .check("http://192.168.1.20:8096", &BackendOptions::default())
            .is_ok());
    }
}
