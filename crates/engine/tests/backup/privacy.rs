//! No plaintext (subjects, addresses, names, bodies, attachment names) reaches the archive.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_canary_reaches_the_archive_folder() {
    let emu = tenant(3, 5, 11).await;
    let canaries = [
        "CanarySubjectQx7",
        "canary.addr.zq9@fabrikam.com",
        "CanaryBodyWordVv3",
        "CanaryAttachmentJj2.pdf",
        "CanaryFolderKk5",
        "CanaryInsideAttachmentBytesWw4",
    ];
    let tenant = emu.tenant();
    let user = tenant
        .users
        .iter()
        .find(|u| u.mailbox.is_some() && u.licensed)
        .unwrap();
    emu.create_folder(&user.id, "inbox", canaries[4], false)
        .unwrap();
    let mime = format!(
        "From: Canary <{}>\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{} {}\r\n--b\r\nContent-Type: application/pdf; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n",
        canaries[1], user.user_principal_name, canaries[0], canaries[2], canaries[2], canaries[3], canaries[3]
    );
    emu.add_message(&user.id, &format!("Inbox/{}", canaries[4]), mime.as_bytes())
        .unwrap();
    // A base64 attachment is stored decoded, and bytes that look random are stored without
    // compression: a canary inside such a file must not reach the disk either.
    emu.add_message(&user.id, "inbox", &random_attachment_with(canaries[5]))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, task) = setup(&emu, dir.path(), auto_activate()).await;
    let report = backup(&engine, &task).await;
    assert_eq!(report.outcome, Outcome::Success);
    assert!(
        engine
            .messages(&user.id, Some(&format!("Inbox/{}", canaries[4])), None)
            .unwrap()
            .len()
            == 1
    );
    let scan = engine.messages(&user.id, Some("Inbox"), None).unwrap();
    let scan = scan
        .iter()
        .find(|m| m.entry.subject.as_deref() == Some("scan"));
    assert!(
        scan.unwrap().entry.attachments[0].base64.is_some(),
        "the random attachment was stored decoded"
    );
    let mut secrets: Vec<String> = canaries.iter().map(|s| s.to_string()).collect();
    secrets.push(user.user_principal_name.clone());
    secrets.push(user.display_name.clone());
    secrets.push(emu.info().client_secret.clone());
    drop(engine);
    assert_no_plaintext(dir.path(), &secrets);
}

/// A message whose base64 attachment is 64 KiB of random bytes with `canary` in the middle.
fn random_attachment_with(canary: &str) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut file = vec![0u8; 64 << 10];
    rand::rngs::StdRng::seed_from_u64(5).fill_bytes(&mut file);
    file.splice(30_000..30_000, canary.bytes());
    let mut mime = b"Subject: scan\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: image/jpeg; name=\"scan.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\
        Content-Disposition: attachment; filename=\"scan.jpg\"\r\n\r\n"
        .to_vec();
    mime.extend(base64_lines(&file, 76, "\r\n"));
    mime.extend_from_slice(b"--b--\r\n");
    mime
}

fn assert_no_plaintext(dir: &Path, secrets: &[String]) {
    let mut stack = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            // Lossy UTF-8 keeps every valid run intact; std's substring search is fast.
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for s in secrets {
                for needle in [s.clone(), s.to_lowercase()] {
                    assert!(
                        !text.contains(needle.as_str()),
                        "{s:?} in plaintext in {}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(files > 3, "the scan must see the archive's files");
}
