//! Tenants from a file (`--tenant FILE`, JSON) and `.eml` imports (`--import-eml`).
//!
//! ```json
//! {
//!   "seed": 7,
//!   "domain": "fabrikam.onmicrosoft.com",
//!   "generate": { "users": 3, "messagesPerUser": 10 },
//!   "users": [
//!     { "userPrincipalName": "alice", "displayName": "Alice Martin", "kind": "licensed",
//!       "password": "Secret-1", "folders": ["Inbox/Projects/2024"], "generatedMessages": 5,
//!       "eml": [ { "path": "mail/alice", "folder": "Inbox/Imported" } ] }
//!   ]
//! }
//! ```
//! Every part is optional. `eml.path` (a file or a directory of `.eml` files, relative to the
//! spec file) is stored byte for byte; files in a directory are imported in name order.

use super::generate::tenant_in;
use super::generated_mail::fill_mailbox;
use super::message::from_mime_facts;
use super::{Recipient, Tenant, UserKind};
use crate::config::Attachments;
use crate::error::EmulatorError;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    pub seed: Option<u64>,
    pub domain: Option<String>,
    pub generate: Option<GenerateSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateSpec {
    pub users: usize,
    #[serde(default)]
    pub messages_per_user: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub kind: Option<UserKind>,
    pub password: Option<String>,
    #[serde(default)]
    pub folders: Vec<String>,
    #[serde(default)]
    pub generated_messages: usize,
    #[serde(default)]
    pub eml: Vec<EmlSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmlSpec {
    pub path: PathBuf,
    #[serde(default = "inbox")]
    pub folder: String,
}

fn inbox() -> String {
    "Inbox".into()
}

/// Loads a tenant spec file.
pub fn load(path: &Path, default_seed: u64, now: DateTime<Utc>) -> Result<Tenant, EmulatorError> {
    let fail = |reason: String| EmulatorError::TenantFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let spec: TenantSpec = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    build(&spec, base, default_seed, now)
}

pub fn build(
    spec: &TenantSpec,
    base: &Path,
    default_seed: u64,
    now: DateTime<Utc>,
) -> Result<Tenant, EmulatorError> {
    let seed = spec.seed.unwrap_or(default_seed);
    let domain = spec
        .domain
        .clone()
        .unwrap_or_else(|| "contoso.onmicrosoft.com".into());
    let (users, per_user) = spec
        .generate
        .as_ref()
        .map(|g| (g.users, g.messages_per_user))
        .unwrap_or((0, 0));
    let mut tenant = tenant_in(seed, &domain, users, per_user, Attachments::Realistic);
    let people: Vec<Recipient> = tenant
        .users
        .iter()
        .map(|u| Recipient {
            name: u.display_name.clone(),
            address: u.user_principal_name.clone(),
        })
        .collect();
    for (i, u) in spec.users.iter().enumerate() {
        let upn = if u.user_principal_name.contains('@') {
            u.user_principal_name.clone()
        } else {
            format!("{}@{domain}", u.user_principal_name)
        };
        let name = u
            .display_name
            .clone()
            .unwrap_or_else(|| upn.split('@').next().unwrap_or_default().to_string());
        let mut user = crate::control::build_user(
            &mut tenant,
            &name,
            &upn,
            u.kind.unwrap_or(UserKind::Licensed),
            u.password.clone(),
        );
        if tenant.users.is_empty() {
            user.is_global_admin = true;
        }
        let owner = Recipient {
            name: name.clone(),
            address: upn.clone(),
        };
        if let Some(mb) = user.mailbox.as_mut() {
            for f in &u.folders {
                mb.ensure_path(f, &mut tenant.seq);
            }
            if u.generated_messages > 0 {
                let mut rng =
                    StdRng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9));
                fill_mailbox(
                    &mut rng,
                    mb,
                    &owner,
                    &people,
                    u.generated_messages,
                    Attachments::Realistic,
                    &mut tenant.seq,
                );
            }
            for e in &u.eml {
                import_into(mb, &base.join(&e.path), &e.folder, now, &mut tenant.seq)?;
            }
        } else if !u.eml.is_empty() || u.generated_messages > 0 {
            return Err(EmulatorError::TenantFile {
                path: upn,
                reason: "this kind of user has no mailbox".into(),
            });
        }
        tenant.users.push(user);
        let index = tenant.users.len() - 1;
        tenant.touch_user(index);
    }
    Ok(tenant)
}

/// Imports one `.eml` file, or every `.eml` file of a directory (name order), into a folder.
pub fn import_into(
    mb: &mut super::Mailbox,
    path: &Path,
    folder: &str,
    now: DateTime<Utc>,
    seq: &mut u64,
) -> Result<usize, EmulatorError> {
    let fail = |reason: String| EmulatorError::Import {
        path: path.display().to_string(),
        reason,
    };
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("eml")))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let folder_id = mb.ensure_path(folder, seq);
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        let mut message = from_mime_facts(&bytes, now);
        message.received = message.sent.unwrap_or(now);
        message.created = message.received;
        message.last_modified = message.received;
        mb.insert_message(message, &folder_id, seq);
    }
    Ok(files.len())
}

/// `--import-eml DIR --into ADDRESS[/FOLDER/PATH]`.
pub fn import_eml(
    tenant: &mut Tenant,
    dir: &Path,
    into: &str,
    now: DateTime<Utc>,
) -> Result<usize, EmulatorError> {
    let (address, folder) = match into.split_once('/') {
        Some((a, f)) => (a, f),
        None => (into, "Inbox"),
    };
    let Tenant { users, seq, .. } = tenant;
    let user = users
        .iter_mut()
        .find(|u| {
            u.user_principal_name.eq_ignore_ascii_case(address)
                || u.id.eq_ignore_ascii_case(address)
        })
        .ok_or_else(|| EmulatorError::Import {
            path: dir.display().to_string(),
            reason: format!("no user {address}"),
        })?;
    let mb = user.mailbox.as_mut().ok_or_else(|| EmulatorError::Import {
        path: dir.display().to_string(),
        reason: format!("{address} has no mailbox"),
    })?;
    import_into(mb, dir, folder, now, seq)
}
