//! The control API: inspect and mutate the emulated tenant from tests, benchmarks and demos.
//! Every operation is a function on the shared state (used by `Emulator`'s methods) and an
//! HTTP route under `/_emulator/` (documented in docs/EMULATOR.md; see `http`).

mod http;

pub use http::{parse_throttle, router};

use crate::error::EmulatorError;
use crate::identity::certificate::{der_from_text, Certificate};
use crate::state::Shared;
use crate::tenant::message::from_mime_facts;
use crate::tenant::{Application, Mailbox, ServicePrincipal, Tenant, User, UserKind, SKU_E3};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A read-only copy of the tenant (what `emu.tenant()` returns).
#[derive(Debug, Clone, Serialize)]
pub struct TenantSnapshot {
    pub tenant_id: String,
    pub domain: String,
    pub users: Vec<UserSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserSnapshot {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub kind: UserKind,
    pub account_enabled: bool,
    pub licensed: bool,
    pub password: String,
    pub mailbox: Option<MailboxSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxSnapshot {
    /// userPurpose: user, shared or room.
    pub purpose: String,
    pub folders: Vec<FolderSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderSnapshot {
    pub id: String,
    pub display_name: String,
    /// Display path from the root, e.g. `Inbox/Projects/2024` (empty for the root).
    pub path: String,
    pub parent_id: Option<String>,
    pub well_known: Option<String>,
    pub hidden: bool,
    pub search_folder: bool,
    pub messages: Vec<MessageSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageSnapshot {
    pub id: String,
    pub immutable_id: String,
    pub subject: String,
    pub received: DateTime<Utc>,
    pub is_read: bool,
    pub is_draft: bool,
    pub size: u64,
    pub attachments: usize,
    /// Exactly what `$value` returns (omitted from the HTTP snapshot).
    #[serde(skip)]
    pub mime: Bytes,
}

/// Copies the tenant; `with_mime` also builds every message's MIME.
pub fn snapshot(shared: &Shared, with_mime: bool) -> TenantSnapshot {
    let t = shared.tenant();
    TenantSnapshot {
        tenant_id: t.id.clone(),
        domain: t.domain.clone(),
        users: t
            .users
            .iter()
            .map(|u| user_snapshot(u, with_mime))
            .collect(),
    }
}

fn user_snapshot(u: &User, with_mime: bool) -> UserSnapshot {
    UserSnapshot {
        id: u.id.clone(),
        user_principal_name: u.user_principal_name.clone(),
        display_name: u.display_name.clone(),
        kind: u.kind,
        account_enabled: u.account_enabled,
        licensed: !u.licenses.is_empty(),
        password: u.password.clone(),
        mailbox: u.mailbox.as_ref().map(|mb| MailboxSnapshot {
            purpose: mb.purpose.to_string(),
            folders: mb
                .folders
                .iter()
                .map(|f| FolderSnapshot {
                    id: f.id.clone(),
                    display_name: f.display_name.clone(),
                    path: mb.folder_path(&f.id),
                    parent_id: f.parent_id.clone(),
                    well_known: f.well_known.map(str::to_string),
                    hidden: f.is_hidden,
                    search_folder: f.search_query.is_some(),
                    messages: mb
                        .folder_messages(&f.id)
                        .map(|m| MessageSnapshot {
                            id: m.rest_id.clone(),
                            immutable_id: m.immutable_id.clone(),
                            subject: m.subject.clone(),
                            received: m.received,
                            is_read: m.is_read,
                            is_draft: m.is_draft,
                            size: m.size,
                            attachments: m.attachments.len(),
                            mime: if with_mime {
                                m.mime_bytes()
                            } else {
                                Bytes::new()
                            },
                        })
                        .collect(),
                })
                .collect(),
        }),
    }
}

/// Ids of a message created through the control API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageIds {
    pub id: String,
    pub immutable_id: String,
}

fn with_mailbox<R>(
    shared: &Shared,
    user: &str,
    f: impl FnOnce(&mut Mailbox, &mut u64) -> Result<R, EmulatorError>,
) -> Result<R, EmulatorError> {
    let mut t = shared.tenant_mut();
    let Tenant { users, seq, .. } = &mut *t;
    let u = users
        .iter_mut()
        .find(|u| {
            u.id.eq_ignore_ascii_case(user) || u.user_principal_name.eq_ignore_ascii_case(user)
        })
        .ok_or(EmulatorError::NotFound("user"))?;
    let mb = u
        .mailbox
        .as_mut()
        .ok_or(EmulatorError::NotFound("mailbox"))?;
    f(mb, seq)
}

/// A folder by id, well-known name or display path (`Inbox/Projects`).
fn resolve_folder(mb: &Mailbox, folder: &str) -> Option<String> {
    if let Some(f) = mb.folder(folder) {
        return Some(f.id.clone());
    }
    mb.folders
        .iter()
        .find(|f| {
            mb.folder_path(&f.id)
                .eq_ignore_ascii_case(folder.trim_matches('/'))
        })
        .map(|f| f.id.clone())
}

/// Delivers MIME into a folder (created if the path does not exist), byte for byte.
pub fn add_message(
    shared: &Shared,
    user: &str,
    folder: &str,
    mime: &[u8],
) -> Result<MessageIds, EmulatorError> {
    let now = shared.clock.now();
    with_mailbox(shared, user, |mb, seq| {
        let folder_id = match resolve_folder(mb, folder) {
            Some(id) => id,
            None => mb.ensure_path(folder, seq),
        };
        let mut message = from_mime_facts(mime, now);
        message.is_read = false;
        let num = mb.insert_message(message, &folder_id, seq);
        let m = &mb.messages[&num];
        Ok(MessageIds {
            id: m.rest_id.clone(),
            immutable_id: m.immutable_id.clone(),
        })
    })
}

/// Changes to an existing message (as a user would make them in Outlook).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageUpdate {
    #[serde(rename = "isRead")]
    pub is_read: Option<bool>,
    pub subject: Option<String>,
    #[serde(rename = "flagStatus")]
    pub flag_status: Option<String>,
    pub categories: Option<Vec<String>>,
}

pub fn update_message(
    shared: &Shared,
    user: &str,
    id: &str,
    update: &MessageUpdate,
) -> Result<(), EmulatorError> {
    let now = shared.clock.now();
    with_mailbox(shared, user, |mb, seq| {
        let num = mb
            .message_num(id)
            .ok_or(EmulatorError::NotFound("message"))?;
        let m = mb
            .messages
            .get_mut(&num)
            .ok_or(EmulatorError::NotFound("message"))?;
        if let Some(v) = update.is_read {
            m.is_read = v;
        }
        if let Some(v) = &update.subject {
            m.subject = v.clone();
        }
        if let Some(v) = &update.flag_status {
            m.flag_status = v.clone();
        }
        if let Some(v) = &update.categories {
            m.categories = v.clone();
        }
        mb.touch_message(num, now, seq);
        Ok(())
    })
}

pub fn move_message(
    shared: &Shared,
    user: &str,
    id: &str,
    folder: &str,
) -> Result<MessageIds, EmulatorError> {
    let now = shared.clock.now();
    with_mailbox(shared, user, |mb, seq| {
        let num = mb
            .message_num(id)
            .ok_or(EmulatorError::NotFound("message"))?;
        let dest = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        mb.move_message(num, &dest, now, seq)?;
        let m = &mb.messages[&num];
        Ok(MessageIds {
            id: m.rest_id.clone(),
            immutable_id: m.immutable_id.clone(),
        })
    })
}

pub fn delete_message(shared: &Shared, user: &str, id: &str) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let num = mb
            .message_num(id)
            .ok_or(EmulatorError::NotFound("message"))?;
        mb.delete_message(num, seq);
        Ok(())
    })
}

