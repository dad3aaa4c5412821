//! Mail: the folder tree (hidden folders included), folder delta, per-folder message delta,
//! MIME via `$value`, attachments. Every call goes through the mailbox's governor lane.

use bytes::Bytes;
use futures::stream::BoxStream;
use serde::Deserialize;

use crate::client::{BodyStream, Call, GraphClient};
use crate::error::GraphError;
use crate::governor::Lane;
use crate::paging::{delta_pages, pages, DeltaLink, DeltaPage, Page};
use crate::resources::{Attachment, MailFolder, Message, MESSAGE_SELECT, SIZE_PROPERTY};

/// Ask for immutable ids on every request (ids then survive moves between folders).
pub(crate) const IMMUTABLE_IDS: &str = r#"IdType="ImmutableId""#;

/// How to run a message delta.
#[derive(Debug, Clone)]
pub struct MessageDeltaOptions {
    /// `Prefer: odata.maxpagesize` (`$top` would cap the total, not the page).
    pub page_size: u32,
    /// Also ask for PidTagMessageSize through an extended property.
    pub include_size: bool,
}

impl Default for MessageDeltaOptions {
    fn default() -> Self {
        MessageDeltaOptions {
            page_size: 100,
            include_size: false,
        }
    }
}

/// A message as delta returns it, with the optional extended-property array.
#[derive(Deserialize)]
struct MessageWire {
    #[serde(flatten)]
    message: Message,
    #[serde(rename = "singleValueExtendedProperties", default)]
    extended: Option<serde_json::Value>,
}

impl MessageWire {
    fn into_message(self) -> Message {
        let mut m = self.message;
        if let Some(ext) = &self.extended {
            m.take_size_from(ext);
        }
        m
    }
}

impl GraphClient {
    /// One folder by id or well-known name (`msgfolderroot`, `inbox`, ...).
    pub async fn mail_folder(&self, user: &str, folder: &str) -> Result<MailFolder, GraphError> {
        let url = self.url(&["users", user, "mailFolders", folder]);
        self.json(&Call::get(url, Lane::mailbox(user))).await
    }

    /// Every folder of the mailbox, hidden ones included, parents before children: the
    /// root's children and then each folder's `childFolders`, all with
    /// `includeHiddenFolders=true`, plus the Recoverable Items "Deletions" folder (which no
    /// listing returns) and its subfolders. Search folders are included (see
    /// [`MailFolder::is_search_folder`]): they hold no messages of their own.
    pub async fn folder_tree(&self, user: &str) -> Result<Vec<MailFolder>, GraphError> {
        // The Recoverable Items lookup does not depend on the walk: run them side by side,
        // as every request of the chain at a mailbox's start delays its whole backup.
        let (tree, deletions) = futures::join!(
            self.walk_folders(user, self.url(&["users", user, "mailFolders"])),
            self.mail_folder(user, "recoverableitemsdeletions"),
        );
        let mut tree = tree?;
        match deletions {
            Ok(deletions) if !tree.iter().any(|f| f.id == deletions.id) => {
                let children =
                    self.url(&["users", user, "mailFolders", &deletions.id, "childFolders"]);
                let has_children = deletions.child_folder_count.unwrap_or(1) > 0;
                tree.push(deletions);
                if has_children {
                    tree.extend(self.walk_folders(user, children).await?);
                }
            }
            Ok(_) => {}
            // Not every mailbox exposes it.
            Err(GraphError::Service(e)) if e.status == 404 => {}
            Err(e) => return Err(e),
        }
        Ok(tree)
    }

    /// The folders listed at `start` and, recursively, their children, parents first. The
    /// folders of one level are listed at once (the governor caps what is in flight), so a
    /// deep tree costs a round trip per level, not per folder.
    async fn walk_folders(
        &self,
        user: &str,
        start: url::Url,
    ) -> Result<Vec<MailFolder>, GraphError> {
        use futures::{StreamExt, TryStreamExt};
        let mut tree = Vec::new();
        let mut level = vec![start];
        while !level.is_empty() {
            let listed: Vec<Vec<MailFolder>> = futures::stream::iter(level)
                .map(|mut url| {
                    url.query_pairs_mut()
                        .append_pair("includeHiddenFolders", "true")
                        .append_pair("$top", "100");
                    pages::<MailFolder>(self.clone(), Call::get(url, Lane::mailbox(user)))
                        .map_ok(|page| futures::stream::iter(page.value.into_iter().map(Ok)))
                        .try_flatten()
                        .try_collect()
                })
                .buffered(self.governor().config().max_in_flight)
                .try_collect()
                .await?;
            level = Vec::new();
            for folder in listed.into_iter().flatten() {
                if folder.child_folder_count.unwrap_or(1) > 0 {
                    level.push(self.url(&[
                        "users",
                        user,
                        "mailFolders",
                        &folder.id,
                        "childFolders",
                    ]));
                }
                tree.push(folder);
            }
        }
        Ok(tree)
    }

