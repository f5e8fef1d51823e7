//! The host's secret key. It is never used directly: HKDF-SHA256 derives one subkey per purpose
//! (sealing secret inputs at rest with AES-256-GCM, signing run-scoped tokens with HMAC-SHA256,
//! authenticating the compiled plugins in the runtime's cache), so no purpose's output can be
//! replayed as another's. Every replica sharing the key derives the same subkeys, so it can open
//! and check what another wrote.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::path::Path;

/// The HKDF `info` label of each subkey. Changing one invalidates what was made under it
/// (sealed inputs of runs in flight, outstanding run tokens, cached compiled plugins).
const SEAL_LABEL: &[u8] = b"portico seal v1";
const RUN_TOKEN_LABEL: &[u8] = b"portico run-token v1";
const ARTIFACT_MAC_LABEL: &[u8] = b"portico artifact-mac v1";

/// A 256-bit key and the subkeys derived from it. `Debug` never prints them.
#[derive(Clone)]
pub struct HostKey {
    root: [u8; 32],
    seal: [u8; 32],
    run_token: [u8; 32],
    artifact_mac: [u8; 32],
}

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

/// HKDF-SHA256 (no salt: the input is already a uniformly random key) expanded for `label`.
fn derive(root: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, root)
        .expand(label, &mut key)
        .unwrap_or_else(|e| panic!("HKDF-SHA256 yields up to 8160 bytes, not 32? {e}"));
    key
}

impl HostKey {
    /// The key `root` and its subkeys.
    fn from_root(root: [u8; 32]) -> Self {
        Self {
            seal: derive(&root, SEAL_LABEL),
            run_token: derive(&root, RUN_TOKEN_LABEL),
            artifact_mac: derive(&root, ARTIFACT_MAC_LABEL),
            root,
        }
    }

    /// A fresh random key (tests, or a server whose runs need not outlive it).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
        Self::from_root(key)
    }

    /// The key as 64 hex digits (for a secret stored the same way, e.g. the webhook secret).
    pub fn to_hex(&self) -> String {
        hex::encode(self.root)
    }

    /// A key from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Self::from_root(key))
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
                let mut file = match options.open(path) {
                    Ok(file) => file,
                    // Another process made it first (two `plugin test`s at once): use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(path).map_err(file_error)?;
                        return Self::from_hex(&text);
                    }
                    Err(e) => return Err(file_error(e)),
                };
                std::io::Write::write_all(&mut file, hex::encode(key.root).as_bytes())
                    .map_err(file_error)?;
                Ok(key)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// Encrypts `value` with a fresh nonce: `base64(nonce || ciphertext)`. `context` (the run
    /// id) is bound in as associated data, so a blob cannot be moved to another run.
    pub fn seal(&self, value: &Value, context: &str) -> String {
        let cipher = Aes256Gcm::new(&self.seal.into());
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
        let cipher = Aes256Gcm::new(&self.seal.into());
        let payload = aes_gcm::aead::Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plain = cipher.decrypt(Nonce::from_slice(nonce), payload).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// The key the runtime authenticates its cached compiled plugins with
    /// (`RuntimeConfig::artifact_key`): replicas sharing the host key and the cache trust each
    /// other's artifacts, and nothing else.
    pub fn artifact_key(&self) -> [u8; 32] {
        self.artifact_mac
    }

    /// The first 20 bytes of HMAC-SHA256 of `run_id` under the run-token subkey, in hex.
    fn run_signature(&self, run_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.run_token)
            .unwrap_or_else(|e| panic!("HMAC takes any key length: {e}"));
        mac.update(run_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..20])
    }

    /// A token that lets an external system report on one run (and nothing else):
    /// `prr_<run id>.<signature>`.
    pub fn run_token(&self, run_id: &str) -> String {
        format!("prr_{run_id}.{}", self.run_signature(run_id))
    }

    /// The run a [`HostKey::run_token`] is for, when it is genuine.
    pub fn check_run_token(&self, token: &str) -> Option<String> {
        let (run_id, signature) = token.strip_prefix("prr_")?.rsplit_once('.')?;
        let expected = self.run_signature(run_id);
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
    fn each_purpose_has_its_own_subkey_and_none_is_the_host_key() {
        let key = HostKey::random();
        let keys = [key.root, key.seal, key.run_token, key.artifact_mac];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // A blob sealed under the host key itself (as before subkeys) does not open.
        let sealed = key.seal(&json!("x"), "r_1");
        let raw = B64.decode(&sealed).unwrap();
        let (nonce, ciphertext) = raw.split_at(12);
        let with_root = Aes256Gcm::new(&key.root.into()).decrypt(
            Nonce::from_slice(nonce),
            aes_gcm::aead::Payload {
                msg: ciphertext,
                aad: b"r_1",
            },
        );
        assert!(with_root.is_err(), "sealing does not use the host key");
    }

    #[test]
    fn subkeys_are_hkdf_sha256_of_the_host_key_with_one_label_per_purpose() {
        // Computed independently with Python's hmac module (RFC 5869, empty salt, one block):
        // prk = HMAC(b"\0" * 32, key); okm = HMAC(prk, label + b"\x01").
        let key = HostKey::from_hex(&hex::encode((0u8..32).collect::<Vec<_>>())).unwrap();
        assert_eq!(
            hex::encode(key.seal),
            "0e1841960408186c89db772baa2936d171b96a418578465566e33a5ddcbf7e54"
        );
        assert_eq!(
            hex::encode(key.run_token),
            "a47dc039d0a5fd6df1e40f8985e53cce247eafa71d4a0f4c5f1df85830964958"
        );
        assert_eq!(
            hex::encode(key.artifact_key()),
            "ee145a9ef620beeb4aacd05707d2d9648dab2f49df8189a3524d6efa3a67b073"
        );
        assert_eq!(
            HostKey::from_hex(&key.to_hex()).unwrap().seal,
            key.seal,
            "the same host key, the same subkeys (replicas agree)"
        );
    }

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host-key");
        let a = HostKey::load_or_create(&path).unwrap();
        let b = HostKey::load_or_create(&path).unwrap();
        assert_eq!(a.root, b.root);
        assert_eq!(a.artifact_key(), b.artifact_key());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            a.to_hex(),
            "the file holds the host key itself, as 64 hex digits"
        );
        assert!(matches!(HostKey::from_hex("abc"), Err(KeyError::Malformed)));
    }
}
