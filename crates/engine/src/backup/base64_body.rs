//! An attachment's base64 body, stored as the bytes it encodes.
//!
//! Attachments are most of a mailbox's bytes, and nearly all of them travel as base64 in
//! lines of equal length. Storing the decoded bytes instead of the text saves a quarter of
//! the space, and the hashing, compressing, sealing and writing of that quarter; it also lets
//! one file deduplicate across messages that wrapped it differently. Compressing the text
//! instead would win back the same quarter, at the price of entropy-coding every byte.
//!
//! Only a layout that re-encodes to exactly the same bytes is decoded: lines of one length
//! (a multiple of 4), all ending alike (CRLF or LF), the last one shorter or padded, each
//! line in canonical base64. Where the body leaves that layout (a blank line before the
//! boundary, a line of another length, anything not base64) decoding stops, and the rest of
//! the body is stored as it is, so the message still reads back byte for byte:
//!
//! ```text
//! encoded body  │ L chars ⏎ │ L chars ⏎ │ … │ ≤ L chars ⏎ │ rest (anything) │
//! stored as     │ decoded bytes (Base64Layout says how to re-encode)      │ as is │
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::manifest::Base64Layout;

/// Longest start of a line held until the rest of it arrives (RFC 5322's limit, 998
/// characters plus CRLF): a longer line cut across pieces ends decoding, so what is held
/// stays bounded.
const MAX_LINE: usize = 1000;

/// The streaming decoder of one attachment body. Feed it with [`Base64Body::push`]; end
/// with [`Base64Body::finish`].
#[derive(Debug, Default)]
pub(super) struct Base64Body {
    /// Characters per line, set by the first line.
    line_len: Option<usize>,
    crlf: bool,
    /// The start of a line not yet complete.
    held: Vec<u8>,
    encoded_len: u64,
    /// The last (short or padded) line has been decoded: nothing more can be.
    ended: bool,
    /// Text of a run of whole lines, gathered to be decoded in one call.
    text: Vec<u8>,
}

/// Where the input stands after [`Base64Body::push`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step<'a> {
    /// Every byte was decoded or is held until its line is complete.
    Decoding,
    /// Decoding stopped: `held` and then `rest` are the first bytes of the body's stored
    /// rest, which has to be stored as it is.
    Stopped { held: Vec<u8>, rest: &'a [u8] },
}

