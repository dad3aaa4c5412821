//! End-to-end: strongroom-graph against the in-process m365 emulator, one module per area.

mod auth;
mod batch;
mod common;
mod faults;
mod mail;
mod provision;
mod restore;
mod users;
