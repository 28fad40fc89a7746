//! `MANIFEST`: the format version and the store's random id, written once when the directory
//! is created (temp file, fsync, rename, directory fsync) and only read after that.
//!
//! ```text
//! purple-rain-disk 1
//! store 9f0c...(32 hex digits)
//! ```
//!
//! The store id stamps cursors (`Adapter::store_id`), so a cursor from another log is refused
//! rather than read as positions in this one.

use crate::error::AdapterError;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The on-disk format this build reads and writes.
pub(super) const FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "purple-rain-disk";

/// Reads the manifest in `dir`, or creates it when `create` (a writer opening a new log).
pub(super) fn load_or_create(dir: &Path, create: bool) -> Result<u128, AdapterError> {
    let path = dir.join("MANIFEST");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map_err(|why| AdapterError::Corrupt(format!("{}: {why}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let id = fastrand::u128(..);
            let tmp = dir.join("MANIFEST.tmp");
            let written = File::create(&tmp)
                .and_then(|mut f| write!(f, "{MAGIC} {FORMAT_VERSION}\nstore {id:032x}\n").and_then(|()| f.sync_all()))
                .and_then(|()| std::fs::rename(&tmp, &path))
                .and_then(|()| File::open(dir)?.sync_all());
            written.map_err(|e| AdapterError::Fatal(format!("cannot write {}: {e}", path.display())))?;
            Ok(id)
        }
        Err(e) => Err(AdapterError::Fatal(format!("cannot read {}: {e}", path.display()))),
    }
}

fn parse(text: &str) -> Result<u128, String> {
    let mut lines = text.lines();
    let version = lines.next().and_then(|l| l.strip_prefix(MAGIC)).and_then(|v| v.trim().parse::<u32>().ok());
    match version {
        Some(FORMAT_VERSION) => {}
        Some(other) => return Err(format!("format version {other}; this build reads version {FORMAT_VERSION}")),
        None => return Err("not a purple-rain disk log manifest".into()),
    }
    lines
        .next()
        .and_then(|l| l.strip_prefix("store "))
        .and_then(|id| u128::from_str_radix(id.trim(), 16).ok())
        .ok_or_else(|| "no store id".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_or_create(dir.path(), false).is_err(), "a reader never creates a log");
        let id = load_or_create(dir.path(), true).unwrap();
        assert_eq!(load_or_create(dir.path(), true).unwrap(), id);
        std::fs::write(dir.path().join("MANIFEST"), "purple-rain-disk 2\nstore 01\n").unwrap();
        let newer = load_or_create(dir.path(), true).unwrap_err();
        assert!(newer.to_string().contains("format version 2"), "{newer}");
    }
}
