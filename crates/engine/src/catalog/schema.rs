//! The catalog schema as numbered migrations; `PRAGMA user_version` records how many ran.
//! Append new steps, never edit old ones.

use rusqlite::Connection;

use crate::error::Result;

const MIGRATIONS: &[&str] = &[
    // 1: tasks, accounts, folder checkpoints, snapshots.
    "CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        name BLOB NOT NULL,            -- sealed
        name_lookup BLOB NOT NULL UNIQUE,
        service TEXT NOT NULL,
        connection BLOB NOT NULL,      -- sealed under the secrets subkey
        settings TEXT NOT NULL,        -- JSON of flags and numbers only
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE accounts (
        task_id INTEGER NOT NULL REFERENCES tasks(id),
        user_id TEXT NOT NULL,
        address BLOB NOT NULL,         -- sealed
        address_lookup BLOB NOT NULL,
        display_name BLOB NOT NULL,    -- sealed
        licensed INTEGER NOT NULL,
        kind TEXT NOT NULL,
        active INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        gone_since_ms INTEGER,         -- left the tenant or lost its mailbox: archived
        tree TEXT,                     -- mailbox tree of the last committed snapshot
        last_backup_ms INTEGER,
        PRIMARY KEY (task_id, user_id)
    );
    CREATE INDEX accounts_by_address ON accounts (task_id, address_lookup);
    CREATE TABLE folders (
        task_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        folder_id TEXT NOT NULL,
        manifest TEXT NOT NULL,        -- folder tree blob id
        delta_link BLOB,               -- sealed; saved only with its manifest
        messages INTEGER NOT NULL,
        PRIMARY KEY (task_id, user_id, folder_id)
    );
    CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        task_id INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        complete INTEGER NOT NULL,     -- 0: checkpoint of a running backup
        mailboxes INTEGER NOT NULL,
        messages INTEGER NOT NULL
    );",
];

/// Brings the database up to the newest schema.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
