//! Choosing adapters and secrets from the environment, once per process.
//!
//! - `TABLE_NAME` set: DynamoDB (honouring `AWS_ENDPOINT_URL`); otherwise the embedded
//!   store at `${WATCHSTATE_DATA_DIR:-.watchstate}/watchstate.db`.
//! - `WATCHSTATE_ADMIN_KEY`: the api's bearer key.
//! - `WATCHSTATE_TOKEN_SECRET`: what webhook tokens are derived from (defaults to the
//!   admin key, so rotating the admin key alone also rotates webhook URLs; `make run`
//!   sets [`LOCAL_TOKEN_SECRET`]).
//! - `WATCHSTATE_PUBLIC_URL`: the deployment's base URL, when a custom domain fronts it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::dynamo::DynamoStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::token::TokenSecret;

pub fn data_dir() -> PathBuf {
    std::env::var_os("WATCHSTATE_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".watchstate"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The store this process uses.
pub async fn store() -> Result<Arc<dyn Store>, StoreError> {
    if let Some(table) = env("TABLE_NAME") {
        // Region, credentials and `AWS_ENDPOINT_URL` (moto locally) come from the
        // environment, as in every AWS SDK.
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        tracing::info!(
            table = %table,
            endpoint = env("AWS_ENDPOINT_URL").as_deref().unwrap_or("AWS"),
            "DynamoDB store"
        );
        let client = aws_sdk_dynamodb::Client::new(&conf);
        return Ok(Arc::new(DynamoStore::new(client, table)));
    }
    let path = data_dir().join("watchstate.db");
    tracing::info!(path = %path.display(), "embedded store");
    Ok(Arc::new(SqliteStore::open(&path)?))
}

pub fn admin_key() -> String {
    env("WATCHSTATE_ADMIN_KEY").unwrap_or_default()
}

pub fn token_secret() -> TokenSecret {
    TokenSecret::new(env("WATCHSTATE_TOKEN_SECRET").unwrap_or_else(admin_key))
}

/// The token secret of the local emulation, unless `WATCHSTATE_TOKEN_SECRET` says
/// otherwise: fixed, so the sample events' tokens work on every laptop. Locally a
/// token's secrecy rests on its backend's random nonce, kept in the data dir.
pub const LOCAL_TOKEN_SECRET: &str = "watchstate-local";

pub fn public_url() -> Option<String> {
    env("WATCHSTATE_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string())
}