impl Base64Body {
    /// Decodes the complete lines of `data` into `decoded`.
    pub fn push<'a>(&mut self, data: &'a [u8], decoded: &mut Vec<u8>) -> Step<'a> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.ended {
                return self.stop(rest);
            }
            if self.held.is_empty() {
                rest = &rest[self.whole_lines(rest, decoded)..];
                if rest.is_empty() {
                    break;
                }
            }
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                if self.held.len() + rest.len() > MAX_LINE {
                    return self.stop(rest);
                }
                self.held.extend_from_slice(rest);
                return Step::Decoding;
            };
            let (line, after) = rest.split_at(newline + 1);
            let decoded_line = if self.held.is_empty() {
                self.line(line, decoded)
            } else if self.held.len() + line.len() > MAX_LINE {
                false
            } else {
                let mut whole = std::mem::take(&mut self.held);
                whole.extend_from_slice(line);
                let ok = self.line(&whole, decoded);
                if !ok {
                    // Put it back: the stored rest starts with it.
                    whole.truncate(whole.len() - line.len());
                    self.held = whole;
                }
                ok
            };
            if !decoded_line {
                return self.stop(rest);
            }
            rest = after;
        }
        Step::Decoding
    }

    /// Ends the body: the bytes held back (an unfinished line), which are the stored rest.
    pub fn finish(self) -> Vec<u8> {
        self.held
    }

    /// How the bytes decoded so far re-encode (`None` when no line was decoded); the caller
    /// fills in `decoded_blobs`.
    pub fn layout(&self) -> Option<Base64Layout> {
        let line_len = self.line_len.filter(|_| self.encoded_len > 0)?;
        Some(Base64Layout {
            line_len: line_len as u32,
            crlf: self.crlf,
            encoded_len: self.encoded_len,
            decoded_blobs: 0,
        })
    }

    /// The fast path, once the line length is known: decodes the run of full-length lines
    /// at the start of `data` in one call; returns how many bytes they were. Anything
    /// unusual (a short, padded or broken line) is left to `line`, one line at a time.
    fn whole_lines(&mut self, data: &[u8], decoded: &mut Vec<u8>) -> usize {
        let Some(line_len) = self.line_len else {
            return 0;
        };
        let eol = line_end(self.crlf);
        let stride = line_len + eol.len();
        self.text.clear();
        let mut lines: usize = 0;
        for line in data.chunks_exact(stride) {
            if &line[line_len..] != eol {
                break;
            }
            self.text.extend_from_slice(&line[..line_len]);
            lines += 1;
        }
        // All but the last line of the run: that one may be the body's last line, padded.
        lines = lines.saturating_sub(1);
        self.text.truncate(lines * line_len);
        if lines == 0 {
            return 0;
        }
        let before = decoded.len();
        // Whole 4-character groups without padding decode and re-encode one to one, and the
        // decoder is strict: a run that decodes to exactly 3/4 of its length is canonical.
        let ok = base64_simd::STANDARD
            .decode_append(&self.text, decoded)
            .is_ok();
        if !ok || decoded.len() - before != lines * line_len / 4 * 3 {
            // Some line breaks the layout: the lines before it still count.
            decoded.truncate(before);
            let mut done = 0;
            for line in data[..lines * stride].chunks_exact(stride) {
                if !self.line(line, decoded) {
                    break;
                }
                done += stride;
            }
            return done;
        }
        self.encoded_len += (lines * stride) as u64;
        lines * stride
    }

    fn stop<'a>(&mut self, rest: &'a [u8]) -> Step<'a> {
        self.ended = true;
        Step::Stopped {
            held: std::mem::take(&mut self.held),
            rest,
        }
    }

    /// Decodes one whole line (ending in `\n`) if it keeps the layout; false if it does not,
    /// and then `decoded` is as it was.
    fn line(&mut self, line: &[u8], decoded: &mut Vec<u8>) -> bool {
        if self.ended {
            return false;
        }
        let crlf = line.ends_with(b"\r\n");
        let text = &line[..line.len() - if crlf { 2 } else { 1 }];
        let line_len = match self.line_len {
            None => {
                if text.is_empty() || !text.len().is_multiple_of(4) {
                    return false;
                }
                self.crlf = crlf;
                text.len()
            }
            Some(len) => {
                if crlf != self.crlf || text.is_empty() || text.len() > len {
                    return false;
                }
                len
            }
        };
        let before = decoded.len();
        // The standard engine accepts only canonical base64 (padding, zero trailing bits),
        // which is what makes re-encoding give back the same line.
        if STANDARD.decode_vec(text, decoded).is_err() {
            decoded.truncate(before);
            return false;
        }
        let full = decoded.len() - before == line_len / 4 * 3;
        if !full {
            // The last line: check the round trip outright, it is short.
            if STANDARD.encode(&decoded[before..]).as_bytes() != text {
                decoded.truncate(before);
                return false;
            }
            self.ended = true;
        }
        self.line_len = Some(line_len);
        self.encoded_len += line.len() as u64;
        true
    }
}

fn line_end(crlf: bool) -> &'static [u8] {
    if crlf {
        b"\r\n"
    } else {
        b"\n"
    }
}

/// Re-encodes decoded bytes, as they are read back blob by blob, in their layout's lines.
#[derive(Debug)]
pub(crate) struct Base64Text<'l> {
    layout: &'l Base64Layout,
    /// Decoded bytes short of a whole line.
    carry: Vec<u8>,
    written: u64,
}

impl<'l> Base64Text<'l> {
    pub fn new(layout: &'l Base64Layout) -> Self {
        Base64Text {
            layout,
            carry: Vec::new(),
            written: 0,
        }
    }

    /// Appends the whole lines of text that `decoded` (after what came before) completes.
    pub fn push(&mut self, decoded: &[u8], out: &mut Vec<u8>) {
        self.carry.extend_from_slice(decoded);
        let per_line = self.layout.line_len as usize / 4 * 3;
        let whole = self.carry.len() / per_line * per_line;
        self.lines(whole, out);
    }

    /// Appends the last line; returns how many bytes of text were written in all.
    pub fn finish(mut self, out: &mut Vec<u8>) -> u64 {
        self.lines(self.carry.len(), out);
        self.written
    }

