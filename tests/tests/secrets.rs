//! Media server tokens at rest (issue 10): sealed with a KMS key on AWS (moto here)
//! bound to user and backend, with the data dir's key file locally; exactly one
//! record holds a token; plain-text records from before are sealed on first read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use chrono::Utc;
use e2e::moto::Moto;
use watchstate::adapters::secrets::{is_sealed, KmsKey, LocalKey, SealedStore};
use watchstate::adapters::store::dynamo::{create_table, DynamoStore};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::domain::model::{Backend, BackendKind, BackendOptions, TaskOptions};
use watchstate::ports::store::Store;

const TOKEN: &str = "plex-account-token-AbCdEf123";

fn backend(user: &str, name: &str, hash: &str) -> Backend {
    let now = Utc::now();
    Backend {
        user: user.into(),
        name: name.into(),
        kind: BackendKind::Plex,
        url: "https://plex.example:32400".into(),
        token: TOKEN.into(),
        server_id: None,
        user_id: None,
        options: BackendOptions::default(),
        import: TaskOptions::default(),
        export: TaskOptions::default(),
        webhook_nonce: "n".into(),
        webhook_token_hash: hash.into(),
        created_at: now,
        updated_at: now,
    }
}

/// Every string attribute of every record, concatenated (what someone with the
/// table would see).
async fn raw_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> String {
    let out = ddb.scan().table_name(table).send().await.expect("scan");
    let mut all = String::new();
    for r in out.items() {
        for v in r.values() {
            if let AttributeValue::S(s) = v {
                all.push_str(s);
                all.push('\n');
            }
        }
    }
    all
}

/// What our KMS client sends: (operation, EncryptionContext) of every request, read
/// from the request body on its way to moto (whose KMS ignores the context; AWS KMS
/// refuses a Decrypt whose context differs from the Encrypt's).
#[derive(Debug, Clone, Default)]
struct Contexts(Arc<Mutex<Vec<Sent>>>);

/// One KMS request: its operation and encryption context.
type Sent = (String, BTreeMap<String, String>);

impl Intercept for Contexts {
    fn name(&self) -> &'static str {
        "Contexts"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let req = context.request();
        let op = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        let body: serde_json::Value =
            serde_json::from_slice(req.body().bytes().unwrap_or_default())?;
        let ctx = serde_json::from_value(body["EncryptionContext"].clone()).unwrap_or_default();
        self.0.lock().unwrap().push((op, ctx));
        Ok(())
    }
}

fn context(user: &str, backend: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("user".to_string(), user.to_string()),
        ("backend".to_string(), backend.to_string()),
    ])
}

/// The same behaviour over either store and cipher.
/// `checks_binding`: moto's KMS does not check the encryption context on Decrypt (AWS
/// KMS does), so there a token moved to another backend opens, and the caller checks
/// the context each request carried instead.
async fn tokens_are_sealed_bound_and_migrated(
    inner: Arc<dyn Store>,
    sealed: Arc<dyn Store>,
    checks_binding: bool,
) {
    sealed
        .put_backend(&backend("ana", "plex", "h1"))
        .await
        .unwrap();
    let stored = inner.get_backend("ana", "plex").await.unwrap().unwrap();
    assert!(is_sealed(&stored.token), "stored as {}", stored.token);
    assert!(!stored.token.contains(TOKEN));
    // Functions that call media servers get it back.
    assert_eq!(
        sealed
            .get_backend("ana", "plex")
            .await
            .unwrap()
            .unwrap()
            .token,
        TOKEN
    );
    assert_eq!(sealed.list_backends("ana").await.unwrap()[0].token, TOKEN);
    // The webhook path gets no token at all.
    assert_eq!(
        sealed
            .backend_by_token_hash("h1")
            .await
            .unwrap()
            .unwrap()
            .token,
        ""
    );

    // A sealed token moved onto another person's backend does not open.
    let mut stolen = backend("bob", "plex", "h2");
    stolen.token = stored.token.clone();
    inner.put_backend(&stolen).await.unwrap();
    // (moto's KMS opens it: there the context on the wire is checked instead.)
    let opened = sealed.get_backend("bob", "plex").await;
    if checks_binding {
        assert!(opened.is_err());
    }

    // A record from before (plain text) is read as it is, and sealed on the way.
    inner
        .put_backend(&backend("cy", "plex", "h3"))
        .await
        .unwrap();
    assert_eq!(
        sealed
            .get_backend("cy", "plex")
            .await
            .unwrap()
            .unwrap()
            .token,
        TOKEN
    );
    let migrated = inner.get_backend("cy", "plex").await.unwrap().unwrap();
    assert!(is_sealed(&migrated.token), "migrated: {}", migrated.token);
    assert_eq!(
        sealed
            .get_backend("cy", "plex")
            .await
            .unwrap()
            .unwrap()
            .token,
        TOKEN
    );
}

#[tokio::test]
async fn on_aws_tokens_are_sealed_with_the_kms_key() {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let conf = moto.sdk_config();
    let kms = aws_sdk_kms::Client::new(&conf);
    let key = kms
        .create_key()
        .description("tokens")
        .send()
        .await
        .expect("key")
        .key_metadata
        .expect("metadata")
        .key_id;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    create_table(&ddb, "secrets").await.unwrap();
    let inner: Arc<dyn Store> = Arc::new(DynamoStore::new(ddb.clone(), "secrets"));
    let sent = Contexts::default();
    let watched = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&conf)
            .interceptor(sent.clone())
            .build(),
    );
    let sealed: Arc<dyn Store> = Arc::new(SealedStore::new(
        inner.clone(),
        Arc::new(KmsKey::new(watched, key.clone())),
    ));
    tokens_are_sealed_bound_and_migrated(inner, sealed, false).await;
    // moto cannot refuse the stolen token, so the binding is checked on the wire:
    // every Encrypt and Decrypt names the user and backend of the record, and bob's
    // read of ana's token asks KMS with bob's context (which AWS KMS refuses).
    let sent = sent.0.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![
            ("Encrypt".to_string(), context("ana", "plex")),
            ("Decrypt".to_string(), context("ana", "plex")),
            ("Decrypt".to_string(), context("bob", "plex")),
            ("Encrypt".to_string(), context("cy", "plex")),
            ("Decrypt".to_string(), context("cy", "plex")),
        ],
        "KMS requests and their encryption context"
    );
    // Nowhere in the table, not in the token index either.
    let raw = raw_table(&ddb, "secrets").await;
    assert!(!raw.contains(TOKEN), "a token in clear in the table");
    assert_eq!(
        raw.matches("wsenc:v1:kms:").count(),
        3,
        "one record per backend holds it"
    );
}

#[tokio::test]
async fn locally_tokens_are_sealed_with_the_data_dirs_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchstate.db");
    let inner: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let key = LocalKey::in_dir(dir.path()).unwrap();
    let sealed: Arc<dyn Store> = Arc::new(SealedStore::new(inner.clone(), Arc::new(key)));
    tokens_are_sealed_bound_and_migrated(inner, sealed, true).await;
}
