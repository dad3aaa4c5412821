//! The tenant: organization, users, mailboxes, folders, messages, app registrations, and the
//! change logs that delta queries read.
//!
//! Every mutation takes a number from one tenant-wide sequence. Each folder keeps a log from
//! sequence number to the latest change of each item in it, so a delta round is "every entry
//! after the token's number, up to the number current when the round began".

pub mod generate;
pub mod generated_mail;
pub mod message;
pub mod mime;
pub mod recipe;
pub mod spec;

use crate::error::EmulatorError;
use base64::Engine as _;
use chrono::{DateTime, Utc};
pub use message::{AttachmentMeta, Message, MimeSource, Recipient};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The kinds of account a tenant holds; each behaves differently for backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    /// Licensed member with an Exchange Online mailbox.
    Licensed,
    /// No licence, hence no mailbox (404 MailboxNotEnabledForRESTAPI).
    Unlicensed,
    /// Shared mailbox: disabled sign-in, no licence, userPurpose "shared".
    Shared,
    /// Room mailbox: userPurpose "room".
    Room,
    /// Licensed, but the licence has no Exchange plan, so no mailbox.
    NoMailbox,
    /// Sign-in blocked (accountEnabled false) but licensed, with a mailbox.
    Disabled,
}

impl UserKind {
    pub fn has_mailbox(self) -> bool {
        !matches!(self, UserKind::Unlicensed | UserKind::NoMailbox)
    }
    pub fn purpose(self) -> &'static str {
        match self {
            UserKind::Shared => "shared",
            UserKind::Room => "room",
            _ => "user",
        }
    }
}

/// Microsoft 365 E3 (skuId from Microsoft's licensing reference).
pub const SKU_E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
/// Power BI (free): a licence without an Exchange plan.
pub const SKU_POWER_BI: &str = "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235";
/// Exchange Online (Plan 2) service plan inside E3.
pub const PLAN_EXCHANGE: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub mobile_phone: Option<String>,
    pub office_location: Option<String>,
    pub business_phones: Vec<String>,
    pub preferred_language: Option<String>,
    pub account_enabled: bool,
    pub kind: UserKind,
    /// Assigned licence SKU ids.
    pub licenses: Vec<String>,
    pub password: String,
    pub is_global_admin: bool,
    pub mailbox: Option<Mailbox>,
    /// Sequence number of the user's last directory change.
    pub seq: u64,
}

impl User {
    pub fn mail(&self) -> Option<&str> {
        self.mailbox
            .as_ref()
            .map(|_| self.user_principal_name.as_str())
    }
}

/// A change recorded in a log: the item is present (added or modified) or gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(String),
    Removed(String),
}

/// An ordered change log keyed by sequence number, at most one entry per item.
#[derive(Debug, Clone, Default)]
pub struct ChangeLog {
    entries: BTreeMap<u64, Change>,
    position: HashMap<String, u64>,
}

impl ChangeLog {
    pub fn record(&mut self, seq: u64, change: Change) {
        let id = match &change {
            Change::Upsert(id) | Change::Removed(id) => id.clone(),
        };
        if let Some(old) = self.position.insert(id, seq) {
            self.entries.remove(&old);
        }
        self.entries.insert(seq, change);
    }

    /// The newest sequence number in the log (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.entries.last_key_value().map(|(s, _)| *s).unwrap_or(0)
    }

    /// Entries with `after < seq <= upto`, oldest first.
    pub fn range(&self, after: u64, upto: u64) -> impl Iterator<Item = (u64, &Change)> {
        let upto = upto.max(after);
        let range = if upto > after {
            self.entries.range(after + 1..=upto)
        } else {
            self.entries.range(0..0)
        };
        range.map(|(s, c)| (*s, c))
    }
}

#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub display_name: String,
    /// None only for the root (msgfolderroot).
    pub parent_id: Option<String>,
    pub well_known: Option<&'static str>,
    pub is_hidden: bool,
    /// Set for a mailSearchFolder.
    pub search_query: Option<String>,
    /// Message changes in this folder, for messages/delta.
    pub log: ChangeLog,
    /// Sync-state generation: bumped for every delta round; only the newest three are valid.
    pub generation: u64,
}

