//! CloudWatch metrics as log lines (Embedded Metric Format): one JSON object per line
//! on stdout, which CloudWatch Logs turns into metrics of namespace `watchstate`, no
//! API call, no extra permission. Emitted on AWS only: a process's entry point calls
//! [`install`] with its deployment (`WATCHSTATE_DEPLOYMENT=aws`); until then, and
//! locally, nothing is written and the emulation's terminal stays readable.
//!
//! Metrics: `Deliveries` by `Status` (webhook), `Pushes` by `Outcome` (push),
//! `OutboxDepth` (what a drain found waiting, up to its limit), `DeadLettersSwept` by
//! `Result` (export).

use serde_json::{json, Value};

pub const NAMESPACE: &str = "watchstate";

/// One EMF record: `metric` = `value` (a count) with one dimension.
pub fn record(metric: &str, dimension: (&str, &str), value: f64, at_ms: i64) -> Value {
    let (dim, dim_value) = dimension;
    let mut v = json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[dim]],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        },
    });
    v[dim] = json!(dim_value);
    v[metric] = json!(value);
    v
}

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Write metrics from now on if `deployment` is AWS (once per process, with the log
/// subscriber).
pub fn install(deployment: crate::domain::model::Deployment) {
    let on = deployment == crate::domain::model::Deployment::Aws;
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

fn emit(metric: &str, dimension: (&str, &str), value: f64) {
    if !enabled() {
        return;
    }
    let line = record(
        metric,
        dimension,
        value,
        chrono::Utc::now().timestamp_millis(),
    );
    // Straight to stdout: the log line must be the EMF object itself.
    println!("{line}");
}

/// A webhook delivery ended with `status` (`stored`, `ignored`, an error code).
pub fn delivery(status: crate::domain::model::DeliveryStatus) {
    emit("Deliveries", ("Status", status.as_str()), 1.0);
}

/// Push reached a backend with `outcome` (`applied`, `in_sync`, `failed`, ...).
pub fn push(outcome: &str, count: usize) {
    if count > 0 {
        emit("Pushes", ("Outcome", outcome), count as f64);
    }
}

/// A drain found `n` changes waiting in the outbox.
pub fn outbox_depth(n: usize) {
    emit("OutboxDepth", ("Store", "outbox"), n as f64);
}

/// The dead-letter sweep ended `result` (`pushed`, `kept`, `dropped`) for `n` changes.
pub fn dead_letters_swept(result: &str, n: u64) {
    if n > 0 {
        emit("DeadLettersSwept", ("Result", result), n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_written_only_once_installed_on_aws() {
        use crate::domain::model::Deployment;
        assert!(!enabled(), "off until the entry point says where it runs");
        install(Deployment::Aws);
        let on_aws = enabled();
        install(Deployment::Local);
        assert!(on_aws);
        assert!(!enabled());
    }

    #[test]
    fn records_are_embedded_metric_format() {
        let r = record("Deliveries", ("Status", "stored"), 1.0, 1_764_000_000_000);
        assert_eq!(r["_aws"]["Timestamp"], 1_764_000_000_000i64);
        let m = &r["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "watchstate");
        assert_eq!(m["Dimensions"], json!([["Status"]]));
        assert_eq!(m["Metrics"][0]["Name"], "Deliveries");
        // The dimension and the metric are top-level members, as EMF requires.
        assert_eq!(r["Status"], "stored");
        assert_eq!(r["Deliveries"], 1.0);
    }
}
