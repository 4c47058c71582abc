//! Import: pull each import-enabled backend's library and merge every movie and
//! episode into the store (`docs/RELIABILITY.md`), so what webhooks missed is stored anyway.
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BackendRef, Budget, Deps, TaskPayload};
use crate::app::ingest::{self, Planned};
use crate::domain::model::{Backend, EventItem, Item};
use crate::domain::remote::RemoteItem;
use crate::domain::sync;
use crate::domain::sync::listing::{self, Effect, Listed, Merged};
use crate::domain::sync::matching::contradicts;
use crate::ports::media::ClientFactory;
use crate::ports::media::{ClientError, LibraryPage, MediaClient, PageRequest};
use crate::ports::store::{ItemWrite, Store, StoreError, TaskRun, WriteOutcome};

mod page;

/// The EventBridge detail-type of an import continuation.
pub const DETAIL_TYPE: &str = crate::ports::bus::IMPORT_PAGE;
/// The task's name in run records.
pub const TASK: crate::ports::tasks::TaskKind = crate::ports::tasks::TaskKind::Import;

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
    pub task: crate::ports::tasks::TaskKind,
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
            task: TASK,
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
            task = %TASK,
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
            run_id: crate::domain::ids::time_ordered_id(now),
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
            // What the page shows is as of when its fetch started: a push or webhook
            // that lands while it is fetched or merged is newer than it.
            let fetched_at = Utc::now();
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
            let ctx = Listed {
                user: &backend.user,
                backend: &backend.name,
                fetched_at,
            };
            self.merge_page(
                client.as_ref(),
                ctx,
                &page.items,
                dry_run,
                &mut cursor.counts,
                &mut samples,
            )
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
            task: TASK,
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
            task = %TASK, user = %backend.user, backend = %backend.name, run = %run.id,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    const NOW: i64 = 1_750_000_000;

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
