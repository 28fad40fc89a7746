//! Producer identity and dedup ids: `{producer:hex}:{epoch}:{shard}:{sequence}`.
//!
//! Brokers drop a message whose dedup id they have seen, so an id must name one event forever.
//! Within one run the `(shard, sequence)` pair does that. Across runs the producer id stays (so
//! a retried batch from before a crash is still recognised) and the epoch moves forward on every
//! start, so a new run's sequence 0 never collides with an old run's sequence 0. The identity
//! file is updated with write-to-temp, fsync, rename under an exclusive `flock`, so two
//! processes starting at once still get different epochs and a crash leaves the old or the new
//! file, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const HEADER: &str = "purple-rain-producer v1";

/// Who is producing: a stable id and the start count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// Random at first start, then persisted.
    pub id: u64,
    /// 1 at first start, incremented on every later start with the same identity file.
    pub epoch: u64,
}

impl ProducerIdentity {
    /// An identity for this process only (no persistence): a fresh random id, epoch 1.
    pub fn ephemeral() -> Self {
        Self { id: random_id(), epoch: 1 }
    }

    /// Reads the identity at `path` and persists it with the epoch incremented, or creates it.
    pub fn load_and_advance(path: &Path) -> Result<Self, String> {
        let describe = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
        let lock_path = sibling(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| describe("cannot open lock file for", e))?;
        let _guard = FileLock::exclusive(&lock).map_err(|e| describe("cannot lock", e))?;

        let identity = match File::open(path) {
            Ok(mut file) => {
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(|e| describe("cannot read", e))?;
                let old = parse(&text).ok_or_else(|| format!("{} is not a producer identity file", path.display()))?;
                let epoch = old.epoch.checked_add(1).ok_or("epoch overflow")?;
                Self { id: old.id, epoch }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::ephemeral(),
            Err(e) => return Err(describe("cannot open", e)),
        };

        let tmp = sibling(path, ".tmp");
        let mut file = File::create(&tmp).map_err(|e| describe("cannot create temporary file for", e))?;
        write!(file, "{HEADER}\n{:016x} {}\n", identity.id, identity.epoch)
            .and_then(|()| file.sync_all())
            .map_err(|e| describe("cannot write", e))?;
        fs::rename(&tmp, path).map_err(|e| describe("cannot replace", e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable; a failure here only weakens crash safety.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(identity)
    }

    /// The dedup id of one event.
    pub fn dedup_id(&self, shard: u16, sequence: u64) -> String {
        format!("{:016x}:{}:{shard}:{sequence}", self.id, self.epoch)
    }
}

fn parse(text: &str) -> Option<ProducerIdentity> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let (id, epoch) = lines.next()?.split_once(' ')?;
    Some(ProducerIdentity { id: u64::from_str_radix(id, 16).ok()?, epoch: epoch.parse().ok()? })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS; mix in time and pid so forks differ too.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    h.finish()
}

/// An exclusive advisory lock held until drop.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a File) -> std::io::Result<Self> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: `flock` only reads the descriptor, which `file` keeps open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: as in `exclusive`; the descriptor is still open while the guard lives.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_advances_and_id_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer.nonce");
        let a = ProducerIdentity::load_and_advance(&path).unwrap();
        let b = ProducerIdentity::load_and_advance(&path).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(b.epoch, a.epoch + 1);
        assert_ne!(a.dedup_id(0, 0), b.dedup_id(0, 0));
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer.nonce");
        fs::write(&path, "garbage").unwrap();
        let err = ProducerIdentity::load_and_advance(&path).unwrap_err();
        assert!(err.contains("not a producer identity file"), "{err}");
    }

    #[test]
    fn concurrent_starts_get_distinct_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        ProducerIdentity::load_and_advance(&path).unwrap();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || ProducerIdentity::load_and_advance(&path).unwrap().epoch)
            })
            .collect();
        let mut epochs: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        epochs.sort_unstable();
        assert_eq!(epochs, (2..=9).collect::<Vec<_>>());
    }
}
