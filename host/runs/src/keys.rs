//! The host's secret key: it seals secret inputs at rest (AES-256-GCM) and signs run-scoped
//! tokens (HMAC-SHA256), so every replica sharing the key can open and check what another wrote.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::path::Path;

/// A 256-bit key. `Debug` never prints it.
#[derive(Clone)]
pub struct HostKey([u8; 32]);

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostKey(..)")
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key text is not 64 hex digits.
    #[error("the host key must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`")]
    Malformed,
    /// The key file could not be read or written.
    #[error("cannot use the host key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

impl HostKey {
    /// A fresh random key (tests, or a server whose runs need not outlive it).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        Self(key)
    }

    /// The key as 64 hex digits (for a secret stored the same way, e.g. the webhook secret).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A key from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Self(key))
    }

    /// The key in `path`, created (mode 0600) with a random key when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let file_error = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(file_error)?;
                std::io::Write::write_all(&mut file, hex::encode(key.0).as_bytes())
                    .map_err(file_error)?;
                Ok(key)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// Encrypts `value` with a fresh nonce: `base64(nonce || ciphertext)`. `context` (the run
    /// id) is bound in as associated data, so a blob cannot be moved to another run.
    pub fn seal(&self, value: &Value, context: &str) -> String {
        let cipher = Aes256Gcm::new(&self.0.into());
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        let plain = serde_json::to_vec(value).unwrap_or_default();
        let payload = aes_gcm::aead::Payload {
            msg: &plain,
            aad: context.as_bytes(),
        };
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_else(|e| panic!("AES-GCM refused a small message: {e}"));
        let mut out = nonce.to_vec();
        out.extend(sealed);
        B64.encode(out)
    }

    /// Decrypts what [`HostKey::seal`] made for `context`; `None` when the key or context differ
    /// or the blob was altered.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Value> {
        let bytes = B64.decode(sealed).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let cipher = Aes256Gcm::new(&self.0.into());
        let payload = aes_gcm::aead::Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plain = cipher.decrypt(Nonce::from_slice(nonce), payload).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// HMAC-SHA256 of `message` under a key derived for `purpose`.
    fn mac(&self, purpose: &str, message: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|e| panic!("HMAC takes any key length: {e}"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A token that lets an external system report on one run (and nothing else):
    /// `prr_<run id>.<signature>`.
    pub fn run_token(&self, run_id: &str) -> String {
        format!(
            "prr_{run_id}.{}",
            hex::encode(&self.mac("run-token", run_id)[..20])
        )
    }

    /// The run a [`HostKey::run_token`] is for, when it is genuine.
    pub fn check_run_token(&self, token: &str) -> Option<String> {
        let (run_id, signature) = token.strip_prefix("prr_")?.rsplit_once('.')?;
        let expected = hex::encode(&self.mac("run-token", run_id)[..20]);
        // Constant time: the signature is compared byte by byte in full.
        let same = expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then(|| run_id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_run() {
        let key = HostKey::random();
        let sealed = key.seal(&json!({"token": "s3cret"}), "r_1");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open(&sealed, "r_1"), Some(json!({"token": "s3cret"})));
        assert_eq!(key.open(&sealed, "r_2"), None, "bound to its run");
        assert_eq!(
            HostKey::random().open(&sealed, "r_1"),
            None,
            "bound to its key"
        );
    }

    #[test]
    fn a_run_token_names_its_run_and_cannot_be_forged() {
        let key = HostKey::random();
        let token = key.run_token("r_abc");
        assert_eq!(key.check_run_token(&token).as_deref(), Some("r_abc"));
        let forged = token.replace("r_abc", "r_abd");
        assert_eq!(key.check_run_token(&forged), None);
        assert_eq!(HostKey::random().check_run_token(&token), None);
    }

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host-key");
        let a = HostKey::load_or_create(&path).unwrap();
        let b = HostKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        assert!(matches!(HostKey::from_hex("abc"), Err(KeyError::Malformed)));
    }
}
