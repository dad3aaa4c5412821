//! Every parser of on-disk bytes gets random and mutated inputs; none may panic. The same
//! entry points are the cargo-fuzz targets in crates/archive/fuzz.

use strongroom_archive::fuzzing::{parse, sample, TARGETS};

use crate::common::bytes;

#[test]
fn random_and_corrupt_bytes_never_panic() {
    for target in TARGETS {
        let valid = sample(target);
        parse(target, &valid);
        for i in 0..400u64 {
            parse(target, &bytes(i, (i as usize * 37) % 700));
            let mut m = valid.clone();
            match i % 4 {
                // Bit flips.
                0 => {
                    let k = (i as usize * 7919) % m.len();
                    m[k] ^= 1 << (i % 8);
                }
                // Truncation.
                1 => m.truncate((i as usize * 131) % m.len()),
                // Extension with garbage.
                2 => m.extend_from_slice(&bytes(i, 1 + i as usize % 100)),
                // Overwrite a little-endian length or count with a huge value.
                _ => {
                    let k = (i as usize * 13) % m.len().saturating_sub(4).max(1);
                    let end = (k + 4).min(m.len());
                    m[k..end].fill(0xff);
                }
            }
            parse(target, &m);
        }
    }
}
