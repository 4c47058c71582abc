//! The in-process bus of the local emulation: a change is handed straight to the
//! push code in the same process.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Bus, BusError};
use crate::model::StateChange;

/// What consumes changes in process (the push function's handler).
#[async_trait]
pub trait ChangeHandler: Send + Sync {
    async fn handle(&self, change: &StateChange) -> Result<(), String>;
}

pub struct LocalBus {
    handler: Arc<dyn ChangeHandler>,
}

impl LocalBus {
    pub fn new(handler: Arc<dyn ChangeHandler>) -> Self {
        LocalBus { handler }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, change: &StateChange) -> Result<(), BusError> {
        self.handler
            .handle(change)
            .await
            .map_err(BusError::Unavailable)
    }
}
