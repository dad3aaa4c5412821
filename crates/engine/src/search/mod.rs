//! Search: a tantivy index of every backed-up message at every point in time, encrypted at
//! rest in the archive ([`directory`]).
//!
//! There is one document per message identity — task, mailbox (user id), immutable message
//! id ([`indexer::doc_key`]) — holding its newest known state: folder, subject, addresses,
//! body, attachments, date. A message deleted from the tenant keeps its document, marked with
//! the time of the first snapshot that lacks it, so search covers every point in time.
//!
//! The index is derived from the archive like the catalog: after the catalog transaction of
//! a backup, [`Search::catch_up`] indexes every snapshot it has not seen, and records which
//! in the tantivy commit's payload ([`IndexState`]). A crash between the two is repaired by
//! the next catch-up (the next backup or search). `rebuild` deletes and recreates it; turning
//! "Index all data for search" off deletes it.
//!
//! ```no_run
//! # fn demo(engine: &strongroom_engine::api::Engine) -> strongroom_engine::Result<()> {
//! use strongroom_engine::search::SearchQuery;
//! let results = engine.search(&SearchQuery::new("from:ann has:attachment after:2024-01-01"))?;
//! for hit in results.hits {
//!     println!("{} {} {:?}", hit.mailbox, hit.folder_path, hit.subject);
//! }
//! # Ok(()) }
//! ```

pub mod directory;
pub mod document;
pub mod indexer;
pub mod query;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use strongroom_archive::Archive;
use tantivy::collector::sort_key::{SortByStaticFastValue, SortByString};
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value;
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, Order, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, ErrorCode, Result};
use directory::ArchiveDirectory;
use schema::Fields;

/// Archive file names of the index start with this.
pub const INDEX_PREFIX: &str = "search/";
const STATE_VERSION: u32 = 1;
const WRITER_MEMORY: usize = 64 << 20;
/// Results per page when the query does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 1000;

/// A search: the query text, and which page of results (1-based) of what size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    pub query: String,
    #[serde(default = "first_page")]
    pub page: u32,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn first_page() -> u32 {
    1
}

fn default_page_size() -> u32 {
    DEFAULT_PAGE_SIZE
}

impl SearchQuery {
    /// The first page of `query`.
    pub fn new(query: &str) -> SearchQuery {
        SearchQuery {
            query: query.to_owned(),
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// Matching messages in all pages.
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
    pub hits: Vec<SearchHit>,
}

/// A matching message, with what a result list shows and what a restore needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub task_id: i64,
    /// The mailbox's address.
    pub mailbox: String,
    pub user_id: String,
    pub folder_path: String,
    pub message_id: String,
    pub subject: String,
    pub from: String,
    /// Received (else sent) time, ms since the epoch.
    pub date_ms: i64,
    pub size: u64,
    pub has_attachments: bool,
    /// A fragment of the body around the matched words (plain text).
    pub snippet: String,
    /// When the message was first missing from a backup; `None` while it exists.
    pub deleted_ms: Option<i64>,
    /// The snapshot to browse or restore it from: the newest that holds it.
    pub snapshot_id: String,
}

/// What the index has seen, kept in the payload of its tantivy commit (so inside the
/// encrypted `meta.json`, and atomic with the documents it describes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexState {
    pub version: u32,
    pub tasks: BTreeMap<i64, TaskState>,
}

/// What the index has seen of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    /// The newest snapshot indexed: live messages are restored from it, and the task's
    /// next snapshot is compared with it.
    pub latest: String,
    /// Every snapshot indexed.
    pub seen: BTreeSet<String>,
}

impl IndexState {
    pub fn has_seen(&self, task: i64, snapshot: &str) -> bool {
        self.tasks
            .get(&task)
            .is_some_and(|t| t.seen.contains(snapshot))
    }

    pub fn latest(&self, task: i64) -> Option<&str> {
        self.tasks.get(&task).map(|t| t.latest.as_str())
    }

    pub fn record(&mut self, task: i64, snapshot: &str) {
        let t = self.tasks.entry(task).or_default();
        t.latest = snapshot.to_owned();
        t.seen.insert(snapshot.to_owned());
    }
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexSummary {
    pub snapshots: u64,
    pub documents: u64,
}

pub(crate) fn index_error(e: tantivy::TantivyError) -> Error {
    use tantivy::TantivyError as T;
    match e {
        T::IoError(io) => Error::new(ErrorCode::Storage, format!("search index: {io}")),
        T::DataCorruption(_) | T::OpenReadError(_) | T::IncompatibleIndex(_) => Error::new(
            ErrorCode::ArchiveDamaged,
            format!("the search index is damaged ({e}): run rebuild to recreate it"),
        ),
        other => Error::internal(format!("search index: {other}")),
    }
}

/// An open index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchIndex")
    }
}

