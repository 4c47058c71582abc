//! The scheduled tasks that repair what webhooks missed (`docs/ARCHITECTURE.md`, "Import" and "Export"):
//!
//! - [`import`]: pull every import-enabled backend's library, page by page, and merge
//!   each movie and episode into the store by the rules; resumable from a cursor.
//! - [`export`]: push stored state to every export-enabled backend where it differs,
//!   through [`crate::app::push::Pusher`].
//!
//! Both run from their Lambda functions (the EventBridge schedules, or a manual
//! invocation with a [`TaskPayload`]) and from `POST /v1/tasks/{import|export}`
//! ([`Tasks`], the api's [`TaskRunner`]), through the same [`run_import`] and
//! [`run_export`] (the export sweeps the push dead-letter queue first,
//! [`dead_letters`]). Every run is recorded as a
//! [`TaskRun`](crate::ports::store::TaskRun) (`GET /v1/tasks/runs`) and logged.
//!
//! Time: no invocation runs longer than its [`Budget`]. An import that runs out of
//! budget records where it stands on its run ([`import::ImportCursor`]); the next
//! invocation (a continuation event, the next schedule, or the next
//! `POST /v1/tasks/import`) resumes from there instead of starting over.

pub mod dead_letters;
pub mod export;
pub mod import;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::push::Pusher;
use crate::ports::bus::{Bus, BusError, Continuations};
use crate::ports::dead_letters::DeadLetters;
use crate::ports::media::ClientFactory;
use crate::ports::store::{Store, StoreError};
use crate::ports::tasks::{TaskKind, TaskRequest, TaskRunner};

/// What the tasks work with; built once per process.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clients: Arc<dyn ClientFactory>,
    /// Where changes go once stored (export drains the outbox through it).
    pub bus: Option<Arc<dyn Bus>>,
}

/// How long an invocation may keep working before it hands the rest on.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    /// No limit (tests, benchmarks, a local run to completion).
    pub fn unlimited() -> Budget {
        Budget { deadline: None }
    }

    pub fn of(d: Duration) -> Budget {
        Budget {
            deadline: Some(Instant::now() + d),
        }
    }

    /// The smaller of `cap` and what is left before a Lambda deadline (epoch ms, as
    /// `lambda_runtime::Context::deadline` says), less a margin for the bookkeeping
    /// after the last page (a fifth of what is left, at most a minute). Time left as
    /// [`crate::app::fanout::time_left`] reads it (`cargo lambda watch` included).
    pub fn lambda(deadline_epoch_ms: u64, cap: Duration) -> Budget {
        let left = crate::app::fanout::time_left(deadline_epoch_ms);
        let margin = (left / 5).min(Duration::from_secs(60));
        Budget::of(left.saturating_sub(margin).min(cap))
    }

    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// A user and one of their backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRef {
    pub user: String,
    pub backend: String,
}

/// What the import and export functions accept: the schedule's event (whose content
/// is ignored), a manual payload (`{"user", "backend", "dry_run", "full"}`), or a
/// continuation (`cursor` plus the backends still `pending`), directly or as the
/// `detail` of an EventBridge event with detail-type `ImportPage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Import: start over instead of resuming an unfinished run. Export: compare every
    /// item, not only what changed since the last export.
    #[serde(default)]
    pub full: bool,
    /// Import: resume this backend's walk here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<import::ImportCursor>,
    /// Import: backends still to do after the cursor's (a continuation carries them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<BackendRef>,
}

impl From<TaskRequest> for TaskPayload {
    fn from(r: TaskRequest) -> Self {
        TaskPayload {
            user: r.user,
            backend: r.backend,
            dry_run: r.dry_run,
            full: r.full,
            cursor: None,
            pending: Vec::new(),
        }
    }
}

