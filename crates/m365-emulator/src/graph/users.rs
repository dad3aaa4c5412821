//! Directory endpoints: `/organization`, `/users` (list, `$select`, `$filter`, `$top`),
//! `/users/delta`, `/users/{id}` and `/users/{id}/mailboxSettings`.

use super::delta::{change_page, ChangePage};
use super::{collection, decode_token, encode_token, json, project, select, top, Ctx};
use crate::error::GraphError;
use crate::identity::roles;
use crate::state::AppState;
use crate::tenant::{generate, Change, User, SKU_E3};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Properties returned without `$select`.
const DEFAULT_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
/// Properties returned only when `$select` asks for them.
const MORE_PROPERTIES: [&str; 9] = [
    "accountEnabled",
    "assignedLicenses",
    "assignedPlans",
    "userType",
    "onPremisesSyncEnabled",
    "mailNickname",
    "createdDateTime",
    "usageLocation",
    "mailboxSettings",
];

/// Delta tokens for the directory are valid for seven days.
const DIRECTORY_TOKEN_LIFETIME: Duration = Duration::days(7);

/// `$select` for users, against the default properties and the ones only `$select` returns.
fn select_user(q: &HashMap<String, String>) -> Result<Option<Vec<String>>, GraphError> {
    select(
        q,
        &[&DEFAULT_PROPERTIES[..], &MORE_PROPERTIES[..]].concat(),
        "user",
    )
}

pub fn user_json(u: &User) -> Value {
    let plans: Vec<Value> = if u.licenses.iter().any(|l| l == SKU_E3) {
        vec![
            json!({"assignedDateTime": "2023-01-09T10:00:00Z", "capabilityStatus": "Enabled", "service": "exchange", "servicePlanId": generate::exchange_plan()}),
        ]
    } else {
        Vec::new()
    };
    json!({
        "businessPhones": u.business_phones,
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": u.job_title,
        "mail": u.mail(),
        "mobilePhone": u.mobile_phone,
        "officeLocation": u.office_location,
        "preferredLanguage": u.preferred_language,
        "surname": u.surname,
        "userPrincipalName": u.user_principal_name,
        "id": u.id,
        "accountEnabled": u.account_enabled,
        "assignedLicenses": u.licenses.iter().map(|s| json!({"disabledPlans": [], "skuId": s})).collect::<Vec<_>>(),
        "assignedPlans": plans,
        "userType": "Member",
        "onPremisesSyncEnabled": null,
        "mailNickname": u.user_principal_name.split('@').next().unwrap_or_default(),
        "createdDateTime": "2023-01-09T10:00:00Z",
        "usageLocation": "US",
    })
}

fn shape(u: &User, selected: Option<&[String]>) -> Value {
    let full = user_json(u);
    match selected {
        Some(sel) => project(full, Some(sel)),
        None => project(full, Some(&DEFAULT_PROPERTIES.map(String::from))),
    }
}

fn context_for(ctx: &Ctx, entity: &str, selected: Option<&[String]>) -> String {
    match selected {
        Some(sel) => ctx.context(&format!("{entity}({})", sel.join(","))),
        None => ctx.context(entity),
    }
}

pub async fn organization(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, GraphError> {
    ctx.require_directory(&[roles::READ_ORG, roles::READ_USERS].concat())?;
    let t = shared.tenant();
    let org = json!({
        "id": t.id,
        "displayName": t.display_name,
        "tenantType": "AAD",
        "countryLetterCode": "US",
        "createdDateTime": "2023-01-09T09:00:00Z",
        "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": true, "isInitial": true, "name": t.domain, "type": "Managed"}],
        "assignedPlans": [],
        "businessPhones": [],
        "city": null, "country": null, "postalCode": null, "state": null, "street": null,
        "onPremisesSyncEnabled": null,
        "technicalNotificationMails": [format!("admin@{}", t.domain)],
    });
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context("organization"), vec![org], None, None),
    ))
}

