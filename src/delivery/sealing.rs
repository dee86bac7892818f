//! Webhook signing secrets sealed at rest.
//!
//! aupd must read an endpoint's secret back to sign with it, so it cannot
//! hash it like an API token. Instead the store holds it sealed with
//! XChaCha20-Poly1305 under a key kept outside the records: a copy of the
//! store (a backup, a support bundle, a stolen volume snapshot without the
//! key) does not give anyone the power to forge enforcement orders. The
//! endpoint's id is the associated data, so a sealed secret moved to another
//! endpoint does not open.
//!
//! The key comes from `delivery.secret_key` or `delivery.secret_key_file`
//! (64 hex digits; a mounted Kubernetes Secret in production). Without
//! either, aupd creates one on first start beside the store
//! (`webhook-secrets.key`, readable by its owner only).

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::config::DeliverySettings;

/// What a sealed secret starts with in the store.
const PREFIX: &str = "sealed:v1:";

/// Bytes of an XChaCha20 nonce.
const NONCE: usize = 24;

/// The key that seals webhook secrets.
pub struct SecretKey(XChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(********)")
    }
}

/// Why a stored secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not in the sealed format.
    #[error("the stored secret is not sealed")]
    NotSealed,
    /// The key is not the one it was sealed with, or the record was altered
    /// or moved to another endpoint.
    #[error("the stored secret does not open with this key (another key, or an altered record)")]
    WrongKey,
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretKey(XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(
            &bytes,
        )))
    }

    /// A key written as 64 hex digits (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                format!(
                    "must be 64 hex digits (32 bytes), got {} characters",
                    text.chars().count()
                )
            })?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(SecretKey(XChaCha20Poly1305::new(
            chacha20poly1305::Key::from_slice(&key),
        )))
    }

    /// The configured key: `delivery.secret_key` (or its file), else the
    /// key file in the store directory `store_dir`, created on first start.
    pub fn configured(settings: &DeliverySettings, store_dir: &Path) -> anyhow::Result<Self> {
        match &settings.secret_key {
            Some(k) => {
                Self::parse(k.expose()).map_err(|m| anyhow::anyhow!("delivery.secret_key: {m}"))
            }
            None => Self::load_or_create(&store_dir.join("webhook-secrets.key")),
        }
    }

    /// Reads the key at `path`, or creates it there (owner-only) when there
    /// is no file yet.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|m| anyhow::anyhow!("{}: {m}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
                file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())?;
                file.sync_all()?;
                tracing::info!(path = %path.display(), "created the key that seals webhook secrets; back it up apart from the store");
                Ok(SecretKey(XChaCha20Poly1305::new(
                    chacha20poly1305::Key::from_slice(&bytes),
                )))
            }
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// Seals `secret` for the endpoint `endpoint`.
    pub fn seal(&self, endpoint: &str, secret: &str) -> String {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: endpoint.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    /// Makes sure every process sharing `store` seals with the same key.
    /// The first to start leaves a value sealed with its key in the store;
    /// each later one must be able to open it, or it refuses to start (it
    /// could neither open the secrets the others sealed nor have its own
    /// opened by them). The check value reveals nothing about the key.
    pub fn check_shared(&self, store: &crate::store::SharedStore) -> anyhow::Result<()> {
        const AAD: &str = "aupd key check";
        for _ in 0..3 {
            match crate::store::meta::key_check(store.as_ref())? {
                Some(sealed) => {
                    return match self.open(AAD, &sealed) {
                        Ok(_) => Ok(()),
                        Err(_) => anyhow::bail!(
                            "this process's webhook sealing key is not the one the store's other \
                             replicas use: set delivery.secret_key (or delivery.secret_key_file) \
                             to the shared key on every replica"
                        ),
                    };
                }
                None => {
                    if crate::store::meta::record_key_check(store.as_ref(), &self.seal(AAD, AAD))? {
                        return Ok(());
                    }
                    // Another replica recorded its check first: read it.
                }
            }
        }
        anyhow::bail!("could not settle the webhook key check with the other replicas")
    }

    /// Opens a secret sealed for `endpoint`.
    pub fn open(&self, endpoint: &str, stored: &str) -> Result<String, SealError> {
        let body = stored.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| SealError::WrongKey)?;
        if bytes.len() < NONCE {
            return Err(SealError::WrongKey);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = self
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: endpoint.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::WrongKey)
    }

    /// Whether a stored secret is sealed (a store written before sealing
    /// holds plain `whsec_…` secrets).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_sharing_a_store_must_share_the_sealing_key() {
        let dir = tempfile::tempdir().unwrap();
        let store: crate::store::SharedStore =
            std::sync::Arc::new(crate::store::SledStore::open(dir.path()).unwrap());
        let shared = SecretKey::parse(&"ab".repeat(32)).unwrap();
        shared.check_shared(&store).unwrap();
        // A second replica with the same key starts; one with its own does not.
        SecretKey::parse(&"ab".repeat(32))
            .unwrap()
            .check_shared(&store)
            .unwrap();
        let err = SecretKey::generate().check_shared(&store).unwrap_err();
        assert!(
            err.to_string().contains("delivery.secret_key"),
            "the refusal names the setting: {err}"
        );
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_endpoint() {
        let key = SecretKey::generate();
        let sealed = key.seal("ep_1", "whsec_abc");
        assert!(SecretKey::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(key.open("ep_1", &sealed).unwrap(), "whsec_abc");
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(sealed, key.seal("ep_1", "whsec_abc"));
        assert_eq!(key.open("ep_2", &sealed), Err(SealError::WrongKey));
        assert_eq!(
            SecretKey::generate().open("ep_1", &sealed),
            Err(SealError::WrongKey)
        );
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(key.open("ep_1", &altered), Err(SealError::WrongKey));
        assert_eq!(key.open("ep_1", "whsec_abc"), Err(SealError::NotSealed));
    }

    #[test]
    fn a_key_file_is_created_owner_only_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = SecretKey::load_or_create(&path).unwrap();
        let sealed = first.seal("ep", "whsec_x");
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("ep", &sealed).unwrap(), "whsec_x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        let err = SecretKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("must be 64 hex digits"), "{err}");
        assert!(!format!("{first:?}").contains(&std::fs::read_to_string(&path).unwrap()));
    }
}