impl SearchIndex {
    /// Whether the archive holds an index.
    pub fn exists(archive: &Archive) -> Result<bool> {
        Ok(archive.file_exists(&format!("{INDEX_PREFIX}meta.json"))?)
    }

    /// Opens the archive's index, creating an empty one when there is none.
    pub fn open_or_create(archive: &Archive) -> Result<SearchIndex> {
        let dir = ArchiveDirectory::new(archive.clone(), INDEX_PREFIX);
        let index = if Self::exists(archive)? {
            Index::open(dir)?
        } else {
            let (schema, _) = Fields::schema();
            Index::create(dir, schema, Default::default())?
        };
        let fields = Fields::of(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
        })
    }

    /// Removes every file of the archive's index (absent is fine).
    pub fn delete(archive: &Archive) -> Result<()> {
        let name = |p: &str| format!("{INDEX_PREFIX}{p}");
        let managed = name(".managed.json");
        if archive.file_exists(&managed)? {
            let list: Vec<String> =
                serde_json::from_slice(&archive.open_file(&managed)?.read_all()?)?;
            for file in list {
                archive.remove_file(&name(&file))?;
            }
        }
        // meta.json last: while it exists the index is considered present.
        archive.remove_file(&managed)?;
        archive.remove_file(&name("meta.json"))?;
        Ok(())
    }

    /// What the last commit recorded.
    pub fn state(&self) -> Result<IndexState> {
        match self.index.load_metas()?.payload {
            Some(p) => Ok(serde_json::from_str(&p)?),
            None => Ok(IndexState {
                version: STATE_VERSION,
                ..IndexState::default()
            }),
        }
    }

    fn commit(&self, writer: &mut tantivy::IndexWriter, state: &IndexState) -> Result<()> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(state)?);
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Indexes every snapshot of `tasks` not indexed yet, in one commit. Holds the
    /// archive's write lock meanwhile, so two processes never write the index at once
    /// (fails with `archive_locked` while another process backs up or prunes).
    pub fn catch_up(&self, archive: &Archive, tasks: &HashSet<i64>) -> Result<IndexSummary> {
        if indexer::unseen(archive, &self.state()?, tasks)?.is_empty() {
            return Ok(IndexSummary::default());
        }
        let _lock = archive.writer()?;
        // Another process may have indexed meanwhile: read the state again under the lock.
        let mut state = self.state()?;
        let todo = indexer::unseen(archive, &state, tasks)?;
        if todo.is_empty() {
            self.reader.reload()?;
            return Ok(IndexSummary::default());
        }
        let mut writer = self.index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let mut indexer = indexer::Indexer {
            archive,
            writer: &writer,
            fields: self.fields,
            indexed: 0,
        };
        for snapshot in &todo {
            indexer.snapshot(snapshot, &mut state)?;
        }
        let documents = indexer.indexed;
        state.version = STATE_VERSION;
        self.commit(&mut writer, &state)?;
        writer.wait_merging_threads()?;
        Ok(IndexSummary {
            snapshots: todo.len() as u64,
            documents,
        })
    }

    /// Removes a task's documents (its search option was turned off).
    pub fn forget_task(&self, archive: &Archive, task: i64) -> Result<()> {
        let _lock = archive.writer()?;
        let mut state = self.state()?;
        let mut writer: tantivy::IndexWriter =
            self.index.writer_with_num_threads(1, WRITER_MEMORY)?;
        writer.delete_term(Term::from_field_i64(self.fields.task, task));
        state.tasks.remove(&task);
        self.commit(&mut writer, &state)?;
        writer.wait_merging_threads()?;
        Ok(())
    }

    /// One page of the messages matching `q`, newest first.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResults> {
        // Pick up commits made by another process (a backup run by the CLI).
        self.reader.reload()?;
        let state = self.state()?;
        let page = q.page.max(1);
        let page_size = q.page_size.clamp(1, MAX_PAGE_SIZE);
        let query = query::parse(&self.index, &self.fields, &q.query)?;
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(page_size as usize)
            .and_offset(((page - 1) * page_size) as usize)
            // Newest first; equal dates in identity order, so pages are stable and a rebuilt
            // index answers exactly as the incremental one did.
            .order_by((
                (SortByStaticFastValue::<i64>::for_field("date"), Order::Desc),
                (SortByString::for_field("key"), Order::Asc),
            ));
        let (total, docs) = searcher.search(&query, &(Count, top))?;
        let snippets = SnippetGenerator::create(&searcher, &*query, self.fields.body)?;
        let f = &self.fields;
        let mut hits = Vec::with_capacity(docs.len());
        for (_, address) in docs {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let task_id = doc.get_first(f.task).and_then(|v| v.as_i64()).unwrap_or(0);
            let deleted_ms = doc.get_first(f.deleted_ms).and_then(|v| v.as_i64());
            let snapshot_id = match deleted_ms {
                Some(_) => text(f.snapshot),
                None => state.latest(task_id).unwrap_or_default().to_owned(),
            };
            let snippet = snippets.snippet_from_doc(&doc);
            let snippet = if snippet.is_empty() {
                text(f.body).chars().take(150).collect()
            } else {
                snippet.fragment().to_owned()
            };
            hits.push(SearchHit {
                task_id,
                mailbox: text(f.address),
                user_id: text(f.user_id),
                folder_path: text(f.folder),
                message_id: text(f.message_id),
                subject: text(f.subject),
                from: text(f.from),
                date_ms: doc.get_first(f.date).and_then(|v| v.as_i64()).unwrap_or(0),
                size: doc.get_first(f.size).and_then(|v| v.as_u64()).unwrap_or(0),
                has_attachments: doc
                    .get_first(f.has_attachments)
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                snippet: snippet.split_whitespace().collect::<Vec<_>>().join(" "),
                deleted_ms,
                snapshot_id,
            });
        }
        Ok(SearchResults {
            total: total as u64,
            page,
            page_size,
            hits,
        })
    }
}