pub fn create_folder(
    shared: &Shared,
    user: &str,
    parent: &str,
    name: &str,
    hidden: bool,
) -> Result<String, EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let parent = resolve_folder(mb, parent).ok_or(EmulatorError::NotFound("folder"))?;
        mb.create_folder(&parent, name, hidden, seq)
    })
}

pub fn rename_folder(
    shared: &Shared,
    user: &str,
    folder: &str,
    name: &str,
) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let id = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        mb.rename_folder(&id, name, seq)
    })
}

pub fn move_folder(
    shared: &Shared,
    user: &str,
    folder: &str,
    parent: &str,
) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let id = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        let dest = resolve_folder(mb, parent).ok_or(EmulatorError::NotFound("folder"))?;
        mb.move_folder(&id, &dest, seq)
    })
}

pub fn delete_folder(shared: &Shared, user: &str, folder: &str) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, seq| {
        let id = resolve_folder(mb, folder).ok_or(EmulatorError::NotFound("folder"))?;
        mb.delete_folder(&id, seq)
    })
}

/// A user to add. Unset fields are derived from the name and kind.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewUser {
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Local part or full address; the tenant domain is appended when missing.
    #[serde(rename = "userPrincipalName", default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub kind: Option<UserKind>,
    #[serde(default)]
    pub password: Option<String>,
}

