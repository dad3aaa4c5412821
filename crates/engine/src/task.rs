//! Backup tasks: a name, the service it backs up, the tenant connection (whose secret is
//! sealed under the archive's secrets subkey) and the settings the admin chose.

use serde::{Deserialize, Serialize};
use strongroom_graph::{
    AppCertificate, AppCredential, AppSecret, AssertionAlgorithm, ClientOptions, Cloud, GraphClient,
};

use crate::error::{Error, Result};

/// What a task backs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Exchange,
}

/// How long the backup of a mailbox that left the tenant (deleted or unlicensed) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    Days(u32),
    Forever,
}

/// When scheduled backups run (the desktop app's scheduler reads this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Daily { hour: u8, minute: u8 },
    EveryHours { hours: u8 },
    Manual,
}

/// The admin's choices for a task. Defaults follow the product: index on, unlicensed off,
/// new mailboxes not activated automatically, archived mailboxes kept forever, daily at 02:00.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskSettings {
    pub index_for_search: bool,
    pub backup_unlicensed: bool,
    pub auto_activate_new: bool,
    pub retention: Retention,
    pub schedule: Schedule,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            index_for_search: true,
            backup_unlicensed: false,
            auto_activate_new: false,
            retention: Retention::Forever,
            schedule: Schedule::Daily { hour: 2, minute: 0 },
        }
    }
}

/// How the app authenticates to the tenant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    Secret(String),
    /// PEM text holding the certificate and its private key.
    Certificate(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(..)"),
            Credential::Certificate(_) => f.write_str("Certificate(..)"),
        }
    }
}

/// A tenant connection: where, who, and the credential (sealed at rest as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    pub authority: String,
    pub graph_url: String,
}

impl Connection {
    /// The production cloud's base URLs.
    pub const GLOBAL_AUTHORITY: &'static str = "https://login.microsoftonline.com";
    pub const GLOBAL_GRAPH: &'static str = "https://graph.microsoft.com";

    pub fn app_credential(&self) -> Result<(Cloud, AppCredential)> {
        let cloud = Cloud::new(&self.authority, &self.graph_url)?;
        let secret = match &self.credential {
            Credential::Secret(s) => AppSecret::Secret(s.clone()),
            Credential::Certificate(pem) => {
                let (cert, key) = split_pem(pem)?;
                AppSecret::Certificate {
                    certificate: AppCertificate::from_pem(&cert, &key)?,
                    algorithm: AssertionAlgorithm::Ps256,
                }
            }
        };
        let credential = AppCredential::new(&cloud, &self.tenant_id, &self.client_id, secret);
        Ok((cloud, credential))
    }

    pub fn graph(&self, options: &ClientOptions) -> Result<GraphClient> {
        let (cloud, credential) = self.app_credential()?;
        Ok(GraphClient::with_options(
            &cloud,
            credential,
            options.clone(),
        ))
    }
}

/// Splits PEM text into its certificate blocks and its private-key block.
fn split_pem(pem: &str) -> Result<(String, String)> {
    let mut cert = String::new();
    let mut key = String::new();
    let mut current: Option<&mut String> = None;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            current = Some(if line.contains("PRIVATE KEY") {
                &mut key
            } else {
                &mut cert
            });
        }
        if let Some(out) = current.as_deref_mut() {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("-----END ") {
            current = None;
        }
    }
    if cert.is_empty() || key.is_empty() {
        return Err(Error::invalid(
            "the PEM must hold a CERTIFICATE block and a PRIVATE KEY block",
        ));
    }
    Ok((cert, key))
}

/// A configured task as the catalog holds it (the connection stays sealed until a job needs it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: i64,
    pub name: String,
    pub service: Service,
    pub settings: TaskSettings,
    pub created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_tolerate_missing_fields() {
        let s: TaskSettings = serde_json::from_str(r#"{"backupUnlicensed":true}"#).unwrap();
        assert!(s.backup_unlicensed && s.index_for_search);
        assert_eq!(s.retention, Retention::Forever);
    }

    #[test]
    fn pem_splits_and_debug_hides_secrets() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n";
        let (c, k) = split_pem(pem).unwrap();
        assert!(c.contains("AAA") && !c.contains("BBB"));
        assert!(k.contains("BBB") && !k.contains("AAA"));
        assert!(split_pem("nothing").is_err());
        assert_eq!(
            format!("{:?}", Credential::Secret("hunter2".into())),
            "Secret(..)"
        );
    }
}
