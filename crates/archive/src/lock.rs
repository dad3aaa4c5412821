//! Lock files in `locks/`, so that two processes never write at once. A writer holds a
//! `Write` lock; prune holds an `Exclusive` one; readers may hold `Read` locks, which only
//! exclude prune. Taking a lock is: write our lock file, then list the others; if any live
//! one conflicts, remove ours and fail. Two racing processes may both back off, but never
//! both proceed. A lock whose process is dead (same host) or whose heartbeat is older
//! than the stale limit is reported as stale and removed.

use std::fmt;
use std::sync::Arc;

use crate::backend::{Backend, FileKind};
use crate::codec::{put_i64, put_u16, put_u32, Reader};
use crate::env::{Clock, Rng};
use crate::error::{Error, Result};

/// What a lock allows its holder to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Reading while no prune runs.
    Read,
    /// Adding packs, index files and snapshots (one writer at a time).
    Write,
    /// Deleting files (prune): excludes everyone.
    Exclusive,
}

impl LockMode {
    fn conflicts_with(self, other: LockMode) -> bool {
        use LockMode::*;
        !matches!((self, other), (Read, Read) | (Read, Write) | (Write, Read))
    }

    fn to_byte(self) -> u8 {
        match self {
            LockMode::Read => 1,
            LockMode::Write => 2,
            LockMode::Exclusive => 3,
        }
    }
}

/// A lock file as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// File name in `locks/`.
    pub name: String,
    /// The lock's mode.
    pub mode: LockMode,
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder.
    pub host: String,
    /// When the lock was taken (ms since the epoch).
    pub created_ms: i64,
    /// When the holder last refreshed it.
    pub heartbeat_ms: i64,
    /// Whether the holder is known to be dead or has not refreshed in time.
    pub stale: bool,
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} lock held by pid {} on {}{}",
            self.mode,
            self.pid,
            self.host,
            if self.stale { " (stale)" } else { "" }
        )
    }
}

const LOCK_MAGIC: &[u8; 4] = b"SRLK";
const LOCK_VERSION: u32 = 1;

fn encode(mode: LockMode, pid: u32, host: &str, created_ms: i64, heartbeat_ms: i64) -> Vec<u8> {
    let host = &host.as_bytes()[..host.len().min(255)];
    let mut out = Vec::with_capacity(35 + host.len());
    out.extend_from_slice(LOCK_MAGIC);
    put_u32(&mut out, LOCK_VERSION);
    out.push(mode.to_byte());
    put_u32(&mut out, pid);
    put_i64(&mut out, created_ms);
    put_i64(&mut out, heartbeat_ms);
    put_u16(&mut out, host.len() as u16);
    out.extend_from_slice(host);
    out
}

pub(crate) fn decode(name: &str, bytes: &[u8]) -> Result<LockInfo> {
    let what = "lock file";
    let mut r = Reader::new(bytes, what);
    r.header(LOCK_MAGIC, LOCK_VERSION, what)?;
    let mode = match r.u8()? {
        1 => LockMode::Read,
        2 => LockMode::Write,
        3 => LockMode::Exclusive,
        _ => return Err(Error::corrupt(what, "unknown mode")),
    };
    let pid = r.u32()?;
    let created_ms = r.i64()?;
    let heartbeat_ms = r.i64()?;
    let n = r.u16()? as usize;
    let host = String::from_utf8_lossy(r.bytes(n)?).into_owned();
    r.finish()?;
    Ok(LockInfo {
        name: name.to_string(),
        mode,
        pid,
        host,
        created_ms,
        heartbeat_ms,
        stale: false,
    })
}

