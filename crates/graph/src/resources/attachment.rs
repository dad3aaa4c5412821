//! Message attachments (`/messages/{id}/attachments`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// `#microsoft.graph.fileAttachment`, `itemAttachment` or `referenceAttachment`.
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub is_inline: Option<bool>,
    #[serde(default)]
    pub content_id: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Base64 bytes of a file attachment (absent when not selected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_bytes: Option<String>,
}

impl Attachment {
    pub fn is_file(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.fileAttachment")
    }

    /// Decoded bytes of a file attachment whose `contentBytes` was returned.
    pub fn bytes(&self) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        use base64::Engine;
        self.content_bytes
            .as_ref()
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_attachment_decodes() {
        let a: Attachment = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.fileAttachment","id":"A1","name":"a.txt","contentType":"text/plain","size":5,"isInline":false,"contentBytes":"aGVsbG8="}"##,
        )
        .unwrap();
        assert!(a.is_file());
        assert_eq!(a.bytes().unwrap().unwrap(), b"hello");
    }
}
