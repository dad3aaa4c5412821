//! The catalog: a SQLite database (WAL) that indexes what the archive holds, for fast
//! listing and for the next incremental backup (tasks, accounts, each folder's last manifest
//! and delta link, snapshots).
//!
//! Where it lives: `<archive>/catalog.sqlite`, next to the data it describes. It is a derived
//! view of one archive, useless without that archive's key (its content columns are sealed
//! under the archive's catalog subkey, the tenant secret under the secrets subkey), so it
//! travels with the archive, cannot be paired with the wrong one by accident, and
//! `rebuild` recreates it from the archive alone (only delta links are lost, which costs one
//! full enumeration, not a download). A plain SQLite file rather than the archive's encrypted
//! file API keeps WAL, transactions and crash safety SQLite's job; ids, counts and times in
//! the clear are allowed by the security model.

mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection as Db, OptionalExtension};
use strongroom_archive::BlobId;

use crate::accounts::{Account, MailboxType};
use crate::error::{Error, ErrorCode, Result};
use crate::seal::Sealer;
use crate::task::{Connection, Service, Task, TaskSettings};

/// File name of the catalog inside the archive folder.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// The open catalog. Calls are serialised on one connection.
pub struct Catalog {
    db: Mutex<Db>,
    sealer: Sealer,
    secrets: Sealer,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog(..)")
    }
}

/// A folder's committed state: its manifest (a tree in the archive) and the delta link that
/// continues from exactly that manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderState {
    pub manifest: BlobId,
    pub delta_link: Option<String>,
    pub messages: u64,
}

/// A snapshot as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: String,
    pub task_id: i64,
    pub time_ms: i64,
    pub complete: bool,
    pub mailboxes: u64,
    pub messages: u64,
}

/// Everything a checkpoint commits in one transaction: the snapshot written just before,
/// the mailbox trees it holds, and each finished folder's manifest with its delta link.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub snapshot: Option<SnapshotRow>,
    /// (user id, mailbox tree, backup time)
    pub mailboxes: Vec<(String, BlobId, i64)>,
    /// (user id, folder id, state)
    pub folders: Vec<(String, String, FolderState)>,
    /// (user id, folder id) of folders that no longer exist.
    pub removed_folders: Vec<(String, String)>,
}

fn blob_id(text: &str) -> Result<BlobId> {
    text.parse()
        .map_err(|_| Error::new(ErrorCode::Catalog, "catalog holds a malformed blob id"))
}

impl Catalog {
    pub fn open(path: &Path, catalog_key: [u8; 32], secrets_key: [u8; 32]) -> Result<Catalog> {
        let mut db = Db::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::migrate(&mut db)?;
        Ok(Catalog {
            db: Mutex::new(db),
            sealer: Sealer::new(catalog_key),
            secrets: Sealer::new(secrets_key),
        })
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes every row (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        self.db().execute_batch(
            "BEGIN; DELETE FROM snapshots; DELETE FROM folders; DELETE FROM accounts;
             DELETE FROM tasks; COMMIT;",
        )?;
        Ok(())
    }

    // --- tasks ---

    #[allow(clippy::too_many_arguments)]
    pub fn insert_task(
        &self,
        id: Option<i64>,
        name: &str,
        service: Service,
        sealed_connection: &[u8],
        settings: &TaskSettings,
        created_ms: i64,
    ) -> Result<Task> {
        let db = self.db();
        let lookup = self.sealer.lookup(name);
        let exists: Option<i64> = db
            .query_row(
                "SELECT id FROM tasks WHERE name_lookup = ?1",
                [&lookup],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(Error::new(
                ErrorCode::TaskExists,
                "a task with this name exists already",
            ));
        }
        db.execute(
            "INSERT INTO tasks (id, name, name_lookup, service, connection, settings, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                self.sealer.seal_str("task.name", name),
                lookup,
                serde_json::to_string(&service)?,
                sealed_connection,
                serde_json::to_string(settings)?,
                created_ms
            ],
        )?;
        Ok(Task {
            id: db.last_insert_rowid(),
            name: name.to_owned(),
            service,
            settings: settings.clone(),
            created_ms,
        })
    }

