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

/// The admin key and the token secret, read once at cold start: `WATCHSTATE_ADMIN_KEY`
/// if set (local), else the SSM SecureString named by `WATCHSTATE_ADMIN_KEY_PARAMETER`
/// (AWS), so the key never sits in the template or the function's configuration.
pub async fn api_secrets() -> Result<(String, TokenSecret), String> {
    if env("WATCHSTATE_ADMIN_KEY").is_some() {
        return Ok((admin_key(), token_secret()));
    }
    let Some(name) = env("WATCHSTATE_ADMIN_KEY_PARAMETER") else {
        return Ok((String::new(), token_secret()));
    };
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let key = admin_key_from_ssm(&aws_sdk_ssm::Client::new(&conf), &name).await?;
    let secret = env("WATCHSTATE_TOKEN_SECRET").unwrap_or_else(|| key.clone());
    Ok((key, TokenSecret::new(secret)))
}

/// Read (and decrypt) the admin key parameter. The error names the parameter, never
/// its value.
pub async fn admin_key_from_ssm(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read the admin key parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("the admin key parameter {name} is empty"))
}

/// The token secret of the local emulation, unless `WATCHSTATE_TOKEN_SECRET` says
/// otherwise: fixed, so the sample events' tokens work on every laptop. Locally a
/// token's secrecy rests on its backend's random nonce, kept in the data dir.
pub const LOCAL_TOKEN_SECRET: &str = "watchstate-local";

pub fn public_url() -> Option<String> {
    env("WATCHSTATE_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string())
}
