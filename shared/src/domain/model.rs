//! The normalized vocabulary every part speaks: sources, backends, items, guids,
//! the events a webhook parser returns and the item the store keeps.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who sent a webhook. Tautulli relays Plex, so its events land on a Plex backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Plex,
    Tautulli,
    Jellyfin,
    Emby,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Plex => "plex",
            Source::Tautulli => "tautulli",
            Source::Jellyfin => "jellyfin",
            Source::Emby => "emby",
        }
    }

    /// The kind of backend whose events this source carries.
    pub fn backend_kind(self) -> BackendKind {
        match self {
            Source::Plex | Source::Tautulli => BackendKind::Plex,
            Source::Jellyfin => BackendKind::Jellyfin,
            Source::Emby => BackendKind::Emby,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a media server account (a backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Plex,
    Jellyfin,
    Emby,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Plex => "plex",
            BackendKind::Jellyfin => "jellyfin",
            BackendKind::Emby => "emby",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "plex" => Some(BackendKind::Plex),
            "jellyfin" => Some(BackendKind::Jellyfin),
            "emby" => Some(BackendKind::Emby),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Only movies and episodes are synced; every other media type is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Movie,
    Episode,
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Movie => "movie",
            ItemType::Episode => "episode",
        }
    }
}

/// What an event means for play state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Played,
    Unplayed,
    Progress,
    Added,
    Test,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Played => "played",
            Action::Unplayed => "unplayed",
            Action::Progress => "progress",
            Action::Added => "added",
            Action::Test => "test",
        }
    }
}

/// Provider ids of one item, `kind -> value` (e.g. `imdb -> tt0111161`). Only values
/// that passed [`crate::domain::guid::normalize`] get in, so every entry is a real id.
pub type Guids = BTreeMap<String, String>;

/// The item an event is about, as the payload describes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventItem {
    pub kind: Option<ItemType>,
    /// The backend's own id of the item (Plex ratingKey, Jellyfin ItemId, Emby Item.Id).
    pub backend_item_id: String,
    pub title: Option<String>,
    pub year: Option<i32>,
    pub series_title: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    /// The item's own ids.
    pub guids: Guids,
    /// The show's ids, for episodes (relative guids are built from them).
    pub series_guids: Guids,
    /// The play state the payload reports, if it reports one at all.
    pub played: Option<bool>,
    /// Resume position reported by the payload.
    pub progress_ms: Option<u64>,
    /// Runtime, to ignore positions in the last 5 %.
    pub duration_ms: Option<u64>,
    /// The backend's own last-viewed time as the payload reports it (Plex
    /// `lastViewedAt`), on any event: a watched it reports is no newer than that play.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_played_at: Option<DateTime<Utc>>,
}

impl EventItem {
    pub fn item_type(&self) -> ItemType {
        self.kind.unwrap_or(ItemType::Movie)
    }
}

/// What a webhook parser returns for an event it understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub source: Source,
    pub server_id: Option<String>,
    pub user_id: Option<String>,
    pub action: Action,
    /// The media server's own name of the event (`media.scrobble`, `PlaybackStop`, ...).
    pub raw_event: String,
    /// The payload's own time, if it has one; the rules replace a missing, future or
    /// pre-2000 time with the time received.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The player paused or stopped (each parser knows its server's names for it;
    /// Jellyfin reports a pause as a paused progress event): the position is a resume
    /// point worth pushing, unlike a tick of ongoing playback.
    #[serde(default)]
    pub paused: bool,
    /// `None` only for test events.
    pub item: Option<EventItem>,
}

/// A parser's answer: an event to merge, or a reason why the webhook is ignored.
// One per request, moved once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Event),
    Ignored {
        source: Source,
        raw_event: String,
        reason: String,
    },
}

impl Parsed {
    pub fn ignored(
        source: Source,
        raw_event: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Parsed::Ignored {
            source,
            raw_event: raw_event.into(),
            reason: reason.into(),
        }
    }
}

