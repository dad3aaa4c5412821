//! A local folder, with restic's crash-safe write order: temp file in `tmp/`, fsync,
//! rename into place, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::{Backend, FileKind, PendingFile};
use crate::lock::process_alive;

/// An archive in a folder of the local file system.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    counter: AtomicU64,
}

impl LocalBackend {
    /// Uses `root` (created on first write if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend {
            root: root.into(),
            counter: AtomicU64::new(0),
        }
    }

    /// The archive folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, kind: FileKind) -> PathBuf {
        match kind {
            FileKind::Config => self.root.clone(),
            FileKind::Key => self.root.join("keys"),
            FileKind::Pack => self.root.join("data"),
            FileKind::Index => self.root.join("index"),
            FileKind::Snapshot => self.root.join("snapshots"),
            FileKind::File => self.root.join("files"),
            FileKind::Lock => self.root.join("locks"),
        }
    }

    fn path(&self, kind: FileKind, name: &str) -> io::Result<PathBuf> {
        // Names come from our own hex ids; refuse anything that could escape the folder.
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad file name"));
        }
        let dir = self.dir(kind);
        Ok(match kind {
            // Packs are spread over 256 subfolders, like restic, to keep folders small.
            FileKind::Pack if name.len() >= 2 => dir.join(&name[..2]).join(name),
            _ => dir.join(name),
        })
    }
}

/// Makes a new directory entry durable. Unsupported on some platforms; best effort there.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` (and parents) if missing, syncing each parent so the new entry survives
/// a power cut.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

struct LocalPending {
    file: Option<File>,
    temp: PathBuf,
    kind: FileKind,
    backend: LocalBackend,
}

impl Write for LocalPending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open until commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl PendingFile for LocalPending {
    fn commit(mut self: Box<Self>, name: &str) -> io::Result<()> {
        let target = self.backend.path(self.kind, name)?;
        let file = self.file.take().expect("commit once");
        let result = (|| {
            file.sync_all()?;
            drop(file);
            let dir = target.parent().expect("target has a folder");
            ensure_dir(dir)?;
            fs::rename(&self.temp, &target)?;
            sync_dir(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

impl Drop for LocalPending {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Backend for LocalBackend {
    fn create(&self, kind: FileKind) -> io::Result<Box<dyn PendingFile>> {
        let tmp_dir = self.root.join("tmp");
        ensure_dir(&tmp_dir)?;
        // The pid prefix lets `clean_temp` tell abandoned files from ones being written.
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let temp = tmp_dir.join(format!("{}-{n}-{nanos}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(Box::new(LocalPending {
            file: Some(file),
            temp,
            kind,
            backend: LocalBackend::new(self.root.clone()),
        }))
    }

    fn read(&self, kind: FileKind, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(kind, name)?)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.path(kind, name)?)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn size(&self, kind: FileKind, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path(kind, name)?)?.len())
    }

    fn list(&self, kind: FileKind) -> io::Result<Vec<String>> {
        let dir = self.dir(kind);
        let mut names = Vec::new();
        let mut push_files = |d: &Path| -> io::Result<()> {
            let entries = match fs::read_dir(d) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    if let Some(name) = entry.file_name().to_str() {
                        names.push(name.to_string());
                    }
                }
            }
            Ok(())
        };
        match kind {
            FileKind::Pack => {
                let subdirs = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
                    Err(e) => return Err(e),
                };
                for entry in subdirs {
                    let entry = entry?;
                    if entry.file_type()?.is_dir() {
                        push_files(&entry.path())?;
                    }
                }
            }
            FileKind::Config => names.extend(
                ["config"]
                    .into_iter()
                    .filter(|n| dir.join(n).is_file())
                    .map(String::from),
            ),
            _ => push_files(&dir)?,
        }
        Ok(names)
    }

    fn remove(&self, kind: FileKind, name: &str) -> io::Result<()> {
        let path = self.path(kind, name)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().expect("has a folder")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn clean_temp(&self) -> io::Result<usize> {
        let entries = match fs::read_dir(self.root.join("tmp")) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let old = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(24 * 3600));
            // Remove when its writer is known dead, or (where liveness is unknown) when old.
            let abandoned = match pid.map(process_alive) {
                Some(Some(alive)) => !alive,
                _ => old,
            };
            if abandoned && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path());
        let name = "ab".repeat(32);
        let mut f = backend.create(FileKind::Pack).unwrap();
        f.write_all(b"data").unwrap();
        assert!(backend.list(FileKind::Pack).unwrap().is_empty());
        f.commit(&name).unwrap();
        assert_eq!(backend.list(FileKind::Pack).unwrap(), vec![name.clone()]);
        assert_eq!(backend.read_at(FileKind::Pack, &name, 1, 2).unwrap(), b"at");
        assert!(backend.read_at(FileKind::Pack, &name, 3, 2).is_err());
        let dropped = backend.create(FileKind::Index).unwrap();
        drop(dropped);
        assert!(fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none());
        assert!(backend.read(FileKind::Index, "../x").is_err());
    }
}
