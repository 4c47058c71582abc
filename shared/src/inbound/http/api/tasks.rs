//! `/v1/tasks`: running an import or export within the request, and their runs.

#[allow(unused_imports)]
use super::*;

impl ApiService {
    pub(super) async fn run_task(&self, task: TaskKind, req: &Request) -> ApiResult {
        let request: TaskRequest = if req.body().iter().all(u8::is_ascii_whitespace) {
            TaskRequest::default()
        } else {
            serde_json::from_slice(req.body())
                .map_err(|e| bad_request(format!("task body: {e}")))?
        };
        let request = TaskRequest {
            deadline_ms: req
                .extensions()
                .get::<crate::inbound::http::Deadline>()
                .map(|d| d.0),
            ..request
        };
        let Some(tasks) = &self.tasks else {
            return Err(error_reply(
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                format!("the {task} task is not available in this deployment yet"),
            ));
        };
        match tasks.run(task, request).await {
            Ok(report) => Ok(json_reply(StatusCode::OK, &report)),
            Err(e) => Err(error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e,
            )),
        }
    }

    pub(super) async fn task_runs(&self, q: &[(String, String)]) -> ApiResult {
        let limit = query_get(q, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(50);
        let runs = self.store.list_task_runs(limit).await.map_err(store_err)?;
        Ok(json_reply(StatusCode::OK, &json!({"runs": runs})))
    }
}
