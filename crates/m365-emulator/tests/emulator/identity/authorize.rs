//! Authorization code + PKCE, authorize errors, response modes, sessions and refresh tokens.

use super::*;

#[tokio::test]
async fn auth_code_with_pkce_on_a_loopback_redirect() {
    let env = small().await;
    let admin = env.emu.info().admin.clone();
    let (verifier, challenge) = pkce();
    // Registered as http://localhost: any port matches; no path comes back with a slash.
    let redirect = "http://localhost:53682";
    let location = sign_in(
        &env,
        "organizations",
        redirect,
        &challenge,
        &admin.username,
        &admin.password,
        true,
    )
    .await;
    assert!(
        location.starts_with("http://localhost:53682/?"),
        "{location}"
    );
    let q = query(&location);
    assert_eq!(q["state"], "st-123");
    let code = q["code"].clone();

    let (s, b) = redeem(
        &env,
        &code,
        redirect,
        "wrong-verifier-wrong-verifier-wrong-verifier",
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_grant", 501481);
    let (s, b) = redeem(&env, &code, redirect, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for k in ["access_token", "refresh_token", "id_token", "scope"] {
        assert!(b[k].is_string(), "{k}: {b}");
    }
    let id = Jwt::parse(b["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id.claims["preferred_username"], admin.username);
    assert_eq!(id.claims["aud"], env.emu.info().client_id);
    // The delegated token works on /me.
    let access = b["access_token"].as_str().unwrap().to_string();
    let (s, _, me) = env
        .get_with(&format!("{}/me", env.graph()), &access, &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["userPrincipalName"], admin.username);
    // Delegated Mail.Read opens the signed-in user's mailbox, not someone else's.
    let (s, _, _) = env
        .get_with(
            &format!("{}/me/mailFolders/inbox/messages", env.graph()),
            &access,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let other = env.mailbox_user();
    let (s, h, b) = env
        .get_with(
            &format!(
                "{}/users/{}/mailFolders/inbox/messages",
                env.graph(),
                other.id
            ),
            &access,
            &[],
        )
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    // Codes are single use.
    let (s, b) = redeem(&env, &code, redirect, &verifier).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 54005);

    // Refresh: a new refresh token each time; the old one still works until revoked.
    let refresh = redeem_fresh(&env, &admin, SCOPE).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let info = env.emu.info().clone();
    let refresh_with = |token: String| redeem_refresh(&env, token, &[]);
    // MSAL's client_info=1 adds {uid, utid} of the signed-in user.
    let (_, with_info) = redeem_refresh(&env, refresh.clone(), &[("client_info", "1")]).await;
    let client_info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(with_info["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(client_info["utid"], info.tenant_id);
    assert_eq!(client_info["uid"], env.emu.tenant().users[0].id);
    let (s, first) = refresh_with(refresh.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_ne!(first["refresh_token"], refresh.as_str());
    assert_eq!(refresh_with(refresh.clone()).await.0, StatusCode::OK);
    env.emu.revoke_refresh_tokens();
    let (s, b) = refresh_with(refresh).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 50173);
}

#[tokio::test]
async fn authorize_error_paths() {
    let env = small().await;
    let info = env.emu.info().clone();
    let admin = info.admin.clone();
    let authorize = |params: Vec<(&'static str, String)>| {
        let http = env.http.clone();
        let url = format!("{}/common/oauth2/v2.0/authorize", info.authority);
        async move { http.get(url).query(&params).send().await.unwrap() }
    };
    // Unregistered redirect URI: an error page, never a redirect.
    let resp = authorize(vec![
        ("client_id", info.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://evil.example/cb".into()),
        ("scope", "openid".into()),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("AADSTS50011"));
    // prompt=none without a session redirects with login_required and the state.
    let resp = authorize(vec![
        ("client_id", info.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://localhost/".into()),
        ("scope", "openid".into()),
        ("state", "s1".into()),
        ("prompt", "none".into()),
    ])
    .await;
    let q = query(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "s1");
    // Wrong password shows the sign-in page again with AADSTS50126.
    let resp = authorize(vec![
        ("client_id", info.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://localhost/".into()),
        ("scope", "openid".into()),
    ])
    .await;
    let ctx = field(&resp.text().await.unwrap(), "ctx");
    let resp = post_login(
        &env.http,
        &info.authority,
        "common",
        &ctx,
        &admin.username,
        "nope",
    )
    .await;
    assert!(resp.text().await.unwrap().contains("AADSTS50126"));
    // Declining consent redirects with access_denied.
    let (_, challenge) = pkce();
    let location = sign_in(
        &env,
        "common",
        "http://localhost/",
        &challenge,
        &admin.username,
        &admin.password,
        false,
    )
    .await;
    let q = query(&location);
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].starts_with("AADSTS65004"));
    assert_eq!(q["state"], "st-123");
    // An expired code (10 minutes) and a public client presenting a secret.
    let (verifier, challenge) = pkce();
    let location = sign_in(
        &env,
        "common",
        "http://localhost/",
        &challenge,
        &admin.username,
        &admin.password,
        true,
    )
    .await;
    let code = query(&location)["code"].clone();
    let (s, b) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", info.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost/"),
            ("code_verifier", verifier.as_str()),
            ("client_secret", info.client_secret.as_str()),
        ],
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 700025);
    env.emu.advance_clock(Duration::from_secs(11 * 60));
    let (s, b) = redeem(&env, &code, "http://localhost/", &verifier).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 70008);
}

#[tokio::test]
async fn form_post_and_fragment_modes_and_refresh_inactivity() {
    let env = small().await;
    let info = env.emu.info().clone();
    let run = |mode: &'static str| {
        let http = env.http.clone();
        let info = info.clone();
        async move {
            let html = http
                .get(format!(
                    "{}/organizations/oauth2/v2.0/authorize",
                    info.authority
                ))
                .query(&[
                    ("client_id", info.client_id.as_str()),
                    ("response_type", "code"),
                    ("redirect_uri", "http://127.0.0.1:8400"),
                    ("scope", "offline_access Mail.Read"),
                    ("state", "m1"),
                    ("response_mode", mode),
                ])
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
                "organizations",
                &ctx,
                &info.admin.username,
                &info.admin.password,
            )
            .await;
            if resp.status() == StatusCode::OK
                && resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            {
                let page = resp.text().await.unwrap();
                if page.contains("id=\"consent\"") {
                    return post_consent(&http, &info.authority, "organizations", &ctx, true).await;
                }
                panic!("unexpected page {page}");
            }
            resp
        }
    };
    // form_post: an auto-submitting form to the redirect URI carrying code and state.
    let resp = run("form_post").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("action=\"http://127.0.0.1:8400/\""), "{html}");
    assert_eq!(field(&html, "state"), "m1");
    let code = field(&html, "code");
    // fragment: the parameters come after '#'.
    let resp = run("fragment").await;
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let fragment = location.split_once('#').expect("fragment").1.to_string();
    assert!(
        fragment.contains("code=") && fragment.contains("state=m1"),
        "{location}"
    );
    // Without PKCE the code is redeemed with the redirect URI alone; refresh tokens expire
    // after 90 days without use.
    let (s, b) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", info.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:8400"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.get("id_token").is_none(), "no openid scope, no id_token");
    let refresh = b["refresh_token"].as_str().unwrap().to_string();
    env.emu.advance_clock(Duration::from_secs(91 * 86_400));
    let (s, b) = redeem_refresh(&env, refresh, &[]).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 700082);
}

