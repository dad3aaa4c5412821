//! Integration tests of strongroom-archive: one binary, one module per concern.

mod common;
mod corruption;
mod crash;
mod faults;
mod files;
mod fixture;
mod inputs;
mod keys;
mod lazy_index;
mod locks;
mod plaintext;
mod prune;
mod roundtrip;
mod spec_reader;
