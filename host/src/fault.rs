//! Fault injection for crash and I/O-error tests.
//!
//! Only debug builds read `SLUICE_FAULT`; in release builds every function here is a plain
//! write / fsync / no-op, so production binaries cannot be told to fail. The variable is a
//! comma-separated list of:
//! - `kill@POINT:K` — SIGKILL this process at protocol point `POINT` of chunk `K`;
//! - `fail@POINT:K` — return an I/O error there instead;
//! - `eio@write:N`, `enospc@write:N` — the N-th write (1-based, counted over part batches,
//!   state files, journal lines and the manifest) fails with EIO / ENOSPC;
//! - `eio@fsync:N` — the N-th fsync fails with EIO.
//!
//! Points, in commit order: `part_written`, `part_synced`, `part_renamed`, `dir_synced`,
//! `state_written`, `before_journal`, `after_journal_write`, `journal_synced`; at the end
//! (K = number of chunks): `before_manifest`, `manifest_written`, `success_written`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

#[cfg(debug_assertions)]
mod imp {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Fault {
        pub kind: String,
        pub point: String,
        pub n: u64,
    }

    pub fn faults() -> &'static [Fault] {
        static F: OnceLock<Vec<Fault>> = OnceLock::new();
        F.get_or_init(|| {
            let Ok(spec) = std::env::var("SLUICE_FAULT") else {
                return Vec::new();
            };
            spec.split(',')
                .filter_map(|f| {
                    let (kind, rest) = f.trim().split_once('@')?;
                    let (point, n) = rest.split_once(':')?;
                    Some(Fault {
                        kind: kind.into(),
                        point: point.into(),
                        n: n.parse().ok()?,
                    })
                })
                .collect()
        })
    }

    pub static WRITES: AtomicU64 = AtomicU64::new(0);
    pub static FSYNCS: AtomicU64 = AtomicU64::new(0);

    pub fn next(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[cfg_attr(not(debug_assertions), allow(dead_code))]
fn injected(kind: i32, what: &str, path: &Path) -> Error {
    Error::io(what, path, std::io::Error::from_raw_os_error(kind))
}

/// A protocol point: may kill the process or fail, when a test asked for it.
pub fn point(name: &str, chunk: u64) -> Result<()> {
    #[cfg(debug_assertions)]
    for f in imp::faults() {
        if f.point == name && f.n == chunk {
            match f.kind.as_str() {
                "kill" => {
                    // SAFETY: plain libc calls; a crash is exactly what the test asked for.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                }
                "fail" => {
                    return Err(injected(
                        libc::EIO,
                        &format!("reach `{name}` of chunk {chunk} in"),
                        Path::new("(injected)"),
                    ));
                }
                _ => {}
            }
        }
    }
    let _ = (name, chunk);
    Ok(())
}

/// Count a write and fail it when a test asked for it; `f` does the real write.
pub fn check_write(path: &Path) -> Result<()> {
    #[cfg(debug_assertions)]
    if !imp::faults().is_empty() {
        let n = imp::next(&imp::WRITES);
        for f in imp::faults() {
            if f.point == "write" && f.n == n {
                match f.kind.as_str() {
                    "eio" => return Err(injected(libc::EIO, "write", path)),
                    "enospc" => return Err(injected(libc::ENOSPC, "write", path)),
                    _ => {}
                }
            }
        }
    }
    let _ = path;
    Ok(())
}

/// `write_all` with fault injection.
pub fn write(file: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
    check_write(path)?;
    file.write_all(bytes).map_err(|e| Error::io("write", path, e))
}

/// `sync_all` with fault injection. A failed fsync is never retried: the caller stops and
/// resume recovers from the journal, because after a failed fsync the page cache state is
/// unknown.
pub fn fsync(file: &File, path: &Path) -> Result<()> {
    #[cfg(debug_assertions)]
    if !imp::faults().is_empty() {
        let n = imp::next(&imp::FSYNCS);
        for f in imp::faults() {
            if f.point == "fsync" && f.n == n && f.kind == "eio" {
                return Err(injected(libc::EIO, "fsync", path));
            }
        }
    }
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}
