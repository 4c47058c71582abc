//! Push: make the user's other backends match a stored item after a state change.
//!
//! For every backend of the user with `export.enabled`, except the one the change came
//! from: find the item there (the id it reported, else a guid search, remembered), read
//! its state, and only where it differs (and the backend's own change is not newer)
//! mark it played, unplayed, or set the resume point. Push acts on the item's *current*
//! state, so a redelivered or out-of-order change is a no-op, and the echo webhook a
//! pushed-to server sends back arrives as "same state".

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;

use crate::backends::client::{client_with, ClientError, MediaClient, RemoteItem, RetryPolicy};
use crate::model::{Backend, BackendState, ChangeKind, Delivery, Item, StateChange};
use crate::store::{ItemWrite, Store, StoreError, WriteOutcome};
use crate::sync;

/// A resume point within this of the stored one is already in sync.
const PROGRESS_SLACK_MS: u64 = 5_000;

/// Builds the API client for a backend (one shared HTTP client underneath).
pub trait ClientFactory: Send + Sync {
    fn client(&self, backend: &Backend) -> Arc<dyn MediaClient>;
}

/// The real clients over one reqwest client.
pub struct HttpClients {
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
}

impl ClientFactory for HttpClients {
    fn client(&self, backend: &Backend) -> Arc<dyn MediaClient> {
        client_with(backend, self.http.clone(), self.retry)
    }
}