pub fn add_user(shared: &Shared, new: &NewUser) -> Result<UserSnapshot, EmulatorError> {
    let mut t = shared.tenant_mut();
    let kind = new.kind.unwrap_or(UserKind::Licensed);
    let local: String = new
        .display_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect::<String>()
        .to_lowercase();
    let upn = match &new.user_principal_name {
        Some(u) if u.contains('@') => u.clone(),
        Some(u) => format!("{u}@{}", t.domain),
        None => format!(
            "{}@{}",
            if local.is_empty() {
                "user".into()
            } else {
                local
            },
            t.domain
        ),
    };
    if t.user(&upn).is_some() {
        return Err(EmulatorError::Invalid(format!("{upn} already exists")));
    }
    let user = build_user(&mut t, &new.display_name, &upn, kind, new.password.clone());
    t.users.push(user);
    let i = t.users.len() - 1;
    t.touch_user(i);
    Ok(user_snapshot(&t.users[i], false))
}

/// A new user of `kind` with an empty mailbox when the kind has one.
pub fn build_user(
    t: &mut Tenant,
    display_name: &str,
    upn: &str,
    kind: UserKind,
    password: Option<String>,
) -> User {
    let salt = (t.users.len() as u32).wrapping_mul(2_654_435_761) ^ 0x9e37;
    let mailbox = kind
        .has_mailbox()
        .then(|| Mailbox::new(kind.purpose(), salt, &mut t.seq));
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_DNS,
        upn.to_ascii_lowercase().as_bytes(),
    )
    .to_string();
    User {
        id,
        user_principal_name: upn.to_string(),
        display_name: display_name.to_string(),
        given_name: display_name.split_whitespace().next().map(str::to_string),
        surname: display_name.split_whitespace().nth(1).map(str::to_string),
        job_title: None,
        mobile_phone: None,
        office_location: None,
        business_phones: Vec::new(),
        preferred_language: Some("en-US".into()),
        account_enabled: matches!(
            kind,
            UserKind::Licensed | UserKind::Unlicensed | UserKind::NoMailbox
        ),
        kind,
        licenses: match kind {
            UserKind::Licensed | UserKind::Disabled => vec![SKU_E3.to_string()],
            UserKind::NoMailbox => vec![crate::tenant::SKU_POWER_BI.to_string()],
            _ => Vec::new(),
        },
        password: password.unwrap_or_else(|| format!("Pw-{}!", crate::identity::random_token(10))),
        is_global_admin: false,
        mailbox,
        seq: 0,
    }
}

/// Deletes a user; `permanent` is a purge (users/delta `deleted`), otherwise a soft delete
/// (`changed`).
pub fn remove_user(shared: &Shared, user: &str, permanent: bool) -> Result<(), EmulatorError> {
    shared.tenant_mut().remove_user(user, permanent).map(|_| ())
}

pub fn unlicense_user(shared: &Shared, user: &str) -> Result<(), EmulatorError> {
    shared.tenant_mut().unlicense_user(user)
}