#[derive(Debug, Serialize, Deserialize)]
struct ListState {
    offset: usize,
    top: usize,
    select: Option<Vec<String>>,
    filter: Option<String>,
}

pub async fn list_users(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::READ_USERS)?;
    let state = match q.get("$skiptoken") {
        Some(t) => decode_token::<ListState>(t)
            .ok_or_else(|| GraphError::bad_request("Invalid $skiptoken."))?,
        None => {
            let selected = select_user(&q)?;
            if selected
                .as_ref()
                .is_some_and(|s| s.iter().any(|f| f.eq_ignore_ascii_case("mailboxSettings")))
            {
                return Err(GraphError::not_implemented(
                    "This operation target is not yet supported.",
                ));
            }
            let filter = q.get("$filter").cloned();
            if let Some(f) = &filter {
                let advanced =
                    f.contains("$count") || f.contains(" ne ") || f.contains("endswith(");
                let eventual = headers
                    .get("consistencylevel")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
                if advanced && !(eventual && q.get("$count").is_some_and(|c| c == "true")) {
                    return Err(GraphError::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'assignedLicenses' of resource 'User'."));
                }
            }
            ListState {
                offset: 0,
                top: top(&q, 100, 999)?,
                select: selected,
                filter,
            }
        }
    };
    let t = shared.tenant();
    let mut matching = Vec::new();
    for u in &t.users {
        if let Some(f) = &state.filter {
            if !filter_matches(f, u)? {
                continue;
            }
        }
        matching.push(u);
    }
    let page: Vec<Value> = matching
        .iter()
        .skip(state.offset)
        .take(state.top)
        .map(|u| shape(u, state.select.as_deref()))
        .collect();
    let next = (state.offset + state.top < matching.len()).then(|| {
        let token = encode_token(&ListState {
            offset: state.offset + state.top,
            top: state.top,
            select: state.select.clone(),
            filter: state.filter.clone(),
        });
        format!("{}/users?$skiptoken={token}", ctx.base)
    });
    let mut body = collection(
        context_for(&ctx, "users", state.select.as_deref()),
        page,
        next,
        None,
    );
    if q.get("$count").is_some_and(|c| c == "true") {
        body["@odata.count"] = matching.len().into();
    }
    Ok(json(StatusCode::OK, &body))
}

