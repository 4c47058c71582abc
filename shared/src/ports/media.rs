//! The MediaClient port: what push, import and backend validation need from a media
//! server's HTTP API, whatever the server, and the values it speaks ([`Identity`],
//! [`Account`], [`PageRequest`], [`LibraryPage`], [`ClientError`]), the
//! [`ClientFactory`] that builds a backend's client, and the [`WebhookReader`] that says
//! who sent a stored webhook body. The clients and parsers live in
//! [`crate::adapters::media`], one folder per server.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::domain::model::{Backend, Item, Source};
use crate::domain::remote::RemoteItem;

/// Builds the API client for a backend, so the use cases never name a concrete client
/// (the adapter's factory is the only place that does).
pub trait ClientFactory: Send + Sync {
    fn client(&self, backend: &Backend) -> Arc<dyn MediaClient>;
}

/// Who sent a stored webhook body, as far as its parser can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    /// The server type the body is from (`None`: not a webhook any parser knows).
    pub source: Option<Source>,
    /// The account the event is about.
    pub user_id: Option<String>,
    pub server_id: Option<String>,
}

/// Reads a delivery's body again with the webhook parsers (the diagnosis of the
/// delivery log asks it who sent what).
pub trait WebhookReader: Send + Sync {
    fn sender(&self, user_agent: Option<&str>, body: &[u8], received_at: DateTime<Utc>) -> Sender;
}

#[async_trait]
pub trait MediaClient: Send + Sync {
    /// Which server answers: Plex `machineIdentifier`, Jellyfin/Emby `Id`, with name and
    /// version where the server says.
    async fn identity(&self) -> Result<Identity, ClientError>;

    /// One item by this backend's own id, with the user's play state; `None` when the
    /// server answers 404 (the item is gone).
    async fn item(&self, item_id: &str) -> Result<Option<RemoteItem>, ClientError>;

    /// Look for an item this backend has not reported yet. Candidates come from a
    /// search, but only those whose ids match are kept (see [`crate::domain::remote::same_item`]): a movie
    /// shares any guid; an episode shares an episode guid, or a series guid plus season
    /// and episode number. Never matched by title alone.
    async fn find(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError>;

    /// Mark played for the backend's user. Plex has no way to set the time (it records
    /// "now"); Jellyfin and Emby take `at`, a real play time; `None` (no play time
    /// known) lets the server record "now".
    async fn mark_played(
        &self,
        item_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ClientError>;

    async fn mark_unplayed(&self, item_id: &str) -> Result<(), ClientError>;

    /// Set the resume position. `duration_ms` is used by Plex's timeline (read from the
    /// item when not given); Jellyfin and Emby ignore it.
    async fn set_progress(
        &self,
        item_id: &str,
        position_ms: u64,
        duration_ms: Option<u64>,
    ) -> Result<(), ClientError>;

    /// One page of the library's movies and episodes, with play state. Start with
    /// [`PageRequest::first`]; continue with [`LibraryPage::next`] until it is `None`.
    async fn library_page(&self, request: &PageRequest) -> Result<LibraryPage, ClientError>;

    /// The accounts the server knows (Plex: the server's `/accounts`; Jellyfin and
    /// Emby: `/Users`), so a household can add one person per account with its user
    /// id. Needs a token allowed to list them (the server owner's, an API key).
    async fn accounts(&self) -> Result<Vec<Account>, ClientError>;
}

/// One account of a media server: the id its webhooks carry (Plex `Account.id`,
/// Jellyfin `UserId`, Emby `User.Id`) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
}

/// The server behind a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub server_id: String,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// Where a library walk stands. Small and serializable, so an import can carry it in
/// an event and resume in another invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageCursor {
    /// Plex: the key of the library section being walked (`None`: the first one).
    /// Jellyfin and Emby list the whole library at once and leave it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Entries of that listing already walked (Plex `X-Plex-Container-Start`,
    /// Jellyfin/Emby `StartIndex`).
    #[serde(default)]
    pub offset: u64,
}

/// Ask for one page of a library walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    #[serde(default)]
    pub cursor: PageCursor,
    /// Entries per page (the server may return fewer; a page never crosses a Plex
    /// section).
    pub limit: u32,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 200;

    /// The first page.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            cursor: PageCursor::default(),
            limit,
        }
    }
}

/// One page of a library walk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryPage {
    /// Movies and episodes of this page (other types are skipped).
    pub items: Vec<RemoteItem>,
    /// The request for the next page; `None` when the walk is complete.
    pub next: Option<PageRequest>,
    /// How many entries the listing walked by this page holds (the Plex section, or the
    /// whole Jellyfin/Emby library), when the server says.
    pub total: Option<u64>,
}

/// Why a call to a media server failed. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No answer within the request timeout (or the connect timeout).
    #[error("the media server did not answer in time")]
    Timeout,
    /// The server answered with a non-success status.
    #[error("{request} answered HTTP {status}{}", detail(.message))]
    Status {
        status: u16,
        /// `kind METHOD /path` (no query string, no host).
        request: String,
        /// A short excerpt of the answer, or where a redirect pointed.
        message: String,
    },
    /// The request did not get through: connection refused or reset, DNS, TLS.
    #[error("could not reach the media server: {0}")]
    Transport(String),
    /// The answer could not be read as the expected JSON.
    #[error("unexpected answer from the media server: {0}")]
    BadResponse(String),
    /// The backend lacks something the call needs (user id, a usable URL).
    #[error("backend not usable: {0}")]
    NotConfigured(String),
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl ClientError {
    /// Worth trying again: timeouts, transport errors and 5xx. Never a 4xx.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Timeout | ClientError::Transport(_) => true,
            ClientError::Status { status, .. } => *status >= 500,
            ClientError::BadResponse(_) | ClientError::NotConfigured(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors() {
        assert!(ClientError::Timeout.retryable());
        assert!(ClientError::Transport("refused".into()).retryable());
        let status = |s| ClientError::Status {
            status: s,
            request: "r".into(),
            message: String::new(),
        };
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(!status(400).retryable());
        assert!(!status(401).retryable());
        assert!(!status(404).retryable());
        assert!(!status(429).retryable());
        assert!(!ClientError::BadResponse("x".into()).retryable());
        assert!(!ClientError::NotConfigured("x".into()).retryable());
        assert!(status(404).is_not_found());
    }

    #[test]
    fn cursor_round_trips_as_json() {
        let r = PageRequest {
            cursor: PageCursor {
                section: Some("2".into()),
                offset: 400,
            },
            limit: 200,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"cursor":{"section":"2","offset":400},"limit":200}"#);
        assert_eq!(serde_json::from_str::<PageRequest>(&j).unwrap(), r);
        let first: PageRequest = serde_json::from_str(r#"{"limit":50}"#).unwrap();
        assert_eq!(first, PageRequest::first(50));
    }
}