#[derive(Debug, Clone)]
pub struct Mailbox {
    pub purpose: &'static str,
    pub folders: Vec<Folder>,
    pub messages: BTreeMap<u64, Message>,
    /// rest id and immutable id -> message number.
    pub index: HashMap<String, u64>,
    pub next_message: u64,
    pub next_folder: u32,
    /// Folder changes, for mailFolders/delta.
    pub folder_log: ChangeLog,
    pub folder_generation: u64,
    /// Used to derive ids that differ between mailboxes.
    pub salt: u32,
    /// (folder id, message number) -> (rest id, immutable id) of messages that left a folder,
    /// so delta can report `@removed` with the id the client knew.
    pub gone: HashMap<(String, u64), (String, String)>,
    /// Over quota: delta calls cannot save sync state (403 ErrorQuotaExceeded); reads work.
    pub full: bool,
}

/// Well-known folders: (name, display name, hidden), created in every mailbox.
pub const WELL_KNOWN: [(&str, &str, bool); 12] = [
    ("archive", "Archive", false),
    ("conversationhistory", "Conversation History", false),
    ("deleteditems", "Deleted Items", false),
    ("drafts", "Drafts", false),
    ("inbox", "Inbox", false),
    ("junkemail", "Junk Email", false),
    ("outbox", "Outbox", false),
    ("sentitems", "Sent Items", false),
    ("clutter", "Clutter", true),
    ("syncissues", "Sync Issues", true),
    ("searchfolders", "Finder", true),
    ("recoverableitemsdeletions", "Deletions", true),
];

impl Mailbox {
    pub fn new(purpose: &'static str, salt: u32, seq: &mut u64) -> Mailbox {
        let mut mb = Mailbox {
            purpose,
            folders: Vec::new(),
            messages: BTreeMap::new(),
            index: HashMap::new(),
            next_message: 1,
            next_folder: 1,
            folder_log: ChangeLog::default(),
            folder_generation: 0,
            salt,
            gone: HashMap::new(),
            full: false,
        };
        let root = mb.add_folder_raw(
            None,
            "Top of Information Store",
            Some("msgfolderroot"),
            false,
            seq,
        );
        for (wk, name, hidden) in WELL_KNOWN {
            mb.add_folder_raw(Some(&root), name, Some(wk), hidden, seq);
        }
        mb
    }

    fn new_folder_id(&mut self) -> String {
        let n = self.next_folder;
        self.next_folder += 1;
        let mut raw = b"\x01\x00".to_vec();
        raw.extend_from_slice(&self.salt.to_be_bytes());
        raw.extend_from_slice(b"\x00\x2e\x00");
        raw.extend_from_slice(&n.to_be_bytes());
        raw.extend_from_slice(b"\x00\x00");
        format!(
            "AQMkAD{}",
            base64::engine::general_purpose::URL_SAFE.encode(raw)
        )
    }

    fn add_folder_raw(
        &mut self,
        parent: Option<&str>,
        name: &str,
        well_known: Option<&'static str>,
        hidden: bool,
        seq: &mut u64,
    ) -> String {
        let id = self.new_folder_id();
        self.folders.push(Folder {
            id: id.clone(),
            display_name: name.to_string(),
            parent_id: parent.map(str::to_string),
            well_known,
            is_hidden: hidden,
            search_query: None,
            log: ChangeLog::default(),
            generation: 0,
        });
        *seq += 1;
        self.folder_log.record(*seq, Change::Upsert(id.clone()));
        id
    }

    pub fn root_id(&self) -> &str {
        &self.folders[0].id
    }

    /// Resolves a folder id or a well-known name (case-insensitive).
    pub fn folder(&self, id_or_name: &str) -> Option<&Folder> {
        let lower = id_or_name.to_ascii_lowercase();
        self.folders
            .iter()
            .find(|f| f.id == id_or_name || f.well_known == Some(lower.as_str()))
    }

    pub fn folder_mut(&mut self, id_or_name: &str) -> Option<&mut Folder> {
        let lower = id_or_name.to_ascii_lowercase();
        self.folders
            .iter_mut()
            .find(|f| f.id == id_or_name || f.well_known == Some(lower.as_str()))
    }

    pub fn children(&self, parent: &str) -> impl Iterator<Item = &Folder> {
        let parent = parent.to_string();
        self.folders
            .iter()
            .filter(move |f| f.parent_id.as_deref() == Some(parent.as_str()))
    }