/// A small `$filter` evaluator: `or` of `and` of comparisons on the user properties backup
/// tools filter by (accountEnabled, userType, mail, userPrincipalName, displayName, id,
/// assignedLicenses/$count, startswith()).
fn filter_matches(filter: &str, u: &User) -> Result<bool, GraphError> {
    let invalid = || {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Invalid filter clause: {filter}"),
        )
    };
    let full = user_json(u);
    let atom = |clause: &str| -> Result<bool, GraphError> {
        let clause = clause.trim();
        let clause = clause
            .strip_prefix('(')
            .and_then(|c| c.strip_suffix(')'))
            .unwrap_or(clause)
            .trim();
        if let Some(args) = clause
            .strip_prefix("startswith(")
            .and_then(|s| s.strip_suffix(')'))
        {
            let (prop, value) = args.split_once(',').ok_or_else(invalid)?;
            let value = value.trim().trim_matches('\'').to_lowercase();
            return Ok(full[prop.trim()]
                .as_str()
                .is_some_and(|s| s.to_lowercase().starts_with(&value)));
        }
        let parts: Vec<&str> = clause.splitn(3, ' ').collect();
        let [prop, op, value] = parts.as_slice() else {
            return Err(invalid());
        };
        let actual = if *prop == "assignedLicenses/$count" {
            Value::from(u.licenses.len())
        } else {
            full.get(*prop).cloned().ok_or_else(invalid)?
        };
        let expected: Value = if value.starts_with('\'') {
            Value::from(value.trim_matches('\''))
        } else {
            serde_json::from_str(value).map_err(|_| invalid())?
        };
        let equal = match (&actual, &expected) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        match *op {
            "eq" => Ok(equal),
            "ne" => Ok(!equal),
            _ => Err(invalid()),
        }
    };
    for disjunct in filter.split(" or ") {
        let mut all = true;
        for conjunct in disjunct.split(" and ") {
            all &= atom(conjunct)?;
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

pub async fn get_user(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    path: Option<Path<HashMap<String, String>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    let segment = path
        .and_then(|Path(p)| p.get("user").cloned())
        .unwrap_or_else(|| "me".into());
    let who = ctx.user_segment(&segment)?.to_string();
    if ctx.principal.user_id.as_deref() != Some(who.as_str()) {
        ctx.require_directory(roles::READ_USERS)?;
    }
    let selected = select_user(&q)?;
    let t = shared.tenant();
    let u = t
        .user(&who)
        .ok_or_else(|| GraphError::user_not_found(&who))?;
    let mut body = shape(u, selected.as_deref());
    if selected
        .as_ref()
        .is_some_and(|s| s.iter().any(|f| f.eq_ignore_ascii_case("mailboxSettings")))
    {
        let mb = u.mailbox.as_ref().ok_or_else(GraphError::no_mailbox)?;
        body["mailboxSettings"] = settings_json(mb);
    }
    body["@odata.context"] = context_for(&ctx, "users", selected.as_deref())
        .replace("users", "users/$entity")
        .into();
    if let Some(sel) = &selected {
        body["@odata.context"] = ctx
            .context(&format!("users({})/$entity", sel.join(",")))
            .into();
    }
    Ok(json(StatusCode::OK, &body))
}

fn settings_json(mb: &crate::tenant::Mailbox) -> Value {
    json!({
        "archiveFolder": mb.folder("archive").map(|f| f.id.clone()),
        "timeZone": "UTC",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOrInformationToPrincipal",
        "dateFormat": "M/d/yyyy",
        "timeFormat": "h:mm tt",
        "userPurpose": mb.purpose,
        "automaticRepliesSetting": {
            "status": "disabled", "externalAudience": "all", "internalReplyMessage": "", "externalReplyMessage": "",
            "scheduledStartDateTime": {"dateTime": "2024-01-01T00:00:00.0000000", "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": "2024-01-02T00:00:00.0000000", "timeZone": "UTC"}
        },
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"}
        }
    })
}

pub async fn mailbox_settings(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    path: Option<Path<HashMap<String, String>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    ctx.require(roles::READ_MAILBOX_SETTINGS)?;
    let segment = path
        .and_then(|Path(p)| p.get("user").cloned())
        .unwrap_or_else(|| "me".into());
    let t = shared.tenant();
    let (user, mb) = super::mailbox(&t, &ctx, &segment)?;
    let known = [
        "archiveFolder",
        "timeZone",
        "delegateMeetingMessageDeliveryOptions",
        "dateFormat",
        "timeFormat",
        "userPurpose",
        "automaticRepliesSetting",
        "language",
        "workingHours",
    ];
    let selected = select(&q, &known, "mailboxSettings")?;
    let mut body = project(settings_json(mb), selected.as_deref());
    body["@odata.context"] = match &selected {
        Some(sel) => ctx.context(&format!(
            "users('{}')/mailboxSettings({})",
            user.id,
            sel.join(",")
        )),
        None => ctx.context(&format!("users('{}')/mailboxSettings", user.id)),
    }
    .into();
    Ok(json(StatusCode::OK, &body))
}

#[derive(Debug, Serialize, Deserialize)]
struct UsersDeltaState {
    /// Changes after this sequence number...
    after: u64,
    /// ...up to this one (fixed when the round starts).
    upto: u64,
    /// Last sequence number returned in this round.
    cursor: u64,
    select: Option<Vec<String>>,
    /// When the round's deltaLink was issued (unix seconds).
    issued: i64,
}

pub async fn users_delta(
    State(shared): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphError> {
    ctx.require_directory(roles::READ_USERS)?;
    if q.contains_key("$top") || q.contains_key("$orderby") || q.contains_key("$expand") {
        return Err(GraphError::bad_request(
            "$top, $orderby and $expand are not supported with delta queries on users.",
        ));
    }
    let now = shared.clock.unix();
    let t = shared.tenant();
    let expired = || {
        let mut e = GraphError::new(
            StatusCode::GONE,
            "syncStateNotFound",
            "The delta token is expired or invalid; a full resynchronization is required.",
        );
        e.inner = true;
        e
    };
    let delta_param = q.get("$deltatoken").or_else(|| q.get("$deltaToken"));
    let state = if let Some(token) = q.get("$skiptoken") {
        decode_token::<UsersDeltaState>(token).ok_or_else(expired)?
    } else if let Some(token) = delta_param {
        if token == "latest" {
            let link = encode_token(&UsersDeltaState {
                after: t.seq,
                upto: 0,
                cursor: 0,
                select: select_user(&q)?,
                issued: now,
            });
            let body = collection(
                ctx.context("users"),
                Vec::new(),
                None,
                Some(format!("{}/users/delta?$deltatoken={link}", ctx.base)),
            );
            return Ok(json(StatusCode::OK, &body));
        }
        let previous = decode_token::<UsersDeltaState>(token).ok_or_else(expired)?;
        if now - previous.issued > DIRECTORY_TOKEN_LIFETIME.num_seconds() {
            let mut response = expired().into_response();
            if let Ok(v) = format!("{}/users/delta", ctx.base).parse() {
                response.headers_mut().insert("location", v);
            }
            return Ok(response);
        }
        UsersDeltaState {
            after: previous.after,
            upto: t.seq,
            cursor: previous.after,
            select: previous.select,
            issued: now,
        }
    } else {
        UsersDeltaState {
            after: 0,
            upto: t.seq,
            cursor: 0,
            select: select_user(&q)?,
            issued: now,
        }
    };
    let page_size = ctx.max_page_size.unwrap_or(100).clamp(1, 999);
    let ChangePage {
        value, last, more, ..
    } = change_page(
        t.user_log.range(state.cursor, state.upto),
        state.cursor,
        page_size,
        None,
        |change| match change {
            Change::Upsert(id) => t.user(id).map(|u| shape(u, state.select.as_deref())),
            Change::Removed(id) if state.after > 0 => {
                let reason = if t.purged.contains(id) {
                    "deleted"
                } else {
                    "changed"
                };
                Some(json!({"id": id, "@removed": {"reason": reason}}))
            }
            Change::Removed(_) => None,
        },
    );
    let (next, delta) = if more {
        let token = encode_token(&UsersDeltaState {
            cursor: last,
            select: state.select.clone(),
            ..state
        });
        (
            Some(format!("{}/users/delta?$skiptoken={token}", ctx.base)),
            None,
        )
    } else {
        let token = encode_token(&UsersDeltaState {
            after: state.upto,
            upto: 0,
            cursor: 0,
            select: state.select.clone(),
            issued: now,
        });
        (
            None,
            Some(format!("{}/users/delta?$deltatoken={token}", ctx.base)),
        )
    };
    Ok(json(
        StatusCode::OK,
        &collection(ctx.context("users"), value, next, delta),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_cover_licence_and_account_state() {
        let t = generate::tenant(2, 8, 0, crate::Attachments::Realistic);
        let count = |f: &str| {
            t.users
                .iter()
                .filter(|u| filter_matches(f, u).unwrap())
                .count()
        };
        assert_eq!(
            count("assignedLicenses/$count ne 0"),
            t.users.iter().filter(|u| !u.licenses.is_empty()).count()
        );
        assert_eq!(
            count("accountEnabled eq false"),
            t.users.iter().filter(|u| !u.account_enabled).count()
        );
        assert_eq!(count("startswith(userPrincipalName,'admin')"), 1);
        assert_eq!(
            count("accountEnabled eq true or accountEnabled eq false"),
            8
        );
        assert!(filter_matches("nonsense", &t.users[0]).is_err());
    }
}
