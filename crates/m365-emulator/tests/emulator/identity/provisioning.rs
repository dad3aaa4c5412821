//! Provisioning: admin consent and an app created, granted and used through Graph.

use super::*;

/// The provisioning flow: an admin signs in, creates an app with a certificate, its service
/// principal and Graph role assignments; the new app then authenticates with its certificate.
#[tokio::test]
async fn provisioning_creates_an_app_that_uses_its_certificate() {
    let env = small().await;
    let admin = env.emu.info().admin.clone();
    let delegated = redeem_fresh(
        &env,
        &admin,
        "openid offline_access https://graph.microsoft.com/.default",
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |url: String, body: Value| {
        let http = env.http.clone();
        let token = delegated.clone();
        async move {
            split(
                http.post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let der = cert_der();
    let (s, _, app) = post(
        format!("{}/applications", env.graph()),
        json!({
            "displayName": "Strongroom backup",
            "keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&der)}],
            "requiredResourceAccess": [{"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": "810c84a8-4a9e-49e6-bf7d-12d183f40d01", "type": "Role"}]}]
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    assert_eq!(
        app["keyCredentials"][0]["customKeyIdentifier"],
        STANDARD.encode(sha1::Sha1::digest(&der))
    );
    let app_id = app["appId"].as_str().unwrap().to_string();
    let (s, _, sp) = post(
        format!("{}/servicePrincipals", env.graph()),
        json!({"appId": app_id}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    let (s, _, graph_sps) = env
        .get_with(
            &format!(
                "{}/servicePrincipals?$filter=appId eq '00000003-0000-0000-c000-000000000000'",
                env.graph()
            ),
            &delegated,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{graph_sps}");
    let graph_sp = &graph_sps["value"][0];
    let role_id = graph_sp["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "User.Read.All")
        .unwrap()["id"]
        .clone();
    let (s, _, assignment) = post(
        format!(
            "{}/servicePrincipals/{}/appRoleAssignedTo",
            env.graph(),
            graph_sp["id"].as_str().unwrap()
        ),
        json!({"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role_id}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{assignment}");
    assert_eq!(assignment["principalType"], "ServicePrincipal");
    // The new app signs in with its certificate and can read users, but not mail.
    let (s, b) = assertion_token(
        &env,
        &app_id,
        &assertion(&env, &app_id, "PS256", &key("app-key.pem"), json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let token = b["access_token"].as_str().unwrap();
    assert_eq!(
        env.get_with(&format!("{}/users", env.graph()), token, &[])
            .await
            .0,
        StatusCode::OK
    );
    let user = env.mailbox_user();
    assert_eq!(
        env.get_with(
            &format!("{}/users/{}/messages", env.graph(), user.id),
            token,
            &[]
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn admin_consent_v1_and_v2_grant_application_roles() {
    let env = small().await;
    let info = env.emu.info().clone();
    let app = env
        .emu
        .register_app(&AppSpec {
            roles: vec![],
            redirect_uris: vec!["http://localhost/consent".into()],
            ..Default::default()
        })
        .unwrap();
    // The registration asks for Mail.Read; nothing is granted yet.
    let consent = |path: &'static str,
                   extra: Vec<(&'static str, String)>,
                   user: (String, String),
                   accept: bool| {
        let http = env.http.clone();
        let info = info.clone();
        let client_id = app.client_id.clone();
        async move {
            let mut params = vec![
                ("client_id", client_id),
                ("redirect_uri", "http://localhost:4000/consent".to_string()),
                ("state", "xyz".to_string()),
            ];
            params.extend(extra);
            let html = http
                .get(format!("{}/{}/{path}", info.authority, info.tenant_id))
                .query(&params)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let ctx = field(&html, "ctx");
            let resp = post_login(
                &http,
                &info.authority,
                &info.tenant_id,
                &ctx,
                &user.0,
                &user.1,
            )
            .await;
            let html = resp.text().await.unwrap();
            if !html.contains("id=\"consent\"") {
                return Err(html);
            }
            let resp = post_consent(&http, &info.authority, &info.tenant_id, &ctx, accept).await;
            Ok(query(resp.headers()["location"].to_str().unwrap()))
        }
    };
    let admin = (info.admin.username.clone(), info.admin.password.clone());
    let q = consent("adminconsent", vec![], admin.clone(), false)
        .await
        .unwrap();
    assert_eq!(q["error"], "permission_denied");
    let q = consent(
        "v2.0/adminconsent",
        vec![("scope", "https://graph.microsoft.com/.default".into())],
        admin.clone(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(q["admin_consent"], "True");
    assert_eq!(q["tenant"], info.tenant_id);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q["state"], "xyz");
    let q = consent("adminconsent", vec![], admin, true).await.unwrap();
    assert_eq!(q["admin_consent"], "True");
    // A non-admin cannot consent for the organisation.
    let regular = env.mailbox_user();
    assert!(consent(
        "adminconsent",
        vec![],
        (regular.user_principal_name, regular.password),
        true
    )
    .await
    .unwrap_err()
    .contains("AADSTS90094"));
    let _ = UserKind::Licensed;
}
