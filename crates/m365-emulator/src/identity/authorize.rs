//! The interactive endpoints: authorize (sign-in page, consent page, code issue) and admin
//! consent (v1 `/adminconsent`, v2 `/v2.0/adminconsent`).
//!
//! Pages are plain HTML forms. Field names: sign-in posts `ctx`, `login`, `passwd` to
//! `/{tenant}/login`; consent posts `ctx` and `accept=yes|no` to `/{tenant}/consent`. Input ids
//! match Microsoft's page (`i0116`, `i0118`, `idSIButton9`) so WebDriver scripts carry over.

use super::error::AadError;
use super::{check_tenant, random_token, CodeGrant, SignIn, SignInKind};
use crate::state::{AppState, Shared};
use crate::tenant::ServicePrincipal;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use std::collections::HashMap;

const SESSION_COOKIE: &str = "ESTSAUTH";

/// Whether `requested` matches a registered redirect URI. For `http://localhost` and
/// `http://127.0.0.1` the port is ignored; an empty path equals `/`.
pub fn redirect_matches(registered: &[String], requested: &str) -> bool {
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    registered.iter().any(|r| {
        let Ok(reg) = url::Url::parse(r) else {
            return false;
        };
        let loopback = matches!(req.host_str(), Some("localhost") | Some("127.0.0.1"));
        if loopback && req.scheme() == "http" {
            reg.scheme() == "http"
                && reg.host_str() == req.host_str()
                && reg.path() == req.path()
                && reg.query() == req.query()
        } else {
            reg == req
        }
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, content: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:"Segoe UI",Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}}
.box{{background:#fff;max-width:440px;margin:80px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}}
.logo{{font-weight:600;color:#737373;margin-bottom:16px}}h1{{font-size:24px;font-weight:600;margin:0 0 12px}}
input[type=email],input[type=password]{{width:100%;padding:6px 0;margin:8px 0 16px;border:none;border-bottom:1px solid #666;font-size:15px}}
input[type=submit],button{{background:#0067b8;color:#fff;border:none;padding:8px 24px;font-size:15px;margin-right:8px}}
button.secondary{{background:#ccc;color:#000}}.error{{color:#e81123;margin:8px 0}}</style></head>
<body><div class="box"><div class="logo">Microsoft</div>{content}</div></body></html>"#
    )
}

fn error_page(e: &AadError) -> Response {
    let content = format!(
        "<h1>Sign in</h1><p>Sorry, but we’re having trouble signing you in.</p><p class=\"error\" id=\"error\">{}</p>",
        escape(&e.description())
    );
    (
        StatusCode::BAD_REQUEST,
        Html(page("Sign in to your account", &content)),
    )
        .into_response()
}

fn sign_in_page(
    tenant: &str,
    ctx: &str,
    app_name: &str,
    login_hint: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"passwordError\">{}</p>", escape(e)))
        .unwrap_or_default();
    let content = format!(
        r#"<h1>Sign in</h1><p>to continue to {app}</p>{error}
<form method="post" action="/{tenant}/login" id="signin">
<input type="hidden" name="ctx" value="{ctx}">
<input type="email" name="login" id="i0116" placeholder="Email, phone, or Skype" value="{hint}" autofocus required>
<input type="password" name="passwd" id="i0118" placeholder="Password" required>
<input type="submit" id="idSIButton9" value="Sign in"></form>"#,
        app = escape(app_name),
        tenant = escape(tenant),
        ctx = escape(ctx),
        hint = escape(login_hint),
    );
    Html(page("Sign in to your account", &content)).into_response()
}

fn consent_page(
    tenant: &str,
    ctx: &str,
    app_name: &str,
    permissions: &[String],
    admin: bool,
) -> Response {
    let items: String = permissions
        .iter()
        .map(|p| format!("<li>{}</li>", escape(p)))
        .collect();
    let heading = if admin {
        "Permissions requested<br>Accept for your organization"
    } else {
        "Permissions requested"
    };
    let content = format!(
        r#"<h1>{heading}</h1><p><b>{app}</b> needs permission to:</p><ul id="permissions">{items}</ul>
<form method="post" action="/{tenant}/consent" id="consent">
<input type="hidden" name="ctx" value="{ctx}">
<button type="submit" name="accept" value="yes" id="idBtn_Accept">Accept</button>
<button type="submit" name="accept" value="no" id="idBtn_Back" class="secondary">Cancel</button></form>"#,
        app = escape(app_name),
        tenant = escape(tenant),
        ctx = escape(ctx),
    );
    Html(page("Permissions requested", &content)).into_response()
}

/// Sends the result to the client's redirect URI in the requested response mode.
fn respond(redirect_uri: &str, mode: &str, params: &[(&str, String)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(&AadError::new(
            "invalid_request",
            50011,
            "The redirect URI is not a valid URL.",
        ));
    };
    match mode {
        "form_post" => {
            let inputs: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            let html = format!(
                "<html><head><title>Working...</title></head><body onload=\"document.forms[0].submit()\"><form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}<noscript><input type=\"submit\" value=\"Continue\"></noscript></form></body></html>",
                escape(url.as_str())
            );
            Html(html).into_response()
        }
        "fragment" => {
            let fragment: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            url.set_fragment(Some(&fragment));
            found(url.as_str())
        }
        _ => {
            url.query_pairs_mut().extend_pairs(params);
            found(url.as_str())
        }
    }
}

fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

fn session_user(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)?
        .1;
    shared.identity().sessions.get(value).cloned()
}

/// The checks authorize and admin consent start with, in Entra's order: a known tenant, a
/// `client_id` of a registered app, and a `redirect_uri` registered for it. Gives the client
/// id, the app's display name and the redirect URI, or the error page to show.
fn registered_client<'q>(
    shared: &Shared,
    tenant: &str,
    q: &'q HashMap<String, String>,
) -> Result<(&'q String, String, &'q String), AadError> {
    check_tenant(shared, tenant)?;
    let client_id = q
        .get("client_id")
        .ok_or_else(|| AadError::missing("client_id"))?;
    let (app_name, registered) = {
        let t = shared.tenant();
        match t.app(client_id) {
            Some(app) => (
                app.display_name.clone(),
                [
                    app.public_redirect_uris.clone(),
                    app.web_redirect_uris.clone(),
                ]
                .concat(),
            ),
            None => {
                return Err(AadError::new("unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{}'.", t.domain)));
            }
        }
    };
    let redirect_uri = q
        .get("redirect_uri")
        .ok_or_else(|| AadError::missing("redirect_uri"))?;
    if !redirect_matches(&registered, redirect_uri) {
        return Err(AadError::new(
            "invalid_request",
            50011,
            format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."),
        ));
    }
    Ok((client_id, app_name, redirect_uri))
}

pub async fn authorize(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (client_id, app_name, redirect_uri) = match registered_client(&shared, &tenant, &q) {
        Ok(found) => found,
        Err(e) => return error_page(&e),
    };
    let mode = q
        .get("response_mode")
        .cloned()
        .unwrap_or_else(|| "query".into());
    let state = q.get("state").cloned();
    let fail = |error: &str, e: AadError| {
        let mut params = vec![
            ("error", error.to_string()),
            ("error_description", e.description()),
        ];
        if let Some(s) = &state {
            params.push(("state", s.clone()));
        }
        respond(redirect_uri, &mode, &params)
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return fail(
            "unsupported_response_type",
            AadError::new(
                "unsupported_response_type",
                700054,
                "response_type 'code' is required by this emulator's authorize endpoint.",
            ),
        );
    }
    let Some(scope) = q.get("scope") else {
        return fail("invalid_request", AadError::missing("scope"));
    };
    let challenge = match (
        q.get("code_challenge"),
        q.get("code_challenge_method").map(String::as_str),
    ) {
        (Some(c), None | Some("plain")) => Some((c.clone(), "plain".to_string())),
        (Some(c), Some("S256")) => Some((c.clone(), "S256".to_string())),
        (Some(_), Some(other)) => {
            return fail(
                "invalid_request",
                AadError::new(
                    "invalid_request",
                    50148,
                    format!(
                        "The code_challenge_method '{other}' is not supported; use S256 or plain."
                    ),
                ),
            );
        }
        (None, _) => None,
    };
    let prompt = q.get("prompt").map(String::as_str).unwrap_or("");
    let session = session_user(&shared, &headers);
    if prompt == "none" && session.is_none() {
        return fail(
            "login_required",
            AadError::new(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            ),
        );
    }
    let sign_in = SignIn {
        tenant: tenant.clone(),
        kind: SignInKind::Authorize,
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state,
        scopes: scope.split_whitespace().map(str::to_string).collect(),
        response_mode: mode.clone(),
        challenge,
        nonce: q.get("nonce").cloned(),
        user_id: None,
    };
    let ctx = random_token(32);
    shared.identity().sign_ins.insert(ctx.clone(), sign_in);
    match session {
        Some(user_id) if prompt != "login" => {
            after_sign_in(&shared, &ctx, &user_id, prompt == "consent")
        }
        _ => sign_in_page(
            &tenant,
            &ctx,
            &app_name,
            q.get("login_hint").map(String::as_str).unwrap_or(""),
            None,
        ),
    }
}

/// Admin consent v1: `/{tenant}/adminconsent?client_id&redirect_uri&state`.
pub async fn admin_consent_v1(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    admin_consent(&shared, &tenant, q, SignInKind::AdminConsentV1)
}

/// Admin consent v2: `/{tenant}/v2.0/adminconsent?client_id&scope&redirect_uri&state`.
pub async fn admin_consent_v2(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    admin_consent(&shared, &tenant, q, SignInKind::AdminConsentV2)
}

fn admin_consent(
    shared: &Shared,
    tenant: &str,
    q: HashMap<String, String>,
    kind: SignInKind,
) -> Response {
    let (client_id, app_name, redirect_uri) = match registered_client(shared, tenant, &q) {
        Ok(found) => found,
        Err(e) => return error_page(&e),
    };
    let scopes = match kind {
        SignInKind::AdminConsentV2 => q
            .get("scope")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if kind == SignInKind::AdminConsentV2
        && !scopes.iter().any(|s: &String| s.ends_with("/.default"))
    {
        let mut params = vec![
            ("error", "invalid_request".to_string()),
            (
                "error_description",
                AadError::new(
                    "invalid_request",
                    70011,
                    "Application permissions can only be requested with the /.default scope.",
                )
                .description(),
            ),
        ];
        if let Some(s) = q.get("state") {
            params.push(("state", s.clone()));
        }
        return respond(redirect_uri, "query", &params);
    }
    let sign_in = SignIn {
        tenant: tenant.to_string(),
        kind,
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: q.get("state").cloned(),
        scopes,
        response_mode: "query".into(),
        challenge: None,
        nonce: None,
        user_id: None,
    };
    let ctx = random_token(32);
    shared.identity().sign_ins.insert(ctx.clone(), sign_in);
    sign_in_page(tenant, &ctx, &app_name, "", None)
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    ctx: String,
    login: String,
    passwd: String,
}

pub async fn login(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(sign_in) = shared.identity().sign_ins.get(&form.ctx).cloned() else {
        return error_page(&AadError::new(
            "invalid_request",
            90014,
            "The sign-in session has expired or is unknown; start again.",
        ));
    };
    let app_name = shared
        .tenant()
        .app(&sign_in.client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    let user = shared.tenant().user(&form.login).map(|u| {
        (
            u.id.clone(),
            u.password.clone(),
            u.account_enabled,
            u.is_global_admin,
        )
    });
    let user_id = match user {
        Some((id, password, enabled, admin)) if password == form.passwd => {
            if !enabled {
                return sign_in_page(
                    &tenant,
                    &form.ctx,
                    &app_name,
                    &form.login,
                    Some("AADSTS50057: The user account is disabled."),
                );
            }
            if sign_in.kind != SignInKind::Authorize && !admin {
                return error_page(&AadError::new(
                    "invalid_request",
                    90094,
                    "The grant requires admin permission.",
                ));
            }
            id
        }
        _ => {
            return sign_in_page(&tenant, &form.ctx, &app_name, &form.login, Some("AADSTS50126: Error validating credentials due to invalid username or password."));
        }
    };
    let cookie = random_token(40);
    shared
        .identity()
        .sessions
        .insert(cookie.clone(), user_id.clone());
    let mut response = after_sign_in(&shared, &form.ctx, &user_id, false);
    if let Ok(v) = format!("{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax").parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// After sign-in: show the consent page unless the user already consented to these scopes.
fn after_sign_in(shared: &Shared, ctx: &str, user_id: &str, force_consent: bool) -> Response {
    let Some(sign_in) = ({
        let mut identity = shared.identity();
        identity.sign_ins.get_mut(ctx).map(|s| {
            s.user_id = Some(user_id.to_string());
            s.clone()
        })
    }) else {
        return error_page(&AadError::new(
            "invalid_request",
            90014,
            "The sign-in session is unknown.",
        ));
    };
    let tenant = shared.tenant();
    let Some(app) = tenant.app(&sign_in.client_id) else {
        return error_page(&AadError::new(
            "unauthorized_client",
            700016,
            "Application not found.",
        ));
    };
    let (permissions, admin) = match sign_in.kind {
        SignInKind::Authorize => (super::graph_scopes(&sign_in.scopes), false),
        _ => (app.required_roles.clone(), true),
    };
    let consented = tenant
        .service_principal(&sign_in.client_id)
        .is_some_and(|sp| permissions.iter().all(|p| sp.consented_scopes.contains(p)));
    if sign_in.kind == SignInKind::Authorize && consented && !force_consent {
        drop(tenant);
        return complete(shared, ctx, true);
    }
    consent_page(&sign_in.tenant, ctx, &app.display_name, &permissions, admin)
}

#[derive(Debug, serde::Deserialize)]
pub struct ConsentForm {
    ctx: String,
    accept: String,
}

pub async fn consent(State(shared): State<AppState>, Form(form): Form<ConsentForm>) -> Response {
    complete(&shared, &form.ctx, form.accept == "yes")
}

/// Finishes a sign-in: records consent and redirects with a code, or with an error.
fn complete(shared: &Shared, ctx: &str, accepted: bool) -> Response {
    let Some(sign_in) = shared.identity().sign_ins.remove(ctx) else {
        return error_page(&AadError::new(
            "invalid_request",
            90014,
            "The sign-in session is unknown.",
        ));
    };
    let Some(user_id) = sign_in.user_id.clone() else {
        return error_page(&AadError::new(
            "invalid_request",
            50058,
            "No user is signed in.",
        ));
    };
    let state = sign_in.state.clone();
    let with_state = |mut params: Vec<(&'static str, String)>| {
        if let Some(s) = &state {
            params.push(("state", s.clone()));
        }
        params
    };
    let tenant_id = shared.tenant().id.clone();
    match (sign_in.kind, accepted) {
        (SignInKind::Authorize, false) => {
            let e = AadError::new(
                "access_denied",
                65004,
                "User declined to consent to access the app.",
            );
            respond(
                &sign_in.redirect_uri,
                &sign_in.response_mode,
                &with_state(vec![
                    ("error", "access_denied".into()),
                    ("error_description", e.description()),
                ]),
            )
        }
        (SignInKind::AdminConsentV1, false) => respond(
            &sign_in.redirect_uri,
            "query",
            &with_state(vec![
                ("error", "permission_denied".into()),
                ("error_description", "The admin canceled the request".into()),
            ]),
        ),
        (SignInKind::AdminConsentV2, false) => {
            let e = AadError::new(
                "consent_required",
                65004,
                "The resource owner or authorization server denied the request.",
            );
            respond(
                &sign_in.redirect_uri,
                "query",
                &with_state(vec![
                    ("admin_consent", "True".into()),
                    ("error", "consent_required".into()),
                    ("error_description", e.description()),
                ]),
            )
        }
        (SignInKind::Authorize, true) => {
            let permissions = super::graph_scopes(&sign_in.scopes);
            grant(shared, &sign_in.client_id, &permissions, &[]);
            let code = format!("1.A{}", random_token(100));
            shared.identity().codes.insert(
                code.clone(),
                CodeGrant {
                    client_id: sign_in.client_id.clone(),
                    redirect_uri: sign_in.redirect_uri.clone(),
                    scopes: sign_in.scopes.clone(),
                    challenge: sign_in.challenge.clone(),
                    user_id,
                    issued: shared.clock.now(),
                    redeemed: false,
                    nonce: sign_in.nonce.clone(),
                },
            );
            respond(
                &sign_in.redirect_uri,
                &sign_in.response_mode,
                &with_state(vec![
                    ("code", code),
                    ("session_state", uuid::Uuid::new_v4().to_string()),
                ]),
            )
        }
        (kind, true) => {
            let roles = shared
                .tenant()
                .app(&sign_in.client_id)
                .map(|a| a.required_roles.clone())
                .unwrap_or_default();
            grant(shared, &sign_in.client_id, &[], &roles);
            let mut params = match kind {
                SignInKind::AdminConsentV1 => {
                    vec![("tenant", tenant_id), ("admin_consent", "True".to_string())]
                }
                _ => vec![
                    ("admin_consent", "True".to_string()),
                    ("tenant", tenant_id),
                    ("scope", sign_in.scopes.join(" ")),
                ],
            };
            if let Some(s) = &state {
                params.insert(
                    if kind == SignInKind::AdminConsentV1 {
                        1
                    } else {
                        2
                    },
                    ("state", s.clone()),
                );
            }
            respond(&sign_in.redirect_uri, "query", &params)
        }
    }
}

/// Records delegated consent and application-role grants on the app's service principal,
/// creating the service principal on first consent as Entra does.
fn grant(shared: &Shared, client_id: &str, scopes: &[String], roles: &[String]) {
    let mut tenant = shared.tenant_mut();
    let Some(app) = tenant.app(client_id).cloned() else {
        return;
    };
    if tenant.service_principal(client_id).is_none() {
        tenant
            .service_principals
            .push(ServicePrincipal::for_app(&app));
    }
    if let Some(sp) = tenant
        .service_principals
        .iter_mut()
        .find(|s| s.app_id.eq_ignore_ascii_case(client_id))
    {
        for s in scopes {
            if !sp.consented_scopes.contains(s) {
                sp.consented_scopes.push(s.clone());
            }
        }
        for r in roles {
            if !sp.roles.contains(r) {
                sp.roles.push(r.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_ignore_the_port_and_trailing_slash() {
        let registered = vec![
            "http://localhost".to_string(),
            "http://127.0.0.1/callback".to_string(),
        ];
        assert!(redirect_matches(&registered, "http://localhost:7071"));
        assert!(redirect_matches(&registered, "http://localhost:7071/"));
        assert!(redirect_matches(
            &registered,
            "http://127.0.0.1:50000/callback"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://127.0.0.1:50000/other"
        ));
        assert!(!redirect_matches(&registered, "https://localhost/"));
        assert!(!redirect_matches(&registered, "http://evil.example/"));
    }
}
