//! One writer per directory: an exclusive `flock` on `LOCK`, which holds the writer's pid.
//!
//! The lock belongs to the open file, so it goes when the process dies however it dies (kill
//! -9 included) and a stale `LOCK` file never blocks a restart. A second opener, in another
//! process or this one, gets [`AdapterError::Locked`] naming the pid written by the holder.

use crate::error::AdapterError;
use fs4::FileExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held until dropped.
#[derive(Debug)]
pub(super) struct DirLock(#[allow(dead_code)] File);

impl DirLock {
    pub(super) fn acquire(dir: &Path) -> Result<Self, AdapterError> {
        let path = dir.join("LOCK");
        let io = |what: &str, e: std::io::Error| AdapterError::Fatal(format!("cannot {what} {}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("open", e))?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "an unknown process".to_owned() } else { format!("pid {holder}") };
                return Err(AdapterError::Locked(format!(
                    "{} is in use by {holder} (this process is pid {})",
                    dir.display(),
                    std::process::id()
                )));
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("write", e))?;
        Ok(Self(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_told_the_holders_pid_and_gets_in_once_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let refused = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(refused, AdapterError::Locked(_)), "{refused}");
        assert!(refused.to_string().contains(&format!("pid {}", std::process::id())), "{refused}");
        drop(held);
        DirLock::acquire(dir.path()).expect("released with the holder");
    }
}