#[tokio::test]
async fn a_signed_in_session_allows_prompt_none() {
    let env = small().await;
    let info = env.emu.info().clone();
    let authorize = |prompt: Option<&'static str>, cookie: Option<String>| {
        let http = env.http.clone();
        let info = info.clone();
        async move {
            let mut params = vec![
                ("client_id", info.client_id.clone()),
                ("response_type", "code".to_string()),
                ("redirect_uri", "http://localhost/".to_string()),
                ("scope", "User.Read".to_string()),
                ("state", "silent".to_string()),
            ];
            if let Some(p) = prompt {
                params.push(("prompt", p.to_string()));
            }
            let mut req = http
                .get(format!("{}/common/oauth2/v2.0/authorize", info.authority))
                .query(&params);
            if let Some(c) = cookie {
                req = req.header("Cookie", c);
            }
            req.send().await.unwrap()
        }
    };
    let html = authorize(None, None).await.text().await.unwrap();
    let ctx = field(&html, "ctx");
    let resp = post_login(
        &env.http,
        &info.authority,
        "common",
        &ctx,
        &info.admin.username,
        &info.admin.password,
    )
    .await;
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("ESTSAUTH="));
    let html = resp.text().await.unwrap();
    let resp = post_consent(
        &env.http,
        &info.authority,
        "common",
        &field(&html, "ctx"),
        true,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    // Same session, consent given: prompt=none returns a code without any page.
    let resp = authorize(Some("none"), Some(cookie.clone())).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query(resp.headers()["location"].to_str().unwrap());
    assert!(q.contains_key("code"));
    assert_eq!(q["state"], "silent");
    // prompt=login asks for the password again.
    let resp = authorize(Some("login"), Some(cookie)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("id=\"i0118\""));
}
