//! Delta queries: per-folder message delta with paging, @removed, $select remembered,
//! sync-state generations and 410 SyncStateNotFound; mailFolders/delta.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn message_delta_rounds_report_adds_updates_and_removals() {
    let env = small().await;
    let user = env.mailbox_user();
    let inbox_count = env
        .mailbox(&user.id)
        .folders
        .iter()
        .find(|f| f.well_known.as_deref() == Some("inbox"))
        .unwrap()
        .messages
        .len();
    let page = [("Prefer", "odata.maxpagesize=2")];
    let first = format!(
        "/users/{}/mailFolders/inbox/messages/delta?$select=subject,isRead",
        user.id
    );
    let (s, h, b) = env
        .get_with(&format!("{}{first}", env.graph()), &env.token, &page)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["value"].as_array().unwrap().len() <= 2);
    assert!(h["preference-applied"]
        .to_str()
        .unwrap()
        .contains("odata.maxpagesize=2"));
    assert_eq!(
        b["@odata.context"],
        format!("{}/$metadata#Collection(message)", env.graph())
    );
    let (initial, delta) = all_pages(&env, &first, &page).await;
    assert_eq!(initial.len(), inbox_count);
    for item in &initial {
        assert_eq!(item["@odata.type"], "#microsoft.graph.message");
        assert!(item["@odata.etag"].as_str().unwrap().starts_with("W/\""));
        let keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.iter()
                .all(|k| ["@odata.type", "@odata.etag", "id", "subject", "isRead"].contains(k)),
            "{keys:?}"
        );
    }
    let delta = delta.expect("deltaLink on the last page");
    assert!(delta.contains("$deltatoken="));

    // Nothing changed: an empty round.
    let (none, delta) = all_pages(&env, &delta, &[]).await;
    assert!(none.is_empty());
    let delta = delta.unwrap();

    let known = ids(&initial);
    let mime = std::fs::read(format!("{FIXTURES}/message-value-mime-example.eml")).unwrap();
    let added = env.emu.add_message(&user.id, "inbox", &mime).unwrap();
    env.emu
        .update_message(
            &user.id,
            &known[0],
            &m365_emulator::MessageUpdate {
                is_read: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    env.emu
        .move_message(&user.id, &known[1], "archive")
        .unwrap();
    env.emu.delete_message(&user.id, &known[2]).unwrap();
    let (changes, next) = all_pages(&env, &delta, &page).await;
    assert!(next.is_some());
    let removed: Vec<&Value> = changes
        .iter()
        .filter(|c| c.get("@removed").is_some())
        .collect();
    assert_eq!(removed.len(), 2, "{changes:?}");
    assert!(removed.iter().all(|r| r["@removed"]["reason"] == "deleted"));
    let removed_ids: Vec<&str> = removed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(removed_ids.contains(&known[1].as_str()) && removed_ids.contains(&known[2].as_str()));
    let updated = changes
        .iter()
        .find(|c| c["id"] == known[0].as_str())
        .expect("updated message");
    assert_eq!(updated["isRead"], false);
    assert!(
        updated.get("body").is_none(),
        "$select is remembered in the token"
    );
    let new = changes
        .iter()
        .find(|c| c["id"] == added.id.as_str())
        .expect("added message");
    assert_eq!(new["subject"], "Press conference");
    assert_eq!(changes.len(), 4);
}

#[tokio::test]
async fn expired_sync_state_gives_410_and_old_generations_age_out() {
    let env = small().await;
    let user = env.mailbox_user();
    let first = format!(
        "/users/{}/mailFolders/inbox/messages/delta?$select=id",
        user.id
    );
    let (_, delta) = all_pages(&env, &first, &[]).await;
    let old = delta.unwrap();
    // Three more rounds from the start push the first token's generation out of the window.
    let mut link = old.clone();
    for _ in 0..3 {
        let (_, d) = all_pages(&env, &first, &[]).await;
        link = d.unwrap();
    }
    let (s, h, b) = env.get(&old).await;
    assert_graph_error(s, &h, &b, 410, "SyncStateNotFound");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("The sync state generation is not found; generation="));
    assert_eq!(env.get(&link).await.0, StatusCode::OK);
    // The control API expires every outstanding token of a mailbox.
    let (_, fresh) = all_pages(&env, &first, &[]).await;
    env.emu
        .expire_delta_tokens(Some(&user.user_principal_name))
        .unwrap();
    let (s, h, b) = env.get(&fresh.unwrap()).await;
    assert_graph_error(s, &h, &b, 410, "SyncStateNotFound");
    // A scheduled fault does the same for the next delta call with a token.
    let (_, fresh) = all_pages(&env, &first, &[]).await;
    env.emu.schedule_fault(
        m365_emulator::ScheduledFault {
            kind: m365_emulator::FaultKind::DeltaTokenExpired,
            path_contains: None,
        },
        1,
    );
    let (s, _, _) = env.get(&fresh.clone().unwrap()).await;
    assert_eq!(s, StatusCode::GONE);
    assert_eq!(env.get(&fresh.unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn change_type_and_received_filter() {
    let env = small().await;
    let user = env.mailbox_user();
    let (initial, delta) = all_pages(
        &env,
        &format!(
            "/users/{}/mailFolders/inbox/messages/delta?changeType=created",
            user.id
        ),
        &[],
    )
    .await;
    assert!(!initial.is_empty());
    let mime = std::fs::read(format!("{FIXTURES}/message-value-mime-example.eml")).unwrap();
    let added = env.emu.add_message(&user.id, "inbox", &mime).unwrap();
    env.emu
        .update_message(
            &user.id,
            initial[0]["id"].as_str().unwrap(),
            &m365_emulator::MessageUpdate {
                is_read: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let (changes, _) = all_pages(&env, &delta.unwrap(), &[]).await;
    assert_eq!(ids(&changes), vec![added.id]);
    let (s, h, b) = env
        .get(&format!(
            "/users/{}/mailFolders/inbox/messages/delta?$filter=subject eq 'x'",
            user.id
        ))
        .await;
    assert_graph_error(s, &h, &b, 400, "BadRequest");
    let (recent, _) = all_pages(&env, &format!("/users/{}/mailFolders/inbox/messages/delta?$filter=receivedDateTime ge 2099-01-01T00:00:00Z", user.id), &[]).await;
    assert!(recent.is_empty());
}

#[tokio::test]
async fn folder_delta_lists_the_tree_then_changes() {
    let env = small().await;
    let user = env.mailbox_user();
    let (folders, delta) = all_pages(
        &env,
        &format!("/users/{}/mailFolders/delta", user.id),
        &[("Prefer", "odata.maxpagesize=5")],
    )
    .await;
    let snapshot_folders = env.mailbox(&user.id).folders.clone();
    // Everything except the root and the recoverable-items folder, hidden ones included.
    assert_eq!(folders.len(), snapshot_folders.len() - 2);
    assert!(folders.iter().all(|f| f["parentFolderId"].is_string()));
    let id = env
        .emu
        .create_folder(&user.id, "Inbox", "Nouveau dossier", false)
        .unwrap();
    let doomed = snapshot_folders
        .iter()
        .find(|f| f.path == "Archive/2023")
        .unwrap()
        .id
        .clone();
    env.emu.delete_folder(&user.id, &doomed).unwrap();
    let (changes, _) = all_pages(&env, &delta.unwrap(), &[]).await;
    assert!(changes
        .iter()
        .any(|c| c["id"] == id.as_str() && c["displayName"] == "Nouveau dossier"));
    assert!(changes
        .iter()
        .any(|c| c["id"] == doomed.as_str() && c["@removed"]["reason"] == "deleted"));
}