/// Makes every outstanding delta token (of one mailbox, or all) fail with 410.
pub fn expire_delta_tokens(shared: &Shared, user: Option<&str>) -> Result<(), EmulatorError> {
    let mut t = shared.tenant_mut();
    let mut found = user.is_none();
    for u in t.users.iter_mut() {
        if user.is_some_and(|x| {
            !u.id.eq_ignore_ascii_case(x) && !u.user_principal_name.eq_ignore_ascii_case(x)
        }) {
            continue;
        }
        found = true;
        if let Some(mb) = u.mailbox.as_mut() {
            mb.folder_generation += crate::graph::delta::KEPT_GENERATIONS;
            for f in mb.folders.iter_mut() {
                f.generation += crate::graph::delta::KEPT_GENERATIONS;
            }
        }
    }
    if found {
        Ok(())
    } else {
        Err(EmulatorError::NotFound("user"))
    }
}

/// Credentials of an app registered through the control API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub service_principal_id: String,
}

/// An app registration with exactly these application roles, a secret, and optionally a
/// certificate (PEM or base64 DER) for assertions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppSpec {
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub certificate: Option<String>,
    #[serde(rename = "redirectUris", default)]
    pub redirect_uris: Vec<String>,
}

pub fn register_app(shared: &Shared, spec: &AppSpec) -> Result<AppCredentials, EmulatorError> {
    let mut certificates = Vec::new();
    if let Some(text) = &spec.certificate {
        let der = der_from_text(text)
            .filter(|d| Certificate::from_der(d).is_some())
            .ok_or_else(|| {
                EmulatorError::Invalid("certificate is not an X.509 RSA certificate".into())
            })?;
        certificates.push(der);
    }
    for r in &spec.roles {
        if crate::identity::roles::role_id(r).is_none() {
            return Err(EmulatorError::Invalid(format!(
                "unknown application role {r}"
            )));
        }
    }
    let creds = AppCredentials {
        client_id: uuid::Uuid::new_v4().to_string(),
        client_secret: format!(
            "{}~{}",
            crate::identity::random_token(3),
            crate::identity::random_token(36)
        ),
        service_principal_id: uuid::Uuid::new_v4().to_string(),
    };
    let name = spec
        .display_name
        .clone()
        .unwrap_or_else(|| "Test app".into());
    let mut t = shared.tenant_mut();
    t.apps.push(Application {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: creds.client_id.clone(),
        display_name: name.clone(),
        secrets: vec![creds.client_secret.clone()],
        certificates,
        public_redirect_uris: if spec.redirect_uris.is_empty() {
            vec!["http://localhost".into(), "http://127.0.0.1".into()]
        } else {
            spec.redirect_uris.clone()
        },
        web_redirect_uris: Vec::new(),
        required_roles: spec.roles.clone(),
        mailbox_scope: None,
    });
    t.service_principals.push(ServicePrincipal {
        id: creds.service_principal_id.clone(),
        app_id: creds.client_id.clone(),
        display_name: name,
        roles: spec.roles.clone(),
        assignments: Vec::new(),
        consented_scopes: Vec::new(),
    });
    Ok(creds)
}

/// Marks a mailbox as over quota: delta calls get 403 ErrorQuotaExceeded, reads still work.
pub fn set_mailbox_full(shared: &Shared, user: &str, full: bool) -> Result<(), EmulatorError> {
    with_mailbox(shared, user, |mb, _| {
        mb.full = full;
        Ok(())
    })
}

/// An application access policy: the app may open only these mailboxes (ids or addresses);
/// `None` removes the policy. Other mailboxes answer 403 "Access to OData is disabled.".
pub fn set_access_policy(
    shared: &Shared,
    client_id: &str,
    mailboxes: Option<&[String]>,
) -> Result<(), EmulatorError> {
    let mut t = shared.tenant_mut();
    let scope = match mailboxes {
        Some(list) => Some(
            list.iter()
                .map(|m| {
                    t.user(m)
                        .map(|u| u.id.clone())
                        .ok_or(EmulatorError::NotFound("user"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let app = t
        .apps
        .iter_mut()
        .find(|a| a.app_id.eq_ignore_ascii_case(client_id))
        .ok_or(EmulatorError::NotFound("app"))?;
    app.mailbox_scope = scope;
    Ok(())
}

/// Revokes every refresh token (as a password reset does): AADSTS50173 afterwards.
pub fn revoke_refresh_tokens(shared: &Shared) {
    for g in shared.identity().refresh_tokens.values_mut() {
        g.revoked = true;
    }
}
