//! Export: push stored state to every export-enabled backend where it differs, through
//! [`Pusher`] (the push function's code: find the item there, compare, mark played or
//! unplayed only where it differs and the backend's own play is not newer).
//!
//! Which items, per target backend `t`:
//!
//! - by default, what changed since `t`'s `export.last_sync` (the item's state or any
//!   backend's sighting of it is newer) **and** what the store knows of `t` differs
//!   from the item (`backends[t].watched` is another state, or unknown);
//! - with `full`, every item: each is compared with what `t` really shows.
//!
//! An unwatched item nobody ever reported a state for ("never") is never pushed: there
//! is nothing to say, and unmarking on such weak grounds could erase real plays.
//!
//! It first drains the outbox through the bus (changes whose publish failed, and
//! import's changes), so push carries those with their origin. `export.last_sync` of a
//! target moves to the run's start only when the run compared at least one item for it
//! and none of its pushes failed (a failed push is thus tried again by the next run).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Budget, Deps, TaskPayload};
use crate::bus::Bus;
use crate::model::{Backend, ChangeKind, Item, StateChange};
use crate::push::{Outcome, Pusher};
use crate::store::{ItemQuery, Page, Store, StoreError, TaskRun};
use crate::sync::never;

/// The task's name in run records.
pub const TASK: &str = "export";
const MAX_SAMPLES: usize = 50;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Items read from the store per page.
    pub page_size: usize,
    /// Outbox entries published per drain round.
    pub drain_chunk: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            page_size: 500,
            drain_chunk: 100,
        }
    }
}

/// What an export did for one target backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    pub backend: String,
    /// Items compared with this backend.
    pub compared: u64,
    /// Marked played / unplayed (or resume point set).
    pub pushed: u64,
    pub in_sync: u64,
    pub not_found: u64,
    pub remote_newer: u64,
    pub failed: u64,
    /// Whether `export.last_sync` moved to this run's start.
    pub last_sync_moved: bool,
}

/// What an export did for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserExport {
    pub user: String,
    pub run_id: String,
    /// Store pages read.
    pub pages: u64,
    pub items_seen: u64,
    /// Items that needed a comparison with at least one backend.
    pub candidates: u64,
    pub pushed: u64,
    pub failed: u64,
    pub targets: Vec<TargetReport>,
    /// False when the budget ran out before every item was looked at.
    pub complete: bool,
    /// Dry run: the items that would be compared (the first ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_push: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    pub task: String,
    pub dry_run: bool,
    pub full: bool,
    /// Outbox entries published (and failed to publish) before comparing.
    pub drained: u64,
    pub drain_failed: u64,
    pub users: Vec<UserExport>,
    /// Backends asked for by name that were not exported to, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub duration_ms: u64,
}

pub struct Exporter {
    pub store: Arc<dyn Store>,
    pub clients: Arc<dyn crate::push::ClientFactory>,
    pub bus: Option<Arc<dyn Bus>>,
    pub options: ExportOptions,
}

impl Exporter {
    pub fn new(deps: &Deps, options: ExportOptions) -> Exporter {
        Exporter {
            store: deps.store.clone(),
            clients: deps.clients.clone(),
            bus: deps.bus.clone(),
            options,
        }
    }

