//! Import: pull each import-enabled backend's library and merge every movie and
//! episode into the store (DESIGN 4), so what webhooks missed is stored anyway.
//!
//! Per remote item (a [`RemoteItem`] of [`MediaClient::library_page`]):
//!
//! - **First seen** (no stored item matches its keys): created with the state the
//!   backend reports, watched stamped with its `last_played_at` (else "never"),
//!   unwatched stamped "never"; the backend's item id is recorded. A new watched item is
//!   a change (outbox), as a first-seen webhook is.
//! - **Known**: guids and titles it lacks are added, the backend's item id recorded.
//!   Play state flips only on evidence from *this* backend that is newer than the stored
//!   state: played with `last_played_at` strictly newer than `state_updated_at`; or a
//!   **transition** observed on this backend since we last saw it (its
//!   `backends[b].watched`, set by the last import, webhook or push): `Some(false)` then
//!   watched is a play stamped with the import time when the server gives no time;
//!   `Some(true)` then unwatched is an **unplay** stamped with the import time (Plex sends
//!   no webhook for it). A backend that never had the item watched is not an unplay:
//!   export pushes "watched" to it instead. Why this cannot ping-pong:
//!   `docs/ARCHITECTURE.md`.
//! - Duplicates (the same movie twice in one library): only the entry whose id the item
//!   records for this backend speaks for its play state; others only add metadata.
//!
//! Writes only what changed: an item identical to the stored one (bookkeeping times
//! aside) is not written, so re-importing an unchanged library writes no item and no
//! backend. New items of a page go to the store in one batch
//! ([`Store::create_items_batch`]); changed items with a conditional write each, their
//! change in the outbox in the same write (push carries it, like a webhook's).
//!
//! Resumable: a backend's walk is an [`ImportCursor`] (the next page plus what the run
//! did so far). An invocation processes pages until its [`Budget`] (or page limit) is
//! spent, then records the cursor on its run; a page that keeps failing is retried
//! with backoff, then the run records the failure and that page's cursor. Either way
//! the next run of that backend resumes there: earlier pages are not fetched again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BackendRef, Budget, Deps, TaskPayload};
use crate::backends::client::{ClientError, LibraryPage, MediaClient, PageRequest, RemoteItem};
use crate::model::{Backend, BackendState, ChangeKind, EventItem, Item, StateChange};
use crate::push::ClientFactory;
use crate::store::{ItemWrite, Store, StoreError, TaskRun, WriteOutcome};
use crate::sync::{self, never};
use crate::when;

/// The EventBridge detail-type of an import continuation.
pub const DETAIL_TYPE: &str = "ImportPage";
/// The task's name in run records.
pub const TASK: &str = "import";

/// Conditional writes of one item before giving up (each retry re-reads).
const MAX_ATTEMPTS: usize = 16;
/// What a dry run lists at most.
const MAX_SAMPLES: usize = 50;
/// Runs looked at for an unfinished one to resume.
const RUNS_SCANNED: usize = 200;

/// Where one backend's import stands: enough to resume it in another invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportCursor {
    pub user: String,
    pub backend: String,
    /// The next page to fetch (after a failure: the page that failed).
    pub page: PageRequest,
    /// The run this walk belongs to (its [`TaskRun`] id).
    pub run_id: String,
    #[serde(default)]
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    /// What the run did so far.
    #[serde(default)]
    pub counts: ImportCounts,
    /// Failures so far (pages that failed after every retry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What an import run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Pages fetched.
    pub pages: u64,
    /// Movies and episodes the backend listed.
    pub items_seen: u64,
    /// New items stored.
    pub created: u64,
    /// Known items whose play state flipped.
    pub changed: u64,
    /// Of `changed`: unplayed on the backend since it was last seen watched there.
    pub unplayed: u64,
    /// Known items written for bookkeeping only (this backend's id, guids, titles).
    pub updated: u64,
    /// Changes put in the outbox, for push to carry to the other backends.
    pub pushed: u64,
    /// Pages that failed after every retry.
    pub failed: u64,
    /// Item writes (each created or updated item is one; a batch holds many).
    pub writes: u64,
    /// Batches of new items written.
    pub batches: u64,
}

/// Knobs of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Entries per page asked of the media server.
    pub page_size: u32,
    /// Pages per backend per invocation at most (`None`: only the time budget limits).
    pub max_pages: Option<u64>,
    /// Tries of a failing page in all (each is itself a client call with its own
    /// retries), with exponential backoff from `page_backoff`.
    pub page_attempts: usize,
    pub page_backoff: Duration,
    /// An unfinished run older than this is not resumed: the next run starts over.
    pub resume_within: chrono::Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            page_size: PageRequest::DEFAULT_LIMIT,
            max_pages: None,
            page_attempts: 3,
            page_backoff: Duration::from_secs(2),
            resume_within: chrono::Duration::hours(24),
        }
    }
}

