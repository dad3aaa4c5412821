#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_archive::fuzzing::{parse, Target};

fuzz_target!(|data: &[u8]| parse(Target::Pack, data));
