//! Graph resources as the backup needs them: users and mailbox kinds, mail folders, message
//! metadata, attachments, and delta entries (`@removed`).

mod attachment;
mod mail_folder;
mod message;
mod user;

pub use attachment::Attachment;
pub use mail_folder::MailFolder;
pub use message::{DateTimeTimeZone, EmailAddress, FollowupFlag, Message, Recipient};
pub use user::{AssignedLicense, MailboxKind, MailboxSettings, User, UserPurpose};

pub(crate) use message::{MESSAGE_SELECT, SIZE_PROPERTY};
pub(crate) use user::USER_SELECT;

use serde::{Deserialize, Deserializer, Serialize};

/// An entry of a delta page: a created or changed resource, or the id of one that left the
/// collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    Upsert(T),
    Removed { id: String, reason: RemovedReason },
}

/// `@removed.reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemovedReason {
    /// Deleted (or, for messages, moved out of the folder).
    Deleted,
    /// Changed: for messages, moved out of the folder; for users, soft-deleted (restorable).
    Changed,
    #[serde(other)]
    Other,
}

/// The `@removed` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub reason: RemovedReason,
}

/// Resources that can appear in a delta page.
pub trait DeltaEntry: Sized {
    fn id(&self) -> &str;
    fn removed(&self) -> Option<&Removed>;

    fn into_change(self) -> Change<Self> {
        match self.removed() {
            Some(r) => Change::Removed {
                id: self.id().to_owned(),
                reason: r.reason.clone(),
            },
            None => Change::Upsert(self),
        }
    }
}

/// `DeltaEntry` for resources whose `id` and `@removed` are plain `id` and `removed` fields.
macro_rules! delta_entry {
    ($($resource:ty),*) => {$(
        impl DeltaEntry for $resource {
            fn id(&self) -> &str {
                &self.id
            }

            fn removed(&self) -> Option<&Removed> {
                self.removed.as_ref()
            }
        }
    )*};
}

delta_entry!(MailFolder, Message, User);

/// `null` and absent both mean "empty" for collection-valued properties.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
