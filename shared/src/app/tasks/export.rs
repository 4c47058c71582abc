//! Export: push stored state to every export-enabled backend where it differs, through
//! [`Pusher`] (the push function's code: find the item there, compare, mark played or
//! unplayed only where it differs and the backend's own play is not newer).
//!
//! Which items, per target backend `t` ([`crate::domain::sync::target::needs_compare`]):
//!
//! - by default, those where what `t` was **last seen to hold** (`backends[t]`: by its
//!   import, its webhooks, or our last push to it) differs from the item: another play
//!   state, unknown, or a resume position more than 30 s away. So a file replaced on
//!   `t` (a new id with no play state, recorded by `t`'s import) gets its watched back;
//! - with `full`, every item with something to carry: each is compared with what `t`
//!   really shows.
//!
//! An unwatched item nobody unmarked is never pushed as an unplay: unmarking on such
//! weak grounds could erase real plays. A backend that lacks an item is not searched
//! again until its own import shows it.
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
use crate::app::push::{Outcome, Pusher};
use crate::domain::model::{Backend, ChangeKind, Item, StateChange};
use crate::domain::sync::target;
use crate::ports::bus::Bus;
use crate::ports::store::{ItemQuery, Page, Store, StoreError, TaskRun};

/// The task's name in run records.
pub const TASK: crate::ports::tasks::TaskKind = crate::ports::tasks::TaskKind::Export;
const MAX_SAMPLES: usize = 50;
/// Runs looked at for an unfinished one to go on from.
const RUNS_SCANNED: usize = 200;

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
    /// False when the budget ran out before every item was looked at: the run's cursor
    /// says where the next run goes on.
    pub complete: bool,
    /// Whether this run went on from where an unfinished run stopped.
    #[serde(default)]
    pub resumed: bool,
    /// Dry run: the items that would be compared (the first ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_push: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    pub task: crate::ports::tasks::TaskKind,
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
    pub clients: Arc<dyn crate::ports::media::ClientFactory>,
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
            task: TASK,
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
                    crate::app::outbox::drain(self.store.as_ref(), bus.as_ref(), chunk).await;
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
            task = %TASK,
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
        let run_id = crate::domain::ids::time_ordered_id(run_started);
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
            resumed: false,
            would_push: Vec::new(),
            errors: Vec::new(),
        };
        let index: BTreeMap<String, usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        // Go on after the last item an unfinished run compared, so the tail of a large
        // library is reached too (a full or dry run starts over).
        let mut cursor: Option<String> = if payload.full || payload.dry_run {
            None
        } else {
            self.unfinished(user, payload.backend.as_deref()).await?
        };
        out.resumed = cursor.is_some();
        let mut last_done = cursor.clone();
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
                // The budget is checked between items: this one is compared in full.
                last_done = Some(item.id.clone());
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
                    id: crate::domain::ids::new_id(),
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
            task: TASK,
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
            cursor: (!out.complete && !payload.dry_run)
                .then(|| serde_json::json!({ "after": last_done })),
        };
        self.store.record_task_run(&run).await?;
        tracing::info!(
            task = %TASK, user = %user, run = %run.id, dry_run = payload.dry_run, full = payload.full,
            items_seen = out.items_seen, candidates = out.candidates, pushed = out.pushed,
            failed = out.failed, complete = out.complete,
            duration_ms = clock.elapsed().as_millis() as u64,
            "export run"
        );
        Ok(Some(out))
    }
}

impl Exporter {
    /// Where this user's latest export run stopped, if it did not finish (and is recent
    /// enough to go on from): the id of the last item it compared.
    async fn unfinished(
        &self,
        user: &str,
        backend: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let runs = self.store.list_task_runs(RUNS_SCANNED).await?;
        let latest = runs.into_iter().find(|r| {
            r.task == TASK
                && r.user.as_deref() == Some(user)
                && r.backend.as_deref() == backend
                && !r.dry_run
        });
        let Some(run) = latest else { return Ok(None) };
        let recent = run
            .started_at
            .is_some_and(|t| t > Utc::now() - chrono::Duration::hours(24));
        Ok(run
            .cursor
            .filter(|_| recent)
            .and_then(|c| c.get("after").and_then(|a| a.as_str()).map(String::from)))
    }
}

/// Whether `item` must be compared with target backend `t` ([`target::needs_compare`]).
pub fn needs_push(item: &Item, t: &Backend, full: bool) -> bool {
    target::needs_compare(item, &t.name, full)
}