/// The engine's handle on its index: opened on first use, one writer at a time.
#[derive(Debug, Default)]
pub struct Search {
    open: Mutex<Option<SearchIndex>>,
}

impl Search {
    fn with<T>(&self, archive: &Archive, f: impl FnOnce(&SearchIndex) -> Result<T>) -> Result<T> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.is_none() {
            *open = Some(SearchIndex::open_or_create(archive)?);
        }
        f(open.as_ref().expect("opened above"))
    }

    /// Indexes what the index has not seen of `tasks` (those with search on). With no such
    /// task there is nothing to index, and no index is created.
    pub fn catch_up(&self, archive: &Archive, tasks: &HashSet<i64>) -> Result<IndexSummary> {
        if tasks.is_empty() {
            return Ok(IndexSummary::default());
        }
        self.with(archive, |index| index.catch_up(archive, tasks))
    }

    /// Brings the index up to date (unless `catch_up` is false), then runs the query.
    pub fn query(
        &self,
        archive: &Archive,
        tasks: &HashSet<i64>,
        catch_up: bool,
        q: &SearchQuery,
    ) -> Result<SearchResults> {
        if tasks.is_empty() {
            return Err(Error::invalid(
                "search is off: turn on \"Index all data for search\" for a task first",
            ));
        }
        self.with(archive, |index| {
            if catch_up {
                match index.catch_up(archive, tasks) {
                    // Another process is backing up: it indexes when it is done.
                    Err(e) if e.code == ErrorCode::ArchiveLocked => {}
                    other => {
                        other?;
                    }
                }
            }
            index.search(q)
        })
    }

    /// Drops `task`'s documents; with no task left indexing, deletes the whole index.
    pub fn forget_task(
        &self,
        archive: &Archive,
        task: i64,
        remaining: &HashSet<i64>,
    ) -> Result<()> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if remaining.is_empty() {
            *open = None;
            let _lock = archive.writer()?;
            return SearchIndex::delete(archive);
        }
        if !SearchIndex::exists(archive)? {
            return Ok(());
        }
        if open.is_none() {
            *open = Some(SearchIndex::open_or_create(archive)?);
        }
        open.as_ref()
            .expect("opened above")
            .forget_task(archive, task)
    }

    /// Deletes the index and recreates it from every snapshot of `tasks`.
    pub fn rebuild(&self, archive: &Archive, tasks: &HashSet<i64>) -> Result<IndexSummary> {
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            *open = None;
            let _lock = archive.writer()?;
            SearchIndex::delete(archive)?;
        }
        self.catch_up(archive, tasks)
    }
}
