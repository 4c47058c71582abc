//! "Why didn't my webhook do anything?": common setup problems read from the delivery
//! log, in plain words, for the console's Deliveries page (`GET
//! /v1/users/{user}/diagnosis`). A pure function over a person's backends, their
//! deliveries and the deliveries no backend claimed; no store, no I/O.
//!
//! What it looks for, per backend:
//! - events about **other accounts** (user ids other than the backend's `user_id`, or
//!   several accounts on a backend without one), with the ids seen;
//! - events from **another server** than the backend's `server_id`;
//! - a **webhook of another server type** (a Plex webhook pasted into a Jellyfin
//!   backend);
//! - **no delivery in the last day** on a backend that received webhooks before, and
//!   none at all on one that never did;
//!
//! and, for everyone, requests on **unknown webhook URLs** in the last day.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::adapters::media;
use crate::domain::model::{Backend, Delivery, Parsed, Source};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    OtherAccounts,
    OtherServer,
    WrongServerType,
    Quiet,
    NeverDelivered,
    UnknownUrl,
}

/// One problem, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The backend it is about (`None`: unknown URLs).
    pub backend: Option<String>,
    pub message: String,
    /// The account or server ids seen, when the finding is about ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

/// How long a backend may stay silent before it is worth a word.
pub fn quiet_after() -> Duration {
    Duration::hours(24)
}

/// What a stored delivery body says about who sent it.
struct Seen {
    source: Option<Source>,
    user_id: Option<String>,
    server_id: Option<String>,
}

fn read(d: &Delivery) -> Seen {
    let none = Seen {
        source: None,
        user_id: None,
        server_id: None,
    };
    let Some(body) = d.body.as_deref().filter(|b| !b.is_empty()) else {
        return none;
    };
    let Ok(source) = media::source_of(d.user_agent.as_deref(), body.as_bytes()) else {
        return none;
    };
    match media::parse(source, body.as_bytes(), d.received_at) {
        Ok(Parsed::Event(e)) => Seen {
            source: Some(source),
            user_id: e.user_id,
            server_id: e.server_id,
        },
        _ => Seen {
            source: Some(source),
            ..none
        },
    }
}

