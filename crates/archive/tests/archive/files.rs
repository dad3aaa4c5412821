use std::io::Write;

use strongroom_archive::{Error, FILE_BLOCK_LEN};

use crate::common::*;

#[test]
fn encrypted_files_random_access_replace_remove() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 20);
    let data = bytes(5, 3 * FILE_BLOCK_LEN + 123);
    let mut w = archive.create_file("search/segment-1.idx").unwrap();
    for piece in data.chunks(4000) {
        w.write_all(piece).unwrap();
    }
    assert!(!archive.file_exists("search/segment-1.idx").unwrap());
    w.commit().unwrap();
    let archive = open(dir.path(), 21);
    let f = archive.open_file("search/segment-1.idx").unwrap();
    assert_eq!(f.len(), data.len() as u64);
    let off = FILE_BLOCK_LEN as u64 - 10;
    assert_eq!(
        f.read_at(off, 20).unwrap(),
        &data[off as usize..off as usize + 20]
    );
    assert_eq!(f.read_all().unwrap(), data);
    archive
        .write_file("search/segment-1.idx", b"replaced")
        .unwrap();
    assert_eq!(
        archive
            .open_file("search/segment-1.idx")
            .unwrap()
            .read_all()
            .unwrap(),
        b"replaced"
    );
    archive.remove_file("search/segment-1.idx").unwrap();
    assert!(matches!(
        archive.open_file("search/segment-1.idx"),
        Err(Error::FileNotFound)
    ));
}