    /// `GET /users/{id}/mailFolders/delta`: every folder as a flat list with
    /// `parentFolderId`, then only changes when started from a saved link.
    pub fn mail_folder_delta(
        &self,
        user: &str,
        from: Option<&DeltaLink>,
    ) -> Result<BoxStream<'static, Result<DeltaPage<MailFolder>, GraphError>>, GraphError> {
        let lane = Lane::mailbox(user);
        let call = match from {
            Some(link) => Call::get(self.url(&[]), lane).follow(link.as_str())?,
            None => Call::get(self.url(&["users", user, "mailFolders", "delta"]), lane),
        };
        let call = call.prefer("odata.maxpagesize=250");
        Ok(delta_pages(
            self.clone(),
            call,
            format!("mailFolders of {user}"),
            |f: MailFolder| f,
        ))
    }

    /// `GET /users/{id}/mailFolders/{folder}/messages/delta` for one folder: a full
    /// enumeration when `from` is `None`, else the changes since that round. Pages arrive one
    /// at a time; save the last page's delta link only after its changes are committed.
    ///
    /// An expired token gives [`GraphError::SyncStateNotFound`] with `resource` = the folder
    /// id: restart this folder with `from = None`.
    pub fn message_delta(
        &self,
        user: &str,
        folder_id: &str,
        from: Option<&DeltaLink>,
        options: &MessageDeltaOptions,
    ) -> Result<BoxStream<'static, Result<DeltaPage<Message>, GraphError>>, GraphError> {
        let lane = Lane::mailbox(user);
        let call = match from {
            Some(link) => Call::get(self.url(&[]), lane).follow(link.as_str())?,
            None => {
                let mut url =
                    self.url(&["users", user, "mailFolders", folder_id, "messages", "delta"]);
                url.query_pairs_mut().append_pair("$select", MESSAGE_SELECT);
                if options.include_size {
                    url.query_pairs_mut().append_pair(
                        "$expand",
                        &format!("singleValueExtendedProperties($filter=id eq '{SIZE_PROPERTY}')"),
                    );
                }
                Call::get(url, lane)
            }
        };
        let call = call
            .prefer(format!(
                "odata.maxpagesize={}",
                options.page_size.clamp(1, 1000)
            ))
            .prefer(IMMUTABLE_IDS);
        Ok(delta_pages(
            self.clone(),
            call,
            folder_id.to_owned(),
            MessageWire::into_message,
        ))
    }

    /// Messages of a folder without delta (for mailboxes whose quota blocks delta).
    pub fn messages(
        &self,
        user: &str,
        folder_id: &str,
        page_size: u32,
    ) -> BoxStream<'static, Result<Page<Message>, GraphError>> {
        let mut url = self.url(&["users", user, "mailFolders", folder_id, "messages"]);
        url.query_pairs_mut()
            .append_pair("$select", MESSAGE_SELECT)
            .append_pair("$top", &page_size.clamp(1, 1000).to_string());
        pages(
            self.clone(),
            Call::get(url, Lane::mailbox(user)).prefer(IMMUTABLE_IDS),
        )
    }

    /// The message's MIME (`/messages/{id}/$value`), buffered, refused above `limit` bytes.
    /// A transfer cut short is fetched again.
    pub async fn message_mime(
        &self,
        user: &str,
        message_id: &str,
        limit: usize,
    ) -> Result<Bytes, GraphError> {
        let (_, body) = self.bytes(&self.mime_call(user, message_id), limit).await?;
        Ok(body)
    }

    /// The message's MIME as a stream, for bodies too large to hold. The mailbox slot stays
    /// taken until the stream ends or is dropped. A stream error means the transfer broke:
    /// discard what was written and call again.
    pub async fn message_mime_stream(
        &self,
        user: &str,
        message_id: &str,
    ) -> Result<BodyStream, GraphError> {
        self.stream(&self.mime_call(user, message_id)).await
    }

    fn mime_call(&self, user: &str, message_id: &str) -> Call {
        let url = self.url(&["users", user, "messages", message_id, "$value"]);
        Call::get(url, Lane::mailbox(user)).prefer(IMMUTABLE_IDS)
    }

    /// A message's attachments (metadata and, for file attachments, `contentBytes`). Listed
    /// by id first and fetched one by one: paging of this collection is unreliable.
    pub async fn attachments(
        &self,
        user: &str,
        message_id: &str,
    ) -> Result<Vec<Attachment>, GraphError> {
        use futures::TryStreamExt;
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let lane = Lane::mailbox(user);
        let mut url = self.url(&["users", user, "messages", message_id, "attachments"]);
        url.query_pairs_mut().append_pair("$select", "id");
        let ids: Vec<Page<Id>> = pages::<Id>(
            self.clone(),
            Call::get(url, lane.clone()).prefer(IMMUTABLE_IDS),
        )
        .try_collect()
        .await?;
        let mut out = Vec::new();
        for id in ids.into_iter().flat_map(|p| p.value) {
            let url = self.url(&["users", user, "messages", message_id, "attachments", &id.id]);
            out.push(
                self.json(&Call::get(url, lane.clone()).prefer(IMMUTABLE_IDS))
                    .await?,
            );
        }
        Ok(out)
    }
}