/// What the item looks like on one backend.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BackendState {
    pub item_id: Option<String>,
    pub watched: Option<bool>,
    pub progress_ms: Option<u64>,
    /// When this backend last told us (webhook or import) or we last pushed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_at: Option<DateTime<Utc>>,
    /// When a push last changed this backend's play state (marked it played or
    /// unplayed): a report without a time of its own that arrives soon after may have
    /// been sent before it, and then says nothing about what the backend holds now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<DateTime<Utc>>,
    /// Set when push looked for the item on this backend and it was not there; cleared
    /// when that backend reports the item again (webhook or import), so export does not
    /// search for it on every run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
    /// The backend's own play count as last seen (Plex `viewCount`, Jellyfin/Emby
    /// `UserData.PlayCount`): a play is a count that went up, not a moved last-viewed
    /// time (a partial play moves that too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_count: Option<u32>,
    /// The backend's own last-viewed time as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_played_at: Option<DateTime<Utc>>,
    /// When this backend last reported a person's unplay (webhook, or an import that saw
    /// it go from watched to unwatched): push never marks it played over a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplayed_at: Option<DateTime<Utc>>,
}

/// The stored item: the household user's play state of one movie or episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ItemType,
    pub title: Option<String>,
    pub year: Option<i32>,
    pub series_title: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    pub guids: Guids,
    pub series_guids: Guids,
    pub watched: bool,
    pub state_updated_at: DateTime<Utc>,
    /// Set while the item is unwatched because a person unmarked it somewhere (the
    /// time of that unplay); `None` when unwatched only because nobody reported a play.
    /// Only such an unplay is ever pushed (items stored before this field existed carry
    /// none, so they can never erase a watched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplayed_at: Option<DateTime<Utc>>,
    pub progress_ms: Option<u64>,
    /// When the resume position was taken (a pause's time, or the backend's own time
    /// of a listed position): the newest position wins, a late older pause loses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_at: Option<DateTime<Utc>>,
    /// The backend that last set the play state.
    pub via: Option<String>,
    pub backends: BTreeMap<String, BackendState>,
    /// Optimistic-concurrency counter: every write is conditional on it.
    #[serde(default)]
    pub version: u64,
}

/// A media server account of one user.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    pub user: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: BackendKind,
    pub url: String,
    /// The media server's API token. Never logged, never returned by the api.
    pub token: String,
    pub server_id: Option<String>,
    pub user_id: Option<String>,
    pub options: BackendOptions,
    pub import: TaskOptions,
    pub export: TaskOptions,
    /// Random input of the webhook token's derivation (see [`crate::domain::token`]).
    pub webhook_nonce: String,
    /// SHA-256 (hex) of the webhook token; the token itself is never stored.
    pub webhook_token_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// By hand, so the media server token never reaches a log line.
impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("user", &self.user)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("server_id", &self.server_id)
            .field("user_id", &self.user_id)
            .field("options", &self.options)
            .field("import", &self.import)
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackendOptions {
    #[serde(default)]
    pub match_user: bool,
    #[serde(default)]
    pub match_server: bool,
    /// On AWS, accept an `http://` url (the token then travels in clear).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_http: bool,
    /// On AWS, accept a loopback, link-local or private address (a deployment inside
    /// a VPC that reaches the home network).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private_address: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskOptions {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Where this process runs: the rules that differ between a laptop and AWS (which
/// backend urls are accepted, whether metrics are written) decide on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deployment {
    /// The local emulation (`make run`, `cargo lambda watch`, the tests).
    #[default]
    Local,
    /// AWS Lambda, as the SAM template and the CDK app deploy it.
    Aws,
}

/// How a delivery ended: the `status` of the delivery log and, for a refusal, the
/// `code` of the JSON error the media server was answered. Stored in this spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Read and stored (changed or not).
    Stored,
    /// Read, and about nothing watchstate keeps (a test event, a library scan...).
    Ignored,
    /// The token matched no backend.
    UnknownWebhook,
    MethodNotAllowed,
    PayloadTooLarge,
    /// The body could not be read as this backend's webhook.
    BadPayload,
    UnsupportedMediaType,
    /// `match_user`: the event is another account's.
    UserMismatch,
    /// `match_server`: the event is another server's.
    ServerMismatch,
    /// The store could not be reached; the media server retries.
    Unavailable,
    /// Not a webhook: push could not reach this backend (kept in the same log so a
    /// person sees it next to the webhooks).
    PushFailed,
    /// A status this version does not know (written by a later one).
    #[serde(other)]
    Other,
}

