//! Task runs: the import/export reports and cursors.

#[allow(unused_imports)]
use super::*;

impl DynamoStore {
    pub(super) async fn record_task_run(&self, run: &TaskRun) -> Result<()> {
        let mut r = key(RUNS, run.id.clone());
        r.insert("data".into(), s(to_json(run)?));
        self.put_record(r).await
    }

    pub(super) async fn list_task_runs(&self, limit: usize) -> Result<Vec<TaskRun>> {
        self.query(RUNS, None, false, Some(limit.clamp(1, 1000)), None)
            .await?
            .iter()
            .map(|r| from_json(r, "data"))
            .collect()
    }
}