/// How one backend's import ended in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The whole library was walked.
    Complete,
    /// Budget or page limit reached: `cursor` says where to go on.
    Paused,
    /// A page kept failing: `cursor` is that page; the next run retries it.
    Failed,
}

/// One backend's import in this invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendImport {
    pub user: String,
    pub backend: String,
    pub run_id: String,
    pub status: Status,
    pub dry_run: bool,
    /// Whether this invocation resumed an unfinished run.
    pub resumed: bool,
    /// The whole run's counts (all its invocations).
    pub counts: ImportCounts,
    /// Where to go on (paused or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<ImportCursor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// This invocation's time on this backend.
    pub duration_ms: u64,
    /// Dry run: what would change (the first ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_change: Vec<String>,
}

/// What an import invocation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub task: String,
    pub dry_run: bool,
    pub backends: Vec<BackendImport>,
    /// Backends with import enabled that this invocation did not get to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<BackendRef>,
    /// Set when work is left: what the next invocation should be given (the import
    /// function publishes it as an `ImportPage` event where a bus exists; without one,
    /// the runs' cursors are resumed by the next invocation anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<TaskPayload>,
    /// Backends asked for by name that were not imported, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Changes published from the outbox after the import (set by the caller, see
    /// [`super::publish_changes`]).
    #[serde(default)]
    pub published: u64,
    pub duration_ms: u64,
}

impl ImportReport {
    /// Every backend walked to the end.
    pub fn complete(&self) -> bool {
        self.continuation.is_none() && self.backends.iter().all(|b| b.status == Status::Complete)
    }
}

pub struct Importer {
    pub store: Arc<dyn Store>,
    pub clients: Arc<dyn ClientFactory>,
    pub options: ImportOptions,
}

/// Who and when, for merging one page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub user: &'a str,
    pub backend: &'a str,
    /// When the page was read: the stamp of transitions observed on it.
    pub now: DateTime<Utc>,
}

/// What merging one remote item means for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Unchanged,
    Created,
    /// Play state flipped to `watched`.
    Changed {
        watched: bool,
    },
    /// Bookkeeping only.
    Updated,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Merged {
    pub item: Item,
    pub effect: Effect,
    pub change: Option<StateChange>,
}

impl Importer {
    pub fn new(deps: &Deps, options: ImportOptions) -> Importer {
        Importer {
            store: deps.store.clone(),
            clients: deps.clients.clone(),
            options,
        }
    }

    /// Import what the payload asks: a continuation (its cursor, then its pending
    /// backends), or every import-enabled backend (of one user, or one backend),
    /// each resumed where its last run stopped unless `full`. Stops when the budget is
    /// spent and says how to go on.
    pub async fn run(
        &self,
        payload: &TaskPayload,
        budget: Budget,
    ) -> Result<ImportReport, StoreError> {
        let started = Instant::now();
        let mut todo: Vec<(BackendRef, Option<ImportCursor>)> = Vec::new();
        let mut skipped = Vec::new();
        if let Some(c) = &payload.cursor {
            todo.push((
                BackendRef {
                    user: c.user.clone(),
                    backend: c.backend.clone(),
                },
                Some(c.clone()),
            ));
            todo.extend(payload.pending.iter().cloned().map(|r| (r, None)));
        } else if !payload.pending.is_empty() {
            todo.extend(payload.pending.iter().cloned().map(|r| (r, None)));
        } else {
            for user in super::users(self.store.as_ref(), payload.user.as_deref()).await? {
                for b in self.store.list_backends(&user).await? {
                    if payload.backend.as_ref().is_some_and(|n| *n != b.name) {
                        continue;
                    }
                    if !b.import.enabled {
                        tracing::debug!(user = %user, backend = %b.name, "import not enabled");
                        if payload.backend.is_some() {
                            skipped.push(format!(
                                "{user}/{}: import is not enabled for this backend",
                                b.name
                            ));
                        }
                        continue;
                    }
                    todo.push((
                        BackendRef {
                            user: user.clone(),
                            backend: b.name,
                        },
                        None,
                    ));
                }
            }
        }
        let dry_run = payload
            .cursor
            .as_ref()
            .map_or(payload.dry_run, |c| c.dry_run);
        let mut report = ImportReport {
            task: TASK.into(),
            dry_run,
            backends: Vec::new(),
            not_started: Vec::new(),
            continuation: None,
            skipped,
            published: 0,
            duration_ms: 0,
        };
        let mut queue = todo.into_iter();
        while let Some((target, cursor)) = queue.next() {
            if budget.expired() {
                report.not_started.push(target);
                report.not_started.extend(queue.by_ref().map(|(r, _)| r));
                break;
            }
            let Some(backend) = self
                .store
                .get_backend(&target.user, &target.backend)
                .await?
            else {
                tracing::warn!(user = %target.user, backend = %target.backend, "backend to import is gone");
                continue;
            };
            let cursor = match cursor {
                Some(c) => Some(c),
                None if payload.full => None,
                None => self.unfinished(&backend, dry_run).await?,
            };
            let done = self
                .import_backend(&backend, cursor, dry_run, budget)
                .await?;
            let paused = done.status == Status::Paused;
            let cursor = done.cursor.clone();
            report.backends.push(done);
            if paused {
                report.not_started.extend(queue.by_ref().map(|(r, _)| r));
                report.continuation = Some(TaskPayload {
                    dry_run,
                    cursor,
                    pending: report.not_started.clone(),
                    ..Default::default()
                });
                break;
            }
        }
        if report.continuation.is_none() && !report.not_started.is_empty() {
            report.continuation = Some(TaskPayload {
                dry_run,
                pending: report.not_started.clone(),
                ..Default::default()
            });
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            task = TASK,
            backends = report.backends.len(),
            complete = report.complete(),
            duration_ms = report.duration_ms,
            "import invocation done"
        );
        Ok(report)
    }