impl TaskPayload {
    /// Read a Lambda event: a scheduler's event (`detail-type: Scheduled Event`) is a
    /// plain run; an `ImportPage` event carries the payload as its `detail` (an object,
    /// or a string holding one); anything else is read as a payload itself, and what
    /// cannot be read is a plain run (a schedule's input is never worth failing over).
    pub fn from_event(event: &Value) -> TaskPayload {
        let detail_type = event.get("detail-type").and_then(Value::as_str);
        let body = match detail_type {
            Some(t) if t == import::DETAIL_TYPE => match event.get("detail") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                Some(v) => v.clone(),
                None => Value::Null,
            },
            Some(_) => return TaskPayload::default(),
            None => event.clone(),
        };
        match serde_json::from_value::<TaskPayload>(body) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "task payload not understood; running a plain task");
                TaskPayload::default()
            }
        }
    }
}

/// The longest a task run through the api takes (API Gateway answers within 30 s;
/// the api function's timeout is above it).
pub const API_TASK_BUDGET: Duration = Duration::from_secs(25);

/// An import as its function and the api run it: the import within `budget`, its
/// continuation handed on where there is somewhere to hand it (`continuations`: the
/// function's bus; the api's next request resumes from the run's cursor instead), then,
/// unless a dry run, the changes it stored published from the outbox.
pub async fn run_import(
    deps: &Deps,
    options: import::ImportOptions,
    continuations: Option<&dyn Continuations>,
    payload: &TaskPayload,
    budget: Budget,
) -> Result<import::ImportReport, StoreError> {
    let mut report = import::Importer::new(deps, options)
        .run(payload, budget)
        .await?;
    if let (Some(next), Some(c)) = (&report.continuation, continuations) {
        let handed = match serde_json::to_value(next) {
            Ok(v) => c.hand_on(&v).await,
            Err(e) => Err(BusError::Unavailable(e.to_string())),
        };
        match handed {
            Ok(()) => tracing::info!("import continues in a new invocation (ImportPage)"),
            Err(e) => {
                tracing::warn!(error = %e, "continuation not published; the next run resumes")
            }
        }
    }
    if !report.dry_run {
        report.published = publish_changes(deps, PUBLISH_AFTER_IMPORT).await;
    }
    Ok(report)
}

/// What an export answers: its report, and what the sweep before it did.
#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    #[serde(flatten)]
    pub report: export::ExportReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<dead_letters::Swept>,
}

/// An export as its schedule and `POST /v1/tasks/export` run it: the sweep of the push
/// dead-letter queue where there is one (not in a dry run), then the export.
pub async fn run_export(
    deps: &Deps,
    options: export::ExportOptions,
    letters: Option<&dyn DeadLetters>,
    payload: &TaskPayload,
    budget: Budget,
) -> Result<ExportOutcome, StoreError> {
    let swept = match (letters, payload.dry_run) {
        (Some(letters), false) => {
            let pusher = Pusher {
                store: deps.store.clone(),
                clients: deps.clients.clone(),
            };
            Some(dead_letters::sweep(letters, &pusher, budget).await)
        }
        _ => None,
    };
    let report = export::Exporter::new(deps, options)
        .run(payload, budget)
        .await?;
    Ok(ExportOutcome {
        report,
        dead_letters: swept,
    })
}

/// The api's task runner: `POST /v1/tasks/{import|export}` runs the functions' code
/// here, within `budget` (API Gateway answers within 30 s: an import that needs longer
/// records its cursor and the next request, or the schedule, carries on).
pub struct Tasks {
    pub deps: Deps,
    pub import: import::ImportOptions,
    pub export: export::ExportOptions,
    pub budget: Duration,
    /// The push dead-letter queue the export sweeps, where this function has one.
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// Where an unfinished import is handed on (the import function's bus); the api
    /// has none: its next request resumes from the run's cursor.
    pub continuations: Option<Arc<dyn Continuations>>,
}

impl Tasks {
    pub fn new(deps: Deps) -> Tasks {
        Tasks {
            deps,
            import: import::ImportOptions::default(),
            export: export::ExportOptions::default(),
            budget: API_TASK_BUDGET,
            dead_letters: None,
            continuations: None,
        }
    }

