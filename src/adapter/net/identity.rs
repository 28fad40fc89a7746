//! A node's static X25519 key pair: what the Noise handshake proves besides the cluster key, and
//! what peers pin (`peer_public_keys`).
//!
//! Without `identity_file` a bus makes a fresh pair when it starts; with one, the private key is
//! read from the file, or written to it (new, mode 0600) when the file does not exist, so the
//! public key an operator put in other nodes' allowlists stays valid across restarts. Forward
//! secrecy does not depend on this key: every handshake also uses fresh ephemeral keys.

use crate::config::{parse_hex32, to_hex};
use crate::error::ConfigError;
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// A static key pair.
#[derive(Clone)]
pub struct Identity {
    private: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        write!(f, "Identity({})", self.public_hex())
    }
}

impl Identity {
    /// A new random key pair, from the operating system's generator.
    pub fn generate() -> io::Result<Self> {
        let mut private = [0u8; 32];
        getrandom::getrandom(&mut private).map_err(io::Error::other)?;
        Ok(Self::from_private(private))
    }

    /// The pair of a private key (X25519 clamps any 32 bytes into a valid scalar).
    pub fn from_private(private: [u8; 32]) -> Self {
        let mut public = [0u8; 32];
        if let Some(mut dh) = DefaultResolver.resolve_dh(&DHChoice::Curve25519) {
            dh.set(&private);
            public.copy_from_slice(dh.pubkey());
        }
        Self { private, public }
    }

    /// The identity kept in `path`, created there when the file does not exist. `field` names
    /// the config key in errors.
    pub fn load_or_create(path: &Path, field: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::invalid(field, reason);
        match fs::read_to_string(path) {
            Ok(text) => parse_hex32(text.trim())
                .map(Self::from_private)
                .ok_or_else(|| invalid(format!("{path:?} must hold 64 hex digits (a private key, 32 bytes)"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let identity = Self::generate().map_err(|e| invalid(format!("no random generator: {e}")))?;
                match identity.create(path) {
                    Ok(()) => Ok(identity),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load_or_create(path, field),
                    Err(e) => Err(invalid(format!("cannot create {path:?}: {e}"))),
                }
            }
            Err(e) => Err(invalid(format!("cannot read {path:?}: {e}"))),
        }
    }

    /// Writes the private key to a new file only its owner may read.
    fn create(&self, path: &Path) -> io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(format!("{}\n", to_hex(&self.private)).as_bytes())?;
        file.sync_all()
    }

    /// The private key, for the handshake.
    pub fn private(&self) -> &[u8; 32] {
        &self.private
    }

    /// The public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The public key as 64 hex digits, the form `peer_public_keys` takes.
    pub fn public_hex(&self) -> String {
        to_hex(&self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_the_one_the_handshake_proves() {
        let pair = snow::Builder::new(super::super::transport::Cipher::ChaChaPoly.pattern().parse().unwrap())
            .generate_keypair()
            .unwrap();
        let private: [u8; 32] = pair.private.as_slice().try_into().unwrap();
        assert_eq!(Identity::from_private(private).public().as_slice(), pair.public.as_slice());
    }

    #[test]
    fn a_missing_file_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let made = Identity::load_or_create(&path, "adapter.identity_file").unwrap();
        let again = Identity::load_or_create(&path, "adapter.identity_file").unwrap();
        assert_eq!(made.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        fs::write(&path, "not hex").unwrap();
        let error = Identity::load_or_create(&path, "adapter.identity_file").unwrap_err();
        assert_eq!(error.field(), Some("adapter.identity_file"));
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
}
