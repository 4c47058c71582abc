//! Media server tokens at rest (a Plex token is a full account credential): sealed
//! before the store sees them, opened only by the functions that call media servers.
//!
//! - AWS: a customer-managed KMS key (`WATCHSTATE_TOKEN_KEY_ID`), Encrypt/Decrypt with
//!   the encryption context `{user, backend}`, so a sealed token copied onto another
//!   backend does not open.
//! - Locally: ChaCha20-Poly1305 with a random key in the data dir (`token.key`, 0600),
//!   the user and backend as associated data.
//!
//! A sealed token is `wsenc:v1:{kms|local}:{base64}`. [`SealedStore`] wraps a store:
//! it seals on `put_backend`, opens on `get_backend` / `list_backends`, and migrates a
//! plain-text token it reads (records from before) by writing it back sealed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::domain::model::Backend;
use crate::ports::store::{Result, Store, StoreError};

const PREFIX: &str = "wsenc:v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Whether a stored token is sealed (else it is a plain-text token from before).
pub fn is_sealed(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Seals and opens media server tokens, bound to their user and backend.
#[async_trait]
pub trait TokenCipher: Send + Sync {
    async fn seal(&self, user: &str, backend: &str, token: &str) -> Result<String>;
    async fn open(&self, user: &str, backend: &str, sealed: &str) -> Result<String>;
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn body(sealed: &str, scheme: &str) -> Result<Vec<u8>> {
    let rest = sealed
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_prefix(scheme))
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(|| corrupt(format!("token sealed by another scheme than {scheme}")))?;
    B64.decode(rest)
        .map_err(|_| corrupt("sealed token is not base64"))
}

/// The associated data / encryption context of a token.
fn binding(user: &str, backend: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(user.len() + backend.len() + 16);
    for part in [user, backend] {
        v.extend_from_slice(&(part.len() as u64).to_be_bytes());
        v.extend_from_slice(part.as_bytes());
    }
    v
}

/// The local key file's cipher.
pub struct LocalKey {
    cipher: ChaCha20Poly1305,
}

impl LocalKey {
    /// The key in `dir/token.key`, created (random, owner-only) on first use.
    pub fn in_dir(dir: &Path) -> Result<LocalKey> {
        let path = dir.join("token.key");
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => return Err(corrupt(format!("{} is not a 32-byte key", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
                let mut k = vec![0u8; 32];
                getrandom::fill(&mut k).map_err(|e| StoreError::Unavailable(e.to_string()))?;
                write_private(&path, &k)?;
                k
            }
            Err(e) => return Err(StoreError::Unavailable(format!("{}: {e}", path.display()))),
        };
        Ok(LocalKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }
}

fn write_private(path: &Path, key: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    f.write_all(key)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))
}

#[async_trait]
impl TokenCipher for LocalKey {
    async fn seal(&self, user: &str, backend: &str, token: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let aad = binding(user, backend);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt("cannot seal the token"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}local:{}", B64.encode(out)))
    }

    async fn open(&self, user: &str, backend: &str, sealed: &str) -> Result<String> {
        let bytes = body(sealed, "local")?;
        if bytes.len() < 12 {
            return Err(corrupt("sealed token too short"));
        }
        let aad = binding(user, backend);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&bytes[..12]),
                Payload {
                    msg: &bytes[12..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                corrupt(format!(
                    "the token of {user}/{backend} does not open with this data dir's key"
                ))
            })?;
        String::from_utf8(plain).map_err(|_| corrupt("sealed token is not text"))
    }
}

/// The KMS key's cipher (AWS).
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    key_id: String,
    /// Opened tokens by (user, backend, sealed form): a warm function decrypts each
    /// token once. The binding is part of the key, so a sealed token copied onto
    /// another backend still goes to KMS, which refuses its context.
    opened: Mutex<HashMap<(String, String, String), String>>,
}

impl KmsKey {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> KmsKey {
        KmsKey {
            client,
            key_id: key_id.into(),
            opened: Mutex::new(HashMap::new()),
        }
    }
}

fn kms_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    op: &str,
    e: aws_sdk_kms::error::SdkError<E, R>,
) -> StoreError {
    let detail = aws_sdk_kms::error::DisplayErrorContext(&e).to_string();
    match e {
        aws_sdk_kms::error::SdkError::ServiceError(_) => {
            StoreError::Corrupt(format!("KMS {op}: {detail}"))
        }
        _ => StoreError::Unavailable(format!("KMS {op}: {detail}")),
    }
}

