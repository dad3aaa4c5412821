//! Nothing readable on disk: canaries planted in every kind of content never appear in
//! any file under the archive folder, raw or zstd-compressed.

use strongroom_archive::{BlobKind, Tree};

use crate::common::*;

const CANARIES: [&str; 4] = [
    "CANARY-subject-Quarterly-Merger-Plans",
    "canary.address@contoso.example",
    "CANARY folder Board Minutes",
    "CANARYattachmentname.pdf",
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_canary_appears_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 40);
    let mut w = archive.writer().unwrap();
    let mut planted = Vec::new();
    let mut children = Vec::new();
    for (i, c) in CANARIES.iter().enumerate() {
        // Repetitive text compresses well, so its zstd form keeps literal runs.
        let blob = format!("Subject: {c}\r\nTo: {c}\r\n\r\n{}", c.repeat(50 + i)).into_bytes();
        children.push(w.put_blob(BlobKind::Data, &blob).unwrap());
        planted.push(blob);
    }
    let big = CANARIES.join(" ").repeat(20_000).into_bytes();
    children.extend(w.put_stream(&big[..]).unwrap());
    let meta = format!("{{\"folder\":\"{}\"}}", CANARIES[2]).into_bytes();
    let root = w
        .put_tree(&Tree {
            children,
            meta: meta.clone(),
        })
        .unwrap();
    w.commit_snapshot(root, CANARIES[0].as_bytes()).unwrap();
    w.finish().unwrap();
    archive
        .write_file(CANARIES[3], CANARIES.join("\n").as_bytes())
        .unwrap();
    archive
        .create_recovery_code(strongroom_archive::KdfParams::insecure_for_tests())
        .unwrap();

    let mut needles: Vec<Vec<u8>> = CANARIES.iter().map(|c| c.as_bytes().to_vec()).collect();
    needles.extend(
        CANARIES
            .iter()
            .map(|c| c.encode_utf16().flat_map(u16::to_le_bytes).collect()),
    );
    for blob in planted.iter().chain([&meta, &big]) {
        let z = zstd::bulk::compress(blob, 3).unwrap();
        // Skip the frame header; the body is what would appear if stored unencrypted.
        needles.push(z[6..z.len().min(40)].to_vec());
    }
    let files = all_files(dir.path());
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let data = std::fs::read(&path).unwrap();
        for n in &needles {
            assert!(
                !contains(&data, n),
                "{} contains {:?}",
                path.display(),
                String::from_utf8_lossy(n)
            );
        }
        // File names are ids and hashes, never content.
        let name = path.to_string_lossy();
        assert!(!CANARIES.iter().any(|c| name.contains(c)));
    }
}
