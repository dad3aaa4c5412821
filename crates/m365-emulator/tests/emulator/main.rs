//! Integration tests: every endpoint driven over real HTTP on 127.0.0.1 with reqwest.

mod batch;
mod cli;
mod common;
mod conformance;
mod control;
mod delta;
mod identity;
mod mail;
mod restore;
mod throttle;
mod users;
