//! Stores one message's MIME as blobs: the message is cut into segments at attachment
//! bodies ([`MimeSplitter`]) and each segment is chunked on its own, so an attachment yields
//! the same blobs in every message that carries it and is stored once. The blob list, read
//! in order, is still exactly the MIME.
//!
//! Input arrives piece by piece; at most one chunk's lookahead (the chunker's maximum) plus
//! the piece in hand is held, whatever the message's size.

use strongroom_archive::{Archive, BlobId, BlobKind, Chunker, Writer};

use super::manifest::AttachmentEntry;
use super::mime_split::{MimeSplitter, Piece};
use crate::error::Result;

/// A message's MIME being stored. Feed it with [`MimeStore::push`], end with
/// [`MimeStore::finish`].
#[derive(Debug)]
pub(super) struct MimeStore {
    archive: Archive,
    splitter: MimeSplitter,
    chunker: Chunker,
    blobs: Vec<BlobId>,
    size: u64,
    attachments: Vec<AttachmentEntry>,
    /// The attachment whose body is being read, and its bytes so far.
    open: Option<(AttachmentEntry, u64)>,
}

/// What a stored message is.
#[derive(Debug)]
pub(super) struct StoredMime {
    pub blobs: Vec<BlobId>,
    pub size: u64,
    pub attachments: Vec<AttachmentEntry>,
}

impl MimeStore {
    pub fn new(archive: &Archive) -> MimeStore {
        MimeStore {
            archive: archive.clone(),
            splitter: MimeSplitter::default(),
            chunker: archive.chunker(),
            blobs: Vec::new(),
            size: 0,
            attachments: Vec::new(),
            open: None,
        }
    }

    /// Stores the next bytes of the message (the writer is locked per chunk only).
    pub fn push(&mut self, data: &[u8], writer: &std::sync::Mutex<Writer>) -> Result<()> {
        self.size += data.len() as u64;
        let mut splitter = std::mem::take(&mut self.splitter);
        let result = splitter.push(data, &mut |p| self.piece(p, writer));
        self.splitter = splitter;
        result
    }

    /// Ends the message.
    pub fn finish(mut self, writer: &std::sync::Mutex<Writer>) -> Result<StoredMime> {
        let splitter = std::mem::take(&mut self.splitter);
        splitter.finish(&mut |p| self.piece(p, writer))?;
        self.cut_segment(writer)?;
        // Empty content is one empty chunk, as `put_stream` stores it.
        if self.blobs.is_empty() {
            self.blobs.push(lock(writer).put_blob(BlobKind::Data, &[])?);
        }
        Ok(StoredMime {
            blobs: self.blobs,
            size: self.size,
            attachments: self.attachments,
        })
    }

    fn piece(&mut self, piece: Piece<'_>, writer: &std::sync::Mutex<Writer>) -> Result<()> {
        match piece {
            Piece::Bytes(bytes) => {
                if let Some((_, n)) = &mut self.open {
                    *n += bytes.len() as u64;
                }
                let chunks = self.chunker.push(bytes);
                self.store(chunks, writer)?;
            }
            Piece::AttachmentStart(headers) => {
                self.cut_segment(writer)?;
                self.open = Some((
                    AttachmentEntry {
                        name: headers.name,
                        content_type: headers.content_type,
                        size: 0,
                        first_blob: self.blobs.len(),
                        blob_count: 0,
                    },
                    0,
                ));
            }
            Piece::AttachmentEnd => {
                self.cut_segment(writer)?;
                if let Some((mut entry, size)) = self.open.take() {
                    entry.size = size;
                    entry.blob_count = self.blobs.len() - entry.first_blob;
                    self.attachments.push(entry);
                }
            }
        }
        Ok(())
    }

    /// Ends the current segment: its last chunks are cut and a new chunker starts.
    fn cut_segment(&mut self, writer: &std::sync::Mutex<Writer>) -> Result<()> {
        let chunker = std::mem::replace(&mut self.chunker, self.archive.chunker());
        self.store(chunker.finish(), writer)
    }

    /// Hashing and compression happen outside the writer's lock, so the downloads in
    /// flight share the cores; under the lock a chunk is only sealed and appended. A chunk
    /// the writer has already is not compressed at all.
    fn store(&mut self, chunks: Vec<Vec<u8>>, writer: &std::sync::Mutex<Writer>) -> Result<()> {
        for chunk in chunks {
            let mut blob = self.archive.prepare_blob(BlobKind::Data, &chunk)?;
            if !lock(writer).has_blob(&blob.id()) {
                blob.compress(&chunk);
            }
            self.blobs.push(lock(writer).put_prepared(&blob, &chunk)?);
        }
        Ok(())
    }
}

fn lock(writer: &std::sync::Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    writer.lock().unwrap_or_else(|e| e.into_inner())
}
