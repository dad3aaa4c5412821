//! An in-memory backend, for tests and fuzzing.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::{Backend, FileKind, PendingFile};

type Files = Arc<Mutex<HashMap<(FileKind, String), Vec<u8>>>>;

/// Files held in memory; `clone` shares the same files.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    files: Files,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemoryPending {
    buf: Vec<u8>,
    kind: FileKind,
    files: Files,
}

impl Write for MemoryPending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PendingFile for MemoryPending {
    fn commit(self: Box<Self>, name: &str) -> io::Result<()> {
        let mut files = self.files.lock().expect("memory backend");
        files.insert((self.kind, name.to_string()), self.buf);
        Ok(())
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file")
}

impl Backend for MemoryBackend {
    fn create(&self, kind: FileKind) -> io::Result<Box<dyn PendingFile>> {
        Ok(Box::new(MemoryPending {
            buf: Vec::new(),
            kind,
            files: self.files.clone(),
        }))
    }

    fn read(&self, kind: FileKind, name: &str) -> io::Result<Vec<u8>> {
        let files = self.files.lock().expect("memory backend");
        files
            .get(&(kind, name.to_string()))
            .cloned()
            .ok_or_else(not_found)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let files = self.files.lock().expect("memory backend");
        let file = files.get(&(kind, name.to_string())).ok_or_else(not_found)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        file.get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short file"))
    }

    fn size(&self, kind: FileKind, name: &str) -> io::Result<u64> {
        let files = self.files.lock().expect("memory backend");
        let file = files.get(&(kind, name.to_string())).ok_or_else(not_found)?;
        Ok(file.len() as u64)
    }

    fn list(&self, kind: FileKind) -> io::Result<Vec<String>> {
        let files = self.files.lock().expect("memory backend");
        Ok(files
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.clone())
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> io::Result<()> {
        let mut files = self.files.lock().expect("memory backend");
        files.remove(&(kind, name.to_string()));
        Ok(())
    }
}
