//! Messages with large attachments (tens of MB), delivered on top of the generated tenant:
//! the generated tenant's attachments stop at 9 MB, and a client that buffers whole messages
//! shows it only with bigger ones. The attachment is incompressible, deterministic bytes.

use base64::Engine as _;

/// A `multipart/mixed` message with a short text body and one base64 attachment of
/// `attachment_bytes` pseudo-random bytes (seeded), CRLF line ends, 76-column base64.
pub fn with_attachment(seed: u64, to: &str, attachment_bytes: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(attachment_bytes + 8);
    while data.len() < attachment_bytes {
        // xorshift64*: fast and incompressible enough for zstd and restic alike.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        data.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data.truncate(attachment_bytes);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    let boundary = format!("----=_bench_{seed:016x}");
    let mut mime = format!(
        "From: Benchmark Sender <sender@bench.example>\r\n\
         To: <{to}>\r\n\
         Subject: Quarterly archive {seed}\r\n\
         Date: Mon, 05 Jan 2026 09:{:02}:00 +0000\r\n\
         Message-ID: <bench-large-{seed}@bench.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         The archive you asked for is attached.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: application/octet-stream; name=\"archive-{seed}.bin\"\r\n\
         Content-Disposition: attachment; filename=\"archive-{seed}.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n",
        seed % 60
    )
    .into_bytes();
    mime.reserve(encoded.len() / 76 * 78 + 200);
    for line in encoded.as_bytes().chunks(76) {
        mime.extend_from_slice(line);
        mime.extend_from_slice(b"\r\n");
    }
    mime.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    mime
}
