//! Client credentials (secret, certificate assertions), Graph token validation, metadata.

use super::*;

#[tokio::test]
async fn client_secret_token_carries_roles_and_graph_audience() {
    let env = small().await;
    let jwt = Jwt::parse(&env.token).unwrap();
    assert_eq!(jwt.claims["aud"], "https://graph.microsoft.com");
    assert_eq!(jwt.claims["tid"], env.emu.info().tenant_id);
    assert_eq!(jwt.claims["appid"], env.emu.info().client_id);
    assert_eq!(jwt.claims["idtyp"], "app");
    assert!(jwt.claims["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "Mail.ReadWrite"));
    assert_eq!(jwt.header["alg"], "RS256");
    // The signature verifies against the published JWKS key.
    let (status, _, jwks) = env
        .get(&format!(
            "{}/{}/discovery/v2.0/keys",
            env.emu.info().authority,
            env.emu.info().tenant_id
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kid"], jwt.header["kid"]);
    // HTTP Basic client authentication is accepted too.
    let info = env.emu.info();
    let resp = env
        .http
        .post(env.token_url())
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let (status, _, body) = split(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn client_credentials_errors_follow_aadsts() {
    let env = small().await;
    let info = env.emu.info().clone();
    let post = |form: Vec<(&'static str, String)>| {
        let http = env.http.clone();
        let url = env.token_url();
        async move { split(http.post(url).form(&form).send().await.unwrap()).await }
    };
    let scope = "https://graph.microsoft.com/.default".to_string();
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", info.client_id.clone()),
        ("client_secret", "wrong".into()),
        ("scope", scope.clone()),
    ])
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 7000215);
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", uuid::Uuid::new_v4().to_string()),
        ("client_secret", "x".into()),
        ("scope", scope.clone()),
    ])
    .await;
    assert_aadsts(s, &b, 400, "unauthorized_client", 700016);
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", info.client_id.clone()),
        ("client_secret", info.client_secret.clone()),
        ("scope", "https://graph.microsoft.com/Mail.Read".into()),
    ])
    .await;
    assert_aadsts(s, &b, 400, "invalid_scope", 1002012);
    let (s, _, b) = post(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", info.client_id.clone()),
        ("scope", scope.clone()),
    ])
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 7000218);
    let (s, _, b) = post(vec![("grant_type", "password".into())]).await;
    assert_aadsts(s, &b, 400, "unsupported_grant_type", 70003);
    let resp = env
        .http
        .post(format!(
            "{}/nosuchtenant.example/oauth2/v2.0/token",
            info.authority
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (s, _, b) = split(resp).await;
    assert_aadsts(s, &b, 400, "invalid_request", 90002);
}

#[tokio::test]
async fn certificate_assertions_ps256_and_rs256_are_verified() {
    let env = small().await;
    let app = env
        .emu
        .register_app(&AppSpec {
            roles: vec!["User.Read.All".into()],
            certificate: Some(fixture("app-cert.pem")),
            ..Default::default()
        })
        .unwrap();
    let good = key("app-key.pem");
    for alg in ["PS256", "RS256"] {
        let (s, b) = assertion_token(
            &env,
            &app.client_id,
            &assertion(&env, &app.client_id, alg, &good, json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{alg}: {b}");
        let jwt = Jwt::parse(b["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(jwt.claims["appidacr"], "2");
        assert_eq!(jwt.claims["roles"], json!(["User.Read.All"]));
    }
    // The v1 token endpoint as audience (legacy assertions) is accepted too.
    let v1 = format!(
        "{}/{}/oauth2/token",
        env.emu.info().authority,
        env.emu.info().tenant_id
    );
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(&env, &app.client_id, "RS256", &good, json!({"aud": v1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Forged: right thumbprint, wrong key.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &key("forger-key.pem"),
            json!({}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700027);
    // Expired.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &good,
            json!({"nbf": now() - 7200, "exp": now() - 3600}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700024);
    // Wrong audience.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &good,
            json!({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700212);
    // Subject differs from issuer.
    let (s, b) = assertion_token(
        &env,
        &app.client_id,
        &assertion(
            &env,
            &app.client_id,
            "PS256",
            &good,
            json!({"sub": uuid::Uuid::new_v4().to_string()}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 50048);
    // Replayed jti.
    let once = assertion(&env, &app.client_id, "PS256", &good, json!({}));
    assert_eq!(
        assertion_token(&env, &app.client_id, &once).await.0,
        StatusCode::OK
    );
    let (s, b) = assertion_token(&env, &app.client_id, &once).await;
    assert_aadsts(s, &b, 401, "invalid_client", 50027);
    // A certificate that is not registered.
    let (s, b) = assertion_token(
        &env,
        &env.emu.info().client_id.clone(),
        &assertion(
            &env,
            &env.emu.info().client_id.clone(),
            "PS256",
            &good,
            json!({}),
        ),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700027);
}

#[tokio::test]
async fn graph_rejects_missing_forged_and_expired_tokens() {
    let env = small().await;
    let url = format!("{}/users", env.graph());
    let (s, h, b) = split(env.http.get(&url).send().await.unwrap()).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    assert!(h
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Bearer realm=\"\""));
    let (s, h, b) = env.get_with(&url, "not-a-jwt", &[]).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    // Tampered claims: the signature no longer verifies.
    let mut parts: Vec<String> = env.token.split('.').map(str::to_string).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["Directory.ReadWrite.All"]);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let (s, h, b) = env.get_with(&url, &parts.join("."), &[]).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    assert_eq!(env.get(&url).await.0, StatusCode::OK);
    env.emu.advance_clock(Duration::from_secs(2 * 3600));
    let (s, h, b) = env.get(&url).await;
    assert_graph_error(s, &h, &b, 401, "InvalidAuthenticationToken");
    assert_eq!(
        b["error"]["message"],
        "Access token has expired or is not yet valid."
    );
}

#[tokio::test]
async fn missing_roles_give_403() {
    let env = small().await;
    let info = env.emu.info().clone();
    let user = env.mailbox_user();
    let directory_only = env
        .emu
        .register_app(&AppSpec {
            roles: vec!["User.Read.All".into()],
            ..Default::default()
        })
        .unwrap();
    let token = secret_token(
        &env.http,
        &info.authority,
        &info.tenant_id,
        &directory_only.client_id,
        &directory_only.client_secret,
    )
    .await;
    assert_eq!(
        env.get_with(&format!("{}/users", env.graph()), &token, &[])
            .await
            .0,
        StatusCode::OK
    );
    let (s, h, b) = env
        .get_with(
            &format!("{}/users/{}/mailFolders", env.graph(), user.id),
            &token,
            &[],
        )
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    let mail_only = env
        .emu
        .register_app(&AppSpec {
            roles: vec!["Mail.Read".into()],
            ..Default::default()
        })
        .unwrap();
    let token = secret_token(
        &env.http,
        &info.authority,
        &info.tenant_id,
        &mail_only.client_id,
        &mail_only.client_secret,
    )
    .await;
    let (s, h, b) = env
        .get_with(&format!("{}/users", env.graph()), &token, &[])
        .await;
    assert_graph_error(s, &h, &b, 403, "Authorization_RequestDenied");
    let (s, h, b) = env
        .get_with(
            &format!("{}/users/{}/mailboxSettings", env.graph(), user.id),
            &token,
            &[],
        )
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    assert_eq!(
        env.get_with(
            &format!("{}/users/{}/mailFolders", env.graph(), user.id),
            &token,
            &[]
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn openid_metadata_for_tenant_and_aliases() {
    let env = small().await;
    let info = env.emu.info().clone();
    for tenant in [
        info.tenant_id.as_str(),
        "common",
        "organizations",
        info.tenant_domain.as_str(),
    ] {
        let (s, _, b) = env
            .get(&format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                info.authority
            ))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            b["token_endpoint"],
            format!("{}/{tenant}/oauth2/v2.0/token", info.authority)
        );
        assert_eq!(
            b["authorization_endpoint"],
            format!("{}/{tenant}/oauth2/v2.0/authorize", info.authority)
        );
    }
    // MSAL's instance discovery points back at the emulator.
    let authorize = format!(
        "{}/{}/oauth2/v2.0/authorize",
        info.authority, info.tenant_id
    );
    let (s, _, b) = env
        .get(&format!(
            "{}/common/discovery/instance?api-version=1.1&authorization_endpoint={authorize}",
            info.authority
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["tenant_discovery_endpoint"],
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            info.authority, info.tenant_id
        )
    );
    assert_eq!(
        b["metadata"][0]["aliases"][0],
        info.authority.trim_start_matches("http://")
    );
}