    /// Creates a folder; `ErrorFolderExists` when a sibling has the same name.
    pub fn create_folder(
        &mut self,
        parent: &str,
        name: &str,
        hidden: bool,
        seq: &mut u64,
    ) -> Result<String, EmulatorError> {
        let parent_id = self
            .folder(parent)
            .ok_or(EmulatorError::NotFound("folder"))?
            .id
            .clone();
        if self
            .children(&parent_id)
            .any(|f| f.display_name.eq_ignore_ascii_case(name))
        {
            return Err(EmulatorError::FolderExists(name.to_string()));
        }
        let id = self.add_folder_raw(Some(&parent_id), name, None, hidden, seq);
        Ok(id)
    }

    /// Finds or creates each folder of a `/`-separated path under the root.
    pub fn ensure_path(&mut self, path: &str, seq: &mut u64) -> String {
        let mut current = self.root_id().to_string();
        for name in path.split('/').filter(|s| !s.is_empty()) {
            let existing = self
                .children(&current)
                .find(|f| {
                    f.display_name.eq_ignore_ascii_case(name)
                        || f.well_known == Some(&*name.to_ascii_lowercase())
                })
                .map(|f| f.id.clone());
            current = match existing {
                Some(id) => id,
                None => self.add_folder_raw(Some(&current), name, None, false, seq),
            };
        }
        current
    }

    /// The display path of a folder, e.g. `Inbox/Projects/2024`.
    pub fn folder_path(&self, id: &str) -> String {
        let mut names = Vec::new();
        let mut cursor = self.folder(id);
        while let Some(f) = cursor {
            let Some(parent) = &f.parent_id else { break };
            names.push(f.display_name.clone());
            cursor = self.folder(parent);
        }
        names.reverse();
        names.join("/")
    }

    /// Deletes a folder with its subfolders and messages.
    pub fn delete_folder(&mut self, id: &str, seq: &mut u64) -> Result<(), EmulatorError> {
        let folder = self.folder(id).ok_or(EmulatorError::NotFound("folder"))?;
        if folder.well_known.is_some() {
            return Err(EmulatorError::Invalid(
                "well-known folders cannot be deleted".into(),
            ));
        }
        let mut doomed = vec![folder.id.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let kids: Vec<String> = self.children(&doomed[i]).map(|f| f.id.clone()).collect();
            doomed.extend(kids);
            i += 1;
        }
        let nums: Vec<u64> = self
            .messages
            .values()
            .filter(|m| doomed.contains(&m.folder_id))
            .map(|m| m.num)
            .collect();
        for num in nums {
            self.delete_message(num, seq);
        }
        for fid in &doomed {
            *seq += 1;
            self.folder_log.record(*seq, Change::Removed(fid.clone()));
        }
        self.folders.retain(|f| !doomed.contains(&f.id));
        Ok(())
    }

    pub fn rename_folder(
        &mut self,
        id: &str,
        name: &str,
        seq: &mut u64,
    ) -> Result<(), EmulatorError> {
        let folder = self
            .folder_mut(id)
            .ok_or(EmulatorError::NotFound("folder"))?;
        folder.display_name = name.to_string();
        let fid = folder.id.clone();
        *seq += 1;
        self.folder_log.record(*seq, Change::Upsert(fid));
        Ok(())
    }

    pub fn move_folder(
        &mut self,
        id: &str,
        dest: &str,
        seq: &mut u64,
    ) -> Result<(), EmulatorError> {
        let dest_id = self
            .folder(dest)
            .ok_or(EmulatorError::NotFound("folder"))?
            .id
            .clone();
        let folder = self
            .folder_mut(id)
            .ok_or(EmulatorError::NotFound("folder"))?;
        folder.parent_id = Some(dest_id);
        let fid = folder.id.clone();
        *seq += 1;
        self.folder_log.record(*seq, Change::Upsert(fid));
        Ok(())
    }