/// What push did on one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Marked played / unplayed or resume point set.
    Applied {
        action: String,
    },
    /// The backend already shows the stored state.
    InSync,
    /// The backend's own play is newer than the stored unplayed state.
    RemoteNewer,
    /// The item is not in that backend's library.
    NotFound,
    /// Nothing to push of this kind (e.g. progress of a watched item).
    Skipped {
        reason: String,
    },
    Failed {
        reason: String,
        retryable: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushReport {
    pub change: String,
    pub item_id: String,
    pub backends: Vec<(String, Outcome)>,
}

impl PushReport {
    /// Whether a retry of the whole change could still help (transient failures).
    pub fn retryable_failure(&self) -> bool {
        self.backends.iter().any(|(_, o)| {
            matches!(
                o,
                Outcome::Failed {
                    retryable: true,
                    ..
                }
            )
        })
    }
}

pub struct Pusher {
    pub store: Arc<dyn Store>,
    pub clients: Arc<dyn ClientFactory>,
}

impl Pusher {
    /// Carry one change to the user's other backends.
    pub async fn push(&self, change: &StateChange) -> Result<PushReport, StoreError> {
        self.push_to(change, None).await
    }

    /// [`Pusher::push`], reaching only the named backends when `only` is given (export
    /// compares per backend and pushes where one differs).
    pub async fn push_to(
        &self,
        change: &StateChange,
        only: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<PushReport, StoreError> {
        let mut report = PushReport {
            change: change.id.clone(),
            item_id: change.item_id.clone(),
            backends: Vec::new(),
        };
        let Some(item) = self.store.get_item(&change.user, &change.item_id).await? else {
            tracing::warn!(change = %change.id, "item of a change is gone");
            return Ok(report);
        };
        let targets: Vec<Backend> = self
            .store
            .list_backends(&change.user)
            .await?
            .into_iter()
            .filter(|b| b.export.enabled && Some(&b.name) != change.origin.as_ref())
            .filter(|b| only.is_none_or(|o| o.contains(&b.name)))
            .collect();
        let mut learned = Vec::new();
        for target in &targets {
            let client = self.clients.client(target);
            let (outcome, state) = push_one(client.as_ref(), &item, change, target).await;
            tracing::info!(
                user = %change.user, item = %item.id, backend = %target.name,
                outcome = ?outcome, "push"
            );
            if let Some(state) = state {
                learned.push((target.name.clone(), state));
            }
            report.backends.push((target.name.clone(), outcome));
        }
        if !learned.is_empty() {
            remember(self.store.as_ref(), &change.user, &item.id, &learned).await?;
        }
        Ok(report)
    }

    /// Push, and record every backend that failed in the delivery log (the local
    /// emulation's dead-letter place).
    pub async fn push_and_log(&self, change: &StateChange) -> Result<PushReport, StoreError> {
        let report = self.push(change).await?;
        self.log_failures(change, &report).await?;
        Ok(report)
    }

    /// Record every backend of a report that failed in the delivery log.
    pub async fn log_failures(
        &self,
        change: &StateChange,
        report: &PushReport,
    ) -> Result<(), StoreError> {
        for (backend, outcome) in &report.backends {
            if let Outcome::Failed { reason, .. } = outcome {
                let now = Utc::now();
                let d = Delivery {
                    id: crate::ids::time_ordered_id(now),
                    user: Some(change.user.clone()),
                    backend: Some(backend.clone()),
                    received_at: now,
                    http_status: 0,
                    status: "push_failed".into(),
                    reason: Some(reason.clone()),
                    event: Some(format!("push {:?}", change.kind).to_lowercase()),
                    item_id: Some(change.item_id.clone()),
                    changed: Some(false),
                    content_type: None,
                    user_agent: None,
                    body: serde_json::to_string(change).ok(),
                    body_truncated: false,
                };
                self.store.record_delivery(&d).await?;
            }
        }
        Ok(())
    }
}

fn failed(e: &ClientError) -> Outcome {
    Outcome::Failed {
        reason: e.to_string(),
        retryable: e.retryable(),
    }
}

/// Find the item on the target: the id it reported, else a guid search.
async fn locate(
    client: &dyn MediaClient,
    item: &Item,
    known: Option<&BackendState>,
) -> Result<Option<RemoteItem>, ClientError> {
    if let Some(id) = known.and_then(|s| s.item_id.as_deref()) {
        match client.item(id).await {
            Ok(Some(r)) => return Ok(Some(r)),
            // Deleted or re-added under a new id: look again.
            Ok(None) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    client.find(item).await
}

/// Push to one backend; also returns what we learned about the item there.
async fn push_one(
    client: &dyn MediaClient,
    item: &Item,
    change: &StateChange,
    target: &Backend,
) -> (Outcome, Option<BackendState>) {
    let known = item.backends.get(&target.name);
    let remote = match locate(client, item, known).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let state = BackendState {
                missing: true,
                ..known.cloned().unwrap_or_default()
            };
            return (Outcome::NotFound, Some(state));
        }
        Err(e) => return (failed(&e), None),
    };
    let mut state = BackendState {
        item_id: Some(remote.id.clone()),
        watched: Some(remote.watched),
        progress_ms: remote.progress_ms,
        seen_at: Some(Utc::now()),
        missing: false,
    };
    // Play state first: it is what a change of either kind must leave right.
    if remote.watched != item.watched {
        let remote_newer = remote.watched
            && remote
                .last_played_at
                .is_some_and(|t| t > item.state_updated_at);
        if remote_newer {
            return (Outcome::RemoteNewer, Some(state));
        }
        let (result, action) = if item.watched {
            (
                client.mark_played(&remote.id, item.state_updated_at).await,
                "mark_played",
            )
        } else {
            (client.mark_unplayed(&remote.id).await, "mark_unplayed")
        };
        return match result {
            Ok(()) => {
                state.watched = Some(item.watched);
                if !item.watched {
                    state.progress_ms = None;
                }
                (
                    Outcome::Applied {
                        action: action.into(),
                    },
                    Some(state),
                )
            }
            Err(e) => (failed(&e), Some(state)),
        };
    }
    if change.kind != ChangeKind::Progress {
        return (Outcome::InSync, Some(state));
    }
    let Some(position) = item.progress_ms.filter(|_| !item.watched) else {
        return (
            Outcome::Skipped {
                reason: "no resume point to push".into(),
            },
            Some(state),
        );
    };
    if remote
        .progress_ms
        .is_some_and(|p| p.abs_diff(position) <= PROGRESS_SLACK_MS)
    {
        return (Outcome::InSync, Some(state));
    }
    match client
        .set_progress(&remote.id, position, remote.duration_ms)
        .await
    {
        Ok(()) => {
            state.progress_ms = Some(position);
            (
                Outcome::Applied {
                    action: "set_progress".into(),
                },
                Some(state),
            )
        }
        Err(e) => (failed(&e), Some(state)),
    }
}

/// Record the backends' ids and states on the item, so the echo webhook is a no-op and
/// the next push needs no search. Bookkeeping only: it never produces a change.
async fn remember(
    store: &dyn Store,
    user: &str,
    item_id: &str,
    learned: &[(String, BackendState)],
) -> Result<(), StoreError> {
    for _ in 0..16 {
        let Some(old) = store.get_item(user, item_id).await? else {
            return Ok(());
        };
        let mut item = old.clone();
        for (name, state) in learned {
            item.backends.insert(name.clone(), state.clone());
        }
        if item == old {
            return Ok(());
        }
        let owned = sync::item_keys(&old);
        let new_keys: Vec<String> = sync::item_keys(&item)
            .into_iter()
            .filter(|k| !owned.contains(k))
            .collect();
        let outcome = store
            .write_item(ItemWrite {
                user,
                item: &item,
                expected_version: Some(old.version),
                new_keys: &new_keys,
                change: None,
            })
            .await?;
        if outcome == WriteOutcome::Written {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(
        "item kept changing while push recorded its backends".into(),
    ))
}

/// The local bus's consumer: push in process, failures into the delivery log.
#[cfg(feature = "local")]
pub struct LocalPush(pub Pusher);

#[cfg(feature = "local")]
#[async_trait::async_trait]
impl crate::bus::local::ChangeHandler for LocalPush {
    async fn handle(&self, change: &StateChange) -> Result<(), String> {
        self.0
            .push_and_log(change)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The same batch code as the push function on AWS ([`crate::fanout`]).
    async fn handle_batch(&self, changes: &[StateChange]) -> Vec<Result<(), String>> {
        let batch = crate::fanout::push_batch(&self.0, changes, None).await;
        let mut out = Vec::with_capacity(changes.len());
        for (change, report) in changes.iter().zip(&batch.reports) {
            out.push(
                self.0
                    .log_failures(change, report)
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        out
    }
}
