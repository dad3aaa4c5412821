//! Base64 as Exchange writes attachment bodies, and its exact inverse: the corpus encodes
//! with one, the Strongroom ingest splits attachments out with the other.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in 76-character CRLF lines, as Exchange writes attachment bodies.
pub(crate) fn base64_lines(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 4);
    let mut col = 0;
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            let c = if k <= chunk.len() {
                B64[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            };
            out.push(c);
        }
        col += 4;
        if col == 76 {
            out.push_str("\r\n");
            col = 0;
        }
    }
    if col > 0 {
        out.push_str("\r\n");
    }
    out
}

/// Decodes base64 written exactly as [`base64_lines`] writes it (76-character CRLF lines,
/// canonical padding); anything else is `None`, so re-encoding the result is bit-exact.
pub(crate) fn base64_decode_canonical(text: &str) -> Option<Vec<u8>> {
    let mut table = [255u8; 256];
    for (i, &c) in B64.iter().enumerate() {
        table[c as usize] = i as u8;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 78 * 57 + 57);
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last_piece = lines.peek().is_none();
        if is_last_piece {
            // Text must end with CRLF: the piece after the last LF is empty.
            return line.is_empty().then_some(out);
        }
        let line = line.strip_suffix(b"\r")?;
        let last_line = lines.peek().is_some_and(|next| next.is_empty());
        if line.len() % 4 != 0
            || line.is_empty()
            || (!last_line && line.len() != 76)
            || line.len() > 76
        {
            return None;
        }
        for quad in line.chunks(4) {
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last_line) {
                return None;
            }
            let mut n = 0u32;
            for &c in &quad[..4 - pad] {
                let v = table[c as usize];
                if v == 255 {
                    return None;
                }
                n = n << 6 | v as u32;
            }
            n <<= 6 * pad as u32;
            let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&got[..3 - pad]);
            // Non-zero unused bits would not survive re-encoding.
            if (pad == 1 && n & 0xff != 0) || (pad == 2 && n & 0xffff != 0) {
                return None;
            }
        }
    }
    Some(out)
}

/// The attachment splitter must be exact, or the benchmark would measure a lossy ingest.
pub(crate) fn check_base64_round_trips() {
    for len in [0usize, 1, 2, 3, 56, 57, 58, 1000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let text = base64_lines(&data);
        assert_eq!(base64_decode_canonical(&text), Some(data));
    }
    assert_eq!(base64_decode_canonical("QQ==\r\n"), Some(b"A".to_vec()));
    assert_eq!(base64_decode_canonical("QR==\r\n"), None);
}
