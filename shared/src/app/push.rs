//! Push: make the user's other backends match a stored item after a state change.
//!
//! For every backend of the user with `export.enabled`, except the one the change came
//! from: find the item there (the id it reported, else a guid search, remembered), read
//! its state, and do what [`sync::target::plan`] says (mark played, unplayed, or set the
//! resume point; nothing where it already agrees or holds newer evidence). Push acts on
//! the item's state **as read just before each backend call**, and reads it again after
//! writing: if a newer change landed meanwhile, that backend is brought in line with it
//! too, so a push in flight never outruns a newer unplay. A redelivered or out-of-order
//! change is a no-op, and the echo webhook a pushed-to server sends back arrives as
//! "same state".

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;

use crate::domain::remote::RemoteItem;

use crate::app::ingest::{self, Planned};
use crate::domain::model::{Backend, BackendState, Delivery, Item, StateChange};
use crate::domain::sync::{self, target, target::Plan};
use crate::ports::media::{ClientError, ClientFactory, MediaClient};
use crate::ports::store::{Store, StoreError};

/// Rounds of "read the item, write the backend, read again" per backend: a second
/// round only when a newer change landed while we wrote.
const MAX_ROUNDS: usize = 3;

/// What push did on one backend.
/// What push did to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushAction {
    MarkPlayed,
    MarkUnplayed,
    SetProgress,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Marked played / unplayed or resume point set.
    Applied {
        action: PushAction,
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
        if self
            .store
            .get_item(&change.user, &change.item_id)
            .await?
            .is_none()
        {
            tracing::warn!(change = %change.id, "item of a change is gone");
            return Ok(report);
        }
        let targets: Vec<Backend> = self
            .store
            .list_backends(&change.user)
            .await?
            .into_iter()
            .filter(|b| b.export.enabled && Some(&b.name) != change.origin.as_ref())
            .filter(|b| only.is_none_or(|o| o.contains(&b.name)))
            .collect();
        for target in &targets {
            let outcome = self.push_target(change, target).await?;
            tracing::info!(
                user = %change.user, item = %change.item_id, backend = %target.name,
                outcome = ?outcome, "push"
            );
            report.backends.push((target.name.clone(), outcome));
        }
        Ok(report)
    }

    /// Bring one backend in line with the item as it is now; again if the item changed
    /// while we wrote (a newer change raced this push).
    async fn push_target(
        &self,
        change: &StateChange,
        target: &Backend,
    ) -> Result<Outcome, StoreError> {
        let client = self.clients.client(target);
        let mut outcome = Outcome::InSync;
        for _ in 0..MAX_ROUNDS {
            let Some(item) = self.store.get_item(&change.user, &change.item_id).await? else {
                return Ok(outcome);
            };
            let (done, state) = push_one(client.as_ref(), &item, target).await;
            if let Some(state) = state {
                remember(
                    self.store.as_ref(),
                    &change.user,
                    &item.id,
                    &target.name,
                    state,
                )
                .await?;
            }
            let wrote = matches!(done, Outcome::Applied { .. });
            outcome = done;
            if !wrote {
                break;
            }
            let Some(now) = self.store.get_item(&change.user, &change.item_id).await? else {
                break;
            };
            if now.watched == item.watched && now.progress_ms == item.progress_ms {
                break;
            }
            tracing::info!(
                user = %change.user, item = %item.id, backend = %target.name,
                "the item changed while push wrote to a backend; bringing it in line again"
            );
        }
        Ok(outcome)
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
                    id: crate::domain::ids::time_ordered_id(now),
                    user: Some(change.user.clone()),
                    backend: Some(backend.clone()),
                    received_at: now,
                    http_status: 0,
                    status: crate::domain::model::DeliveryStatus::PushFailed,
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
    let plan = target::plan(item, known, &remote);
    let result = match &plan {
        Plan::MarkPlayed { at } => Some(client.mark_played(&remote.id, *at).await),
        Plan::MarkUnplayed => Some(client.mark_unplayed(&remote.id).await),
        Plan::SetProgress { position_ms } => Some(
            client
                .set_progress(&remote.id, *position_ms, remote.duration_ms)
                .await,
        ),
        _ => None,
    };
    let applied = matches!(result, Some(Ok(())));
    let state = target::learned(&plan, applied, known, &remote, Utc::now());
    let outcome = match (plan, result) {
        (_, Some(Err(e))) => failed(&e),
        (Plan::MarkPlayed { .. }, _) => Outcome::Applied {
            action: PushAction::MarkPlayed,
        },
        (Plan::MarkUnplayed, _) => Outcome::Applied {
            action: PushAction::MarkUnplayed,
        },
        (Plan::SetProgress { .. }, _) => Outcome::Applied {
            action: PushAction::SetProgress,
        },
        (Plan::InSync, _) => Outcome::InSync,
        (Plan::RemoteNewer, _) => Outcome::RemoteNewer,
        (Plan::Skip(reason), _) => Outcome::Skipped {
            reason: reason.into(),
        },
    };
    (outcome, Some(state))
}

/// Record a backend's id and state on the item, so the echo webhook is a no-op and
/// the next push needs no search. Bookkeeping only: it produces a change only when
/// the id proves the item was stored twice and the merge moves its state.
async fn remember(
    store: &dyn Store,
    user: &str,
    item_id: &str,
    backend: &str,
    state: BackendState,
) -> Result<(), StoreError> {
    ingest::write_conditionally(
        store,
        user,
        || {
            Box::pin(async {
                let existing = store.get_item(user, item_id).await?;
                // A backend id new to the item may already be another item's (the same
                // thing stored twice): the write merges the two.
                let known = existing
                    .as_ref()
                    .and_then(|i| i.backends.get(backend))
                    .and_then(|s| s.item_id.as_ref());
                let others = match (&state.item_id, known) {
                    (Some(id), k) if k != Some(id) => store
                        .find_items(user, &[sync::backend_key(backend, id)])
                        .await?
                        .into_iter()
                        .filter(|o| o.id != item_id)
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(ingest::Read {
                    existing,
                    foreign: Vec::new(),
                    others,
                    extra: (),
                })
            })
        },
        |read| {
            let item = read.existing.as_ref().and_then(|old| {
                let mut item = old.clone();
                item.backends.insert(backend.to_string(), state.clone());
                (item != *old).then_some(item)
            });
            Planned {
                item,
                change: None,
                outcome: (),
            }
        },
    )
    .await
    .map(drop)
}

/// The local bus's consumer: push in process, failures into the delivery log.
#[cfg(feature = "local")]
pub struct LocalPush(pub Pusher);

#[cfg(feature = "local")]
#[async_trait::async_trait]
impl crate::ports::bus::ChangeHandler for LocalPush {
    async fn handle(&self, change: &StateChange) -> Result<(), String> {
        self.0
            .push_and_log(change)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The same batch code as the push function on AWS ([`crate::app::fanout`]).
    async fn handle_batch(&self, changes: &[StateChange]) -> Vec<Result<(), String>> {
        let batch = crate::app::fanout::push_batch(&self.0, changes, None).await;
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