fn list(ids: &BTreeSet<String>) -> String {
    ids.iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The findings for one person, most useful first. `deliveries` are that person's
/// (any order), `unclaimed` those on unknown URLs.
pub fn diagnose(
    user: &str,
    backends: &[Backend],
    deliveries: &[Delivery],
    unclaimed: &[Delivery],
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for b in backends {
        let mine: Vec<&Delivery> = deliveries
            .iter()
            .filter(|d| d.backend.as_deref() == Some(b.name.as_str()))
            .collect();
        let mut users = BTreeSet::new();
        let mut servers = BTreeSet::new();
        let mut wrong: Vec<Source> = Vec::new();
        for d in &mine {
            let seen = read(d);
            match seen.source {
                Some(s) if s.backend_kind() != b.kind => {
                    if !wrong.contains(&s) {
                        wrong.push(s);
                    }
                    continue;
                }
                _ => {}
            }
            users.extend(seen.user_id.filter(|u| !u.is_empty()));
            servers.extend(seen.server_id.filter(|s| !s.is_empty()));
        }
        for s in wrong {
            out.push(Finding {
                kind: FindingKind::WrongServerType,
                backend: Some(b.name.clone()),
                message: format!(
                    "{} webhooks arrive on '{}', a {} backend: its URL was pasted into the {} server. Give each server the URL of a backend of its own type (add a {} backend for it).",
                    title(s), b.name, b.kind, title(s), s.backend_kind()
                ),
                ids: Vec::new(),
            });
        }
        match b.user_id.as_deref().filter(|u| !u.is_empty()) {
            Some(want) => {
                let others: BTreeSet<String> =
                    users.iter().filter(|u| *u != want).cloned().collect();
                if !others.is_empty() {
                    let message = if b.options.match_user {
                        format!(
                            "Events about other accounts ({}) reach '{}' and are refused, because Match user is on and its user id is '{want}'. Nothing is lost: if one of them is {user}, set that id as the user id; otherwise give those people backends of their own.",
                            list(&others), b.name
                        )
                    } else {
                        format!(
                            "Events about other accounts ({}) reach '{}' and are stored as {user}'s viewing. Turn on Match user so only '{want}' counts, and give the others backends of their own.",
                            list(&others), b.name
                        )
                    };
                    out.push(Finding {
                        kind: FindingKind::OtherAccounts,
                        backend: Some(b.name.clone()),
                        message,
                        ids: others.into_iter().collect(),
                    });
                }
            }
            None if users.len() > 1 => out.push(Finding {
                kind: FindingKind::OtherAccounts,
                backend: Some(b.name.clone()),
                message: format!(
                    "Events from {} accounts ({}) reach '{}' and are all stored as {user}'s viewing. Set the user id to {user}'s account and turn on Match user; add the others as people of their own.",
                    users.len(), list(&users), b.name
                ),
                ids: users.iter().cloned().collect(),
            }),
            None => {}
        }
        match b.server_id.as_deref().filter(|s| !s.is_empty()) {
            Some(want) => {
                let others: BTreeSet<String> =
                    servers.iter().filter(|s| *s != want).cloned().collect();
                if !others.is_empty() {
                    let what = if b.options.match_server {
                        "are refused, because Match server is on"
                    } else {
                        "are stored as if they came from it"
                    };
                    out.push(Finding {
                        kind: FindingKind::OtherServer,
                        backend: Some(b.name.clone()),
                        message: format!(
                            "Events from another server ({}) reach '{}', whose server id is '{want}', and {what}. That server has this backend's URL: give it a backend of its own.",
                            list(&others), b.name
                        ),
                        ids: others.into_iter().collect(),
                    });
                }
            }
            None if servers.len() > 1 => out.push(Finding {
                kind: FindingKind::OtherServer,
                backend: Some(b.name.clone()),
                message: format!(
                    "Events from {} servers ({}) reach '{}': one URL is set in several servers. Give each server a backend of its own, and set the server id with Match server.",
                    servers.len(), list(&servers), b.name
                ),
                ids: servers.iter().cloned().collect(),
            }),
            None => {}
        }
        match mine.iter().map(|d| d.received_at).max() {
            Some(last) if now - last > quiet_after() => out.push(Finding {
                kind: FindingKind::Quiet,
                backend: Some(b.name.clone()),
                message: format!(
                    "No webhook on '{}' in the last day (the last one came at {}). Check that the webhook is still set in the server and that the server can reach this address; import repairs what was missed.",
                    b.name,
                    last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                ids: Vec::new(),
            }),
            Some(_) => {}
            None => out.push(Finding {
                kind: FindingKind::NeverDelivered,
                backend: Some(b.name.clone()),
                message: format!(
                    "No webhook has reached '{}' yet (the log keeps 7 days). Paste its webhook URL into the server: see its setup guide on the Backends page.",
                    b.name
                ),
                ids: Vec::new(),
            }),
        }
    }
    let strays: Vec<&Delivery> = unclaimed
        .iter()
        .filter(|d| now - d.received_at <= quiet_after())
        .collect();
    if let Some(last) = strays.iter().map(|d| d.received_at).max() {
        let agents: BTreeSet<String> = strays
            .iter()
            .filter_map(|d| d.user_agent.clone())
            .filter(|a| !a.is_empty())
            .collect();
        let from = if agents.is_empty() {
            String::new()
        } else {
            format!(", sent by {}", list(&agents))
        };
        out.push(Finding {
            kind: FindingKind::UnknownUrl,
            backend: None,
            message: format!(
                "{} request(s) in the last day used a webhook URL that matches no backend (the last at {}{from}). A server still has an old URL (after Rotate URL or Delete) or a mistyped one: copy the URL again into it.",
                strays.len(),
                last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            ids: Vec::new(),
        });
    }
    out
}

fn title(s: Source) -> &'static str {
    match s {
        Source::Plex => "Plex",
        Source::Tautulli => "Tautulli",
        Source::Jellyfin => "Jellyfin",
        Source::Emby => "Emby",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{BackendKind, BackendOptions, TaskOptions};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn backend(name: &str, kind: BackendKind, user_id: Option<&str>, match_user: bool) -> Backend {
        Backend {
            user: "ana".into(),
            name: name.into(),
            kind,
            url: String::new(),
            token: String::new(),
            server_id: Some("srv-1".into()),
            user_id: user_id.map(str::to_string),
            options: BackendOptions {
                match_user,
                ..BackendOptions::default()
            },
            import: TaskOptions::default(),
            export: TaskOptions::default(),
            webhook_nonce: "n".into(),
            webhook_token_hash: "h".into(),
            created_at: now(),
            updated_at: now(),
        }
    }

    fn plex_body(account: &str, server: &str) -> String {
        serde_json::json!({
            "event": "media.scrobble",
            "Account": {"id": account.parse::<u64>().unwrap(), "title": "x"},
            "Server": {"title": "s", "uuid": server},
            "Metadata": {"type": "movie", "ratingKey": "10", "title": "Film",
                          "Guid": [{"id": "imdb://tt0111161"}]}
        })
        .to_string()
    }

    fn delivery(backend: Option<&str>, ua: &str, body: String, ago_h: i64) -> Delivery {
        Delivery {
            id: format!("d{ago_h}{body:.3}"),
            user: backend.map(|_| "ana".into()),
            backend: backend.map(str::to_string),
            received_at: now() - Duration::hours(ago_h),
            http_status: 200,
            status: "stored".into(),
            reason: None,
            event: None,
            item_id: None,
            changed: None,
            content_type: None,
            user_agent: Some(ua.into()),
            body: Some(body),
            body_truncated: false,
        }
    }

    const PLEX_UA: &str = "PlexMediaServer/1.41.0";

    #[test]
    fn other_accounts_are_named_with_their_ids() {
        let b = [backend("plex", BackendKind::Plex, Some("1"), false)];
        let d = [
            delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 1),
            delivery(Some("plex"), PLEX_UA, plex_body("23456", "srv-1"), 2),
            delivery(Some("plex"), PLEX_UA, plex_body("777", "srv-1"), 3),
        ];
        let f = diagnose("ana", &b, &d, &[], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::OtherAccounts);
        assert_eq!(f[0].ids, vec!["23456".to_string(), "777".to_string()]);
        assert!(
            f[0].message.contains("Turn on Match user"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn several_accounts_on_a_backend_without_user_id() {
        let b = [backend("plex", BackendKind::Plex, None, false)];
        let d = [
            delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 1),
            delivery(Some("plex"), PLEX_UA, plex_body("2", "srv-1"), 1),
        ];
        let f = diagnose("ana", &b, &d, &[], now());
        assert_eq!(f[0].kind, FindingKind::OtherAccounts);
        assert_eq!(f[0].ids, vec!["1".to_string(), "2".to_string()]);
    }

    #[test]
    fn one_account_only_is_fine() {
        let b = [backend("plex", BackendKind::Plex, Some("1"), true)];
        let d = [delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 1)];
        assert!(diagnose("ana", &b, &d, &[], now()).is_empty());
    }

    #[test]
    fn another_server_id() {
        let b = [backend("plex", BackendKind::Plex, Some("1"), true)];
        let d = [delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-2"), 1)];
        let f = diagnose("ana", &b, &d, &[], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::OtherServer);
        assert_eq!(f[0].ids, vec!["srv-2".to_string()]);
    }

    #[test]
    fn plex_webhook_on_a_jellyfin_backend() {
        let b = [backend(
            "jellyfin",
            BackendKind::Jellyfin,
            Some("u1"),
            false,
        )];
        let mut d = delivery(Some("jellyfin"), PLEX_UA, plex_body("1", "srv-1"), 1);
        d.status = "bad_payload".into();
        let f = diagnose("ana", &b, &[d], &[], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::WrongServerType);
        assert!(f[0]
            .message
            .starts_with("Plex webhooks arrive on 'jellyfin'"));
    }

    #[test]
    fn quiet_and_never_delivered_backends() {
        let b = [
            backend("plex", BackendKind::Plex, Some("1"), true),
            backend("emby", BackendKind::Emby, None, false),
        ];
        let d = [delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 30)];
        let f = diagnose("ana", &b, &d, &[], now());
        let kinds: Vec<_> = f.iter().map(|f| (f.kind, f.backend.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (FindingKind::Quiet, Some("plex".into())),
                (FindingKind::NeverDelivered, Some("emby".into()))
            ]
        );
    }

    #[test]
    fn unknown_urls_of_the_last_day_only() {
        let recent = delivery(None, PLEX_UA, String::new(), 2);
        let old = delivery(None, "Jellyfin-Server/10.9", String::new(), 30);
        let f = diagnose("ana", &[], &[], &[recent, old.clone()], now());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::UnknownUrl);
        assert!(f[0].message.starts_with("1 request(s)"), "{}", f[0].message);
        assert!(f[0].message.contains(PLEX_UA));
        assert!(diagnose("ana", &[], &[], &[old], now()).is_empty());
    }
}