    /// The cursor of this backend's latest run, if that run is unfinished (paused or
    /// failed) and recent enough to resume.
    pub async fn unfinished(
        &self,
        backend: &Backend,
        dry_run: bool,
    ) -> Result<Option<ImportCursor>, StoreError> {
        let runs = self.store.list_task_runs(RUNS_SCANNED).await?;
        let latest = runs.into_iter().find(|r| {
            r.task == TASK
                && r.user.as_deref() == Some(backend.user.as_str())
                && r.backend.as_deref() == Some(backend.name.as_str())
                && r.dry_run == dry_run
        });
        let Some(cursor) = latest.and_then(|r| r.cursor) else {
            return Ok(None);
        };
        match serde_json::from_value::<ImportCursor>(cursor) {
            Ok(c) if c.started_at > Utc::now() - self.options.resume_within => Ok(Some(c)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "unfinished import run has an unreadable cursor; starting over");
                Ok(None)
            }
        }
    }

    /// A new run of a backend: its first page.
    pub fn begin(&self, backend: &Backend, dry_run: bool) -> ImportCursor {
        let now = Utc::now();
        ImportCursor {
            user: backend.user.clone(),
            backend: backend.name.clone(),
            page: PageRequest::first(self.options.page_size),
            run_id: crate::ids::time_ordered_id(now),
            dry_run,
            started_at: now,
            counts: ImportCounts::default(),
            errors: Vec::new(),
        }
    }

    /// Walk one backend from `cursor` (or from the start) until the end of its
    /// library, the budget, the page limit or a page that keeps failing; record the run.
    pub async fn import_backend(
        &self,
        backend: &Backend,
        cursor: Option<ImportCursor>,
        dry_run: bool,
        budget: Budget,
    ) -> Result<BackendImport, StoreError> {
        let started = Instant::now();
        let resumed = cursor.is_some();
        let mut cursor = cursor.unwrap_or_else(|| self.begin(backend, dry_run));
        let counts_before = cursor.counts;
        if resumed {
            tracing::info!(
                user = %backend.user, backend = %backend.name, run = %cursor.run_id,
                offset = cursor.page.cursor.offset, section = ?cursor.page.cursor.section,
                "resuming import"
            );
        }
        let client = self.clients.client(backend);
        let mut samples = Vec::new();
        let mut pages_now = 0u64;
        let (status, error) = loop {
            if budget.expired() || self.options.max_pages.is_some_and(|m| pages_now >= m) {
                break (Status::Paused, None);
            }
            let page = match self.fetch(client.as_ref(), &cursor.page, budget).await {
                Ok(p) => p,
                Err(e) => {
                    let msg = format!(
                        "page at {} failed: {e}",
                        serde_json::to_string(&cursor.page.cursor).unwrap_or_default()
                    );
                    tracing::warn!(
                        user = %backend.user, backend = %backend.name, run = %cursor.run_id,
                        error = %msg, "import page failed; the run stops here and resumes from this page"
                    );
                    cursor.counts.failed += 1;
                    cursor.errors.push(msg.clone());
                    break (Status::Failed, Some(msg));
                }
            };
            let ctx = Ctx {
                user: &backend.user,
                backend: &backend.name,
                now: Utc::now(),
            };
            self.merge_page(ctx, &page.items, dry_run, &mut cursor.counts, &mut samples)
                .await?;
            cursor.counts.pages += 1;
            pages_now += 1;
            match page.next {
                Some(next) => cursor.page = next,
                None => break (Status::Complete, None),
            }
        };
        let now = Utc::now();
        let wrote = cursor.counts.writes > 0;
        if status == Status::Complete && !dry_run && wrote {
            // `import.last_sync` moves only when the import changed stored state, so
            // an unchanged library costs no write at all; every run's end is in its
            // run record.
            if let Some(mut b) = self.store.get_backend(&backend.user, &backend.name).await? {
                b.import.last_sync = Some(now);
                self.store.put_backend(&b).await?;
            }
        }
        let keep_cursor = status != Status::Complete;
        let run = TaskRun {
            id: cursor.run_id.clone(),
            task: TASK.into(),
            user: Some(backend.user.clone()),
            backend: Some(backend.name.clone()),
            started_at: Some(cursor.started_at),
            finished_at: (status != Status::Paused).then_some(now),
            dry_run,
            pages: cursor.counts.pages,
            items_seen: cursor.counts.items_seen,
            created: cursor.counts.created,
            changed: cursor.counts.changed,
            pushed: cursor.counts.pushed,
            failed: cursor.counts.failed,
            errors: cursor.errors.clone(),
            cursor: if keep_cursor {
                serde_json::to_value(&cursor).ok()
            } else {
                None
            },
        };
        self.store.record_task_run(&run).await?;
        let c = cursor.counts;
        let delta = |a: u64, b: u64| a.saturating_sub(b);
        tracing::info!(
            task = TASK, user = %backend.user, backend = %backend.name, run = %run.id,
            status = ?status, dry_run,
            pages = delta(c.pages, counts_before.pages),
            items_seen = delta(c.items_seen, counts_before.items_seen),
            created = delta(c.created, counts_before.created),
            changed = delta(c.changed, counts_before.changed),
            unplayed = delta(c.unplayed, counts_before.unplayed),
            updated = delta(c.updated, counts_before.updated),
            pushed = delta(c.pushed, counts_before.pushed),
            failed = delta(c.failed, counts_before.failed),
            duration_ms = started.elapsed().as_millis() as u64,
            "import run"
        );
        Ok(BackendImport {
            user: backend.user.clone(),
            backend: backend.name.clone(),
            run_id: cursor.run_id.clone(),
            status,
            dry_run,
            resumed,
            counts: cursor.counts,
            cursor: keep_cursor.then_some(cursor),
            error,
            duration_ms: started.elapsed().as_millis() as u64,
            would_change: samples,
        })
    }

    /// One page, tried again with backoff while the error is worth it.
    async fn fetch(
        &self,
        client: &dyn MediaClient,
        request: &PageRequest,
        budget: Budget,
    ) -> Result<LibraryPage, ClientError> {
        let attempts = self.options.page_attempts.max(1);
        let mut delay = self.options.page_backoff;
        let mut attempt = 1;
        loop {
            match client.library_page(request).await {
                Ok(p) => return Ok(p),
                Err(e) if e.retryable() && attempt < attempts && !budget.expired() => {
                    tracing::debug!(error = %e, attempt, "import page failed; trying again");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Merge one page into the store: known items one conditional write each (only if
    /// changed), new ones in one batch.
    async fn merge_page(
        &self,
        ctx: Ctx<'_>,
        items: &[RemoteItem],
        dry_run: bool,
        counts: &mut ImportCounts,
        samples: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        // New items of this page, and which of their keys point where (a duplicate
        // later in the page joins the pending item instead of making a second one).
        let mut pending: Vec<(Merged, Vec<usize>)> = Vec::new();
        let mut pending_keys: HashMap<String, usize> = HashMap::new();
        for (i, r) in items.iter().enumerate() {
            counts.items_seen += 1;
            let keys = remote_keys(ctx.backend, r);
            if let Some(existing) = self.store.find_item(ctx.user, &keys).await? {
                self.apply(ctx, r, &keys, Some(existing), dry_run, counts, samples)
                    .await?;
                continue;
            }
            if let Some(&p) = keys.iter().find_map(|k| pending_keys.get(k)) {
                let m = merge(Some(&pending[p].0.item), r, ctx, crate::ids::new_id);
                if m.effect != Effect::Unchanged {
                    pending[p].0.item = m.item;
                    if m.change.is_some() {
                        pending[p].0.change = m.change;
                    }
                    for k in sync::item_keys(&pending[p].0.item) {
                        pending_keys.entry(k).or_insert(p);
                    }
                }
                pending[p].1.push(i);
                continue;
            }
            let m = merge(None, r, ctx, crate::ids::new_id);
            let p = pending.len();
            for k in sync::item_keys(&m.item) {
                pending_keys.entry(k).or_insert(p);
            }
            pending.push((m, vec![i]));
        }
        if pending.is_empty() {
            return Ok(());
        }
        if dry_run {
            for (m, _) in &pending {
                counts.created += 1;
                if m.change.is_some() {
                    counts.pushed += 1;
                }
                sample(samples, &m.item, ctx.backend, "new");
            }
            return Ok(());
        }
        let keys: Vec<Vec<String>> = pending
            .iter()
            .map(|(m, _)| sync::item_keys(&m.item).into_iter().collect())
            .collect();
        let writes: Vec<ItemWrite<'_>> = pending
            .iter()
            .zip(&keys)
            .map(|((m, _), k)| ItemWrite {
                user: ctx.user,
                item: &m.item,
                expected_version: None,
                new_keys: k,
                change: m.change.as_ref(),
            })
            .collect();
        let outcomes = self.store.create_items_batch(&writes).await?;
        counts.batches += 1;
        let mut retry = Vec::new();
        for ((m, sources), outcome) in pending.iter().zip(&outcomes) {
            if *outcome == WriteOutcome::Written {
                counts.created += 1;
                counts.writes += 1;
                if m.change.is_some() {
                    counts.pushed += 1;
                }
            } else {
                // A key was taken meanwhile (a webhook created the item): merge into
                // that item, one remote entry at a time.
                retry.extend(sources.iter().copied());
            }
        }
        for i in retry {
            let r = &items[i];
            let keys = remote_keys(ctx.backend, r);
            let existing = self.store.find_item(ctx.user, &keys).await?;
            self.apply(ctx, r, &keys, existing, dry_run, counts, samples)
                .await?;
        }
        Ok(())
    }

    /// Read → merge → conditional write for one remote item, re-reading on conflict.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        ctx: Ctx<'_>,
        r: &RemoteItem,
        keys: &[String],
        mut existing: Option<Item>,
        dry_run: bool,
        counts: &mut ImportCounts,
        samples: &mut Vec<String>,
    ) -> Result<Effect, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                existing = self.store.find_item(ctx.user, keys).await?;
            }
            let m = merge(existing.as_ref(), r, ctx, crate::ids::new_id);
            if m.effect == Effect::Unchanged {
                return Ok(Effect::Unchanged);
            }
            if !dry_run {
                let owned: BTreeSet<String> =
                    existing.as_ref().map(sync::item_keys).unwrap_or_default();
                let new_keys: Vec<String> = sync::item_keys(&m.item)
                    .into_iter()
                    .filter(|k| !owned.contains(k))
                    .collect();
                let outcome = self
                    .store
                    .write_item(ItemWrite {
                        user: ctx.user,
                        item: &m.item,
                        expected_version: existing.as_ref().map(|i| i.version),
                        new_keys: &new_keys,
                        change: m.change.as_ref(),
                    })
                    .await?;
                if outcome == WriteOutcome::Conflict {
                    continue;
                }
                counts.writes += 1;
            }
            match m.effect {
                Effect::Created => {
                    counts.created += 1;
                    sample(samples, &m.item, ctx.backend, "new");
                }
                Effect::Changed { watched } => {
                    counts.changed += 1;
                    if !watched {
                        counts.unplayed += 1;
                    }
                    sample(
                        samples,
                        &m.item,
                        ctx.backend,
                        if watched { "played" } else { "unplayed" },
                    );
                }
                Effect::Updated => counts.updated += 1,
                Effect::Unchanged => {}
            }
            if m.change.is_some() {
                counts.pushed += 1;
            }
            return Ok(m.effect);
        }
        Err(StoreError::Unavailable(
            "an item kept changing while import wrote it; try again".into(),
        ))
    }
}