impl DeliveryStatus {
    const ALL: [DeliveryStatus; 12] = [
        DeliveryStatus::Stored,
        DeliveryStatus::Ignored,
        DeliveryStatus::UnknownWebhook,
        DeliveryStatus::MethodNotAllowed,
        DeliveryStatus::PayloadTooLarge,
        DeliveryStatus::BadPayload,
        DeliveryStatus::UnsupportedMediaType,
        DeliveryStatus::UserMismatch,
        DeliveryStatus::ServerMismatch,
        DeliveryStatus::Unavailable,
        DeliveryStatus::PushFailed,
        DeliveryStatus::Other,
    ];

    /// The stored and answered spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Stored => "stored",
            DeliveryStatus::Ignored => "ignored",
            DeliveryStatus::UnknownWebhook => "unknown_webhook",
            DeliveryStatus::MethodNotAllowed => "method_not_allowed",
            DeliveryStatus::PayloadTooLarge => "payload_too_large",
            DeliveryStatus::BadPayload => "bad_payload",
            DeliveryStatus::UnsupportedMediaType => "unsupported_media_type",
            DeliveryStatus::UserMismatch => "user_mismatch",
            DeliveryStatus::ServerMismatch => "server_mismatch",
            DeliveryStatus::Unavailable => "unavailable",
            DeliveryStatus::PushFailed => "push_failed",
            DeliveryStatus::Other => "other",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<DeliveryStatus, String> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a delivery status"))
    }
}

/// Compared with its spelling, as the delivery log shows it.
impl PartialEq<&str> for DeliveryStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How one webhook delivery ended, as kept in the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    /// `None` when the token matched no backend.
    pub user: Option<String>,
    pub backend: Option<String>,
    pub received_at: DateTime<Utc>,
    /// HTTP status answered.
    pub http_status: u16,
    /// `stored`, `ignored`, or the error code.
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    /// The media server's event name, when the body could be read that far.
    pub event: Option<String>,
    pub item_id: Option<String>,
    pub changed: Option<bool>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// The body as received, without thumbnails, capped in size.
    pub body: Option<String>,
    pub body_truncated: bool,
}

/// A real change of play state, carried by the bus to the push function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    /// Unique per change; redelivery of the same id changes nothing.
    pub id: String,
    pub user: String,
    pub item_id: String,
    /// The backend the change came from (never pushed back to).
    pub origin: Option<String>,
    pub watched: bool,
    pub progress_ms: Option<u64>,
    pub state_updated_at: DateTime<Utc>,
    /// What changed: `watched` or `progress`.
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Watched,
    Progress,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_statuses_keep_their_stored_spelling_and_read_unknown_ones() {
        for status in DeliveryStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(
                serde_json::from_str::<DeliveryStatus>(&json).unwrap(),
                status
            );
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
        }
        assert_eq!(DeliveryStatus::UnknownWebhook, "unknown_webhook");
        // A status a later version writes does not make the delivery log unreadable.
        let later: DeliveryStatus = serde_json::from_str("\"rate_limited\"").unwrap();
        assert_eq!(later, DeliveryStatus::Other);
        assert!("rate_limited".parse::<DeliveryStatus>().is_err());
    }

    #[test]
    fn backend_debug_never_shows_the_token() {
        let now = chrono::Utc::now();
        let b = Backend {
            user: "ana".into(),
            name: "plex".into(),
            kind: BackendKind::Plex,
            url: "http://plex".into(),
            token: "s3cret-plex-token".into(),
            server_id: None,
            user_id: None,
            options: BackendOptions::default(),
            import: TaskOptions::default(),
            export: TaskOptions::default(),
            webhook_nonce: "n".into(),
            webhook_token_hash: "h".into(),
            created_at: now,
            updated_at: now,
        };
        let shown = format!("{b:?}");
        assert!(!shown.contains("s3cret-plex-token"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