    fn message_ids(&self, num: u64, moves: u32) -> (String, String) {
        let mut rest = b"\x00\x46\x00\x00".to_vec();
        rest.extend_from_slice(&self.salt.to_be_bytes());
        rest.extend_from_slice(&num.to_be_bytes());
        rest.extend_from_slice(&moves.to_be_bytes());
        let mut immutable = b"\x00\x4c\x00".to_vec();
        immutable.extend_from_slice(&self.salt.to_be_bytes());
        immutable.extend_from_slice(&num.to_be_bytes());
        let b64 = base64::engine::general_purpose::URL_SAFE;
        (
            format!("AAMkAD{}", b64.encode(rest)),
            format!("AAkALg{}", b64.encode(immutable)),
        )
    }

    /// Stores a new message in a folder; ids and change tracking are assigned here.
    pub fn insert_message(&mut self, mut message: Message, folder_id: &str, seq: &mut u64) -> u64 {
        let num = self.next_message;
        self.next_message += 1;
        let (rest, immutable) = self.message_ids(num, 0);
        message.num = num;
        message.rest_id = rest.clone();
        message.immutable_id = immutable.clone();
        message.folder_id = folder_id.to_string();
        for (i, a) in message.attachments.iter_mut().enumerate() {
            a.id = attachment_id(&immutable, i);
        }
        self.index.insert(rest, num);
        self.index.insert(immutable, num);
        *seq += 1;
        message.created_seq = *seq;
        if let Some(f) = self.folder_mut(folder_id) {
            f.log.record(*seq, Change::Upsert(num.to_string()));
        }
        self.messages.insert(num, message);
        num
    }

    /// Resolves a message by either id format.
    pub fn message_num(&self, id: &str) -> Option<u64> {
        self.index.get(id).copied()
    }

    /// Records that a message changed (new changeKey, appears in the next delta round).
    pub fn touch_message(&mut self, num: u64, now: DateTime<Utc>, seq: &mut u64) {
        let Some(m) = self.messages.get_mut(&num) else {
            return;
        };
        m.change_count += 1;
        m.last_modified = now;
        let folder = m.folder_id.clone();
        *seq += 1;
        if let Some(f) = self.folder_mut(&folder) {
            f.log.record(*seq, Change::Upsert(num.to_string()));
        }
    }

    /// Moves a message; its rest id changes, its immutable id does not.
    pub fn move_message(
        &mut self,
        num: u64,
        dest: &str,
        now: DateTime<Utc>,
        seq: &mut u64,
    ) -> Result<(), EmulatorError> {
        let dest_id = self
            .folder(dest)
            .ok_or(EmulatorError::NotFound("folder"))?
            .id
            .clone();
        let (old_folder, old_rest, moves) = {
            let m = self
                .messages
                .get(&num)
                .ok_or(EmulatorError::NotFound("message"))?;
            (m.folder_id.clone(), m.rest_id.clone(), m.change_count + 1)
        };
        let (new_rest, immutable) = self.message_ids(num, moves);
        self.gone
            .insert((old_folder.clone(), num), (old_rest.clone(), immutable));
        self.index.remove(&old_rest);
        self.index.insert(new_rest.clone(), num);
        *seq += 1;
        if let Some(f) = self.folder_mut(&old_folder) {
            f.log.record(*seq, Change::Removed(num.to_string()));
        }
        let m = self
            .messages
            .get_mut(&num)
            .ok_or(EmulatorError::NotFound("message"))?;
        m.rest_id = new_rest;
        m.folder_id = dest_id;
        self.touch_message(num, now, seq);
        Ok(())
    }

    pub fn delete_message(&mut self, num: u64, seq: &mut u64) -> Option<Message> {
        let m = self.messages.remove(&num)?;
        self.index.remove(&m.rest_id);
        self.index.remove(&m.immutable_id);
        self.gone.insert(
            (m.folder_id.clone(), num),
            (m.rest_id.clone(), m.immutable_id.clone()),
        );
        *seq += 1;
        if let Some(f) = self.folder_mut(&m.folder_id) {
            f.log.record(*seq, Change::Removed(num.to_string()));
        }
        Some(m)
    }

    pub fn folder_messages<'a>(
        &'a self,
        folder_id: &'a str,
    ) -> impl Iterator<Item = &'a Message> + 'a {
        self.messages
            .values()
            .filter(move |m| m.folder_id == folder_id)
    }
}

pub fn attachment_id(message_immutable_id: &str, index: usize) -> String {
    format!("{message_immutable_id}AT{index:03}")
}

