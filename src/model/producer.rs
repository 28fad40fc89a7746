//! Producer identity and dedup ids: `{producer:hex}:{epoch}:{run:hex}:{shard}:{sequence}`.
//!
//! Brokers drop a message whose dedup id they have seen (JetStream's `Nats-Msg-Id`, the Redis
//! adapter's per-run mark), so an id must name one event forever. Within one run the
//! `(shard, sequence)` pair does that; the *run key* `{producer}:{epoch}:{run}` must make every
//! run distinct from every other, past or concurrent, on every host.
//!
//! The producer id and epoch alone cannot: copy the identity file (a cloned VM image, a volume
//! restored on a second host) and two live buses load the same id and advance to the same
//! epoch; each then takes the other's events for retries it already wrote, and half the events
//! vanish with every counter saying "dispatched". So every start also draws `run`, 64 random
//! bits from the OS-seeded hasher, and the run key carries it: copies never collide (2^-64 per
//! pair), and nothing else needs to change.
//!
//! Why not claim `(producer, epoch)` in the broker instead (Redis `SET NX` with a lease, a
//! JetStream KV create)? A claim is a new way to fail: a lease to keep alive through every
//! outage (one that lapses during an outage admits a copy anyway), a claim a crash leaves
//! behind to wait out, a round trip at every start, and one mechanism per broker. The random
//! run needs no coordination and loses nothing that the claim would keep: deduplication only
//! ever has to recognise the retries of one run (after a restart, the new run never resends the
//! old run's batches), and that stays exact.
//!
//! The identity file still gives a stable producer id and a start count (the epoch), which
//! name a producer in ids and logs. It is updated with write-to-temp, fsync, rename under an
//! exclusive `flock`, so two processes starting at once still get different epochs and a crash
//! leaves the old or the new file, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const HEADER: &str = "purple-rain-producer v1";

/// Who is producing: a stable id, the start count, and this start's random run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerIdentity {
    /// Random at first start, then persisted.
    pub id: u64,
    /// 1 at first start, incremented on every later start with the same identity file.
    pub epoch: u64,
    /// Random on every start, never persisted: two buses started from copies of one identity
    /// file (same `id`, same `epoch`) still have distinct run keys and dedup ids.
    pub run: u64,
}

impl ProducerIdentity {
    /// An identity for this process only (no persistence): a fresh random id, epoch 1.
    pub fn ephemeral() -> Self {
        Self { id: random_id(), epoch: 1, run: random_id() }
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
                let (id, epoch) =
                    parse(&text).ok_or_else(|| format!("{} is not a producer identity file", path.display()))?;
                let epoch = epoch.checked_add(1).ok_or("epoch overflow")?;
                Self { id, epoch, run: random_id() }
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

    /// `{id:016x}:{epoch}:{run:016x}`: names this run of this producer, distinct from every
    /// other run (see the module docs). Brokers key their dedup state by it.
    pub fn run_key(&self) -> String {
        format!("{:016x}:{}:{:016x}", self.id, self.epoch, self.run)
    }

    /// The dedup id of one event: `{run_key}:{shard}:{sequence}` (formatted in one go: it is
    /// made per event on the JetStream publish path).
    pub fn dedup_id(&self, shard: u16, sequence: u64) -> String {
        format!("{:016x}:{}:{:016x}:{shard}:{sequence}", self.id, self.epoch, self.run)
    }
}

/// The persisted `(id, epoch)` of an identity file.
fn parse(text: &str) -> Option<(u64, u64)> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let (id, epoch) = lines.next()?.split_once(' ')?;
    Some((u64::from_str_radix(id, 16).ok()?, epoch.parse().ok()?))
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
    fn copies_of_one_identity_file_get_distinct_run_keys_and_dedup_ids() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("producer.nonce");
        ProducerIdentity::load_and_advance(&original).unwrap();
        let copy = dir.path().join("copy.nonce");
        fs::copy(&original, &copy).unwrap();
        let a = ProducerIdentity::load_and_advance(&original).unwrap();
        let b = ProducerIdentity::load_and_advance(&copy).unwrap();
        assert_eq!((a.id, a.epoch), (b.id, b.epoch), "a copy is the same producer at the same start count");
        assert_ne!(a.run_key(), b.run_key());
        assert_ne!(a.dedup_id(0, 1), b.dedup_id(0, 1));
        assert_eq!(a.dedup_id(3, 9), format!("{}:3:9", a.run_key()));
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
