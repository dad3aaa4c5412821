//! Search: a tantivy index of every backed-up message at every point in time, encrypted at
//! rest in the archive ([`directory`]).

pub mod directory;
