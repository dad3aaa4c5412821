//! Attachments are their own blobs: stored once, streamed, found in generated mail.

use super::*;

fn disk_bytes(dir: &Path) -> u64 {
    let mut stack = vec![dir.to_owned()];
    let mut total = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                total += entry.metadata().unwrap().len();
            }
        }
    }
    total
}

/// A message whose text differs per `n` and that carries `attachment` (base64 lines).
fn mime_with_attachment(n: usize, attachment: &[u8]) -> Vec<u8> {
    mime_with_body(n, &base64_lines(attachment, 76, "\r\n"))
}

/// A message like `mime_with_attachment`'s whose attachment's encoded body is `body`.
fn mime_with_body(n: usize, body: &[u8]) -> Vec<u8> {
    let mut mime = format!(
        "From: a@fabrikam.com\r\nTo: b@contoso.com\r\nSubject: report {n}\r\n\
         Message-ID: <report-{n}@fabrikam.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
         --b{n}\r\nContent-Type: text/plain\r\n\r\n{}\r\n\
         --b{n}\r\nContent-Type: application/octet-stream; name=\"figures.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"figures.bin\"\r\n\r\n",
        "Text that shifts the attachment. ".repeat(n * 7 + 1)
    )
    .into_bytes();
    mime.extend_from_slice(body);
    mime.extend_from_slice(format!("--b{n}--\r\n").as_bytes());
    mime
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_in_many_messages_is_stored_once() {
    use rand::{RngCore, SeedableRng};
    let emu = tenant(2, 2, 31).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let users = backed_up(&backup(&engine, &task).await);
    let user = &users[0];

    // Random bytes (incompressible), smaller than the chunker's minimum: without the split
    // each message would be one chunk of its own and nothing would deduplicate.
    let mut attachment = vec![0u8; 150_000];
    rand::rngs::StdRng::seed_from_u64(5).fill_bytes(&mut attachment);
    const N: usize = 8;
    for n in 0..N {
        emu.add_message(user, "inbox", &mime_with_attachment(n, &attachment))
            .unwrap();
    }
    // The pack files: where content goes (the catalog and index files are small and derived).
    let packs = dir.path().join("data");
    let before = disk_bytes(&packs);
    let report = backup(&engine, &task).await;
    let grown = disk_bytes(&packs) - before;
    assert_eq!(
        report.mailboxes.iter().map(|m| m.new).sum::<u64>(),
        N as u64
    );
    let size = attachment.len() as u64;
    assert!(
        grown < size * 5 / 4,
        "{N} messages with the same {size}-byte attachment grew the archive by {grown} bytes"
    );

    // Every message still reads back byte for byte, and all carry the same attachment blobs.
    assert_complete(&engine, &emu.tenant(), &users);
    let with: Vec<_> = engine
        .messages(user, None, None)
        .unwrap()
        .into_iter()
        .filter(|m| {
            m.entry
                .subject
                .as_deref()
                .is_some_and(|s| s.starts_with("report "))
        })
        .collect();
    assert_eq!(with.len(), N);
    let blobs_of = |m: &strongroom_engine::snapshot_view::MessageInfo| {
        let a = &m.entry.attachments[0];
        m.entry.blobs[a.first_blob..a.first_blob + a.blob_count].to_vec()
    };
    let first = blobs_of(&with[0]);
    for m in &with {
        let a = &m.entry.attachments[0];
        assert_eq!(a.name.as_deref(), Some("figures.bin"));
        assert_eq!(a.content_type.as_deref(), Some("application/octet-stream"));
        assert_eq!(blobs_of(m), first);
    }
    assert!(engine.verify(true).unwrap().ok);
}

/// Base64 bodies are stored decoded as far as they re-encode exactly; whatever layout a
/// mailer used, the message reads back byte for byte, and one file wrapped two ways is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_bodies_of_any_layout_read_back_byte_for_byte() {
    use rand::{RngCore, SeedableRng};
    let emu = tenant(1, 1, 43).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let mut file = vec![0u8; 300_000];
    rand::rngs::StdRng::seed_from_u64(8).fill_bytes(&mut file);
    let canonical = base64_lines(&file, 76, "\r\n");
    let mut garbled = canonical.clone();
    garbled[200_000] = b'*';
    // Whether the body is decoded whole or in part (not checked for a line longer than a
    // line may be: whether it is decoded depends on how the download is cut into pieces).
    let bodies: Vec<(&str, Vec<u8>, Option<bool>)> = vec![
        ("76 columns, CRLF", canonical.clone(), Some(true)),
        ("64 columns, LF", base64_lines(&file, 64, "\n"), Some(true)),
        (
            "a blank line at the end",
            [&canonical[..], b"\r\n"].concat(),
            Some(false),
        ),
        ("a character that is not base64", garbled, Some(false)),
        (
            "72 columns, text after",
            [&base64_lines(&file, 72, "\r\n")[..], b"-- \r\n"].concat(),
            Some(false),
        ),
        ("one long line", base64_lines(&file, 1 << 20, "\r\n"), None),
    ];
    let user = licensed_user(&emu);
    let mut sent = Vec::new();
    for (n, (name, body, _)) in bodies.iter().enumerate() {
        let mime = mime_with_body(n + 1, body);
        sent.push((*name, emu.add_message(&user, "inbox", &mime).unwrap(), mime));
    }
    let packs = dir.path().join("data");
    let before = disk_bytes(&packs);
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    let grown = disk_bytes(&packs) - before;

    let entries = engine.messages(&user, None, None).unwrap();
    for ((name, ids, mime), (_, _, whole)) in sent.iter().zip(&bodies) {
        let stored = engine.message_mime(&user, &ids.immutable_id, None).unwrap();
        assert!(
            &stored == mime,
            "{name}: the message differs from its $value"
        );
        let entry = &entries
            .iter()
            .find(|m| m.entry.id == ids.immutable_id)
            .unwrap()
            .entry;
        let a = &entry.attachments[0];
        let decoded_whole = a.base64.map(|l| l.decoded_blobs == a.blob_count);
        if whole.is_some() {
            assert_eq!(decoded_whole, *whole, "{name}: {:?}", a.base64);
        }
    }
    // The bodies decode to the same bytes, up to where decoding stopped: the file is stored
    // once decoded, plus the text kept as is (about half a body), not six times.
    let size = file.len() as u64;
    println!("six wrappings of a {size}-byte file grew the archive by {grown} bytes");
    assert!(
        grown < size * 5 / 2,
        "six wrappings of a {size}-byte file grew the archive by {grown} bytes"
    );
    assert!(engine.verify(true).unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_mb_attachment_streams_into_the_archive_byte_for_byte() {
    use rand::{RngCore, SeedableRng};
    let emu = tenant(1, 1, 41).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let mut attachment = vec![0u8; 60 << 20];
    rand::rngs::StdRng::seed_from_u64(6).fill_bytes(&mut attachment);
    let mime = mime_with_attachment(1, &attachment);
    drop(attachment);
    let user = licensed_user(&emu);
    let ids = emu.add_message(&user, "inbox", &mime).unwrap();

    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    let stored = engine.message_mime(&user, &ids.immutable_id, None).unwrap();
    assert!(stored == mime, "the large message differs from its $value");
    let entry = engine
        .messages(&user, None, None)
        .unwrap()
        .into_iter()
        .find(|m| m.entry.id == ids.immutable_id)
        .unwrap()
        .entry;
    let [a] = entry.attachments.as_slice() else {
        panic!("one attachment expected: {:?}", entry.attachments)
    };
    let encoded = (60u64 << 20).div_ceil(3) * 4;
    assert_eq!(a.size, encoded + 2 * encoded.div_ceil(76));
    assert!(a.blob_count >= 15, "{} chunks", a.blob_count);
    assert_eq!(entry.size, mime.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_mail_has_its_attachments_found_and_recorded() {
    use mail_parser::{MessageParser, MimeHeaders};
    let emu = tenant(3, 40, 43).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let users = backed_up(&backup(&engine, &task).await);
    let tenant = emu.tenant();
    let expected = tenant_messages(&tenant, &users);
    let mut with_attachments = 0;
    for user in &users {
        for m in engine.messages(user, None, None).unwrap() {
            let (_, mime) = &expected[&m.entry.id];
            let parsed = MessageParser::new().parse(mime).unwrap();
            let names: Vec<Option<&str>> =
                parsed.attachments().map(|a| a.attachment_name()).collect();
            let found: Vec<Option<&str>> = m
                .entry
                .attachments
                .iter()
                .map(|a| a.name.as_deref())
                .collect();
            assert_eq!(found, names, "{:?}", m.entry.subject);
            for a in &m.entry.attachments {
                let bytes = |blobs: &[String]| -> u64 {
                    blobs
                        .iter()
                        .map(|b| {
                            let blob = engine.archive().read_blob(&b.parse().unwrap());
                            blob.unwrap().len() as u64
                        })
                        .sum()
                };
                let run = &m.entry.blobs[a.first_blob..a.first_blob + a.blob_count];
                // The generator writes canonical base64 (76-character CRLF lines), so every
                // body is stored decoded, whole: about three quarters of its text.
                let layout = a
                    .base64
                    .as_ref()
                    .expect("a base64 attachment stored decoded");
                assert_eq!(layout.decoded_blobs, run.len());
                assert_eq!(layout.encoded_len, a.size);
                let decoded = bytes(run);
                assert_eq!(decoded.div_ceil(3) * 4 + decoded.div_ceil(57) * 2, a.size);
            }
            with_attachments += usize::from(!found.is_empty());
        }
    }
    assert!(
        with_attachments >= 5,
        "{with_attachments} messages with attachments"
    );
}
