//! App provisioning: with an admin's delegated token (Application.ReadWrite.All +
//! AppRoleAssignment.ReadWrite.All), register Strongroom's own application in the tenant with
//! a certificate credential, create its service principal, and grant it Graph application
//! roles (admin consent by assignment). Backup needs only the read roles; the write roles are
//! granted later, when the admin first restores.

use std::time::Duration;

use serde::Deserialize;

use crate::auth::{AppCertificate, Cloud};
use crate::client::{Call, GraphClient};
use crate::error::{ErrorCode, GraphError};
use crate::governor::Lane;
use crate::paging::Page;

/// The appId of the Microsoft Graph service principal in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Application roles a backup needs.
pub const READ_ROLES: &[&str] = &["User.Read.All", "Mail.Read", "MailboxSettings.Read"];

/// Application roles a restore needs in addition.
pub const WRITE_ROLES: &[&str] = &["Mail.ReadWrite", "MailboxSettings.ReadWrite"];

/// Delegated scopes to request at sign-in so that provisioning can run.
pub fn provisioning_scopes(cloud: &Cloud) -> Vec<String> {
    let r = cloud.graph_resource.trim_end_matches('/');
    vec![
        "openid".into(),
        "offline_access".into(),
        format!("{r}/Application.ReadWrite.All"),
        format!("{r}/AppRoleAssignment.ReadWrite.All"),
    ]
}

/// The result of provisioning: with the tenant id ([`crate::DelegatedSession::tenant_id`]),
/// everything app-only authentication needs besides the certificate's private key (which the
/// caller seals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedApp {
    /// The client id.
    pub app_id: String,
    /// Object id of the application.
    pub application_id: String,
    /// Object id of its service principal.
    pub service_principal_id: String,
    /// Roles granted, by name.
    pub granted_roles: Vec<String>,
}