    /// Seals a connection under the secrets subkey (the same bytes go into snapshots).
    pub fn seal_connection(&self, connection: &Connection) -> Result<Vec<u8>> {
        Ok(self
            .secrets
            .seal("task.connection", &serde_json::to_vec(connection)?))
    }

    pub fn open_connection(&self, sealed: &[u8]) -> Result<Connection> {
        Ok(serde_json::from_slice(
            &self.secrets.open("task.connection", sealed)?,
        )?)
    }

    pub fn tasks(&self) -> Result<Vec<Task>> {
        let db = self.db();
        let mut stmt =
            db.prepare("SELECT id, name, service, settings, created_ms FROM tasks ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, service, settings, created_ms) = row?;
            out.push(Task {
                id,
                name: self.sealer.open_string("task.name", &name)?,
                service: serde_json::from_str(&service)?,
                settings: serde_json::from_str(&settings)?,
                created_ms,
            });
        }
        Ok(out)
    }

    pub fn task_count(&self) -> Result<u32> {
        Ok(self
            .db()
            .query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get::<_, i64>(0))? as u32)
    }

    /// The task's connection, still sealed.
    pub fn sealed_connection(&self, task_id: i64) -> Result<Vec<u8>> {
        self.db()
            .query_row(
                "SELECT connection FROM tasks WHERE id = ?1",
                [task_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| Error::not_found("no such task"))
    }

    pub fn update_settings(&self, task_id: i64, settings: &TaskSettings) -> Result<()> {
        let n = self.db().execute(
            "UPDATE tasks SET settings = ?2 WHERE id = ?1",
            params![task_id, serde_json::to_string(settings)?],
        )?;
        if n == 0 {
            return Err(Error::not_found("no such task"));
        }
        Ok(())
    }

    // --- accounts ---

    /// Inserts or refreshes an account seen in the tenant; returns whether it is new.
    pub fn upsert_account(&self, task_id: i64, account: &Account, now_ms: i64) -> Result<bool> {
        let db = self.db();
        let exists: Option<i64> = db
            .query_row(
                "SELECT 1 FROM accounts WHERE task_id = ?1 AND user_id = ?2",
                params![task_id, account.user_id],
                |r| r.get(0),
            )
            .optional()?;
        let address = self.sealer.seal_str("account.address", &account.address);
        let lookup = self.sealer.lookup(&account.address.to_lowercase());
        let name = self
            .sealer
            .seal_str("account.display_name", &account.display_name);
        let kind = serde_json::to_string(&account.mailbox)?;
        if exists.is_some() {
            db.execute(
                "UPDATE accounts SET address = ?3, address_lookup = ?4, display_name = ?5,
                 licensed = ?6, kind = ?7, last_seen_ms = ?8, gone_since_ms = ?9
                 WHERE task_id = ?1 AND user_id = ?2",
                params![
                    task_id,
                    account.user_id,
                    address,
                    lookup,
                    name,
                    account.licensed,
                    kind,
                    now_ms,
                    account.gone_since_ms
                ],
            )?;
        } else {
            db.execute(
                "INSERT INTO accounts (task_id, user_id, address, address_lookup, display_name,
                 licensed, kind, active, first_seen_ms, last_seen_ms, gone_since_ms, tree,
                 last_backup_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12)",
                params![
                    task_id,
                    account.user_id,
                    address,
                    lookup,
                    name,
                    account.licensed,
                    kind,
                    account.active,
                    now_ms,
                    account.gone_since_ms,
                    account.tree.map(|t| t.to_hex()),
                    account.last_backup_ms
                ],
            )?;
        }
        Ok(exists.is_none())
    }

    /// Marks an account archived (it left the tenant or lost its mailbox), once.
    pub fn mark_gone(&self, task_id: i64, user_id: &str, now_ms: i64) -> Result<()> {
        self.db().execute(
            "UPDATE accounts SET gone_since_ms = COALESCE(gone_since_ms, ?3)
             WHERE task_id = ?1 AND user_id = ?2",
            params![task_id, user_id, now_ms],
        )?;
        Ok(())
    }

    /// Forgets an archived account whose retention ran out.
    pub fn forget_account(&self, task_id: i64, user_id: &str) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "DELETE FROM folders WHERE task_id = ?1 AND user_id = ?2",
            params![task_id, user_id],
        )?;
        tx.execute(
            "DELETE FROM accounts WHERE task_id = ?1 AND user_id = ?2",
            params![task_id, user_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_active(&self, task_id: i64, user_id: &str, active: bool) -> Result<()> {
        self.db().execute(
            "UPDATE accounts SET active = ?3 WHERE task_id = ?1 AND user_id = ?2",
            params![task_id, user_id, active],
        )?;
        Ok(())
    }

    pub fn accounts(&self, task_id: i64) -> Result<Vec<Account>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT user_id, address, display_name, licensed, kind, active, first_seen_ms,
             gone_since_ms, tree, last_backup_ms FROM accounts WHERE task_id = ?1
             ORDER BY first_seen_ms, user_id",
        )?;
        let rows = stmt.query_map([task_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (user_id, address, name, licensed, kind, active, first, gone, tree, last) = row?;
            out.push(Account {
                user_id,
                address: self.sealer.open_string("account.address", &address)?,
                display_name: self.sealer.open_string("account.display_name", &name)?,
                licensed,
                mailbox: serde_json::from_str::<MailboxType>(&kind)?,
                active,
                first_seen_ms: first,
                gone_since_ms: gone,
                tree: tree.as_deref().map(blob_id).transpose()?,
                last_backup_ms: last,
            });
        }
        Ok(out)
    }

    /// The user id of the account with this address (case-insensitive).
    pub fn account_by_address(&self, task_id: i64, address: &str) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT user_id FROM accounts WHERE task_id = ?1 AND address_lookup = ?2",
                params![task_id, self.sealer.lookup(&address.to_lowercase())],
                |r| r.get(0),
            )
            .optional()?)
    }

    // --- folders and checkpoints ---

    pub fn folder_states(&self, task_id: i64, user_id: &str) -> Result<Vec<(String, FolderState)>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT folder_id, manifest, delta_link, messages FROM folders
             WHERE task_id = ?1 AND user_id = ?2",
        )?;
        let rows = stmt.query_map(params![task_id, user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (folder, manifest, link, messages) = row?;
            out.push((
                folder,
                FolderState {
                    manifest: blob_id(&manifest)?,
                    delta_link: link
                        .map(|l| self.sealer.open_string("folder.delta_link", &l))
                        .transpose()?,
                    messages: messages as u64,
                },
            ));
        }
        Ok(out)
    }

    /// Commits a checkpoint atomically: after a crash either all of it is there or none.
    pub fn commit(&self, task_id: i64, checkpoint: &Checkpoint) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        if let Some(s) = &checkpoint.snapshot {
            tx.execute(
                "INSERT OR REPLACE INTO snapshots (id, task_id, time_ms, complete, mailboxes,
                 messages) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.id,
                    s.task_id,
                    s.time_ms,
                    s.complete,
                    s.mailboxes as i64,
                    s.messages as i64
                ],
            )?;
        }
        for (user, tree, at) in &checkpoint.mailboxes {
            tx.execute(
                "UPDATE accounts SET tree = ?3, last_backup_ms = ?4
                 WHERE task_id = ?1 AND user_id = ?2",
                params![task_id, user, tree.to_hex(), at],
            )?;
        }
        for (user, folder, state) in &checkpoint.folders {
            tx.execute(
                "INSERT OR REPLACE INTO folders (task_id, user_id, folder_id, manifest,
                 delta_link, messages) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    task_id,
                    user,
                    folder,
                    state.manifest.to_hex(),
                    state
                        .delta_link
                        .as_deref()
                        .map(|l| self.sealer.seal_str("folder.delta_link", l)),
                    state.messages as i64
                ],
            )?;
        }
        for (user, folder) in &checkpoint.removed_folders {
            tx.execute(
                "DELETE FROM folders WHERE task_id = ?1 AND user_id = ?2 AND folder_id = ?3",
                params![task_id, user, folder],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, task_id, time_ms, complete, mailboxes, messages FROM snapshots
             ORDER BY time_ms, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SnapshotRow {
                id: r.get(0)?,
                task_id: r.get(1)?,
                time_ms: r.get(2)?,
                complete: r.get(3)?,
                mailboxes: r.get::<_, i64>(4)? as u64,
                messages: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
        Ok(())
    }
}
