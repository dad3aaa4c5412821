//! An independent reader written from docs/FORMAT.md alone (§17), using only the
//! primitives (Argon2id, BLAKE3, AES-256-GCM, zstd) and none of the crate's code. It reads
//! the v1 fixture and must agree with the crate byte for byte: if the format document and
//! the code ever drift apart, this test fails.

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn arr32(b: &[u8]) -> [u8; 32] {
    b[..32].try_into().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn aes_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .expect("authentic")
}

fn counter_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&n.to_le_bytes());
    nonce
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// §8: a sealed object (index or snapshot).
fn open_sealed(magic: &[u8], subkey: &[u8; 32], b: &[u8]) -> Vec<u8> {
    assert_eq!(&b[0..4], magic);
    assert_eq!(u32_at(b, 4), 1);
    let key = *blake3::keyed_hash(subkey, &b[8..40]).as_bytes();
    let len = u64_at(b, 40) as usize;
    let z = aes_open(&key, &[0; 12], &b[..48], &b[48..]);
    let payload = zstd::bulk::decompress(&z, len).unwrap();
    assert_eq!(payload.len(), len);
    payload
}

struct Entry {
    pack: [u8; 32],
    seed: [u8; 32],
    kind: u8,
    offset: u32,
    length: u32,
    raw_len: u32,
}

struct SpecReader {
    root: std::path::PathBuf,
    k_blobid: [u8; 32],
    k_pack: [u8; 32],
    k_snapshot: [u8; 32],
    k_file: [u8; 32],
    k_filename: [u8; 32],
    index: HashMap<[u8; 32], Entry>,
}

impl SpecReader {
    fn open(root: &Path, passphrase: &str) -> SpecReader {
        // §3 config.
        let config = std::fs::read(root.join("config")).unwrap();
        assert_eq!((&config[0..4], u32_at(&config, 4)), (&b"SRCF"[..], 1));
        let archive_id = &config[8..40];
        // §5 key files: the first kind-1 file that unwraps.
        let mut master = None;
        for k in files(&root.join("keys")) {
            assert_eq!((&k[0..4], k.len()), (&b"SRKY"[..], 146));
            if k[8] != 1 {
                continue;
            }
            assert_eq!((k[9], &k[54..86]), (1, archive_id));
            let params =
                argon2::Params::new(u32_at(&k, 10), u32_at(&k, 14), u32_at(&k, 18), Some(32))
                    .unwrap();
            let argon =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut kek = [0u8; 32];
            argon
                .hash_password_into(passphrase.as_bytes(), &k[22..54], &mut kek)
                .unwrap();
            let nonce: [u8; 12] = k[86..98].try_into().unwrap();
            master = Some(arr32(&aes_open(&kek, &nonce, &k[..98], &k[98..])));
        }
        let m = master.expect("a passphrase key file");
        // §4.1 subkeys.
        let d = |ctx: &str| blake3::derive_key(ctx, &m);
        let k_index = d("strongroom archive v1 index");
        let mut index = HashMap::new();
        // §8 index files.
        for file in files(&root.join("index")) {
            let p = open_sealed(b"SRIX", &k_index, &file);
            let mut at = 4;
            for _ in 0..u32_at(&p, 0) {
                let (pack, seed) = (arr32(&p[at..]), arr32(&p[at + 32..]));
                let n = u32_at(&p, at + 64);
                at += 68;
                for _ in 0..n {
                    let e = &p[at..at + 45];
                    index.insert(
                        arr32(e),
                        Entry {
                            pack,
                            seed,
                            kind: e[32],
                            offset: u32_at(e, 33),
                            length: u32_at(e, 37),
                            raw_len: u32_at(e, 41),
                        },
                    );
                    at += 45;
                }
            }
            assert_eq!(at, p.len());
        }
        SpecReader {
            root: root.to_path_buf(),
            k_blobid: d("strongroom archive v1 blob id"),
            k_pack: d("strongroom archive v1 pack"),
            k_snapshot: d("strongroom archive v1 snapshot"),
            k_file: d("strongroom archive v1 file"),
            k_filename: d("strongroom archive v1 file name"),
            index,
        }
    }

