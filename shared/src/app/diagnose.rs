//! "Why didn't my webhook do anything?": common setup problems read from the delivery
//! log, in plain words, for the console's Deliveries page (`GET
//! /v1/users/{user}/diagnosis`). A pure function over a person's backends, their
//! deliveries and the deliveries no backend claimed; no store, no I/O. The bodies are
//! read through the [`WebhookReader`] port (the webhook parsers).
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

use crate::domain::model::{Backend, Delivery, Source};
use crate::ports::media::{Sender, WebhookReader};

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

/// Who sent a delivery, read from its stored body (nothing when it kept none).
fn read(reader: &dyn WebhookReader, d: &Delivery) -> Sender {
    match d.body.as_deref().filter(|b| !b.is_empty()) {
        Some(body) => reader.sender(d.user_agent.as_deref(), body.as_bytes(), d.received_at),
        None => Sender::default(),
    }
}

fn list(ids: &BTreeSet<String>) -> String {
    ids.iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The findings for one person, most useful first. `deliveries` are that person's
/// (any order), `unclaimed` those on unknown URLs; `reader` says who sent each body.
pub fn diagnose(
    reader: &dyn WebhookReader,
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
            let seen = read(reader, d);
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
