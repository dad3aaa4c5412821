//! Opening an archive does not load the blob index: a search reads only encrypted files
//! and snapshots, and on a large archive loading the index is most of its time. Whatever
//! needs blob locations loads it on first use.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use strongroom_archive::backend::{Backend, FileKind, PendingFile};

use crate::common::*;

/// Delegates to a local folder and counts every access to `index/` (listing or reading).
#[derive(Debug)]
struct IndexAccessCounter {
    inner: Arc<dyn Backend>,
    index_accesses: AtomicUsize,
}

impl IndexAccessCounter {
    fn new(inner: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(IndexAccessCounter {
            inner,
            index_accesses: AtomicUsize::new(0),
        })
    }

    fn note(&self, kind: FileKind) {
        if kind == FileKind::Index {
            self.index_accesses.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn accesses(&self) -> usize {
        self.index_accesses.load(Ordering::SeqCst)
    }
}

impl Backend for IndexAccessCounter {
    fn create(&self, kind: FileKind) -> io::Result<Box<dyn PendingFile>> {
        self.inner.create(kind)
    }

    fn read(&self, kind: FileKind, name: &str) -> io::Result<Vec<u8>> {
        self.note(kind);
        self.inner.read(kind, name)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.note(kind);
        self.inner.read_at(kind, name, offset, len)
    }

    fn size(&self, kind: FileKind, name: &str) -> io::Result<u64> {
        self.inner.size(kind, name)
    }

    fn list(&self, kind: FileKind) -> io::Result<Vec<String>> {
        self.note(kind);
        self.inner.list(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> io::Result<()> {
        self.inner.remove(kind, name)
    }
}

#[test]
fn open_list_and_encrypted_files_leave_the_index_unloaded_until_a_blob_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let writer_side = init(dir.path(), 80);
    let (s1, c1) = write_snapshot(&writer_side, 80, 12);
    writer_side.write_file("search/meta.json", b"{}").unwrap();

    let counter = IndexAccessCounter::new(local(dir.path()));
    let archive = open_on(counter.clone(), 81);
    let listed: Vec<_> = archive.snapshots().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![s1]);
    let root = archive.load_snapshot(&s1).unwrap().root;
    let file = archive.open_file("search/meta.json").unwrap();
    assert_eq!(file.read_all().unwrap(), b"{}");
    assert!(archive.file_exists("search/meta.json").unwrap());
    assert_eq!(
        counter.accesses(),
        0,
        "the index was touched before any blob"
    );

    // The first blob read loads it, and every blob of the snapshot reads.
    assert_eq!(archive.read_tree(&root).unwrap().children.len(), c1.len());
    assert!(counter.accesses() > 0);
    assert_snapshot(&archive, &s1, &c1);
}

#[test]
fn queries_of_the_index_load_it_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let writer_side = init(dir.path(), 82);
    let (s1, c1) = write_snapshot(&writer_side, 82, 7);
    let root = writer_side.load_snapshot(&s1).unwrap().root;

    let archive = open(dir.path(), 83);
    assert!(archive.has_blob(&root));
    let archive = open(dir.path(), 84);
    assert!(archive.blob_info(&root).is_some());
    let archive = open(dir.path(), 85);
    // Every data blob and the root tree.
    assert_eq!(archive.counts().0, c1.len() + 1);
}

#[test]
fn listing_snapshots_catches_up_with_blobs_written_by_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let reader = init(dir.path(), 86);
    write_snapshot(&reader, 86, 3);
    // The reader's index is loaded, then another process writes a new snapshot.
    assert_eq!(reader.counts().0, 4);
    let other = open(dir.path(), 87);
    let (s2, c2) = write_snapshot(&other, 87, 5);
    let root = other.load_snapshot(&s2).unwrap().root;

    let listed = reader.snapshots().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|s| s.id == s2));
    // Listing made the reader's index catch up, so the new snapshot's blobs are known.
    assert!(reader.has_blob(&root));
    assert_eq!(reader.counts().0, 4 + c2.len() + 1);
    assert_snapshot(&reader, &s2, &c2);
}