#[async_trait]
impl TokenCipher for KmsKey {
    async fn seal(&self, user: &str, backend: &str, token: &str) -> Result<String> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(token.as_bytes()))
            .encryption_context("user", user)
            .encryption_context("backend", backend)
            .send()
            .await
            .map_err(|e| kms_error("Encrypt", e))?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| corrupt("KMS Encrypt gave no ciphertext"))?;
        Ok(format!("{PREFIX}kms:{}", B64.encode(blob.as_ref())))
    }

    async fn open(&self, user: &str, backend: &str, sealed: &str) -> Result<String> {
        let cached = (user.to_string(), backend.to_string(), sealed.to_string());
        if let Some(t) = self
            .opened
            .lock()
            .ok()
            .and_then(|m| m.get(&cached).cloned())
        {
            return Ok(t);
        }
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(body(sealed, "kms")?))
            .encryption_context("user", user)
            .encryption_context("backend", backend)
            .send()
            .await
            .map_err(|e| kms_error("Decrypt", e))?;
        let plain = out
            .plaintext
            .ok_or_else(|| corrupt("KMS Decrypt gave no plaintext"))?;
        let token =
            String::from_utf8(plain.into_inner()).map_err(|_| corrupt("token is not text"))?;
        if let Ok(mut m) = self.opened.lock() {
            if m.len() > 1000 {
                m.clear();
            }
            m.insert(cached, token.clone());
        }
        Ok(token)
    }
}

/// A store whose backends' tokens are sealed at rest (see the module docs).
pub struct SealedStore {
    inner: Arc<dyn Store>,
    cipher: Arc<dyn TokenCipher>,
}

impl SealedStore {
    pub fn new(inner: Arc<dyn Store>, cipher: Arc<dyn TokenCipher>) -> SealedStore {
        SealedStore { inner, cipher }
    }

    async fn sealed(&self, b: &Backend) -> Result<Backend> {
        if b.token.is_empty() || is_sealed(&b.token) {
            return Ok(b.clone());
        }
        Ok(Backend {
            token: self.cipher.seal(&b.user, &b.name, &b.token).await?,
            ..b.clone()
        })
    }

    /// The backend with its token opened; a plain-text record is written back sealed.
    async fn opened(&self, b: Backend) -> Result<Backend> {
        if b.token.is_empty() {
            return Ok(b);
        }
        if !is_sealed(&b.token) {
            match self.sealed(&b).await {
                Ok(s) => {
                    if let Err(e) = self.inner.put_backend(&s).await {
                        tracing::warn!(user = %b.user, backend = %b.name, error = %e, "token not migrated yet");
                    } else {
                        tracing::info!(user = %b.user, backend = %b.name, "token sealed at rest");
                    }
                }
                Err(e) => {
                    tracing::warn!(user = %b.user, backend = %b.name, error = %e, "token not migrated yet")
                }
            }
            return Ok(b);
        }
        let token = self.cipher.open(&b.user, &b.name, &b.token).await?;
        Ok(Backend { token, ..b })
    }
}

// Tokens are sealed on the way in and opened on the way out; everything else passes.
crate::delegate_store!(impl for SealedStore, self => self.inner, {
    async fn put_backend(&self, backend: &Backend) -> Result<()> {
        self.inner.put_backend(&self.sealed(backend).await?).await
    }
    async fn get_backend(&self, user: &str, name: &str) -> Result<Option<Backend>> {
        match self.inner.get_backend(user, name).await? {
            Some(b) => Ok(Some(self.opened(b).await?)),
            None => Ok(None),
        }
    }
    async fn list_backends(&self, user: &str) -> Result<Vec<Backend>> {
        let mut out = Vec::new();
        for b in self.inner.list_backends(user).await? {
            out.push(self.opened(b).await?);
        }
        Ok(out)
    }
}, [
    put_user, get_user, list_users, delete_backend, backend_by_token_hash, find_item,
    find_items, get_item, list_items, write_item, absorb_item, create_items_batch,
    record_delivery, list_deliveries, get_delivery, pending_changes, ack_change,
    claim_changes, release_change, record_task_run, list_task_runs,
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_key_seals_bound_to_user_and_backend() {
        let dir = tempfile_dir();
        let key = LocalKey::in_dir(&dir).unwrap();
        let sealed = key.seal("ana", "plex", "plex-token-123").await.unwrap();
        assert!(
            is_sealed(&sealed) && !sealed.contains("plex-token-123"),
            "{sealed}"
        );
        assert_eq!(
            key.open("ana", "plex", &sealed).await.unwrap(),
            "plex-token-123"
        );
        assert!(
            key.open("bob", "plex", &sealed).await.is_err(),
            "bound to the user"
        );
        assert!(
            key.open("ana", "jf", &sealed).await.is_err(),
            "and the backend"
        );
        // The same key file opens it again (another process); another dir's does not.
        let again = LocalKey::in_dir(&dir).unwrap();
        assert_eq!(
            again.open("ana", "plex", &sealed).await.unwrap(),
            "plex-token-123"
        );
        let other = LocalKey::in_dir(&tempfile_dir()).unwrap();
        assert!(other.open("ana", "plex", &sealed).await.is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("token.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("watchstate-key-{}", crate::domain::ids::new_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