fn sample(samples: &mut Vec<String>, item: &Item, backend: &str, what: &str) {
    if samples.len() >= MAX_SAMPLES {
        return;
    }
    let title = match (&item.series_title, item.season, item.episode) {
        (Some(s), Some(se), Some(ep)) => format!("{s} S{se:02}E{ep:02}"),
        _ => item.title.clone().unwrap_or_else(|| item.id.clone()),
    };
    samples.push(format!(
        "{title}: {what} on {backend} (watched: {})",
        item.watched
    ));
}

/// The lookup keys of a remote item, strongest first (as a webhook's).
pub(crate) fn remote_keys(backend: &str, r: &RemoteItem) -> Vec<String> {
    let ev = EventItem {
        kind: Some(r.kind),
        backend_item_id: r.id.clone(),
        title: None,
        year: None,
        series_title: None,
        season: r.season,
        episode: r.episode,
        guids: r.guids.clone(),
        series_guids: r.series_guids.clone(),
        played: None,
        progress_ms: None,
        duration_ms: None,
    };
    sync::event_keys(backend, &ev)
}

/// Merge what one backend's library says about an item into the stored item (or a
/// new one). Pure; see the module documentation for the rules.
pub(crate) fn merge(
    existing: Option<&Item>,
    r: &RemoteItem,
    ctx: Ctx<'_>,
    new_id: impl FnOnce() -> String,
) -> Merged {
    let played_at = r.last_played_at.filter(|t| when::believable(*t, ctx.now));
    let Some(old) = existing else {
        let mut item = Item {
            id: new_id(),
            kind: r.kind,
            title: r.title.clone(),
            year: r.year,
            series_title: r.series_title.clone(),
            season: r.season,
            episode: r.episode,
            guids: r.guids.clone(),
            series_guids: r.series_guids.clone(),
            watched: r.watched,
            state_updated_at: if r.watched {
                played_at.unwrap_or_else(never)
            } else {
                never()
            },
            progress_ms: None,
            via: r.watched.then(|| ctx.backend.to_string()),
            backends: Default::default(),
            version: 0,
        };
        item.backends.insert(
            ctx.backend.to_string(),
            BackendState {
                item_id: Some(r.id.clone()),
                watched: Some(r.watched),
                progress_ms: None,
                seen_at: Some(ctx.now),
                missing: false,
            },
        );
        let change = r.watched.then(|| change_of(&item, ctx));
        return Merged {
            item,
            effect: Effect::Created,
            change,
        };
    };
    let mut item = old.clone();
    sync::enrich(&mut item, meta(r));
    let state = item.backends.entry(ctx.backend.to_string()).or_default();
    // Only the entry the item records for this backend speaks for its play state
    // there (a library may hold the same movie twice).
    let primary = match &state.item_id {
        None => {
            state.item_id = Some(r.id.clone());
            true
        }
        Some(id) => *id == r.id,
    };
    let mut flip = None;
    if primary {
        state.missing = false;
        let prev = state.watched;
        state.watched = Some(r.watched);
        if r.watched && !item.watched {
            // A play newer than the stored state: the backend's own time, or the import
            // time for a transition observed here (unwatched when last seen) when the
            // server gives none.
            let t = played_at.or_else(|| (prev == Some(false)).then_some(ctx.now));
            match t {
                Some(t) if t > item.state_updated_at => flip = Some((true, t)),
                // Nobody ever reported a state for the item: the first report stands,
                // as for a new item.
                None if prev.is_none()
                    && item.via.is_none()
                    && item.state_updated_at <= never() =>
                {
                    flip = Some((true, never()))
                }
                _ => {}
            }
        } else if !r.watched
            && item.watched
            && prev == Some(true)
            && ctx.now > item.state_updated_at
        {
            // Watched here when last seen, unwatched now: unplayed on this backend since
            // (Plex sends no webhook for it).
            flip = Some((false, ctx.now));
        }
    }
    let mut change = None;
    if let Some((watched, at)) = flip {
        item.watched = watched;
        item.state_updated_at = at;
        item.via = Some(ctx.backend.to_string());
        item.progress_ms = None;
        change = Some(change_of(&item, ctx));
    }
    let effect = if let Some((watched, _)) = flip {
        Effect::Changed { watched }
    } else if item != *old {
        Effect::Updated
    } else {
        Effect::Unchanged
    };
    if effect != Effect::Unchanged {
        if let Some(s) = item.backends.get_mut(ctx.backend) {
            s.seen_at = Some(ctx.now);
        }
    }
    Merged {
        item,
        effect,
        change,
    }
}

