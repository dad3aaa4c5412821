//! Finds the attachment parts of a message's MIME as its bytes flow past, so each
//! attachment's encoded body can be chunked on its own: the same attachment then yields the
//! same blobs in every message that carries it, wherever it sits in the message.
//!
//! The scanner is line-oriented and never holds a whole part: it keeps the stack of
//! multipart boundaries, the header block of the part being read (capped), and at most
//! [`MAX_HELD_LINE`] bytes of a line that may still turn out to be a boundary line. Every
//! input byte is passed on exactly once, in order, so the pieces always concatenate to the
//! input; a message the scanner cannot make sense of only deduplicates less.
//!
//! ```text
//! headers │ text part │ att. headers ⏎ │ att. body (AttachmentStart … AttachmentEnd) │ --b-- …
//! ```

use mail_parser::{MessageParser, MimeHeaders};

/// Longest line that may be a boundary line: `--`, a boundary of at most 70 characters
/// (RFC 2046), `--`, and some trailing white space.
const MAX_HELD_LINE: usize = 256;

/// A part's header block above this is not parsed (the part then counts as text).
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// What the headers of an attachment part say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentHeaders {
    /// File name (`filename` of Content-Disposition or `name` of Content-Type), decoded.
    pub name: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: Option<String>,
    /// The body is base64 (Content-Transfer-Encoding).
    pub base64: bool,
}

/// What the scanner hands on, in input order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Bytes(&'a [u8]),
    /// The bytes that follow, up to `AttachmentEnd`, are one attachment's encoded body.
    AttachmentStart(AttachmentHeaders),
    AttachmentEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reading a header block (the message's or a part's).
    Headers,
    /// A body that is not an attachment (text, preamble, epilogue).
    Text,
    /// An attachment's encoded body.
    Attachment,
}

/// The streaming scanner. Feed it with [`MimeSplitter::push`], end with
/// [`MimeSplitter::finish`].
#[derive(Debug)]
pub struct MimeSplitter {
    mode: Mode,
    /// Boundaries of the enclosing multiparts, outermost first.
    boundaries: Vec<Vec<u8>>,
    /// The start of the current line, held back while it may be a boundary line.
    held: Vec<u8>,
    /// The current line is known not to be a boundary line: its bytes pass straight on.
    passing: bool,
    /// The current part's header block, while in `Headers`.
    headers: Vec<u8>,
    headers_overflow: bool,
    /// The current header line has held only `\r` so far (a blank line ends the block).
    line_blank: bool,
}

impl Default for MimeSplitter {
    fn default() -> Self {
        MimeSplitter {
            mode: Mode::Headers,
            boundaries: Vec::new(),
            held: Vec::new(),
            passing: false,
            headers: Vec::new(),
            headers_overflow: false,
            line_blank: true,
        }
    }
}

impl MimeSplitter {
    /// Scans the next bytes of the message, handing every byte to `emit` exactly once.
    pub fn push<E>(
        &mut self,
        data: &[u8],
        emit: &mut impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = data;
        while !rest.is_empty() {
            let lines = self.plain_lines(rest);
            if lines > 0 {
                emit(Piece::Bytes(&rest[..lines]))?;
                rest = &rest[lines..];
                continue;
            }
            let (piece, line_ends) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            rest = &rest[piece.len()..];
            self.line_piece(piece, line_ends, emit)?;
        }
        Ok(())
    }

    /// How many bytes at the start of `rest` are whole lines that cannot be boundary lines
    /// (they do not start with `-`), in a body at a line's start: they pass as one piece
    /// instead of line by line, which matters for attachments' thousands of base64 lines.
    fn plain_lines(&mut self, rest: &[u8]) -> usize {
        if self.mode == Mode::Headers || self.passing || !self.held.is_empty() {
            return 0;
        }
        if self.boundaries.is_empty() {
            return rest.len();
        }
        if rest[0] == b'-' {
            return 0;
        }
        let mut end = 0;
        for newline in memchr::memchr_iter(b'\n', rest) {
            end = newline + 1;
            if rest.get(end) == Some(&b'-') {
                break;
            }
        }
        end
    }