    /// Run a task on `payload` within `budget`: the code behind both the functions
    /// (schedule, continuation, manual payload) and `POST /v1/tasks/{import|export}`.
    /// The answer is the task's report.
    pub async fn run_payload(
        &self,
        task: TaskKind,
        payload: &TaskPayload,
        budget: Budget,
    ) -> Result<Value, StoreError> {
        let deps = &self.deps;
        Ok(match task {
            TaskKind::Import => {
                let handed_on = self.continuations.as_deref();
                let r = run_import(deps, self.import.clone(), handed_on, payload, budget).await?;
                serde_json::to_value(r)
            }
            TaskKind::Export => {
                let letters = self.dead_letters.as_deref();
                let r = run_export(deps, self.export.clone(), letters, payload, budget).await?;
                serde_json::to_value(r)
            }
        }
        .unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl TaskRunner for Tasks {
    async fn run(&self, task: TaskKind, request: TaskRequest) -> Result<Value, String> {
        // Within the invocation's deadline (less a margin for the answer), at most
        // `self.budget`.
        let budget = match request.deadline_ms {
            Some(d) => Budget::lambda(d, self.budget),
            None => Budget::of(self.budget),
        };
        let payload = TaskPayload::from(request);
        self.run_payload(task, &payload, budget)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Outbox entries an import invocation publishes on its way out; export (and every
/// push) publishes the rest.
pub const PUBLISH_AFTER_IMPORT: usize = 500;

/// Publish up to `limit` changes from the outbox through the bus (so push carries what
/// an import stored, as it carries a webhook's). Returns how many went out.
pub async fn publish_changes(deps: &Deps, limit: usize) -> u64 {
    let Some(bus) = &deps.bus else {
        return 0;
    };
    let (published, failed) =
        crate::app::outbox::drain(deps.store.as_ref(), bus.as_ref(), limit).await;
    if published + failed > 0 {
        tracing::info!(published, failed, "changes published from the outbox");
    }
    published as u64
}

/// The users a run covers: the one asked for, or all.
pub(crate) async fn users(
    store: &dyn Store,
    only: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    match only {
        Some(u) => Ok(store
            .get_user(u)
            .await?
            .map(|u| vec![u.name])
            .unwrap_or_default()),
        None => Ok(store
            .list_users()
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schedule_events_are_plain_runs() {
        let scheduler = json!({
            "version": "0", "id": "1", "detail-type": "Scheduled Event",
            "source": "aws.scheduler", "detail": "{}"
        });
        assert_eq!(TaskPayload::from_event(&scheduler), TaskPayload::default());
        assert_eq!(TaskPayload::from_event(&json!({})), TaskPayload::default());
        assert_eq!(
            TaskPayload::from_event(&json!("nonsense")),
            TaskPayload::default()
        );
    }

    #[test]
    fn manual_and_continuation_payloads() {
        let p = TaskPayload::from_event(&json!({"user": "ana", "dry_run": true}));
        assert_eq!(p.user.as_deref(), Some("ana"));
        assert!(p.dry_run);
        let cont = TaskPayload {
            backend: Some("plex".into()),
            pending: vec![BackendRef {
                user: "ana".into(),
                backend: "jf".into(),
            }],
            ..Default::default()
        };
        let text = serde_json::to_string(&cont).unwrap();
        let as_object = json!({"detail-type": "ImportPage", "detail": serde_json::from_str::<Value>(&text).unwrap()});
        let as_string = json!({"detail-type": "ImportPage", "detail": text});
        assert_eq!(TaskPayload::from_event(&as_object), cont);
        assert_eq!(TaskPayload::from_event(&as_string), cont);
    }

    #[test]
    fn budgets() {
        assert!(!Budget::unlimited().expired());
        assert!(Budget::of(Duration::ZERO).expired());
        let past = chrono::Utc::now().timestamp_millis() as u64 - 1000;
        assert!(Budget::lambda(past, Duration::from_secs(60)).expired());
        // cargo lambda watch: the timeout itself.
        assert!(!Budget::lambda(600_000, Duration::from_secs(60)).expired());
        let later = chrono::Utc::now().timestamp_millis() as u64 + 30_000;
        assert!(!Budget::lambda(later, Duration::from_secs(600)).expired());
    }
}
