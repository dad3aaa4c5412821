//! Message metadata as the backup catalogues it (the content itself is the MIME from
//! `$value`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{null_as_default, Removed};

/// The `$select` for message listing and delta.
pub(crate) const MESSAGE_SELECT: &str = "id,parentFolderId,subject,from,toRecipients,ccRecipients,\
bccRecipients,receivedDateTime,sentDateTime,isRead,flag,categories,internetMessageId,\
hasAttachments,changeKey";

/// PidTagMessageSize, requested with `$expand=singleValueExtendedProperties(...)`.
pub(crate) const SIZE_PROPERTY: &str = "Integer 0x0E08";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Option<Recipient>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub to_recipients: Vec<Recipient>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cc_recipients: Vec<Recipient>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub bcc_recipients: Vec<Recipient>,
    #[serde(default)]
    pub received_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sent_date_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_read: Option<bool>,
    #[serde(default)]
    pub flag: Option<FollowupFlag>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub categories: Vec<String>,
    #[serde(default)]
    pub internet_message_id: Option<String>,
    #[serde(default)]
    pub has_attachments: Option<bool>,
    /// Version of the item; equals the `@odata.etag` payload. Changes on every update.
    #[serde(default)]
    pub change_key: Option<String>,
    /// PidTagMessageSize in bytes, when it was requested and returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

impl Message {
    /// Fill `size` from a `singleValueExtendedProperties` array, if the response has one.
    pub(crate) fn take_size_from(&mut self, extended: &serde_json::Value) {
        let Some(props) = extended.as_array() else {
            return;
        };
        for p in props {
            let id = p.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            if property_tag(id) == property_tag(SIZE_PROPERTY) {
                self.size = p
                    .get("value")
                    .and_then(|v| v.as_str())
                    .and_then(|v| v.parse().ok());
            }
        }
    }
}

/// `"Integer 0x0E08"` and Graph's normalised `"Integer 0xe08"` name the same property.
fn property_tag(id: &str) -> Option<(String, u32)> {
    let (kind, hex) = id.trim().split_once(' ')?;
    let tag = u32::from_str_radix(
        hex.trim()
            .strip_prefix("0x")
            .or_else(|| hex.strip_prefix("0X"))?,
        16,
    )
    .ok()?;
    Some((kind.to_ascii_lowercase(), tag))
}

/// `{"emailAddress":{"name","address"}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub email_address: EmailAddress,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// `followupFlag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowupFlag {
    /// `notFlagged`, `complete` or `flagged`.
    #[serde(default)]
    pub flag_status: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub due_date_time: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub completed_date_time: Option<DateTimeTimeZone>,
}

/// `dateTimeTimeZone`: a local date-time and the zone it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    pub date_time: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A boolean, or the strings `"true"`/`"false"` (Microsoft's own delta example has
/// `"isRead": "true"`).
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<B>::deserialize(d)? {
        None => None,
        Some(B::Bool(b)) => Some(b),
        Some(B::Text(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(B::Text(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        Some(B::Text(s)) => return Err(serde::de::Error::custom(format!("not a boolean: {s:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::Page;
    use crate::resources::{Change, DeltaEntry, RemovedReason};
    use crate::test_fixtures::fixture;

    #[test]
    fn full_message_fixture() {
        let m: Message = serde_json::from_slice(&fixture("message-get.json")).unwrap();
        assert_eq!(m.subject.as_deref(), Some("9/9/2018: concert"));
        assert_eq!(
            m.from.unwrap().email_address.address.as_deref(),
            Some("adelev@contoso.OnMicrosoft.com")
        );
        assert_eq!(
            m.to_recipients[0].email_address.name.as_deref(),
            Some("Alex Wilber")
        );
        assert_eq!(
            m.received_date_time.unwrap().to_rfc3339(),
            "2018-09-09T03:15:08+00:00"
        );
        assert_eq!(m.is_read, Some(true));
        assert_eq!(m.flag.unwrap().flag_status.as_deref(), Some("notFlagged"));
        assert_eq!(
            m.change_key.as_deref(),
            Some("CQAAABYAAAC4ofQHEIqCSbQPot83AFcbAAAnjjuZ")
        );
        assert_eq!(
            m.internet_message_id.as_deref(),
            Some("<MWHPR6E1BE060@MWHPR1120.namprd22.prod.outlook.com>")
        );
        assert_eq!(m.parent_folder_id.as_deref(), Some("AAMkADcbAAAAAAEJAAA="));
        assert!(m.cc_recipients.is_empty() && m.categories.is_empty());
    }

    #[test]
    fn incremental_delta_fixture_gives_a_removal_and_an_update() {
        let page: Page<Message> =
            serde_json::from_slice(&fixture("messages-delta-incremental-with-removed.json"))
                .unwrap();
        let changes: Vec<_> = page
            .value
            .into_iter()
            .map(DeltaEntry::into_change)
            .collect();
        assert_eq!(
            changes[0],
            Change::Removed {
                id: "AAMkADk0MGFkODE3LWE4MmYtNDRhOS0Dh_6qB-pB2Sa2pUum19a6YAAKnLuxoAAA=".into(),
                reason: RemovedReason::Deleted
            }
        );
        match &changes[1] {
            Change::Upsert(m) => {
                assert_eq!(m.id, "AAMkADNkNAAASq35xAAA=");
                assert_eq!(
                    m.is_read,
                    Some(true),
                    "the doc's string \"true\" is read as a boolean"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(page.delta_link.is_some());
    }

    #[test]
    fn size_comes_from_the_extended_property() {
        let mut m: Message = serde_json::from_str(r#"{"id":"x"}"#).unwrap();
        m.take_size_from(&serde_json::json!([{"id":"Integer 0xe07","value":"1"}]));
        assert_eq!(m.size, None, "a different property is not the size");
        m.take_size_from(&serde_json::json!([{"id":"Integer 0x0E08","value":"1234"}]));
        assert_eq!(m.size, Some(1234));
        m.take_size_from(&serde_json::json!([{"id":"Integer 0xe08","value":"99"}]));
        assert_eq!(m.size, Some(99), "Graph's normalised spelling");
        assert!(serde_json::from_str::<Message>(r#"{"id":"x","isRead":"maybe"}"#).is_err());
    }
}