/// Whether a local process exists: `Some` where the platform can tell (Linux), else `None`.
pub(crate) fn process_alive(pid: u32) -> Option<bool> {
    let proc = std::path::Path::new("/proc");
    if cfg!(target_os = "linux") && proc.join("self").exists() {
        Some(proc.join(pid.to_string()).exists())
    } else {
        None
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Lists all lock files, marking stale ones. Unreadable lock files are reported as stale
/// `Exclusive` locks: lock files are written atomically, so a bad one is garbage.
pub(crate) fn list(
    backend: &dyn Backend,
    clock: &dyn Clock,
    stale_after_ms: i64,
) -> Result<Vec<LockInfo>> {
    let now = clock.now_ms();
    let host = hostname();
    let mut out = Vec::new();
    for name in backend.list(FileKind::Lock)? {
        let bytes = match backend.read(FileKind::Lock, &name) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let info = match decode(&name, &bytes) {
            Ok(mut info) => {
                let dead = info.host == host && process_alive(info.pid) == Some(false);
                info.stale = dead || now.saturating_sub(info.heartbeat_ms) > stale_after_ms;
                info
            }
            Err(_) => LockInfo {
                name,
                mode: LockMode::Exclusive,
                pid: 0,
                host: String::new(),
                created_ms: 0,
                heartbeat_ms: 0,
                stale: true,
            },
        };
        out.push(info);
    }
    Ok(out)
}

/// A held lock; its file is removed when dropped.
pub(crate) struct LockGuard {
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    name: String,
    mode: LockMode,
    created_ms: i64,
    heartbeat_ms: std::sync::atomic::AtomicI64,
    released: bool,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockGuard({:?} {})", self.mode, self.name)
    }
}

impl LockGuard {
    pub fn acquire(
        backend: Arc<dyn Backend>,
        clock: Arc<dyn Clock>,
        rng: &Rng,
        mode: LockMode,
        stale_after_ms: i64,
    ) -> Result<LockGuard> {
        let name: String = rng
            .bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let now = clock.now_ms();
        let pid = std::process::id();
        backend.write(
            FileKind::Lock,
            &name,
            &encode(mode, pid, &hostname(), now, now),
        )?;
        let guard = LockGuard {
            backend: backend.clone(),
            clock: clock.clone(),
            name: name.clone(),
            mode,
            created_ms: now,
            heartbeat_ms: now.into(),
            released: false,
        };
        for other in list(&*backend, &*clock, stale_after_ms)? {
            if other.name == name || !mode.conflicts_with(other.mode) {
                continue;
            }
            if other.stale {
                tracing::warn!(lock = %other, "removing stale lock");
                backend.remove(FileKind::Lock, &other.name)?;
            } else {
                // `guard` is dropped here, removing our own lock file.
                return Err(Error::Locked(other));
            }
        }
        Ok(guard)
    }

    /// Fails with [`Error::LockLost`] if another process removed our lock as stale: it
    /// may be pruning, so we must not reference anything we wrote since.
    pub fn check(&self) -> Result<()> {
        if !self.backend.exists(FileKind::Lock, &self.name)? {
            return Err(Error::LockLost);
        }
        Ok(())
    }

    /// Rewrites the lock with a fresh heartbeat so others do not think it stale.
    pub fn refresh(&self) -> Result<()> {
        self.check()?;
        let now = self.clock.now_ms();
        let bytes = encode(
            self.mode,
            std::process::id(),
            &hostname(),
            self.created_ms,
            now,
        );
        self.backend.write(FileKind::Lock, &self.name, &bytes)?;
        self.heartbeat_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Refreshes when a third of the stale limit has passed since the last heartbeat, so a
    /// long write or prune never looks stale to others.
    pub fn refresh_if_due(&self, stale_after_ms: i64) -> Result<()> {
        let last = self.heartbeat_ms.load(std::sync::atomic::Ordering::Relaxed);
        if self.clock.now_ms().saturating_sub(last) >= stale_after_ms / 3 {
            self.refresh()?;
        }
        Ok(())
    }

    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.backend.remove(FileKind::Lock, &self.name)?;
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.backend.remove(FileKind::Lock, &self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use crate::env::ManualClock;

    fn setup() -> (tempfile::TempDir, Arc<dyn Backend>, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        (dir, backend, Arc::new(ManualClock::new(1_000_000)))
    }

    #[test]
    fn writers_exclude_each_other_but_not_readers() {
        let (_d, b, c) = setup();
        let rng = Rng::seeded(1);
        let w = LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Write, 60_000).unwrap();
        let err = LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Write, 60_000);
        assert!(matches!(err, Err(Error::Locked(ref i)) if i.mode == LockMode::Write && !i.stale));
        let r = LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Read, 60_000).unwrap();
        assert!(
            LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Exclusive, 60_000).is_err()
        );
        drop(r);
        w.release().unwrap();
        assert!(b.list(FileKind::Lock).unwrap().is_empty());
        LockGuard::acquire(b, c, &rng, LockMode::Exclusive, 60_000).unwrap();
    }

    #[test]
    fn old_heartbeat_is_stale_and_removed() {
        let (_d, b, c) = setup();
        let rng = Rng::seeded(2);
        let w = LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Write, 60_000).unwrap();
        std::mem::forget(w); // as if the holder hung without refreshing
        c.advance(61_000);
        let locks = list(&*b, &*c, 60_000).unwrap();
        assert_eq!(locks.len(), 1);
        assert!(locks[0].stale);
        LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Write, 60_000).unwrap();
    }

    #[test]
    fn a_lock_taken_over_as_stale_is_noticed() {
        let (_d, b, c) = setup();
        let rng = Rng::seeded(3);
        let w = LockGuard::acquire(b.clone(), c.clone(), &rng, LockMode::Write, 60_000).unwrap();
        c.advance(61_000);
        let _other = LockGuard::acquire(b, c, &rng, LockMode::Exclusive, 60_000).unwrap();
        assert!(matches!(w.check(), Err(Error::LockLost)));
        assert!(matches!(w.refresh(), Err(Error::LockLost)));
    }

    #[test]
    fn dead_process_lock_is_stale() {
        let (_d, b, c) = setup();
        let dead_pid = u32::MAX - 7;
        let bytes = encode(
            LockMode::Write,
            dead_pid,
            &hostname(),
            c.now_ms(),
            c.now_ms(),
        );
        b.write(FileKind::Lock, "deadbeef", &bytes).unwrap();
        let locks = list(&*b, &*c, 60_000).unwrap();
        assert_eq!(locks[0].stale, process_alive(dead_pid) == Some(false));
        assert!(decode("x", &bytes[..bytes.len() - 1]).is_err());
    }
}