/// An app registration (`/applications`).
#[derive(Debug, Clone, Serialize)]
pub struct Application {
    /// Object id.
    pub id: String,
    /// Client id.
    pub app_id: String,
    pub display_name: String,
    pub secrets: Vec<String>,
    /// Registered certificates (DER).
    #[serde(skip)]
    pub certificates: Vec<Vec<u8>>,
    /// Redirect URIs for the public-client (mobile and desktop) platform.
    pub public_redirect_uris: Vec<String>,
    /// Redirect URIs for the web platform.
    pub web_redirect_uris: Vec<String>,
    /// Application roles on Microsoft Graph the app asks for (requiredResourceAccess).
    pub required_roles: Vec<String>,
    /// An application access policy (New-ApplicationAccessPolicy -AccessRight RestrictAccess):
    /// the only mailboxes (user ids) the app may open; None means all.
    pub mailbox_scope: Option<Vec<String>>,
}

/// A service principal: the app's instance in this tenant, holding granted application roles.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    /// Granted application roles by value (e.g. "Mail.Read").
    pub roles: Vec<String>,
    /// (assignment id, app role id)
    pub assignments: Vec<(String, String)>,
    /// Delegated scopes an admin or user consented to.
    pub consented_scopes: Vec<String>,
}

impl ServicePrincipal {
    /// A new service principal for an app registration, with nothing granted yet: what
    /// `POST /servicePrincipals` and an app's first consent create.
    pub fn for_app(app: &Application) -> Self {
        ServicePrincipal {
            id: uuid::Uuid::new_v4().to_string(),
            app_id: app.app_id.clone(),
            display_name: app.display_name.clone(),
            roles: Vec::new(),
            assignments: Vec::new(),
            consented_scopes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
    pub display_name: String,
    pub users: Vec<User>,
    pub apps: Vec<Application>,
    pub service_principals: Vec<ServicePrincipal>,
    pub seq: u64,
    /// Directory changes, for users/delta.
    pub user_log: ChangeLog,
    /// Users deleted permanently (users/delta says `deleted`; soft deletes say `changed`).
    pub purged: std::collections::HashSet<String>,
}

impl Tenant {
    /// Finds a user by object id or user principal name (case-insensitive).
    pub fn user_index(&self, id_or_upn: &str) -> Option<usize> {
        self.users.iter().position(|u| {
            u.id.eq_ignore_ascii_case(id_or_upn)
                || u.user_principal_name.eq_ignore_ascii_case(id_or_upn)
        })
    }

    pub fn user(&self, id_or_upn: &str) -> Option<&User> {
        self.user_index(id_or_upn).map(|i| &self.users[i])
    }

    pub fn app(&self, client_id: &str) -> Option<&Application> {
        self.apps
            .iter()
            .find(|a| a.app_id.eq_ignore_ascii_case(client_id))
    }

    pub fn service_principal(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .iter()
            .find(|s| s.app_id.eq_ignore_ascii_case(app_id))
    }

    /// Records a directory change to a user (for users/delta).
    pub fn touch_user(&mut self, index: usize) {
        self.seq += 1;
        let seq = self.seq;
        self.users[index].seq = seq;
        let id = self.users[index].id.clone();
        self.user_log.record(seq, Change::Upsert(id));
    }

    /// Deletes a user: soft (restorable for 30 days in Entra) or permanent.
    pub fn remove_user(&mut self, id_or_upn: &str, permanent: bool) -> Result<User, EmulatorError> {
        let i = self
            .user_index(id_or_upn)
            .ok_or(EmulatorError::NotFound("user"))?;
        let user = self.users.remove(i);
        if permanent {
            self.purged.insert(user.id.clone());
        }
        self.seq += 1;
        self.user_log
            .record(self.seq, Change::Removed(user.id.clone()));
        Ok(user)
    }

    /// Removes every licence; the mailbox becomes unreachable (as after the 30-day grace).
    pub fn unlicense_user(&mut self, id_or_upn: &str) -> Result<(), EmulatorError> {
        let i = self
            .user_index(id_or_upn)
            .ok_or(EmulatorError::NotFound("user"))?;
        let user = &mut self.users[i];
        user.licenses.clear();
        if user.kind == UserKind::Licensed || user.kind == UserKind::Disabled {
            user.kind = UserKind::Unlicensed;
            user.mailbox = None;
        }
        self.touch_user(i);
        Ok(())
    }
}
