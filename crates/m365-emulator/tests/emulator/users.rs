//! Directory: users list, $select, $filter, $top paging, users/delta, mailboxSettings,
//! organization.

use crate::common::*;
use m365_emulator::{Config, UserKind};
use reqwest::StatusCode;

#[tokio::test]
async fn users_list_pages_selects_and_filters() {
    let env = start(Config {
        users: 25,
        messages_per_user: 0,
        seed: 3,
        ..Default::default()
    })
    .await;
    let (s, _, first) = env.get("/users?$top=10").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["value"].as_array().unwrap().len(), 10);
    assert!(first["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#users"));
    let next = first["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with("http://127.0.0.1:") && next.contains("$skiptoken="));
    let (all, _) = all_pages(&env, "/users?$top=10", &[]).await;
    assert_eq!(all.len(), 25);
    // Default properties only, unless selected.
    assert!(all[0].get("accountEnabled").is_none() && all[0].get("businessPhones").is_some());
    let (_, _, sel) = env
        .get("/users?$select=id,displayName,assignedLicenses,accountEnabled")
        .await;
    let u = &sel["value"][0];
    assert_eq!(u.as_object().unwrap().len(), 4, "{u}");
    assert!(sel["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("#users(id,displayName,assignedLicenses,accountEnabled)"));
    // $top bounds, unknown property, advanced filter without ConsistencyLevel.
    let (s, h, b) = env.get("/users?$top=1000").await;
    assert_graph_error(s, &h, &b, 400, "Request_UnsupportedQuery");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("between 1 and 999"));
    let (s, h, b) = env.get("/users?$select=nosuchthing").await;
    assert_graph_error(s, &h, &b, 400, "RequestBroker--ParseUri");
    let (s, h, b) = env.get("/users?$filter=assignedLicenses/$count ne 0").await;
    assert_graph_error(s, &h, &b, 400, "Request_UnsupportedQuery");
    let (s, _, b) = env
        .get_with(
            &format!(
                "{}/users?$filter=assignedLicenses/$count ne 0&$count=true",
                env.graph()
            ),
            &env.token,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let licensed = env.emu.tenant().users.iter().filter(|u| u.licensed).count();
    assert_eq!(b["@odata.count"], licensed);
    let (s, h, b) = env.get("/users?$select=mailboxSettings").await;
    assert_graph_error(s, &h, &b, 501, "NotImplemented");
}

#[tokio::test]
async fn mailbox_settings_tell_mailbox_kinds_apart() {
    let env = small().await;
    for (kind, purpose) in [
        (UserKind::Licensed, "user"),
        (UserKind::Shared, "shared"),
        (UserKind::Room, "room"),
        (UserKind::Disabled, "user"),
    ] {
        let u = env.user(kind);
        let (s, _, b) = env
            .get(&format!(
                "/users/{}/mailboxSettings?$select=userPurpose",
                u.id
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{kind:?}: {b}");
        assert_eq!(b["userPurpose"], purpose);
        assert!(b["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!("users('{}')/mailboxSettings(userPurpose)", u.id)));
    }
    for kind in [UserKind::Unlicensed, UserKind::NoMailbox] {
        let u = env.user(kind);
        let (s, h, b) = env
            .get(&format!("/users/{}/mailboxSettings", u.user_principal_name))
            .await;
        assert_graph_error(s, &h, &b, 404, "MailboxNotEnabledForRESTAPI");
        let (s, h, b) = env.get(&format!("/users/{}/mailFolders/inbox", u.id)).await;
        assert_graph_error(s, &h, &b, 404, "MailboxNotEnabledForRESTAPI");
    }
    let (s, h, b) = env.get("/users/nobody@contoso.onmicrosoft.com").await;
    assert_graph_error(s, &h, &b, 404, "Request_ResourceNotFound");
    let (s, _, b) = env.get("/organization").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["value"][0]["id"], env.emu.info().tenant_id);
    let (s, h, b) = env.get("/nosuchsegment").await;
    assert_graph_error(s, &h, &b, 400, "BadRequest");
    // /me needs a delegated token.
    let (s, h, b) = env.get("/me/messages").await;
    assert_graph_error(s, &h, &b, 400, "BadRequest");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("delegated"));
}

#[tokio::test]
async fn users_delta_reports_new_changed_and_removed_users() {
    let env = small().await;
    let (initial, delta) = all_pages(
        &env,
        "/users/delta?$select=displayName,accountEnabled",
        &[("Prefer", "odata.maxpagesize=3")],
    )
    .await;
    assert_eq!(initial.len(), 8);
    let delta = delta.expect("deltaLink");
    let (_, empty) = all_pages(&env, &delta, &[]).await;
    let empty = empty.unwrap();
    let added = env
        .emu
        .add_user(&m365_emulator::NewUser {
            display_name: "Nadia Ruiz".into(),
            ..Default::default()
        })
        .unwrap();
    let gone = env.user(UserKind::Room);
    env.emu.remove_user(&gone.id).unwrap();
    let purged = env.user(UserKind::Shared);
    env.emu.purge_user(&purged.id).unwrap();
    let unlicensed = env.mailbox_user();
    env.emu.unlicense_user(&unlicensed.id).unwrap();
    let (changes, next) = all_pages(&env, &empty, &[]).await;
    assert!(next.is_some());
    assert!(changes
        .iter()
        .any(|c| c["id"] == added.id && c["displayName"] == "Nadia Ruiz"));
    // Soft deletes say "changed" (restorable), purges "deleted".
    assert!(changes
        .iter()
        .any(|c| c["id"] == gone.id && c["@removed"]["reason"] == "changed"));
    assert!(changes
        .iter()
        .any(|c| c["id"] == purged.id && c["@removed"]["reason"] == "deleted"));
    assert!(changes.iter().any(|c| c["id"] == unlicensed.id));
    assert_eq!(changes.len(), 4);
    // latest: no items, only a deltaLink.
    let (s, _, latest) = env.get("/users/delta?$deltatoken=latest").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        latest["value"].as_array().unwrap().is_empty() && latest["@odata.deltaLink"].is_string()
    );
    // Directory delta tokens expire after 7 days: 410 with a Location to restart.
    env.emu
        .advance_clock(std::time::Duration::from_secs(8 * 86_400));
    env.emu.reset_counters();
    let resp = env
        .http
        .get(next.unwrap())
        .bearer_auth(
            secret_token(
                &env.http,
                &env.emu.info().authority,
                &env.emu.info().tenant_id,
                &env.emu.info().client_id,
                &env.emu.info().client_secret,
            )
            .await,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/v1.0/users/delta"));
}