fn meta(r: &RemoteItem) -> sync::Meta<'_> {
    sync::Meta {
        guids: &r.guids,
        series_guids: &r.series_guids,
        title: r.title.as_ref(),
        year: r.year,
        series_title: r.series_title.as_ref(),
        season: r.season,
        episode: r.episode,
    }
}

fn change_of(item: &Item, ctx: Ctx<'_>) -> StateChange {
    sync::change_from(item, ctx.user, ctx.backend, ChangeKind::Watched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ItemType;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    const NOW: i64 = 1_750_000_000;

    fn ctx(backend: &str) -> Ctx<'_> {
        Ctx {
            user: "ana",
            backend,
            now: at(NOW),
        }
    }

    fn remote(id: &str, watched: bool, played: Option<i64>) -> RemoteItem {
        let mut r = RemoteItem::new(id, ItemType::Movie);
        r.title = Some("The Film".into());
        r.guids.insert("imdb".into(), "tt0111161".into());
        r.watched = watched;
        r.last_played_at = played.map(at);
        r
    }

    fn first(backend: &str, r: &RemoteItem) -> Item {
        let mut m = merge(None, r, ctx(backend), || "item-1".into());
        m.item.version = 1;
        m.item
    }

    #[test]
    fn first_seen_takes_reported_state() {
        let m = merge(
            None,
            &remote("1", true, Some(NOW - 100)),
            ctx("plex"),
            || "i".into(),
        );
        assert_eq!(m.effect, Effect::Created);
        assert!(m.item.watched);
        assert_eq!(m.item.state_updated_at, at(NOW - 100));
        assert_eq!(m.item.via.as_deref(), Some("plex"));
        assert_eq!(m.item.backends["plex"].item_id.as_deref(), Some("1"));
        assert_eq!(m.item.backends["plex"].watched, Some(true));
        let c = m.change.expect("a new watched item is pushed");
        assert_eq!((c.watched, c.origin.as_deref()), (true, Some("plex")));

        let m = merge(None, &remote("1", false, None), ctx("plex"), || "i".into());
        assert!(!m.item.watched);
        assert_eq!(m.item.state_updated_at, never());
        assert_eq!(m.change, None, "unwatched is what every backend assumes");

        let m = merge(None, &remote("1", true, None), ctx("plex"), || "i".into());
        assert!(m.item.watched, "watched without a time");
        assert_eq!(m.item.state_updated_at, never());
        let m = merge(
            None,
            &remote("1", true, Some(NOW + 3600)),
            ctx("plex"),
            || "i".into(),
        );
        assert_eq!(
            m.item.state_updated_at,
            never(),
            "a future time is not believed"
        );
    }

    #[test]
    fn unchanged_is_not_written() {
        let item = first("plex", &remote("1", true, Some(NOW - 100)));
        let later = Ctx {
            now: at(NOW + 3600),
            ..ctx("plex")
        };
        let m = merge(
            Some(&item),
            &remote("1", true, Some(NOW - 100)),
            later,
            || "x".into(),
        );
        assert_eq!(m.effect, Effect::Unchanged);
        assert_eq!(m.item, item, "not even a seen_at moves");
    }

    #[test]
    fn newer_play_flips_older_is_recorded_only() {
        let mut item = first("plex", &remote("1", false, None));
        item.watched = false;
        item.state_updated_at = at(NOW - 500);
        item.via = Some("emby".into());
        let m = merge(
            Some(&item),
            &remote("j1", true, Some(NOW - 10)),
            ctx("jf"),
            || "x".into(),
        );
        assert_eq!(m.effect, Effect::Changed { watched: true });
        assert_eq!(m.item.state_updated_at, at(NOW - 10));
        assert_eq!(m.item.via.as_deref(), Some("jf"));
        assert_eq!(m.change.as_ref().unwrap().origin.as_deref(), Some("jf"));

        let m = merge(
            Some(&item),
            &remote("j1", true, Some(NOW - 900)),
            ctx("jf"),
            || "x".into(),
        );
        assert_eq!(
            m.effect,
            Effect::Updated,
            "stale play: only jf's id and state recorded"
        );
        assert!(!m.item.watched);
        assert_eq!(m.item.backends["jf"].watched, Some(true));
        assert_eq!(m.change, None);
    }

    #[test]
    fn unplay_is_a_transition_on_the_same_backend() {
        let item = first("plex", &remote("1", true, Some(NOW - 1000)));
        // Plex had it watched at the last import; now it says unwatched.
        let m = merge(Some(&item), &remote("1", false, None), ctx("plex"), || {
            "x".into()
        });
        assert_eq!(m.effect, Effect::Changed { watched: false });
        assert!(!m.item.watched);
        assert_eq!(
            m.item.state_updated_at,
            at(NOW),
            "stamped with the import time"
        );
        let c = m.change.unwrap();
        assert!(!c.watched);
        assert_eq!(c.origin.as_deref(), Some("plex"));

        // A backend that simply never had it watched is not an unplay.
        let m = merge(Some(&item), &remote("e1", false, None), ctx("emby"), || {
            "x".into()
        });
        assert_eq!(m.effect, Effect::Updated);
        assert!(m.item.watched);
        assert_eq!(m.change, None);
        let mut seen_unwatched = m.item.clone();
        seen_unwatched.version = 2;
        let m = merge(
            Some(&seen_unwatched),
            &remote("e1", false, None),
            ctx("emby"),
            || "x".into(),
        );
        assert_eq!(
            m.effect,
            Effect::Unchanged,
            "unwatched twice is no transition"
        );
    }

    #[test]
    fn no_ping_pong_after_an_unplay() {
        // Plex unplayed (import), push marked jf unplayed and recorded it; jf still
        // reports its old play time: older than the unplay, so nothing flips back.
        let mut item = first("plex", &remote("1", true, Some(NOW - 1000)));
        let m = merge(Some(&item), &remote("1", false, None), ctx("plex"), || {
            "x".into()
        });
        item = m.item;
        item.backends.insert(
            "jf".into(),
            BackendState {
                item_id: Some("j1".into()),
                watched: Some(true),
                ..Default::default()
            },
        );
        // jf's unmark failed, so jf still says watched with its old date.
        let later = Ctx {
            now: at(NOW + 60),
            ..ctx("jf")
        };
        let m = merge(
            Some(&item),
            &remote("j1", true, Some(NOW - 1000)),
            later,
            || "x".into(),
        );
        assert!(!m.item.watched, "an old play never beats a newer unplay");
        assert_eq!(m.change, None);
        // A genuinely new play on jf does.
        let m = merge(
            Some(&item),
            &remote("j1", true, Some(NOW + 30)),
            later,
            || "x".into(),
        );
        assert_eq!(m.effect, Effect::Changed { watched: true });
    }

    #[test]
    fn timeless_play_counts_only_as_observed_transition() {
        let mut item = first("plex", &remote("1", false, None));
        item.watched = false;
        item.state_updated_at = at(NOW - 500);
        item.via = Some("plex".into());
        // jf seen unwatched before, watched now without a date: played since.
        item.backends.insert(
            "jf".into(),
            BackendState {
                item_id: Some("j1".into()),
                watched: Some(false),
                ..Default::default()
            },
        );
        let m = merge(Some(&item), &remote("j1", true, None), ctx("jf"), || {
            "x".into()
        });
        assert_eq!(m.effect, Effect::Changed { watched: true });
        assert_eq!(m.item.state_updated_at, at(NOW));
        // First sight of emby, watched without a date, item has a real state: no flip.
        let m = merge(Some(&item), &remote("e1", true, None), ctx("emby"), || {
            "x".into()
        });
        assert_eq!(m.effect, Effect::Updated);
        assert!(!m.item.watched);
    }

    #[test]
    fn duplicates_do_not_speak_for_play_state() {
        let item = first("plex", &remote("1", true, Some(NOW - 100)));
        let m = merge(Some(&item), &remote("2", false, None), ctx("plex"), || {
            "x".into()
        });
        assert_eq!(m.effect, Effect::Unchanged);
        assert!(m.item.watched);
    }

    #[test]
    fn enrichment_adds_never_replaces() {
        let item = first("plex", &remote("1", false, None));
        let mut r = remote("e1", false, None);
        r.guids.insert("imdb".into(), "tt9999999".into());
        r.guids.insert("tmdb".into(), "278".into());
        r.title = Some("Other title".into());
        let m = merge(Some(&item), &r, ctx("emby"), || "x".into());
        assert_eq!(m.item.guids["imdb"], "tt0111161");
        assert_eq!(m.item.guids["tmdb"], "278");
        assert_eq!(m.item.title.as_deref(), Some("The Film"));
        assert_eq!(m.item.backends["emby"].item_id.as_deref(), Some("e1"));
    }

    #[test]
    fn cursor_round_trips() {
        let c = ImportCursor {
            user: "ana".into(),
            backend: "plex".into(),
            page: PageRequest::first(200),
            run_id: "r".into(),
            dry_run: false,
            started_at: at(NOW),
            counts: ImportCounts {
                pages: 3,
                ..Default::default()
            },
            errors: vec!["boom".into()],
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(serde_json::from_value::<ImportCursor>(v).unwrap(), c);
    }
}