/// An application role of the Graph service principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    pub value: Option<String>,
    #[serde(default)]
    pub allowed_member_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServicePrincipal {
    id: String,
    #[serde(default)]
    app_roles: Vec<AppRole>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Application {
    id: String,
    app_id: String,
}

/// Role ids for `names`, from the Graph service principal's application roles. Every name
/// must exist and be assignable to applications.
pub fn role_ids(app_roles: &[AppRole], names: &[&str]) -> Result<Vec<String>, GraphError> {
    names
        .iter()
        .map(|name| {
            app_roles
                .iter()
                .find(|r| {
                    r.value.as_deref() == Some(*name)
                        && r.allowed_member_types.iter().any(|t| t == "Application")
                })
                .map(|r| r.id.clone())
                .ok_or_else(|| {
                    GraphError::InvalidRequest(format!("Graph has no application role {name:?}"))
                })
        })
        .collect()
}

impl GraphClient {
    /// Register an application named `display_name` with `certificate` as its credential,
    /// create its service principal and grant it `roles` (usually [`READ_ROLES`]). Call on a
    /// client whose tokens come from a [`crate::DelegatedSession`] of a Global Admin.
    pub async fn provision_app(
        &self,
        display_name: &str,
        certificate: &AppCertificate,
        roles: &[&str],
    ) -> Result<ProvisionedApp, GraphError> {
        let graph = self.graph_service_principal().await?;
        let role_ids = role_ids(&graph.app_roles, roles)?;

        let body = serde_json::json!({
            "displayName": display_name,
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": [{
                "resourceAppId": GRAPH_APP_ID,
                "resourceAccess": role_ids.iter().map(|id| serde_json::json!({"id": id, "type": "Role"})).collect::<Vec<_>>(),
            }],
            "keyCredentials": [certificate.key_credential(display_name)],
        });
        let app: Application = self
            .json(&Call::post_json(
                self.url(&["applications"]),
                Lane::Tenant,
                body,
            ))
            .await?;
        tracing::info!(app_id = %app.app_id, "registered application");

        // A new application takes a moment to replicate: retry "not found" briefly.
        let sp_body = serde_json::json!({ "appId": app.app_id });
        let sp: ServicePrincipal = self
            .while_replicating(|| {
                let call = Call::post_json(
                    self.url(&["servicePrincipals"]),
                    Lane::Tenant,
                    sp_body.clone(),
                );
                async move { self.json(&call).await }
            })
            .await?;
        self.assign_roles(&graph.id, &sp.id, &role_ids).await?;
        Ok(ProvisionedApp {
            app_id: app.app_id,
            application_id: app.id,
            service_principal_id: sp.id,
            granted_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        })
    }

    /// Grant more application roles (e.g. [`WRITE_ROLES`] before a first restore) to the
    /// service principal `service_principal_id`.
    pub async fn grant_app_roles(
        &self,
        service_principal_id: &str,
        roles: &[&str],
    ) -> Result<(), GraphError> {
        let graph = self.graph_service_principal().await?;
        let ids = role_ids(&graph.app_roles, roles)?;
        self.assign_roles(&graph.id, service_principal_id, &ids)
            .await
    }

    /// The object id of the service principal of the application `app_id` (a client id) in
    /// this tenant: what [`GraphClient::grant_app_roles`] grants to.
    pub async fn service_principal_id(&self, app_id: &str) -> Result<String, GraphError> {
        let mut url = self.url(&["servicePrincipals"]);
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!("appId eq '{}'", app_id.replace('\'', "''")),
            )
            .append_pair("$select", "id,appId");
        let page: Page<ServicePrincipal> = self.json(&Call::get(url, Lane::Tenant)).await?;
        page.value
            .into_iter()
            .next()
            .map(|sp| sp.id)
            .ok_or_else(|| {
                GraphError::InvalidRequest(format!(
                    "the tenant has no service principal for {app_id}"
                ))
            })
    }

    /// The tenant's Microsoft Graph service principal, with its application roles.
    async fn graph_service_principal(&self) -> Result<ServicePrincipal, GraphError> {
        let mut url = self.url(&["servicePrincipals"]);
        url.query_pairs_mut()
            .append_pair("$filter", &format!("appId eq '{GRAPH_APP_ID}'"))
            .append_pair("$select", "id,appId,appRoles");
        let page: Page<ServicePrincipal> = self.json(&Call::get(url, Lane::Tenant)).await?;
        page.value.into_iter().next().ok_or_else(|| {
            GraphError::Decode("the tenant has no Microsoft Graph service principal".into())
        })
    }

    async fn assign_roles(
        &self,
        graph_sp: &str,
        principal: &str,
        role_ids: &[String],
    ) -> Result<(), GraphError> {
        for role in role_ids {
            let body = serde_json::json!({
                "principalId": principal,
                "resourceId": graph_sp,
                "appRoleId": role,
            });
            let url = self.url(&["servicePrincipals", graph_sp, "appRoleAssignedTo"]);
            self.while_replicating(|| {
                let call = Call::post_json(url.clone(), Lane::Tenant, body.clone());
                async move { self.json::<serde_json::Value>(&call).await }
            })
            .await?;
        }
        Ok(())
    }

    async fn while_replicating<T, F, Fut>(&self, mut op: F) -> Result<T, GraphError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, GraphError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(GraphError::Service(e)) if e.code == ErrorCode::NotFound && attempt < 5 => {
                    tokio::time::sleep(Duration::from_secs(2u64 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_come_from_application_roles_only() {
        let roles: Vec<AppRole> = serde_json::from_value(serde_json::json!([
            {"id": "810c84a8-4a9e-49e6-bf7d-12d183f40d01", "value": "Mail.Read", "allowedMemberTypes": ["Application"]},
            {"id": "df021288-bdef-4463-88db-98f22de89214", "value": "User.Read.All", "allowedMemberTypes": ["Application"]},
            {"id": "delegated-only", "value": "MailboxSettings.Read", "allowedMemberTypes": ["User"]},
        ]))
        .unwrap();
        assert_eq!(
            role_ids(&roles, &["User.Read.All", "Mail.Read"]).unwrap(),
            vec![
                "df021288-bdef-4463-88db-98f22de89214",
                "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
            ]
        );
        assert!(
            role_ids(&roles, &["MailboxSettings.Read"]).is_err(),
            "not an application role"
        );
        assert!(role_ids(&roles, &["Nope.All"]).is_err());
    }

    #[test]
    fn scopes_for_provisioning() {
        let s = provisioning_scopes(&Cloud::global());
        assert!(s.contains(&"offline_access".to_string()));
        assert!(s.contains(&"https://graph.microsoft.com/Application.ReadWrite.All".to_string()));
        assert!(
            s.contains(&"https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All".to_string())
        );
    }
}
