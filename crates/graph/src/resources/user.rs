//! Users, licences, and what kind of mailbox (if any) they have.

use serde::{Deserialize, Serialize};

use super::{null_as_default, Removed};

/// The `$select` the client asks for when listing users.
pub(crate) const USER_SELECT: &str =
    "id,displayName,mail,userPrincipalName,assignedLicenses,accountEnabled,userType";

/// A directory user (`/users`, `/users/delta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// Empty means unlicensed. (A licence does not guarantee a mailbox; shared mailboxes
    /// need none. Probe with mailbox settings.)
    #[serde(default, deserialize_with = "null_as_default")]
    pub assigned_licenses: Vec<AssignedLicense>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`; null on some accounts created before 2014.
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

impl User {
    pub fn is_licensed(&self) -> bool {
        !self.assigned_licenses.is_empty()
    }

    pub fn is_guest(&self) -> bool {
        self.user_type.as_deref() == Some("Guest")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub disabled_plans: Vec<String>,
}

/// `mailboxSettings` (only the part the backup needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxSettings {
    #[serde(default)]
    pub user_purpose: Option<UserPurpose>,
}

/// `mailboxSettings.userPurpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserPurpose {
    User,
    Linked,
    Shared,
    Room,
    Equipment,
    Others,
    #[serde(other)]
    UnknownFutureValue,
}

/// What the backup sees of a user's mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MailboxKind {
    /// No Exchange Online mailbox (unlicensed, on-premises, soft-deleted): nothing to back
    /// up, and not a failure.
    None,
    User,
    Linked,
    Shared,
    Room,
    Equipment,
    Other,
}

impl From<Option<UserPurpose>> for MailboxKind {
    fn from(p: Option<UserPurpose>) -> MailboxKind {
        match p {
            Some(UserPurpose::User) | None => MailboxKind::User,
            Some(UserPurpose::Linked) => MailboxKind::Linked,
            Some(UserPurpose::Shared) => MailboxKind::Shared,
            Some(UserPurpose::Room) => MailboxKind::Room,
            Some(UserPurpose::Equipment) => MailboxKind::Equipment,
            Some(UserPurpose::Others) | Some(UserPurpose::UnknownFutureValue) => MailboxKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::Page;
    use crate::resources::{Change, DeltaEntry, RemovedReason};
    use crate::test_fixtures::fixture;

    #[test]
    fn users_list_fixture() {
        let page: Page<User> = serde_json::from_slice(&fixture("users-list.json")).unwrap();
        assert_eq!(page.value.len(), 2);
        assert_eq!(
            page.value[0].display_name.as_deref(),
            Some("Conf Room Adams")
        );
        assert_eq!(page.value[1].mail, None);
        assert!(
            !page.value[1].is_licensed(),
            "assignedLicenses not selected → unlicensed"
        );
    }

    #[test]
    fn licences_purposes_and_removed_users() {
        let u: User = serde_json::from_str(
            r#"{"id":"1","assignedLicenses":[{"skuId":"s","disabledPlans":null}],"userType":"Guest"}"#,
        )
        .unwrap();
        assert!(u.is_licensed() && u.is_guest());
        let null_lic: User = serde_json::from_str(r#"{"id":"2","assignedLicenses":null}"#).unwrap();
        assert!(!null_lic.is_licensed());
        let gone: User =
            serde_json::from_str(r#"{"id":"3","@removed":{"reason":"changed"}}"#).unwrap();
        assert_eq!(
            gone.into_change(),
            Change::Removed {
                id: "3".into(),
                reason: RemovedReason::Changed
            }
        );

        let s: MailboxSettings =
            serde_json::from_str(r#"{"userPurpose":"shared","timeZone":"UTC"}"#).unwrap();
        assert_eq!(MailboxKind::from(s.user_purpose), MailboxKind::Shared);
        let future: MailboxSettings =
            serde_json::from_str(r#"{"userPurpose":"somethingNew"}"#).unwrap();
        assert_eq!(MailboxKind::from(future.user_purpose), MailboxKind::Other);
        assert_eq!(MailboxKind::from(None), MailboxKind::User);
    }
}