    pub async fn run(
        &self,
        payload: &TaskPayload,
        budget: Budget,
    ) -> Result<ExportReport, StoreError> {
        let started = Instant::now();
        let mut report = ExportReport {
            task: TASK.into(),
            dry_run: payload.dry_run,
            full: payload.full,
            drained: 0,
            drain_failed: 0,
            users: Vec::new(),
            skipped: Vec::new(),
            duration_ms: 0,
        };
        if let (Some(bus), false) = (&self.bus, payload.dry_run) {
            let chunk = self.options.drain_chunk.max(1);
            loop {
                let (ok, failed) =
                    crate::bus::drain(self.store.as_ref(), bus.as_ref(), chunk).await;
                report.drained += ok as u64;
                report.drain_failed += failed as u64;
                if ok < chunk || failed > 0 || budget.expired() {
                    break;
                }
            }
        }
        for user in super::users(self.store.as_ref(), payload.user.as_deref()).await? {
            if budget.expired() {
                break;
            }
            match self.export_user(&user, payload, budget).await? {
                Some(u) => report.users.push(u),
                None => {
                    if let Some(b) = &payload.backend {
                        report.skipped.push(format!(
                            "{user}/{b}: no such backend, or export is not enabled for it"
                        ));
                    }
                }
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            task = TASK,
            users = report.users.len(),
            drained = report.drained,
            duration_ms = report.duration_ms,
            "export invocation done"
        );
        Ok(report)
    }

    async fn export_user(
        &self,
        user: &str,
        payload: &TaskPayload,
        budget: Budget,
    ) -> Result<Option<UserExport>, StoreError> {
        let targets: Vec<Backend> = self
            .store
            .list_backends(user)
            .await?
            .into_iter()
            .filter(|b| b.export.enabled)
            .filter(|b| payload.backend.as_ref().is_none_or(|n| *n == b.name))
            .collect();
        if targets.is_empty() {
            return Ok(None);
        }
        let run_started: DateTime<Utc> = Utc::now();
        let clock = Instant::now();
        let run_id = crate::ids::time_ordered_id(run_started);
        let pusher = Pusher {
            store: self.store.clone(),
            clients: self.clients.clone(),
        };
        let mut out = UserExport {
            user: user.to_string(),
            run_id: run_id.clone(),
            pages: 0,
            items_seen: 0,
            candidates: 0,
            pushed: 0,
            failed: 0,
            targets: targets
                .iter()
                .map(|t| TargetReport {
                    backend: t.name.clone(),
                    ..Default::default()
                })
                .collect(),
            complete: true,
            would_push: Vec::new(),
            errors: Vec::new(),
        };
        let index: BTreeMap<String, usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let mut cursor: Option<String> = None;
        'pages: loop {
            let page: Page<Item> = self
                .store
                .list_items(
                    user,
                    &ItemQuery::All,
                    self.options.page_size,
                    cursor.as_deref(),
                )
                .await?;
            out.pages += 1;
            for item in &page.items {
                if budget.expired() {
                    out.complete = false;
                    break 'pages;
                }
                out.items_seen += 1;
                let wanted: BTreeSet<String> = targets
                    .iter()
                    .filter(|t| needs_push(item, t, payload.full))
                    .map(|t| t.name.clone())
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                out.candidates += 1;
                for name in &wanted {
                    out.targets[index[name]].compared += 1;
                }
                if payload.dry_run {
                    if out.would_push.len() < MAX_SAMPLES {
                        out.would_push.push(format!(
                            "{} ({}): {} to {}",
                            item.title.as_deref().unwrap_or(&item.id),
                            item.id,
                            if item.watched { "watched" } else { "unwatched" },
                            wanted.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    continue;
                }
                let change = StateChange {
                    id: crate::ids::new_id(),
                    user: user.to_string(),
                    item_id: item.id.clone(),
                    origin: None,
                    watched: item.watched,
                    progress_ms: item.progress_ms,
                    state_updated_at: item.state_updated_at,
                    kind: ChangeKind::Watched,
                };
                // Only the backends this item needs (never one the request left out).
                let pushed = pusher.push_to(&change, Some(&wanted)).await?;
                for (name, outcome) in &pushed.backends {
                    let Some(&i) = index.get(name) else { continue };
                    let t = &mut out.targets[i];
                    match outcome {
                        Outcome::Applied { .. } => t.pushed += 1,
                        Outcome::InSync | Outcome::Skipped { .. } => t.in_sync += 1,
                        Outcome::NotFound => t.not_found += 1,
                        Outcome::RemoteNewer => t.remote_newer += 1,
                        Outcome::Failed { reason, .. } => {
                            t.failed += 1;
                            if out.errors.len() < MAX_SAMPLES {
                                out.errors
                                    .push(format!("{name}: item {}: {reason}", item.id));
                            }
                        }
                    }
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.pushed = out.targets.iter().map(|t| t.pushed).sum();
        out.failed = out.targets.iter().map(|t| t.failed).sum();
        if out.complete && !payload.dry_run {
            for (t, r) in targets.iter().zip(out.targets.iter_mut()) {
                if r.compared == 0 || r.failed > 0 {
                    continue;
                }
                if let Some(mut b) = self.store.get_backend(user, &t.name).await? {
                    b.export.last_sync = Some(run_started);
                    self.store.put_backend(&b).await?;
                    r.last_sync_moved = true;
                }
            }
        }
        if !out.complete {
            out.errors.push(
                "time budget spent before every item was compared; the next run goes on".into(),
            );
        }
        let run = TaskRun {
            id: run_id,
            task: TASK.into(),
            user: Some(user.to_string()),
            backend: payload.backend.clone(),
            started_at: Some(run_started),
            finished_at: Some(Utc::now()),
            dry_run: payload.dry_run,
            pages: out.pages,
            items_seen: out.items_seen,
            created: 0,
            changed: out.candidates,
            pushed: out.pushed,
            failed: out.failed,
            errors: out.errors.clone(),
            cursor: None,
        };
        self.store.record_task_run(&run).await?;
        tracing::info!(
            task = TASK, user = %user, run = %run.id, dry_run = payload.dry_run, full = payload.full,
            items_seen = out.items_seen, candidates = out.candidates, pushed = out.pushed,
            failed = out.failed, complete = out.complete,
            duration_ms = clock.elapsed().as_millis() as u64,
            "export run"
        );
        Ok(Some(out))
    }
}

/// Whether `item` must be compared with target backend `t`.
pub fn needs_push(item: &Item, t: &Backend, full: bool) -> bool {
    if !item.watched && item.state_updated_at <= never() {
        return false;
    }
    if full {
        return true;
    }
    let known = item.backends.get(&t.name).and_then(|s| s.watched);
    if known == Some(item.watched) {
        return false;
    }
    match t.export.last_sync {
        None => true,
        Some(since) => {
            item.state_updated_at > since
                || item
                    .backends
                    .values()
                    .any(|s| s.seen_at.is_some_and(|at| at > since))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackendKind, BackendOptions, BackendState, ItemType, TaskOptions};
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    fn backend(name: &str, last_sync: Option<i64>) -> Backend {
        Backend {
            user: "ana".into(),
            name: name.into(),
            kind: BackendKind::Plex,
            url: String::new(),
            token: String::new(),
            server_id: None,
            user_id: None,
            options: BackendOptions::default(),
            import: TaskOptions::default(),
            export: TaskOptions {
                enabled: true,
                last_sync: last_sync.map(at),
            },
            webhook_nonce: String::new(),
            webhook_token_hash: String::new(),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn item(watched: bool, stamp: i64) -> Item {
        Item {
            id: "i".into(),
            kind: ItemType::Movie,
            title: None,
            year: None,
            series_title: None,
            season: None,
            episode: None,
            guids: Default::default(),
            series_guids: Default::default(),
            watched,
            state_updated_at: at(stamp),
            progress_ms: None,
            via: None,
            backends: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn never_stamped_unwatched_is_never_pushed() {
        let i = item(false, 0);
        assert!(!needs_push(&i, &backend("plex", None), false));
        assert!(!needs_push(&i, &backend("plex", None), true));
    }

    #[test]
    fn differing_and_recent_items_are_candidates() {
        let mut i = item(true, 1_000);
        let t = backend("plex", Some(2_000));
        assert!(!needs_push(&i, &t, false), "old change, exported already");
        assert!(needs_push(&i, &t, true), "full compares everything");
        // Import saw it on jf after the last export (old play time, fresh sighting).
        i.backends.insert(
            "jf".into(),
            BackendState {
                watched: Some(true),
                seen_at: Some(at(3_000)),
                ..Default::default()
            },
        );
        assert!(needs_push(&i, &t, false));
        // Plex is known to agree: nothing to do.
        i.backends.insert(
            "plex".into(),
            BackendState {
                watched: Some(true),
                ..Default::default()
            },
        );
        assert!(!needs_push(&i, &t, false));
        assert!(
            needs_push(&i, &backend("emby", None), false),
            "never exported"
        );
    }
}