    /// Ends the message: hands on what is held and closes an open attachment.
    pub fn finish<E>(mut self, emit: &mut impl FnMut(Piece<'_>) -> Result<(), E>) -> Result<(), E> {
        if !self.held.is_empty() {
            self.end_held_line(emit)?;
        }
        if self.mode == Mode::Attachment {
            emit(Piece::AttachmentEnd)?;
        }
        Ok(())
    }

    fn line_piece<E>(
        &mut self,
        piece: &[u8],
        line_ends: bool,
        emit: &mut impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.mode == Mode::Headers {
            emit(Piece::Bytes(piece))?;
            if !self.headers_overflow {
                if self.headers.len() + piece.len() > MAX_HEADER_BLOCK {
                    self.headers_overflow = true;
                    self.headers = Vec::new();
                } else {
                    self.headers.extend_from_slice(piece);
                }
            }
            let body = if line_ends {
                &piece[..piece.len() - 1]
            } else {
                piece
            };
            self.line_blank &= body.iter().all(|&b| b == b'\r');
            if line_ends {
                if self.line_blank {
                    self.end_headers(emit)?;
                }
                self.line_blank = true;
            }
            return Ok(());
        }
        if self.passing || self.boundaries.is_empty() {
            emit(Piece::Bytes(piece))?;
        } else {
            self.held.extend_from_slice(piece);
            let prefix = self.held.len().min(2);
            let candidate =
                self.held.len() <= MAX_HELD_LINE && self.held[..prefix] == b"--"[..prefix];
            if !candidate {
                emit(Piece::Bytes(&self.held))?;
                self.held.clear();
                self.passing = true;
            } else if line_ends {
                self.end_held_line(emit)?;
            }
        }
        if line_ends {
            self.passing = false;
        }
        Ok(())
    }

    /// A complete held line (or the held tail of the message): a boundary line ends the
    /// current part; anything else is body.
    fn end_held_line<E>(
        &mut self,
        emit: &mut impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let line = std::mem::take(&mut self.held);
        match self.boundary_of(&line) {
            Some((index, closing)) => {
                if self.mode == Mode::Attachment {
                    emit(Piece::AttachmentEnd)?;
                }
                emit(Piece::Bytes(&line))?;
                if closing {
                    // The multipart ended: what follows is its epilogue.
                    self.boundaries.truncate(index);
                    self.mode = Mode::Text;
                } else {
                    self.boundaries.truncate(index + 1);
                    self.start_headers();
                }
            }
            None => emit(Piece::Bytes(&line))?,
        }
        self.held = line;
        self.held.clear();
        Ok(())
    }

    /// Which enclosing boundary `line` is (innermost first), and whether it closes it.
    fn boundary_of(&self, line: &[u8]) -> Option<(usize, bool)> {
        let end = line
            .iter()
            .rposition(|b| !b" \t\r\n".contains(b))
            .map_or(0, |i| i + 1);
        let name = line[..end].strip_prefix(b"--")?;
        self.boundaries.iter().enumerate().rev().find_map(|(i, b)| {
            if name == b.as_slice() {
                Some((i, false))
            } else if name.strip_suffix(b"--") == Some(b.as_slice()) {
                Some((i, true))
            } else {
                None
            }
        })
    }

    fn start_headers(&mut self) {
        self.mode = Mode::Headers;
        self.headers.clear();
        self.headers_overflow = false;
        self.line_blank = true;
    }

    /// The blank line after a header block: decide what the body is.
    fn end_headers<E>(
        &mut self,
        emit: &mut impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let block = std::mem::take(&mut self.headers);
        self.mode = Mode::Text;
        if self.headers_overflow {
            return Ok(());
        }
        let Some(parsed) = MessageParser::new().parse_headers(&block) else {
            return Ok(());
        };
        let content_type = parsed.content_type();
        let kind = content_type.map(|c| c.ctype().to_ascii_lowercase());
        let subtype = content_type.and_then(|c| c.subtype().map(str::to_ascii_lowercase));
        let disposition = parsed.content_disposition();
        let attachment =
            disposition.is_some_and(|d| d.is_attachment()) || parsed.attachment_name().is_some();
        match (kind.as_deref(), subtype.as_deref()) {
            (Some("multipart"), _) => {
                if let Some(b) = content_type.and_then(|c| c.attribute("boundary")) {
                    self.boundaries.push(b.as_bytes().to_vec());
                }
            }
            // A message forwarded inline: its own headers and parts follow.
            (Some("message"), Some("rfc822")) if !attachment => self.start_headers(),
            _ if attachment => {
                self.mode = Mode::Attachment;
                emit(Piece::AttachmentStart(AttachmentHeaders {
                    name: parsed.attachment_name().map(str::to_owned),
                    content_type: kind.map(|k| match subtype {
                        Some(s) => format!("{k}/{s}"),
                        None => k,
                    }),
                    base64: parsed
                        .content_transfer_encoding()
                        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64")),
                }))?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `mime` fed in pieces of `step` bytes into (attachment?, bytes) segments.
    fn segments(mime: &[u8], step: usize) -> Vec<(Option<AttachmentHeaders>, Vec<u8>)> {
        let mut out: Vec<(Option<AttachmentHeaders>, Vec<u8>)> = vec![(None, Vec::new())];
        let mut emit = |p: Piece<'_>| -> Result<(), ()> {
            match p {
                Piece::Bytes(b) => out.last_mut().unwrap().1.extend_from_slice(b),
                Piece::AttachmentStart(h) => out.push((Some(h), Vec::new())),
                Piece::AttachmentEnd => out.push((None, Vec::new())),
            }
            Ok(())
        };
        let mut s = MimeSplitter::default();
        for piece in mime.chunks(step) {
            s.push(piece, &mut emit).unwrap();
        }
        s.finish(&mut emit).unwrap();
        out
    }

    const MIME: &str = "From: a@example.com\r\n\
Subject: hi\r\n\
Content-Type: multipart/mixed;\r\n\tboundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
--not a boundary\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>hi</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
\r\n\
QUJDREVG\r\n\
R0hJSg==\r\n\
\r\n\
--outer\r\n\
Content-Type: image/png; name=\"=?utf-8?q?logo=C3=A9.png?=\"\r\n\
Content-Disposition: inline\r\n\
\r\n\
iVBORw0K\r\n\
--outer--\r\n\
epilogue\r\n";

    #[test]
    fn attachment_bodies_are_their_own_segments_whatever_the_piece_size() {
        for step in [1, 2, 3, 7, 64, MIME.len()] {
            let segs = segments(MIME.as_bytes(), step);
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.1.clone()).collect();
            assert_eq!(joined, MIME.as_bytes(), "step {step}");
            let atts: Vec<_> = segs.iter().filter(|s| s.0.is_some()).collect();
            assert_eq!(atts.len(), 2, "step {step}");
            assert_eq!(atts[0].1, b"QUJDREVG\r\nR0hJSg==\r\n\r\n");
            assert_eq!(
                atts[0].0,
                Some(AttachmentHeaders {
                    name: Some("r.pdf".into()),
                    content_type: Some("application/pdf".into()),
                    base64: true,
                })
            );
            assert_eq!(atts[1].1, b"iVBORw0K\r\n");
            assert!(!atts[1].0.as_ref().unwrap().base64);
            assert_eq!(
                atts[1].0.as_ref().unwrap().name.as_deref(),
                Some("logoé.png")
            );
        }
    }

    #[test]
    fn messages_without_parts_or_with_broken_structure_pass_through() {
        for mime in [
            &b"Subject: x\r\n\r\nbody\r\n--x\r\n"[..],
            b"",
            b"no header end",
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment\r\n\r\nAAAA",
        ] {
            let segs = segments(mime, 5);
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.1.clone()).collect();
            assert_eq!(joined, mime);
        }
        // An attachment the message ends inside is still closed.
        let segs = segments(
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment\r\n\r\nAAAA",
            3,
        );
        assert_eq!(segs[1].1, b"AAAA");
    }

    #[test]
    fn a_long_line_is_not_held() {
        let mut mime = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--".to_vec();
        mime.extend(std::iter::repeat_n(b'-', 10_000));
        let mut s = MimeSplitter::default();
        let mut seen = 0;
        s.push(&mime, &mut |p: Piece<'_>| -> Result<(), ()> {
            if let Piece::Bytes(b) = p {
                seen += b.len();
            }
            Ok(())
        })
        .unwrap();
        assert!(s.held.is_empty());
        assert_eq!(seen, mime.len());
    }
}
