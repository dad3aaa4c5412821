//! Provisioning: `/applications` (with certificate keyCredentials), `/servicePrincipals` and
//! app role assignments — the calls that let a signed-in admin create an app that then uses
//! client credentials with its certificate.

use super::{collection, json, Ctx};
use crate::error::GraphError;
use crate::identity::certificate::{der_from_text, Certificate};
use crate::identity::{random_token, roles};
use crate::state::AppState;
use crate::tenant::{Application, ServicePrincipal, Tenant};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

fn body(bytes: &Bytes) -> Result<Value, GraphError> {
    serde_json::from_slice(bytes).map_err(|e| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Invalid JSON: {e}"),
        )
    })
}

fn application_json(ctx: &Ctx, app: &Application) -> Value {
    let keys: Vec<Value> = app
        .certificates
        .iter()
        .filter_map(|der| Certificate::from_der(der))
        .enumerate()
        .map(|(i, c)| {
            json!({
                "customKeyIdentifier": c.custom_key_identifier(),
                "displayName": format!("CN=certificate {i}"),
                "endDateTime": "2099-01-01T00:00:00Z",
                "key": null,
                "keyId": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &c.der).to_string(),
                "startDateTime": "2024-01-01T00:00:00Z",
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            })
        })
        .collect();
    json!({
        "@odata.context": ctx.context("applications/$entity"),
        "id": app.id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "signInAudience": "AzureADMyOrg",
        "keyCredentials": keys,
        "passwordCredentials": app.secrets.iter().map(|s| json!({"displayName": null, "hint": &s[..3.min(s.len())], "keyId": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, s.as_bytes()).to_string(), "endDateTime": "2099-01-01T00:00:00Z", "secretText": null})).collect::<Vec<_>>(),
        "publicClient": {"redirectUris": app.public_redirect_uris},
        "web": {"redirectUris": app.web_redirect_uris, "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
        "requiredResourceAccess": [{
            "resourceAppId": roles::GRAPH_APP_ID,
            "resourceAccess": app.required_roles.iter().filter_map(|r| roles::role_id(r)).map(|id| json!({"id": id, "type": "Role"})).collect::<Vec<_>>(),
        }],
    })
}

fn sp_json(ctx: &Ctx, sp: &ServicePrincipal) -> Value {
    let app_roles: Vec<Value> = if sp.app_id == roles::GRAPH_APP_ID {
        roles::APP_ROLES
            .iter()
            .map(|(value, id)| json!({"allowedMemberTypes": ["Application"], "description": format!("Allows the app to {value} without a signed-in user."), "displayName": value, "id": id, "isEnabled": true, "origin": "Application", "value": value}))
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "@odata.context": ctx.context("servicePrincipals/$entity"),
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "accountEnabled": true,
        "servicePrincipalType": "Application",
        "appRoles": app_roles,
    })
}

pub async fn create_application(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    bytes: Bytes,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::WRITE_APPS)?;
    let v = body(&bytes)?;
    let display_name = v["displayName"].as_str().ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Property 'displayName' is required.",
        )
    })?;
    let mut certificates = Vec::new();
    for k in v["keyCredentials"].as_array().into_iter().flatten() {
        let der = k["key"]
            .as_str()
            .and_then(der_from_text)
            .filter(|der| Certificate::from_der(der).is_some())
            .ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid value specified for property 'key' of resource 'KeyCredential'.",
                )
            })?;
        certificates.push(der);
    }
    let mut required_roles = Vec::new();
    for r in v["requiredResourceAccess"].as_array().into_iter().flatten() {
        for a in r["resourceAccess"].as_array().into_iter().flatten() {
            if let Some(value) = a["id"].as_str().and_then(roles::role_value) {
                required_roles.push(value.to_string());
            }
        }
    }
    let strings = |x: &Value| {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let app = Application {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: uuid::Uuid::new_v4().to_string(),
        display_name: display_name.to_string(),
        secrets: Vec::new(),
        certificates,
        public_redirect_uris: strings(&v["publicClient"]["redirectUris"]),
        web_redirect_uris: strings(&v["web"]["redirectUris"]),
        required_roles,
        mailbox_scope: None,
    };
    let out = application_json(&ctx, &app);
    shared.tenant_mut().apps.push(app);
    Ok(json(StatusCode::CREATED, &out))
}

/// The object id or appId a `{id}` segment names (`(appId='…')` is the alternate-key form).
fn directory_key(id: &str) -> &str {
    id.trim_start_matches("(appId='").trim_end_matches("')")
}

