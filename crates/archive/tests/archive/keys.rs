use std::collections::BTreeMap;
use std::path::Path;

use strongroom_archive::{Archive, Error, KdfParams, Purpose, RecoveryCode};

use crate::common::*;

fn snapshot_of_dir(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    all_files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn wrong_passphrase_is_typed_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 10);
    write_snapshot(&archive, 1, 3);
    drop(archive);
    let before = snapshot_of_dir(dir.path());
    let err = Archive::open(local(dir.path()), "wrong", options(1, clock())).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err:?}");
    assert_eq!(snapshot_of_dir(dir.path()), before);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Archive::open(local(empty.path()), PASS, options(1, clock())),
        Err(Error::NotAnArchive)
    ));
    assert!(matches!(
        Archive::init(
            local(dir.path()),
            PASS,
            KdfParams::insecure_for_tests(),
            options(1, clock())
        ),
        Err(Error::AlreadyExists)
    ));
}

#[test]
fn passphrase_change_and_recovery_code() {
    let dir = tempfile::tempdir().unwrap();
    let archive = init(dir.path(), 11);
    let (snap, contents) = write_snapshot(&archive, 2, 4);
    let catalog_key = archive.subkey(Purpose::Catalog);
    let kdf = KdfParams::insecure_for_tests();
    let code = archive.create_recovery_code(kdf).unwrap();
    archive.change_passphrase("new passphrase", kdf).unwrap();
    drop(archive);

    assert!(matches!(
        Archive::open(local(dir.path()), PASS, options(1, clock())),
        Err(Error::WrongPassphrase)
    ));
    let a = Archive::open(local(dir.path()), "new passphrase", options(1, clock())).unwrap();
    assert_snapshot(&a, &snap, &contents);
    assert_eq!(a.subkey(Purpose::Catalog), catalog_key);
    assert_ne!(a.subkey(Purpose::SearchIndex), catalog_key);

    let printed = code.to_string();
    let parsed = RecoveryCode::parse(&printed.to_lowercase()).unwrap();
    let r =
        Archive::open_with_recovery_code(local(dir.path()), &parsed, options(1, clock())).unwrap();
    assert_snapshot(&r, &snap, &contents);
    assert_eq!(r.subkey(Purpose::Catalog), catalog_key);
    // A recovery code is not a passphrase and vice versa.
    assert!(Archive::open(local(dir.path()), &printed, options(1, clock())).is_err());
    // A new code replaces the old one.
    let code2 = r.create_recovery_code(kdf).unwrap();
    assert!(
        Archive::open_with_recovery_code(local(dir.path()), &code, options(1, clock())).is_err()
    );
    Archive::open_with_recovery_code(local(dir.path()), &code2, options(1, clock())).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
        2
    );
}

#[test]
fn key_file_records_production_kdf_cost() {
    // Production cost is what `init_local` gets by default; check it is stored and used.
    let p = KdfParams::production();
    assert!(p.memory_kib >= 64 * 1024);
    let dir = tempfile::tempdir().unwrap();
    Archive::init_local(dir.path(), PASS, p).unwrap();
    let key = all_files(&dir.path().join("keys")).pop().unwrap();
    let bytes = std::fs::read(key).unwrap();
    assert_eq!(&bytes[10..14], &p.memory_kib.to_le_bytes());
    Archive::open_local(dir.path(), PASS).unwrap();
}
