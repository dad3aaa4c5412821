//! Microsoft Graph application roles (app-only permissions) the emulator knows, with the ids
//! Microsoft's Graph service principal publishes, and which roles each endpoint accepts.

/// The Microsoft Graph application (resource) id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// (value, app role id)
pub const APP_ROLES: [(&str, &str); 12] = [
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"),
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
    ("Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b"),
    ("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
    ("Mail.ReadBasic.All", "693c5e45-0940-467d-9b8a-1022fb9d42ef"),
    ("Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9"),
    (
        "MailboxSettings.Read",
        "40f97065-369a-49f4-947c-6a255697ae91",
    ),
    (
        "MailboxSettings.ReadWrite",
        "6931bccd-447a-43d1-b442-00a195474933",
    ),
    (
        "Organization.Read.All",
        "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    ),
    (
        "Application.ReadWrite.All",
        "1bfefb4e-e0b5-418b-a88f-73c6d2cf0d6c",
    ),
    (
        "AppRoleAssignment.ReadWrite.All",
        "06b708a9-e830-4db3-a914-8e69da51d44f",
    ),
    ("Files.Read.All", "01d4889c-1287-42c6-ac1f-5d1e02578ef6"),
];

/// Roles the default app registration is granted: everything a backup and restore needs.
pub const DEFAULT_APP_ROLES: [&str; 8] = [
    "User.Read.All",
    "Directory.Read.All",
    "Mail.ReadWrite",
    "MailboxSettings.Read",
    "Organization.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Group.Read.All",
];

pub fn role_id(value: &str) -> Option<&'static str> {
    APP_ROLES
        .iter()
        .find(|(v, _)| v.eq_ignore_ascii_case(value))
        .map(|(_, id)| *id)
}

pub fn role_value(id: &str) -> Option<&'static str> {
    APP_ROLES
        .iter()
        .find(|(_, i)| i.eq_ignore_ascii_case(id))
        .map(|(v, _)| *v)
}

/// Any of these grants the access (the "Application" rows of Graph's permission tables).
pub const READ_USERS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const READ_ORG: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Organization.ReadWrite.All",
    "Directory.ReadWrite.All",
];
pub const READ_MAILBOX_SETTINGS: &[&str] = &["MailboxSettings.Read", "MailboxSettings.ReadWrite"];
pub const READ_MAIL_BASIC: &[&str] = &[
    "Mail.ReadBasic.All",
    "Mail.ReadBasic",
    "Mail.Read",
    "Mail.ReadWrite",
];
pub const READ_MAIL: &[&str] = &["Mail.Read", "Mail.ReadWrite"];
pub const WRITE_MAIL: &[&str] = &["Mail.ReadWrite"];
pub const WRITE_APPS: &[&str] = &["Application.ReadWrite.All", "Directory.ReadWrite.All"];
pub const READ_APPS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
];
pub const WRITE_ROLE_ASSIGNMENTS: &[&str] = &["AppRoleAssignment.ReadWrite.All"];
