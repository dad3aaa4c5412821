//! Users: listing, directory delta, and mailbox presence and kind.

use futures::stream::BoxStream;

use crate::client::{Call, GraphClient};
use crate::error::GraphError;
use crate::governor::Lane;
use crate::paging::{delta_pages, pages, DeltaLink, DeltaPage, Page};
use crate::resources::{MailboxKind, MailboxSettings, User, USER_SELECT};

impl GraphClient {
    /// Every user in the tenant, 999 a page, with the properties the mailbox grid shows
    /// (`assignedLicenses`, `accountEnabled` and `userType` must be selected explicitly).
    pub fn users(&self) -> BoxStream<'static, Result<Page<User>, GraphError>> {
        let mut url = self.url(&["users"]);
        url.query_pairs_mut()
            .append_pair("$select", USER_SELECT)
            .append_pair("$top", "999");
        pages(self.clone(), Call::get(url, Lane::Tenant))
    }

    /// `GET /users/delta`: all users on the first round, then only changes. Removed users
    /// come as [`crate::Change::Removed`] (`changed` = soft-deleted, `deleted` = gone).
    pub fn users_delta(
        &self,
        from: Option<&DeltaLink>,
    ) -> Result<BoxStream<'static, Result<DeltaPage<User>, GraphError>>, GraphError> {
        let call = match from {
            Some(link) => Call::get(self.url(&[]), Lane::Tenant).follow(link.as_str())?,
            None => {
                let mut url = self.url(&["users", "delta"]);
                url.query_pairs_mut().append_pair("$select", USER_SELECT);
                Call::get(url, Lane::Tenant)
            }
        };
        Ok(delta_pages(self.clone(), call, "users".into(), |u: User| u))
    }

    /// The user's mailbox settings, or `None` when the user has no Exchange Online mailbox
    /// (`MailboxNotEnabledForRESTAPI` and the other "no mailbox" answers).
    pub async fn mailbox_settings(
        &self,
        user: &str,
    ) -> Result<Option<MailboxSettings>, GraphError> {
        let url = self.url(&["users", user, "mailboxSettings"]);
        match self
            .json::<MailboxSettings>(&Call::get(url, Lane::mailbox(user)))
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if means_no_mailbox(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What kind of mailbox the user has; [`MailboxKind::None`] is an answer, not an error.
    pub async fn mailbox_kind(&self, user: &str) -> Result<MailboxKind, GraphError> {
        Ok(match self.mailbox_settings(user).await? {
            None => MailboxKind::None,
            Some(s) => MailboxKind::from(s.user_purpose),
        })
    }
}

/// 404s that say "this user has no mailbox here", as opposed to failures.
fn means_no_mailbox(e: &GraphError) -> bool {
    use crate::error::ErrorCode;
    match e {
        GraphError::Service(s) => {
            matches!(
                s.code,
                ErrorCode::MailboxNotEnabled | ErrorCode::InvalidUser
            ) || (s.status == 404 && s.code == ErrorCode::NotFound)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServiceError;
    use crate::test_fixtures::fixture;

    #[test]
    fn which_errors_mean_no_mailbox() {
        let no = |status, name| {
            means_no_mailbox(&GraphError::Service(ServiceError::from_body(
                status,
                &fixture(name),
                None,
            )))
        };
        assert!(no(404, "error-404-MailboxNotEnabledForRESTAPI.json"));
        assert!(no(404, "error-404-ResourceNotFound.json"));
        assert!(
            !no(403, "error-403-ErrorAccessDenied-appaccesspolicy.json"),
            "denied is a failure"
        );
        assert!(!no(429, "error-429-throttled.json"));
        assert!(!means_no_mailbox(&GraphError::Transport("reset".into())));
    }
}
