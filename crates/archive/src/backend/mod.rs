//! Storage backends. The archive only ever creates whole files atomically (write to a
//! temporary name, sync, rename), reads them (whole or a byte range), lists and removes
//! them. A local folder is the first backend; object storage fits the same trait.

use std::fmt;
use std::io::{self, Write};

mod faulty;
mod local;
mod memory;

pub use faulty::{FaultPlan, FaultyBackend};
pub use local::LocalBackend;
pub use memory::MemoryBackend;

/// The kinds of files in an archive; each lives in its own folder (FORMAT.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The `config` file at the root.
    Config,
    /// `keys/`: wrapped master keys.
    Key,
    /// `data/`: pack files.
    Pack,
    /// `index/`: blob id → pack location.
    Index,
    /// `snapshots/`: snapshot manifests.
    Snapshot,
    /// `files/`: the engine's encrypted files.
    File,
    /// `locks/`: lock files.
    Lock,
}

/// A file being written. Nothing is visible until `commit`, which makes it durable
/// (fsync), then visible under its final name (rename), then the rename durable (fsync
/// dir). The name is given at commit because content-addressed files are named by the hash
/// of what was written. Dropping it without committing discards it.
pub trait PendingFile: Write + Send + Sync {
    /// Makes the file durable and visible as `name`, replacing any file of that name.
    fn commit(self: Box<Self>, name: &str) -> io::Result<()>;
}

/// Where archive files are stored. Names are the hex ids or fixed names of FORMAT.md.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Starts writing a new file of `kind`.
    fn create(&self, kind: FileKind) -> io::Result<Box<dyn PendingFile>>;
    /// Reads a whole file (`ErrorKind::NotFound` when absent).
    fn read(&self, kind: FileKind, name: &str) -> io::Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`; a short file is `ErrorKind::UnexpectedEof`.
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Size of a file in bytes.
    fn size(&self, kind: FileKind, name: &str) -> io::Result<u64>;
    /// Names of all files of a kind (unordered).
    fn list(&self, kind: FileKind) -> io::Result<Vec<String>>;
    /// Removes a file; removing an absent file is not an error.
    fn remove(&self, kind: FileKind, name: &str) -> io::Result<()>;
    /// Removes temporary files abandoned by processes that died mid-write.
    fn clean_temp(&self) -> io::Result<usize> {
        Ok(0)
    }

    /// Writes a whole file atomically.
    fn write(&self, kind: FileKind, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut file = self.create(kind)?;
        file.write_all(bytes)?;
        file.commit(name)
    }

    /// Whether a file exists.
    fn exists(&self, kind: FileKind, name: &str) -> io::Result<bool> {
        match self.size(kind, name) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}
