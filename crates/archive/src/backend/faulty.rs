//! A backend wrapper that injects the failures a real disk or a killed process produces:
//! a failing write, a crash (every later operation fails and nothing pending is committed),
//! a full disk (ENOSPC) and short writes.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::{Backend, FileKind, PendingFile};

/// Which faults to inject. Write operations are counted across the backend: every
/// `create`, every `write` call on a pending file, every `commit` and every `remove`.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// The write operation after the first N fails once; later ones succeed again.
    pub fail_after_writes: Option<u64>,
    /// After N write operations the "process dies": every later operation, reads included,
    /// fails and pending files are never committed.
    pub crash_after_writes: Option<u64>,
    /// Writes fail with `StorageFull` (ENOSPC) once this many bytes were written.
    pub enospc_after_bytes: Option<u64>,
    /// Each `write` call accepts at most half the buffer (at least one byte).
    pub short_writes: bool,
}

#[derive(Debug, Default)]
struct State {
    writes: u64,
    bytes: u64,
    failed_once: bool,
    crashed: bool,
}

/// Wraps another backend and injects faults according to a [`FaultPlan`].
#[derive(Debug, Clone)]
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    plan: FaultPlan,
    state: Arc<Mutex<State>>,
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

impl FaultyBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, plan: FaultPlan) -> Self {
        FaultyBackend {
            inner,
            plan,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Whether the simulated crash has happened.
    pub fn crashed(&self) -> bool {
        self.state.lock().expect("fault state").crashed
    }

    /// Counts one write operation of `bytes` bytes, failing it if the plan says so.
    fn write_op(&self, bytes: u64) -> io::Result<()> {
        let mut s = self.state.lock().expect("fault state");
        if s.crashed {
            return Err(injected("crashed"));
        }
        if self.plan.crash_after_writes.is_some_and(|n| s.writes >= n) {
            s.crashed = true;
            return Err(injected("crash"));
        }
        if !s.failed_once && self.plan.fail_after_writes.is_some_and(|n| s.writes >= n) {
            s.failed_once = true;
            return Err(injected("write failed"));
        }
        if self
            .plan
            .enospc_after_bytes
            .is_some_and(|limit| s.bytes + bytes > limit)
        {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected ENOSPC",
            ));
        }
        s.writes += 1;
        s.bytes += bytes;
        Ok(())
    }

    fn read_op(&self) -> io::Result<()> {
        if self.crashed() {
            return Err(injected("crashed"));
        }
        Ok(())
    }
}

struct FaultyPending {
    inner: Box<dyn PendingFile>,
    backend: FaultyBackend,
}

impl Write for FaultyPending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = if self.backend.plan.short_writes {
            buf.len().div_ceil(2)
        } else {
            buf.len()
        };
        self.backend.write_op(len as u64)?;
        self.inner.write(&buf[..len])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.backend.read_op()?;
        self.inner.flush()
    }
}

impl PendingFile for FaultyPending {
    fn commit(self: Box<Self>, name: &str) -> io::Result<()> {
        self.backend.write_op(0)?;
        self.inner.commit(name)
    }
}

impl Backend for FaultyBackend {
    fn create(&self, kind: FileKind) -> io::Result<Box<dyn PendingFile>> {
        self.write_op(0)?;
        Ok(Box::new(FaultyPending {
            inner: self.inner.create(kind)?,
            backend: self.clone(),
        }))
    }

    fn read(&self, kind: FileKind, name: &str) -> io::Result<Vec<u8>> {
        self.read_op()?;
        self.inner.read(kind, name)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.read_op()?;
        self.inner.read_at(kind, name, offset, len)
    }

    fn size(&self, kind: FileKind, name: &str) -> io::Result<u64> {
        self.read_op()?;
        self.inner.size(kind, name)
    }

    fn list(&self, kind: FileKind) -> io::Result<Vec<String>> {
        self.read_op()?;
        self.inner.list(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> io::Result<()> {
        self.write_op(0)?;
        self.inner.remove(kind, name)
    }

    fn clean_temp(&self) -> io::Result<usize> {
        self.read_op()?;
        self.inner.clean_temp()
    }
}
