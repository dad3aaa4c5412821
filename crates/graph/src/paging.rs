//! OData paging: follow `@odata.nextLink` verbatim until a page has none; delta sequences end
//! with `@odata.deltaLink`, which the caller saves for the next round.

use futures::stream::{self, BoxStream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::{Call, GraphClient};
use crate::error::GraphError;
use crate::resources::{Change, DeltaEntry};

/// One page of a collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<DeltaLink>,
}

/// An opaque, absolute `@odata.deltaLink`: save it (after the round's data is committed) and
/// pass it back to start the next incremental round.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeltaLink(String);

impl DeltaLink {
    pub fn new(link: impl Into<String>) -> DeltaLink {
        DeltaLink(link.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a delta round: changes, and on the last page the link for the next round.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage<T> {
    pub changes: Vec<Change<T>>,
    /// Present on the last page of the round only.
    pub delta_link: Option<DeltaLink>,
}

/// Delta pages from `first` (a fresh delta request or a saved delta link). An expired delta
/// state surfaces as [`GraphError::SyncStateNotFound`] naming `resource`, so the caller can
/// restart that resource alone.
pub(crate) fn delta_pages<W, T>(
    client: GraphClient,
    first: Call,
    resource: String,
    convert: fn(W) -> T,
) -> BoxStream<'static, Result<DeltaPage<T>, GraphError>>
where
    W: DeserializeOwned + Send + 'static,
    T: DeltaEntry + Send + 'static,
{
    pages::<W>(client, first)
        .map(move |page| match page {
            Ok(p) => Ok(DeltaPage {
                changes: p
                    .value
                    .into_iter()
                    .map(|w| convert(w).into_change())
                    .collect(),
                delta_link: p.delta_link,
            }),
            Err(GraphError::Service(e)) if e.requires_resync() => {
                Err(GraphError::SyncStateNotFound {
                    resource: resource.clone(),
                    source: e,
                })
            }
            Err(e) => Err(e),
        })
        .boxed()
}

/// Pages starting at `first`, each next page requested only when the previous one has been
/// consumed (so memory holds one page at a time).
pub(crate) fn pages<T>(
    client: GraphClient,
    first: Call,
) -> BoxStream<'static, Result<Page<T>, GraphError>>
where
    T: DeserializeOwned + Send + 'static,
{
    stream::try_unfold(Some(first), move |next| {
        let client = client.clone();
        async move {
            let Some(call) = next else { return Ok(None) };
            let page: Page<T> = client.json(&call).await?;
            let following = match &page.next_link {
                Some(link) => Some(call.follow(link)?),
                None => None,
            };
            Ok(Some((page, following)))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::fixture;

    #[derive(Debug, Deserialize)]
    struct Item {
        id: String,
    }

    #[test]
    fn next_and_delta_links_are_read_verbatim() {
        let first: Page<Item> =
            serde_json::from_slice(&fixture("messages-delta-page1-nextLink.json")).unwrap();
        assert_eq!(first.value.len(), 2);
        assert_eq!(first.value[1].id, "AQMkADNkNAAAVRMKAAAAA==");
        assert_eq!(
            first.next_link.as_deref(),
            Some("https://graph.microsoft.com/v1.0/me/mailfolders('AQMkADNkNAAAgEMAAAA')/messages/delta?$skiptoken=GwcBoTmPuoTQWfcsAbkYM")
        );
        assert!(first.delta_link.is_none());
        let last: Page<Item> =
            serde_json::from_slice(&fixture("messages-delta-final-deltaLink.json")).unwrap();
        assert!(last.next_link.is_none());
        assert_eq!(
            last.delta_link.unwrap().as_str(),
            "https://graph.microsoft.com/v1.0/me/mailfolders('AQMkADNkNAAAgEMAAAA')/messages/delta?$deltatoken=GwcBoTmPuoGNlgXgF1nyUNMXY"
        );
        let users: Page<Item> = serde_json::from_slice(&fixture("users-delta-page.json")).unwrap();
        assert!(users.next_link.unwrap().contains("$skiptoken="));
        let empty: Page<Item> = serde_json::from_str(r#"{"@odata.context":"x"}"#).unwrap();
        assert!(empty.value.is_empty() && empty.next_link.is_none());
    }

    #[test]
    fn following_a_link_keeps_lane_and_preferences_and_rejects_relative_links() {
        let url = url::Url::parse(
            "https://graph.microsoft.com/v1.0/users/a/mailFolders/b/messages/delta",
        )
        .unwrap();
        let call = Call::get(url, crate::governor::Lane::mailbox("a"))
            .prefer("odata.maxpagesize=50")
            .prefer(r#"IdType="ImmutableId""#);
        let next = call
            .follow("https://graph.microsoft.com/v1.0/users/a/mailFolders/b/messages/delta?$skiptoken=X%3D%3D")
            .unwrap();
        assert_eq!(next.prefer, call.prefer);
        assert_eq!(next.lane, call.lane);
        assert_eq!(
            next.url.query(),
            Some("$skiptoken=X%3D%3D"),
            "the link is not re-encoded"
        );
        assert!(call.follow("/v1.0/users?$skiptoken=1").is_err());
    }

    #[test]
    fn delta_link_round_trips_as_a_plain_string() {
        let link = DeltaLink::new("https://x/delta?$deltatoken=1");
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(json, r#""https://x/delta?$deltatoken=1""#);
        assert_eq!(serde_json::from_str::<DeltaLink>(&json).unwrap(), link);
    }
}
