//! Stores one message's MIME as blobs: the message is cut into segments at attachment
//! bodies ([`MimeSplitter`]) and each segment is chunked on its own, so an attachment yields
//! the same blobs in every message that carries it and is stored once. A base64 body is
//! stored as the bytes it encodes, as far as they re-encode exactly ([`Base64Body`]); the
//! blob list, read in order and with those re-encoded, is exactly the MIME.
//!
//! Input arrives piece by piece; at most one chunk's lookahead (the chunker's maximum) plus
//! the piece in hand is held, whatever the message's size.

use strongroom_archive::{Archive, BlobId, BlobKind, Chunker, Writer};

use super::base64_body::{Base64Body, Step};
use super::manifest::{AttachmentEntry, Base64Layout};
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
    /// The attachment whose body is being read.
    open: Option<OpenAttachment>,
    /// Decoded bytes on their way to the chunker (kept for its allocation).
    decoded: Vec<u8>,
}

#[derive(Debug)]
struct OpenAttachment {
    /// Its `size` counts the body's bytes so far, as encoded.
    entry: AttachmentEntry,
    /// Decoding a base64 body, until it leaves the layout that re-encodes exactly.
    decoder: Option<Base64Body>,
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
            decoded: Vec::new(),
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
                if let Some(open) = &mut self.open {
                    open.entry.size += bytes.len() as u64;
                }
                let (held, rest) = self.decode(bytes, writer)?;
                for raw in [&held[..], rest] {
                    let chunks = self.chunker.push(raw);
                    self.store(chunks, writer)?;
                }
            }
            Piece::AttachmentStart(headers) => {
                self.cut_segment(writer)?;
                self.open = Some(OpenAttachment {
                    entry: AttachmentEntry {
                        name: headers.name,
                        content_type: headers.content_type,
                        size: 0,
                        first_blob: self.blobs.len(),
                        blob_count: 0,
                        base64: None,
                    },
                    decoder: headers.base64.then(Base64Body::default),
                });
            }
            Piece::AttachmentEnd => {
                let held = self.end_decoding(writer)?;
                let chunks = self.chunker.push(&held);
                self.store(chunks, writer)?;
                self.cut_segment(writer)?;
                if let Some(mut open) = self.open.take() {
                    open.entry.blob_count = self.blobs.len() - open.entry.first_blob;
                    self.attachments.push(open.entry);
                }
            }
        }
        Ok(())
    }

    /// Stores what `bytes` decode to while a base64 body is being decoded; returns the
    /// bytes to store as they are (all of `bytes` when not decoding).
    fn decode<'a>(
        &mut self,
        bytes: &'a [u8],
        writer: &std::sync::Mutex<Writer>,
    ) -> Result<(Vec<u8>, &'a [u8])> {
        let Some(decoder) = self.open.as_mut().and_then(|o| o.decoder.as_mut()) else {
            return Ok((Vec::new(), bytes));
        };
        self.decoded.clear();
        let step = decoder.push(bytes, &mut self.decoded);
        let chunks = self.chunker.push(&self.decoded);
        self.store(chunks, writer)?;
        match step {
            Step::Decoding => Ok((Vec::new(), &[])),
            Step::Stopped { mut held, rest } => {
                held.extend(self.end_decoding(writer)?);
                Ok((held, rest))
            }
        }
    }

    /// Ends decoding the open attachment's body: the decoded bytes become a segment of their
    /// own, and the layout goes into the attachment's entry. Returns the bytes held back,
    /// which start the part stored as it is.
    fn end_decoding(&mut self, writer: &std::sync::Mutex<Writer>) -> Result<Vec<u8>> {
        let Some(decoder) = self.open.as_mut().and_then(|o| o.decoder.take()) else {
            return Ok(Vec::new());
        };
        self.cut_segment(writer)?;
        if let Some(open) = &mut self.open {
            open.entry.base64 = decoder.layout().map(|layout| Base64Layout {
                decoded_blobs: self.blobs.len() - open.entry.first_blob,
                ..layout
            });
        }
        Ok(decoder.finish())
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};

    use super::*;
    use crate::backup::manifest::MessageEntry;
    use crate::testing::{base64_lines, memory_archive};

    /// An attachment body as mailers write it, and sometimes not quite: base64 in lines of a
    /// random width and ending, now and then with a blank line, a stray character or a
    /// trailing word.
    fn body(rng: &mut StdRng) -> Vec<u8> {
        let mut data = vec![0u8; rng.gen_range(0..30_000)];
        rng.fill_bytes(&mut data);
        let width = [76, 76, 64, 72, 4, 77, 998][rng.gen_range(0..7)];
        let eol = if rng.gen_bool(0.8) { "\r\n" } else { "\n" };
        let mut out = base64_lines(&data, width, eol);
        match rng.gen_range(0..8) {
            0 => out.extend_from_slice(eol.as_bytes()),
            1 if !out.is_empty() => {
                let at = rng.gen_range(0..out.len());
                out[at] = b"=*- A"[rng.gen_range(0..5)];
            }
            2 => out.extend_from_slice(b"end of file\r\n"),
            // A short, padded line in the middle: decoding must end there.
            3 if out.len() > 2 * (width + eol.len()) => {
                let at = (width + eol.len()) * rng.gen_range(1..out.len() / (width + eol.len()));
                out.splice(at..at, [b"QQ==", eol.as_bytes()].concat());
            }
            _ => {}
        }
        out
    }

    fn message(rng: &mut StdRng) -> Vec<u8> {
        let mut mime = b"Subject: figures\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            .to_vec();
        for i in 0..rng.gen_range(0..4) {
            let cte = if rng.gen_bool(0.9) {
                "Content-Transfer-Encoding: base64\r\n"
            } else {
                ""
            };
            mime.extend_from_slice(
                format!(
                    "--b\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\n\
                     {cte}Content-Disposition: attachment; filename=\"f{i}.bin\"\r\n\r\n"
                )
                .as_bytes(),
            );
            mime.extend(body(rng));
        }
        if rng.gen_bool(0.9) {
            mime.extend_from_slice(b"--b--\r\n");
        }
        mime
    }

    /// Whatever attachments a message carries, and however its download is cut into pieces,
    /// the stored blobs read back as exactly the MIME.
    #[test]
    fn random_messages_read_back_byte_for_byte() {
        let (archive, _) = memory_archive();
        let writer = Mutex::new(archive.writer().unwrap());
        let mut rng = StdRng::seed_from_u64(12);
        let mut stored = Vec::new();
        for _ in 0..150 {
            let mime = message(&mut rng);
            let mut store = MimeStore::new(&archive);
            let mut rest = &mime[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len().min(70_000));
                store.push(&rest[..n], &writer).unwrap();
                rest = &rest[n..];
            }
            stored.push((mime, store.finish(&writer).unwrap()));
        }
        writer.into_inner().unwrap().finish().unwrap();
        let mut decoded = 0;
        for (mime, s) in stored {
            decoded += s.attachments.iter().filter(|a| a.base64.is_some()).count();
            let entry = MessageEntry {
                id: String::new(),
                change_key: None,
                blobs: s.blobs.iter().map(BlobId::to_hex).collect(),
                size: s.size,
                subject: None,
                from: None,
                received_ms: None,
                sent_ms: None,
                is_read: None,
                flag_status: None,
                categories: Vec::new(),
                internet_message_id: None,
                has_attachments: None,
                attachments: s.attachments,
            };
            let mut out = Vec::new();
            entry.read_mime(&archive, |_| true, &mut out).unwrap();
            assert!(out == mime, "a message read back differently");
            assert_eq!(s.size, mime.len() as u64);
        }
        assert!(decoded > 100, "only {decoded} bodies were stored decoded");
    }
}
