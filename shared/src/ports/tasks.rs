//! The TaskRunner port: what `POST /v1/tasks/{import|export}` asks of the scheduled
//! tasks ([`crate::app::tasks::Tasks`] runs the functions' own code), and the request
//! it passes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which scheduled task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Import,
    Export,
}

impl TaskKind {
    /// The name in URLs, run records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Import => "import",
            TaskKind::Export => "export",
        }
    }

    pub fn parse(name: &str) -> Option<TaskKind> {
        match name {
            "import" => Some(TaskKind::Import),
            "export" => Some(TaskKind::Export),
            _ => None,
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task run asked for through the api.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    pub user: Option<String>,
    pub backend: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Export only: compare everything, not only what changed since the last export.
    #[serde(default)]
    pub full: bool,
    /// The invocation's deadline (epoch ms, from Lambda), never from the body: the
    /// task's budget is taken from it.
    #[serde(skip)]
    pub deadline_ms: Option<u64>,
}

/// Runs a task for `POST /v1/tasks/{import|export}` (the import/export functions'
/// code, plugged in by the api function). The answer is the task's report; an error
/// says why it could not run.
#[async_trait]
pub trait TaskRunner: Send + Sync {
    async fn run(&self, task: TaskKind, request: TaskRequest) -> Result<Value, String>;
}