    fn lines(&mut self, len: usize, out: &mut Vec<u8>) {
        let eol = line_end(self.layout.crlf);
        let per_line = self.layout.line_len as usize / 4 * 3;
        let before = out.len();
        let mut line = vec![0u8; self.layout.line_len as usize];
        for chunk in self.carry[..len].chunks(per_line) {
            let n = STANDARD
                .encode_slice(chunk, &mut line)
                .expect("a line's buffer holds its encoding");
            out.extend_from_slice(&line[..n]);
            out.extend_from_slice(eol);
        }
        self.carry.drain(..len);
        self.written += (out.len() - before) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::base64_lines;
    use rand::{Rng, RngCore, SeedableRng};

    /// Splits `body` fed in pieces of `step` bytes: decoded bytes, layout, stored rest.
    fn split(body: &[u8], step: usize) -> (Vec<u8>, Option<Base64Layout>, Vec<u8>) {
        let mut b = Base64Body::default();
        let mut decoded = Vec::new();
        let mut rest = Vec::new();
        let mut stopped = false;
        for piece in body.chunks(step) {
            if stopped {
                rest.extend_from_slice(piece);
                continue;
            }
            if let Step::Stopped { held, rest: r } = b.push(piece, &mut decoded) {
                rest.extend_from_slice(&held);
                rest.extend_from_slice(r);
                stopped = true;
            }
        }
        let layout = b.layout();
        if !stopped {
            rest.extend_from_slice(&b.finish());
        }
        (decoded, layout, rest)
    }

    /// What a reader rebuilds: the re-encoded bytes, then the rest as stored.
    fn rebuild(decoded: &[u8], layout: Option<Base64Layout>, rest: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(l) = layout {
            let mut text = Base64Text::new(&l);
            // Fed in uneven pieces, as blobs come.
            for piece in decoded.chunks(1000) {
                text.push(piece, &mut out);
            }
            assert_eq!(text.finish(&mut out), l.encoded_len);
            assert_eq!(out.len() as u64, l.encoded_len);
        } else {
            assert!(decoded.is_empty());
        }
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn a_regular_body_is_all_decoded_in_any_pieces() {
        let mut data = vec![0u8; 10_000];
        rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut data);
        for (width, eol) in [(76, "\r\n"), (64, "\n"), (4, "\r\n"), (996, "\r\n")] {
            for len in [1, 2, 3, 57, 58, 999, 10_000] {
                let body = base64_lines(&data[..len], width, eol);
                for step in [1, 7, 77, 4096, body.len()] {
                    let (decoded, layout, rest) = split(&body, step);
                    assert_eq!(decoded, &data[..len], "width {width} len {len} step {step}");
                    assert!(rest.is_empty(), "width {width} len {len} step {step}");
                    let layout = layout.unwrap();
                    let text_len = len.div_ceil(3) * 4;
                    assert_eq!(layout.line_len as usize, width.min(text_len));
                    assert_eq!(rebuild(&decoded, Some(layout), &rest), body);
                }
            }
        }
    }

    #[test]
    fn what_leaves_the_layout_is_kept_as_it_is() {
        let mut data = vec![0u8; 600];
        rand::rngs::StdRng::seed_from_u64(2).fill_bytes(&mut data);
        let good = base64_lines(&data, 76, "\r\n");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("blank line after", [&good[..], b"\r\n"].concat()),
            ("no final line end", good[..good.len() - 2].to_vec()),
            ("text after", [&good[..], b"--b--\r\n"].concat()),
            ("LF line among CRLF", {
                let mut b = good.clone();
                b.remove(76);
                b
            }),
            ("a longer line", {
                let mut b = good.clone();
                b.insert(150, b'A');
                b
            }),
            ("a short line in the middle", {
                let mut b = good.clone();
                b.drain(200..204);
                b
            }),
            ("not base64", {
                let mut b = good.clone();
                b[300] = b'*';
                b
            }),
            ("non-canonical last bits", b"QUJD\r\nQR==\r\n".to_vec()),
            (
                "first line not a multiple of 4",
                b"QUJDRA\r\nQUJD\r\n".to_vec(),
            ),
            ("empty", Vec::new()),
            ("space before the line end", b"QUJD \r\n".to_vec()),
            (
                "a line over 1000 characters",
                base64_lines(&[7u8; 1500], 1200, "\r\n"),
            ),
        ];
        for (name, body) in cases {
            for step in [1, 5, 100, body.len().max(1)] {
                let (decoded, layout, rest) = split(&body, step);
                assert_eq!(
                    rebuild(&decoded, layout, &rest),
                    body,
                    "{name}, step {step}"
                );
            }
        }
        // Decoding went as far as the layout held.
        let (decoded, _, rest) = split(&[&good[..], b"\r\n"].concat(), 64);
        assert_eq!(
            (decoded.as_slice(), rest.as_slice()),
            (&data[..], &b"\r\n"[..])
        );
    }

    #[test]
    fn random_bodies_read_back_byte_for_byte() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let alphabet = b"ABCDQUJ+/=\r\n -";
        for _ in 0..2000 {
            let mut data = vec![0u8; rng.gen_range(0..400)];
            rng.fill_bytes(&mut data);
            let width = [4, 8, 76, 77][rng.gen_range(0..4)];
            let mut body = base64_lines(&data, width, ["\r\n", "\n"][rng.gen_range(0..2)]);
            for _ in 0..rng.gen_range(0..3) {
                let c = alphabet[rng.gen_range(0..alphabet.len())];
                let at = rng.gen_range(0..=body.len());
                // Lines of another length, or of the same length with a bad character.
                match body.get_mut(at) {
                    Some(b) if rng.gen_bool(0.5) => *b = c,
                    _ => body.insert(at, c),
                }
            }
            let step = rng.gen_range(1..400);
            let (decoded, layout, rest) = split(&body, step);
            assert_eq!(rebuild(&decoded, layout, &rest), body);
        }
    }
}
