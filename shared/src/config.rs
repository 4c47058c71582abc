//! Choosing adapters and secrets from the environment, once per process.
//!
//! - `TABLE_NAME` set: DynamoDB (honouring `AWS_ENDPOINT_URL`); otherwise the embedded
//!   store at `${WATCHSTATE_DATA_DIR:-.watchstate}/watchstate.db`.
//! - `WATCHSTATE_ADMIN_KEY`: the api's bearer key.
//! - `WATCHSTATE_TOKEN_SECRET` (or, on AWS, the SecureString named by
//!   `WATCHSTATE_TOKEN_SECRET_PARAMETER`): what webhook tokens are derived from, apart
//!   from the admin key so rotating that keeps every webhook URL (without either, the
//!   admin key, as deployments before had it; `make run` sets [`LOCAL_TOKEN_SECRET`]).
//! - `WATCHSTATE_PUBLIC_URL`: the deployment's base URL, when a custom domain fronts it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::secrets::SealedStore;
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

/// The store this process uses. Media server tokens are sealed at rest
/// ([`crate::secrets`]): on AWS with the KMS key named by `WATCHSTATE_TOKEN_KEY_ID`
/// (only the functions that call media servers get it; the webhook function never
/// reads a token), locally with the key file in the data dir.
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
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client, table));
        return Ok(match env("WATCHSTATE_TOKEN_KEY_ID") {
            Some(key) => {
                let kms = crate::secrets::KmsKey::new(aws_sdk_kms::Client::new(&conf), key);
                Arc::new(SealedStore::new(store, Arc::new(kms)))
            }
            None => store,
        });
    }
    let dir = data_dir();
    let path = dir.join("watchstate.db");
    tracing::info!(path = %path.display(), "embedded store");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    let key = crate::secrets::LocalKey::in_dir(&dir)?;
    Ok(Arc::new(SealedStore::new(store, Arc::new(key))))
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
/// The token secret likewise: `WATCHSTATE_TOKEN_SECRET`, else the SecureString named
/// by `WATCHSTATE_TOKEN_SECRET_PARAMETER` (the template's own, so rotating the admin
/// key keeps every webhook URL), else the admin key (deployments from before).
pub async fn api_secrets() -> Result<(String, TokenSecret), String> {
    let key_param = env("WATCHSTATE_ADMIN_KEY_PARAMETER");
    let secret_param = env("WATCHSTATE_TOKEN_SECRET_PARAMETER");
    let needs_ssm = (env("WATCHSTATE_ADMIN_KEY").is_none() && key_param.is_some())
        || (env("WATCHSTATE_TOKEN_SECRET").is_none() && secret_param.is_some());
    let ssm = if needs_ssm {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Some(aws_sdk_ssm::Client::new(&conf))
    } else {
        None
    };
    let key = match (env("WATCHSTATE_ADMIN_KEY"), &key_param, &ssm) {
        (Some(k), _, _) => k,
        (None, Some(name), Some(ssm)) => admin_key_from_ssm(ssm, name).await?,
        _ => String::new(),
    };
    let secret = match (env("WATCHSTATE_TOKEN_SECRET"), &secret_param, &ssm) {
        (Some(s), _, _) => s,
        (None, Some(name), Some(ssm)) => secret_from_ssm(ssm, name, "token secret").await?,
        _ => key.clone(),
    };
    Ok((key, TokenSecret::new(secret)))
}

/// Read (and decrypt) the admin key parameter. The error names the parameter, never
/// its value.
pub async fn admin_key_from_ssm(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    secret_from_ssm(ssm, name, "admin key").await
}

/// Read (and decrypt) a SecureString parameter holding the secret called `what`.
pub async fn secret_from_ssm(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    what: &str,
) -> Result<String, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read the {what} parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("the {what} parameter {name} is empty"))
}

/// The token secret of the local emulation, unless `WATCHSTATE_TOKEN_SECRET` says
/// otherwise: fixed, so the sample events' tokens work on every laptop. Locally a
/// token's secrecy rests on its backend's random nonce, kept in the data dir.
pub const LOCAL_TOKEN_SECRET: &str = "watchstate-local";

pub fn public_url() -> Option<String> {
    env("WATCHSTATE_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string())
}
