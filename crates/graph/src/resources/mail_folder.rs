//! Mail folders (`/mailFolders`, `/childFolders`, `/mailFolders/delta`).

use serde::{Deserialize, Serialize};

use super::Removed;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailFolder {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub child_folder_count: Option<u32>,
    #[serde(default)]
    pub unread_item_count: Option<u32>,
    #[serde(default)]
    pub total_item_count: Option<u32>,
    /// Hidden folders (Clutter, ...) appear only with `includeHiddenFolders=true`.
    #[serde(default)]
    pub is_hidden: Option<bool>,
    /// `#microsoft.graph.mailSearchFolder` for search folders (virtual: their messages live
    /// in other folders).
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

impl MailFolder {
    pub fn is_search_folder(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.mailSearchFolder")
    }

    pub fn is_hidden(&self) -> bool {
        self.is_hidden.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::Page;
    use crate::test_fixtures::fixture;

    fn page(name: &str) -> Page<MailFolder> {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    #[test]
    fn folder_fixtures() {
        let all = page("mailfolders-list.json");
        assert_eq!(all.value.len(), 9);
        let inbox = all
            .value
            .iter()
            .find(|f| f.display_name.as_deref() == Some("Inbox"))
            .unwrap();
        assert_eq!(inbox.child_folder_count, Some(1));
        assert_eq!(inbox.total_item_count, Some(71));
        let search: Vec<_> = all.value.iter().filter(|f| f.is_search_folder()).collect();
        assert_eq!(search.len(), 1);
        assert_eq!(
            search[0].parent_folder_id.as_deref(),
            Some("AQMkADYAAAIBDAAAAA==")
        );
        let hidden = page("mailfolders-list-includeHidden.json");
        assert!(hidden.value[0].is_hidden());
        assert!(!hidden.value[1].is_hidden());
    }
}
