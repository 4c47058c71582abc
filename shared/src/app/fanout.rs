//! Fan-out: a batch of state changes (an SQS batch on AWS, a drain's or an import's
//! changes in process) carried to the users' other backends, gently.
//!
//! Each (change, target backend) pair goes into the lane of the target's media server
//! (its URL: several people's backends can be one server). A lane runs its pairs one
//! after another, lanes run concurrently, all under one deadline: one media server
//! never sees more than one call at a time from a batch, and a slow server holds up
//! only its own lane. A change fails (and is received again, then parked in the
//! dead-letter queue) when any of its pairs failed in a way a retry can fix, or was
//! not reached before the deadline.
//!
//! Each pair is [`Pusher::push_to`] with one backend, so the rules of push (act on the
//! item's current state, only where the backend differs) hold unchanged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::app::push::{Outcome, PushReport, Pusher};
use crate::domain::model::{Backend, StateChange};

/// What a batch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchReport {
    /// Indexes (into the batch) of the changes to deliver again.
    pub failed: BTreeSet<usize>,
    /// One report per change, the backends of all its pairs merged.
    pub reports: Vec<PushReport>,
    /// Lanes (distinct media servers) the batch used.
    pub lanes: usize,
}

/// A lane's key: the media server a backend talks to.
fn server_of(b: &Backend) -> String {
    b.url.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Push `changes` with one call at a time per media server, different servers
/// concurrently, stopping at `deadline` (what is left is failed, to come again).
pub async fn push_batch(
    pusher: &Pusher,
    changes: &[StateChange],
    deadline: Option<Instant>,
) -> BatchReport {
    let mut report = BatchReport {
        reports: changes
            .iter()
            .map(|c| PushReport {
                change: c.id.clone(),
                item_id: c.item_id.clone(),
                backends: Vec::new(),
            })
            .collect(),
        ..Default::default()
    };
    // Each user's backends, read once per batch.
    let mut backends: HashMap<&str, Option<Vec<Backend>>> = HashMap::new();
    for c in changes {
        if backends.contains_key(c.user.as_str()) {
            continue;
        }
        let listed = match pusher.store.list_backends(&c.user).await {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(user = %c.user, error = %e, "cannot read the user's backends");
                None
            }
        };
        backends.insert(c.user.as_str(), listed);
    }
    let mut lanes: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        let Some(list) = backends.get(c.user.as_str()).and_then(Option::as_ref) else {
            report.failed.insert(i);
            continue;
        };
        for b in list
            .iter()
            .filter(|b| b.export.enabled && Some(&b.name) != c.origin.as_ref())
        {
            lanes
                .entry(server_of(b))
                .or_default()
                .push((i, b.name.clone()));
        }
    }
    report.lanes = lanes.len();
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let runs = lanes
        .into_values()
        .map(|pairs| run_lane(pusher, changes, pairs, deadline));
    for lane in futures_util::future::join_all(runs).await {
        for (i, backend, outcome) in lane {
            let retry = match &outcome {
                None => true,
                Some(Outcome::Failed { retryable, .. }) => *retryable,
                Some(_) => false,
            };
            if retry {
                report.failed.insert(i);
            }
            let outcome = outcome.unwrap_or_else(|| Outcome::Failed {
                reason: "not reached before the invocation's deadline".into(),
                retryable: true,
            });
            *outcomes.entry(outcome_name(&outcome)).or_default() += 1;
            report.reports[i].backends.push((backend, outcome));
        }
    }
    for (name, n) in outcomes {
        crate::app::metrics::push(name, n);
    }
    report
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Applied { .. } => "applied",
        Outcome::InSync => "in_sync",
        Outcome::RemoteNewer => "remote_newer",
        Outcome::NotFound => "not_found",
        Outcome::Skipped { .. } => "skipped",
        Outcome::Failed { .. } => "failed",
    }
}

/// One media server's pairs, in order. `None`: not done (deadline, store error).
async fn run_lane(
    pusher: &Pusher,
    changes: &[StateChange],
    pairs: Vec<(usize, String)>,
    deadline: Option<Instant>,
) -> Vec<(usize, String, Option<Outcome>)> {
    let mut out = Vec::with_capacity(pairs.len());
    for (i, backend) in pairs {
        let only = BTreeSet::from([backend.clone()]);
        let push = pusher.push_to(&changes[i], Some(&only));
        let result = match deadline {
            Some(d) if Instant::now() >= d => None,
            Some(d) => tokio::time::timeout_at(d, push).await.ok(),
            None => Some(push.await),
        };
        let outcome = match result {
            // No outcome from a finished push: the backend is no target any more.
            Some(Ok(r)) => Some(
                r.backends
                    .into_iter()
                    .find(|(b, _)| *b == backend)
                    .map(|(_, o)| o)
                    .unwrap_or_else(|| Outcome::Skipped {
                        reason: "backend no longer a target".into(),
                    }),
            ),
            Some(Err(e)) => {
                tracing::warn!(change = %changes[i].id, error = %e, "store error during push");
                None
            }
            None => None,
        };
        out.push((i, backend, outcome));
    }
    out
}

/// What is left of an invocation whose deadline Lambda gives (epoch ms). `cargo
/// lambda watch` passes the function's timeout instead of an epoch time: a "deadline"
/// before 2000 is read as time left.
pub fn time_left(deadline_epoch_ms: u64) -> Duration {
    const YEAR_2000_MS: u64 = 946_684_800_000;
    if deadline_epoch_ms < YEAR_2000_MS {
        return Duration::from_millis(deadline_epoch_ms);
    }
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

/// The deadline of an invocation from Lambda's (epoch ms, see [`time_left`]), less a
/// margin for the answer.
pub fn deadline_of(deadline_epoch_ms: u64) -> Instant {
    let left = time_left(deadline_epoch_ms);
    let margin = (left / 10).clamp(Duration::from_millis(500), Duration::from_secs(5));
    Instant::now() + left.saturating_sub(margin)
}
