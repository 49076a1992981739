//! The server master key and secrets sealed at rest under it (ChaCha20-Poly1305).
//!
//! Used by the webhooks (signing secrets) and the engine (dialect credentials); it lives in
//! its own small crate so that neither has to depend on the other.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Environment variable holding the master key: 64 hex characters (32 bytes).
pub const MASTER_KEY_VAR: &str = "COFFER_MASTER_KEY";
/// File in `data_dir` holding the master key when the variable is unset (created 0600).
pub const MASTER_KEY_FILE: &str = "master.key";
const SEALED_PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{MASTER_KEY_VAR} must be 64 hexadecimal characters (32 bytes)")]
    BadVariable,
    #[error("master key file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("a sealed secret cannot be opened: wrong master key or corrupt data")]
    Open,
    #[error("OS random source unavailable")]
    Random,
}

/// The server master key. Never logged.
#[derive(Clone)]
pub struct MasterKey(Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Key::from(bytes))
    }

    pub fn from_hex(raw: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(raw.trim()).map_err(|_| KeyError::BadVariable)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadVariable)?;
        Ok(Self::from_bytes(bytes))
    }

    /// `COFFER_MASTER_KEY` if set, else `data_dir/master.key`, created with mode 0600 and a
    /// fresh random key on first start.
    pub fn load(data_dir: &Path) -> Result<Self, KeyError> {
        if let Ok(raw) = std::env::var(MASTER_KEY_VAR) {
            return Self::from_hex(&raw);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let file_err = |detail: String| KeyError::File {
            path: path.display().to_string(),
            detail,
        };
        match std::fs::read_to_string(&path) {
            Ok(raw) => Self::from_hex(&raw).map_err(|_| file_err("not 64 hex characters".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| file_err(e.to_string()))?;
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|_| KeyError::Random)?;
                write_private(&path, &hex::encode(bytes)).map_err(|e| file_err(e.to_string()))?;
                Ok(Self::from_bytes(bytes))
            }
            Err(e) => Err(file_err(e.to_string())),
        }
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &str) -> Result<String, KeyError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| KeyError::Random)?;
        let cipher = ChaCha20Poly1305::new(&self.0);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| KeyError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<String, KeyError> {
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or(KeyError::Open)?;
        if raw.len() < 12 {
            return Err(KeyError::Open);
        }
        let (nonce, body) = raw.split_at(12);
        let cipher = ChaCha20Poly1305::new(&self.0);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| KeyError::Open)?;
        String::from_utf8(plain).map_err(|_| KeyError::Open)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_roundtrips_and_needs_the_key() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = key.seal("whsec_abc").unwrap();
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            key.seal("whsec_abc").unwrap(),
            "fresh nonce each time"
        );
        assert_eq!(key.open(&sealed).unwrap(), "whsec_abc");
        assert!(MasterKey::from_bytes([8; 32]).open(&sealed).is_err());
        assert!(key.open("v1:AAAA").is_err());
        assert!(key.open("garbage").is_err());
    }

    #[test]
    fn master_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        // The variable may be set by the environment running the tests; only test the file.
        if std::env::var_os(MASTER_KEY_VAR).is_some() {
            return;
        }
        let first = MasterKey::load(dir.path()).unwrap();
        let sealed = first.seal("x").unwrap();
        let again = MasterKey::load(dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(MasterKey::from_hex("abc").is_err());
    }
}