    /// §9: (time, root, meta) of every snapshot.
    fn snapshots(&self) -> Vec<(i64, [u8; 32], Vec<u8>)> {
        let mut out: Vec<_> = files(&self.root.join("snapshots"))
            .iter()
            .map(|f| {
                let p = open_sealed(b"SRSN", &self.k_snapshot, f);
                let time = u64_at(&p, 0) as i64;
                let meta_len = u32_at(&p, 40) as usize;
                assert_eq!(p.len(), 44 + meta_len);
                (time, arr32(&p[8..]), p[44..].to_vec())
            })
            .collect();
        out.sort();
        out
    }

    /// §11: the whole plaintext of an encrypted file.
    fn encrypted_file(&self, name: &str) -> Vec<u8> {
        let name_hash = *blake3::keyed_hash(&self.k_filename, name.as_bytes()).as_bytes();
        let f = std::fs::read(self.root.join("files").join(hex(&name_hash))).unwrap();
        assert_eq!((&f[0..4], u32_at(&f, 4)), (&b"SRFL"[..], 1));
        let key = *blake3::keyed_hash(&self.k_file, &f[8..40]).as_bytes();
        let blocks: Vec<&[u8]> = f[40..].chunks(65_536 + 16).collect();
        let mut out = Vec::new();
        for (k, sealed) in blocks.iter().enumerate() {
            let mut aad = name_hash.to_vec();
            aad.extend_from_slice(&(k as u64).to_le_bytes());
            aad.push(u8::from(k + 1 == blocks.len()));
            out.extend(aes_open(&key, &counter_nonce(k as u64), &aad, sealed));
        }
        out
    }

    /// §17 step 4: read one blob.
    fn blob(&self, id: &[u8; 32]) -> Vec<u8> {
        let e = &self.index[id];
        let h = hex(&e.pack);
        let pack = std::fs::read(self.root.join("data").join(&h[..2]).join(&h)).unwrap();
        assert_eq!(blake3::hash(&pack).as_bytes(), &e.pack);
        let key = *blake3::keyed_hash(&self.k_pack, &e.seed).as_bytes();
        let mut aad = id.to_vec();
        aad.push(e.kind);
        let start = e.offset as usize;
        let record = aes_open(
            &key,
            &counter_nonce(e.offset.into()),
            &aad,
            &pack[start..start + e.length as usize],
        );
        let plain = match record[0] {
            0 => record[1..].to_vec(),
            1 => zstd::bulk::decompress(&record[1..], e.raw_len as usize).unwrap(),
            f => panic!("unknown flag {f}"),
        };
        assert_eq!(plain.len(), e.raw_len as usize);
        assert_eq!(blake3::keyed_hash(&self.k_blobid, &plain).as_bytes(), id);
        plain
    }

    /// §10: a tree's children and meta.
    fn tree(&self, id: &[u8; 32]) -> (Vec<[u8; 32]>, Vec<u8>) {
        assert_eq!(self.index[id].kind, 1);
        let t = self.blob(id);
        assert_eq!(t[0], 1);
        let n = u32_at(&t, 1) as usize;
        let children = (0..n).map(|i| arr32(&t[5 + 32 * i..])).collect();
        let meta_len = u32_at(&t, 5 + 32 * n) as usize;
        (children, t[9 + 32 * n..9 + 32 * n + meta_len].to_vec())
    }
}

/// Reads every blob reachable from every snapshot with the spec reader and compares it to
/// what the crate reads.
#[test]
fn an_independent_reader_agrees_with_the_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let spec = SpecReader::open(&root, "fixture passphrase");
    let crate_archive = strongroom_archive::Archive::open(
        crate::common::local(&root),
        "fixture passphrase",
        crate::common::options(1, crate::common::clock()),
    )
    .unwrap();
    let snapshots = spec.snapshots();
    let from_crate: Vec<_> = crate_archive
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| (s.time_ms, s.root.0, s.meta))
        .collect();
    assert_eq!(snapshots, from_crate);
    assert_eq!(
        spec.encrypted_file("catalog.sealed"),
        crate_archive
            .open_file("catalog.sealed")
            .unwrap()
            .read_all()
            .unwrap()
    );
    let mut blobs_read = 0;
    for (_, root, _) in snapshots {
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            let ours = spec.blob(&id);
            assert_eq!(
                ours,
                crate_archive
                    .read_blob(&strongroom_archive::BlobId(id))
                    .unwrap()
            );
            blobs_read += 1;
            if spec.index[&id].kind == 1 {
                stack.extend(spec.tree(&id).0);
            }
        }
    }
    assert!(blobs_read >= 10, "{blobs_read}");
}
