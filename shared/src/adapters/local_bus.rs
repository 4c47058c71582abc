//! The in-process bus of the local emulation: a change is handed straight to the
//! push code in the same process.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::model::StateChange;
use crate::ports::bus::{Bus, BusError, ChangeHandler};

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

    async fn publish_batch(&self, changes: &[StateChange]) -> Vec<Result<(), BusError>> {
        self.handler
            .handle_batch(changes)
            .await
            .into_iter()
            .map(|r| r.map_err(BusError::Unavailable))
            .collect()
    }
}