fn resource_not_found(id: &str) -> GraphError {
    GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."))
}

fn find_app<'a>(t: &'a Tenant, id: &str) -> Result<&'a Application, GraphError> {
    let key = directory_key(id);
    t.apps
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(key) || a.app_id.eq_ignore_ascii_case(key))
        .ok_or_else(|| resource_not_found(id))
}

pub async fn get_application(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::READ_APPS)?;
    let t = shared.tenant();
    Ok(json(
        StatusCode::OK,
        &application_json(&ctx, find_app(&t, &id)?),
    ))
}

/// `$filter=appId eq '...'` or everything.
fn app_id_filter(q: &HashMap<String, String>) -> Option<String> {
    q.get("$filter")
        .and_then(|f| f.strip_prefix("appId eq "))
        .map(|v| v.trim_matches('\'').to_string())
}

fn app_id_matches(filter: Option<&str>, app_id: &str) -> bool {
    filter.is_none_or(|f| app_id.eq_ignore_ascii_case(f))
}

/// An entity as a collection lists it: without its own `@odata.context`.
fn list_item(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("@odata.context");
    }
    v
}

pub async fn list_applications(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::READ_APPS)?;
    let filter = app_id_filter(&q);
    let t = shared.tenant();
    let value = t
        .apps
        .iter()
        .filter(|a| app_id_matches(filter.as_deref(), &a.app_id))
        .map(|a| list_item(application_json(&ctx, a)));
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context("applications"), value.collect(), None, None),
    ))
}

pub async fn add_password(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::WRITE_APPS)?;
    let secret = format!("{}~{}", random_token(3), random_token(36));
    let mut t = shared.tenant_mut();
    let app_id = find_app(&t, &id)?.id.clone();
    if let Some(app) = t.apps.iter_mut().find(|a| a.id == app_id) {
        app.secrets.push(secret.clone());
    }
    Ok(json(
        StatusCode::OK,
        &json!({
            "@odata.context": ctx.context("microsoft.graph.passwordCredential"),
            "customKeyIdentifier": null, "displayName": null, "endDateTime": "2099-01-01T00:00:00Z",
            "hint": &secret[..3], "keyId": uuid::Uuid::new_v4().to_string(), "secretText": secret, "startDateTime": "2024-01-01T00:00:00Z",
        }),
    ))
}

pub async fn create_service_principal(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    bytes: Bytes,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::WRITE_APPS)?;
    let v = body(&bytes)?;
    let app_id = v["appId"].as_str().ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Property 'appId' is required.",
        )
    })?;
    let mut t = shared.tenant_mut();
    let app = find_app(&t, app_id)?.clone();
    if t.service_principal(&app.app_id).is_some() {
        return Err(GraphError::new(StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue", "The service principal cannot be created, updated, or restored because the service principal name is already in use."));
    }
    let sp = ServicePrincipal::for_app(&app);
    let out = sp_json(&ctx, &sp);
    t.service_principals.push(sp);
    Ok(json(StatusCode::CREATED, &out))
}

fn find_sp<'a>(t: &'a Tenant, id: &str) -> Result<&'a ServicePrincipal, GraphError> {
    let key = directory_key(id);
    t.service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(key) || s.app_id.eq_ignore_ascii_case(key))
        .ok_or_else(|| resource_not_found(id))
}

pub async fn get_service_principal(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    ctx.require_directory(&[roles::READ_APPS, roles::READ_USERS].concat())?;
    let t = shared.tenant();
    Ok(json(StatusCode::OK, &sp_json(&ctx, find_sp(&t, &id)?)))
}

pub async fn list_service_principals(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    ctx.require_directory(&[roles::READ_APPS, roles::READ_USERS].concat())?;
    let filter = app_id_filter(&q);
    let t = shared.tenant();
    let value = t
        .service_principals
        .iter()
        .filter(|s| app_id_matches(filter.as_deref(), &s.app_id))
        .map(|s| list_item(sp_json(&ctx, s)));
    Ok(json(
        StatusCode::OK,
        &collection(
            ctx.context("servicePrincipals"),
            value.collect(),
            None,
            None,
        ),
    ))
}

