//! Plays the Global Administrator's browser in the sign-in window: open the authorize URL,
//! sign in with the tenant's admin account, accept the consent page. Tests of every crate that
//! drive the delegated sign-in (app provisioning, the restore permission grant) use it, so the
//! emulator's page structure is known in one place.

use anyhow::{anyhow, bail, Context};

use crate::Emulator;

/// The value of the hidden `ctx` input of the emulator's sign-in and consent pages.
fn ctx_of(html: &str) -> anyhow::Result<String> {
    let marker = r#"name="ctx" value=""#;
    let start = html
        .find(marker)
        .ok_or_else(|| anyhow!("no ctx field on the page"))?;
    let rest = &html[start + marker.len()..];
    Ok(rest.split('"').next().unwrap_or_default().to_owned())
}

impl Emulator {
    /// Signs in as the tenant's admin at `authorize` (an authorize URL the app built) and
    /// consents when asked; returns the redirect URL the browser would follow back to the app.
    pub async fn sign_in_as_admin(&self, authorize: &str) -> anyhow::Result<String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let info = self.info();
        let page = http.get(authorize).send().await?.text().await?;
        let login = format!("{}/{}/login", info.authority, info.tenant_id);
        let form = [
            ("ctx", ctx_of(&page)?),
            ("login", info.admin.username.clone()),
            ("passwd", info.admin.password.clone()),
        ];
        let mut resp = http.post(&login).form(&form).send().await?;
        if !resp.status().is_redirection() {
            let page = resp.text().await?;
            let consent = format!("{}/{}/consent", info.authority, info.tenant_id);
            resp = http
                .post(&consent)
                .form(&[("ctx", ctx_of(&page)?), ("accept", "yes".into())])
                .send()
                .await?;
        }
        if !resp.status().is_redirection() {
            bail!("sign-in ended with {} instead of a redirect", resp.status());
        }
        let location = resp
            .headers()
            .get("location")
            .context("redirect without a location")?;
        Ok(location.to_str()?.to_owned())
    }
}
