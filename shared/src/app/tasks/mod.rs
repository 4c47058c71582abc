//! The scheduled tasks that repair what webhooks missed (DESIGN 1, issue 5):
//!
//! - [`import`]: pull every import-enabled backend's library, page by page, and merge
//!   each movie and episode into the store by the rules; resumable from a cursor.
//! - [`export`]: push stored state to every export-enabled backend where it differs,
//!   through [`crate::app::push::Pusher`].
//!
//! Both run from their Lambda functions (the EventBridge schedules, or a manual
//! invocation with a [`TaskPayload`]) and from `POST /v1/tasks/{import|export}`
//! ([`Tasks`], the api's [`TaskRunner`]). Every run is recorded as a
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

use crate::app::push::ClientFactory;
use crate::inbound::http::api::{TaskRequest, TaskRunner};
use crate::ports::bus::Bus;
use crate::ports::store::Store;

/// What the tasks work with; built once per process.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clients: Arc<dyn ClientFactory>,
    /// Where changes go once stored (export drains the outbox through it).
    pub bus: Option<Arc<dyn Bus>>,
}

impl Deps {
    /// The store and bus of this environment ([`crate::inbound::config`]), real HTTP clients.
    pub async fn from_env() -> Result<Deps, crate::ports::store::StoreError> {
        let store = crate::inbound::config::store().await?;
        let bus = crate::ports::bus::from_env(store.clone()).await;
        Ok(Deps {
            store,
            clients: Arc::new(crate::app::push::HttpClients {
                http: crate::adapters::media::client::http_client(),
                retry: Default::default(),
            }),
            bus,
        })
    }
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
    /// after the last page (a fifth of what is left, at most a minute).
    ///
    /// `cargo lambda watch` passes the function's timeout (ms) instead of an epoch
    /// time: a "deadline" before 2000 is read as time left.
    pub fn lambda(deadline_epoch_ms: u64, cap: Duration) -> Budget {
        const YEAR_2000_MS: u64 = 946_684_800_000;
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let left = if deadline_epoch_ms < YEAR_2000_MS {
            Duration::from_millis(deadline_epoch_ms)
        } else {
            Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
        };
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

/// The api's task runner: `POST /v1/tasks/{import|export}` runs the functions' code
/// here, within `budget` (API Gateway answers within 30 s: an import that needs longer
/// records its cursor and the next request, or the schedule, carries on).
pub struct Tasks {
    pub deps: Deps,
    pub import: import::ImportOptions,
    pub export: export::ExportOptions,
    pub budget: Duration,
}

impl Tasks {
    pub fn new(deps: Deps) -> Tasks {
        Tasks {
            deps,
            import: import::ImportOptions::default(),
            export: export::ExportOptions::default(),
            budget: API_TASK_BUDGET,
        }
    }
}

#[async_trait::async_trait]
impl TaskRunner for Tasks {
    async fn run(&self, task: &str, request: TaskRequest) -> Result<Value, String> {
        // Within the invocation's deadline (less a margin for the answer), at most
        // `self.budget`.
        let budget = match request.deadline_ms {
            Some(d) => Budget::lambda(d, self.budget),
            None => Budget::of(self.budget),
        };
        let payload = TaskPayload::from(request);
        match task {
            "import" => {
                let importer = import::Importer::new(&self.deps, self.import.clone());
                let mut report = importer
                    .run(&payload, budget)
                    .await
                    .map_err(|e| e.to_string())?;
                if !report.dry_run {
                    report.published = publish_changes(&self.deps, PUBLISH_AFTER_IMPORT).await;
                }
                Ok(serde_json::to_value(report).unwrap_or_default())
            }
            "export" => {
                let exporter = export::Exporter::new(&self.deps, self.export.clone());
                exporter
                    .run(&payload, budget)
                    .await
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("no task '{other}'")),
        }
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
        crate::ports::bus::drain(deps.store.as_ref(), bus.as_ref(), limit).await;
    if published + failed > 0 {
        tracing::info!(published, failed, "changes published from the outbox");
    }
    published as u64
}

/// The users a run covers: the one asked for, or all.
pub(crate) async fn users(
    store: &dyn Store,
    only: Option<&str>,
) -> Result<Vec<String>, crate::ports::store::StoreError> {
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

/// Hands an unfinished import to the next invocation by publishing its continuation
/// as an EventBridge event (`Source: watchstate`, `DetailType: ImportPage`) on the
/// bus named by `EVENT_BUS_NAME`; a rule on the bus routes it to the import function.
pub struct Continuation {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl Continuation {
    /// `None` when `EVENT_BUS_NAME` is unset (locally): the cursor then waits on its
    /// run, and the next invocation resumes it.
    pub async fn from_env() -> Option<Continuation> {
        let name = std::env::var(crate::adapters::eventbridge::BUS_ENV)
            .ok()
            .filter(|n| !n.trim().is_empty())?;
        let config =
            aws_sdk_eventbridge::config::Builder::from(crate::inbound::config::sdk_config().await)
                .timeout_config(crate::adapters::eventbridge::timeouts())
                .retry_config(crate::adapters::eventbridge::retries())
                .build();
        Some(Continuation {
            client: aws_sdk_eventbridge::Client::from_conf(config),
            bus_name: name,
        })
    }

    pub async fn publish(&self, payload: &TaskPayload) -> Result<(), String> {
        let detail = serde_json::to_string(payload).map_err(|e| e.to_string())?;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(crate::adapters::eventbridge::SOURCE)
            .detail_type(import::DETAIL_TYPE)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| format!("PutEvents failed: {e}"))?;
        if out.failed_entry_count() > 0 {
            return Err("PutEvents rejected the continuation".into());
        }
        Ok(())
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