fn assignment_json(
    t: &Tenant,
    principal: &ServicePrincipal,
    assignment_id: &str,
    role_id: &str,
) -> Value {
    let graph = t.service_principal(roles::GRAPH_APP_ID);
    json!({
        "id": assignment_id,
        "appRoleId": role_id,
        "createdDateTime": "2024-01-01T00:00:00Z",
        "deletedDateTime": null,
        "principalDisplayName": principal.display_name,
        "principalId": principal.id,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": graph.map(|g| g.id.clone()),
    })
}

/// Grants an application role of Microsoft Graph to a client service principal.
fn assign(
    shared: &AppState,
    ctx: &Ctx,
    principal_id: &str,
    resource_id: &str,
    role_id: &str,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::WRITE_ROLE_ASSIGNMENTS)?;
    let role = roles::role_value(role_id).ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Permission being assigned was not found on application.",
        )
    })?;
    let mut t = shared.tenant_mut();
    let graph_id = find_sp(&t, roles::GRAPH_APP_ID)?.id.clone();
    if !resource_id.eq_ignore_ascii_case(&graph_id) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The resource must be the Microsoft Graph service principal.",
        ));
    }
    let principal_sp = find_sp(&t, principal_id)?.id.clone();
    let assignment_id = random_token(43);
    let sp = t
        .service_principals
        .iter_mut()
        .find(|s| s.id == principal_sp)
        .ok_or_else(GraphError::item_not_found)?;
    if sp.roles.iter().any(|r| r == role) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Permission being assigned already exists on the object.",
        ));
    }
    sp.roles.push(role.to_string());
    sp.assignments
        .push((assignment_id.clone(), role_id.to_string()));
    let sp = sp.clone();
    let mut out = assignment_json(&t, &sp, &assignment_id, role_id);
    out["@odata.context"] = ctx
        .context(&format!(
            "servicePrincipals('{resource_id}')/appRoleAssignedTo/$entity"
        ))
        .into();
    Ok(json(StatusCode::CREATED, &out))
}

/// `POST /servicePrincipals/{resource}/appRoleAssignedTo {principalId, resourceId, appRoleId}`
pub async fn assign_role_to(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, GraphError> {
    let v = body(&bytes)?;
    let principal = v["principalId"].as_str().unwrap_or_default();
    let resource = v["resourceId"].as_str().unwrap_or(&id);
    assign(
        &shared,
        &ctx,
        principal,
        resource,
        v["appRoleId"].as_str().unwrap_or_default(),
    )
}

/// `POST /servicePrincipals/{client}/appRoleAssignments {principalId, resourceId, appRoleId}`
pub async fn assign_role(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, GraphError> {
    let v = body(&bytes)?;
    let principal = v["principalId"].as_str().unwrap_or(&id);
    assign(
        &shared,
        &ctx,
        principal,
        v["resourceId"].as_str().unwrap_or_default(),
        v["appRoleId"].as_str().unwrap_or_default(),
    )
}

/// Reading role assignments takes any of the application, assignment or user read roles.
fn require_assignment_read(ctx: &Ctx) -> Result<(), GraphError> {
    ctx.require_directory(
        &[
            roles::READ_APPS,
            roles::WRITE_ROLE_ASSIGNMENTS,
            roles::READ_USERS,
        ]
        .concat(),
    )
}

/// One page holding all of a service principal's assignments (`relation` names the side).
fn assignment_list(ctx: &Ctx, sp_id: &str, relation: &str, value: Vec<Value>) -> Response {
    json(
        StatusCode::OK,
        &collection(
            ctx.context(&format!("servicePrincipals('{sp_id}')/{relation}")),
            value,
            None,
            None,
        ),
    )
}

pub async fn list_assignments(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    require_assignment_read(&ctx)?;
    let t = shared.tenant();
    let sp = find_sp(&t, &id)?;
    let value = sp
        .assignments
        .iter()
        .map(|(aid, rid)| assignment_json(&t, sp, aid, rid))
        .collect();
    Ok(assignment_list(&ctx, &sp.id, "appRoleAssignments", value))
}

pub async fn list_assigned_to(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    require_assignment_read(&ctx)?;
    let t = shared.tenant();
    let resource = find_sp(&t, &id)?;
    let value = t
        .service_principals
        .iter()
        .flat_map(|sp| sp.assignments.iter().map(move |(aid, rid)| (sp, aid, rid)))
        .map(|(sp, aid, rid)| assignment_json(&t, sp, aid, rid))
        .collect();
    Ok(assignment_list(
        &ctx,
        &resource.id,
        "appRoleAssignedTo",
        value,
    ))
}
