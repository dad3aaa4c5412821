//! Reading mail: folders (hidden, well-known, childFolders), messages, $select, $value byte
//! for byte, attachments, immutable ids.

use crate::common::*;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn folders_top_level_hidden_and_children() {
    let env = small().await;
    let user = env.mailbox_user();
    let (s, _, top) = env
        .get(&format!("/users/{}/mailFolders?$top=50", user.id))
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = top["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    for expected in [
        "Inbox",
        "Sent Items",
        "Drafts",
        "Deleted Items",
        "Archive",
        "Junk Email",
        "Outbox",
        "Conversation History",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.contains(&"Clutter"));
    let (_, _, hidden) = env
        .get(&format!(
            "/users/{}/mailFolders?includeHiddenFolders=true&$top=50",
            user.id
        ))
        .await;
    let hidden_names: Vec<&str> = hidden["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["isHidden"] == true)
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    assert!(hidden_names.contains(&"Clutter"), "{hidden_names:?}");
    assert!(!hidden_names.contains(&"Deletions"));
    // Default page of 10 with an absolute nextLink.
    let (_, _, page) = env
        .get(&format!(
            "/users/{}/mailFolders?includeHiddenFolders=true",
            user.id
        ))
        .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    assert!(page["@odata.nextLink"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1"));
    // Well-known names resolve; childFolders shows nested folders and hidden ones on request.
    let (s, _, inbox) = env
        .get(&format!(
            "/users/{}/mailFolders/Inbox",
            user.user_principal_name
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(inbox["displayName"], "Inbox");
    let (_, _, kids) = env
        .get(&format!(
            "/users/{}/mailFolders/inbox/childFolders",
            user.id
        ))
        .await;
    let kids = kids["value"].as_array().unwrap().clone();
    assert_eq!(
        kids.len() as u64,
        inbox["childFolderCount"].as_u64().unwrap()
    );
    assert!(kids
        .iter()
        .any(|f| f["@odata.type"] == "#microsoft.graph.mailSearchFolder"
            && f["filterQuery"].is_string()));
    let (_, _, history) = env
        .get(&format!(
            "/users/{}/mailFolders/conversationhistory/childFolders",
            user.id
        ))
        .await;
    assert!(history["value"].as_array().unwrap().is_empty());
    let (_, _, history) = env
        .get(&format!(
            "/users/{}/mailFolders/conversationhistory/childFolders?includeHiddenFolders=true",
            user.id
        ))
        .await;
    assert_eq!(history["value"][0]["displayName"], "Team Chat");
    let (s, h, b) = env
        .get(&format!(
            "/users/{}/mailFolders/AQMkADnosuchfolder",
            user.id
        ))
        .await;
    assert_graph_error(s, &h, &b, 404, "ErrorItemNotFound");
}

#[tokio::test]
async fn every_message_value_is_byte_for_byte_the_tenant_mime() {
    let env = small().await;
    let user = env.mailbox_user();
    let mailbox = env.mailbox(&user.id);
    // Generated on each request, then kept in memory: the same bytes either way.
    for store in [false, true] {
        if store {
            env.emu.store_generated_mime();
        }
        let mut checked = 0;
        for folder in &mailbox.folders {
            for m in &folder.messages {
                let (s, bytes) = env
                    .bytes(&format!("/users/{}/messages/{}/$value", user.id, m.id))
                    .await;
                assert_eq!(s, StatusCode::OK);
                assert_eq!(bytes, m.mime.to_vec(), "message {} differs", m.id);
                assert_eq!(bytes.len() as u64, m.size);
                checked += 1;
            }
        }
        assert_eq!(checked, 15);
    }
    // Listing: default 10 per page, $skip in the nextLink, newest first.
    let (all, _) = all_pages(&env, &format!("/users/{}/messages", user.id), &[]).await;
    assert_eq!(all.len(), 15);
    let dates: Vec<&str> = all
        .iter()
        .map(|m| m["receivedDateTime"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]));
    let (_, _, first) = env.get(&format!("/users/{}/messages", user.id)).await;
    assert!(first["@odata.nextLink"]
        .as_str()
        .unwrap()
        .contains("$skip=10"));
}

#[tokio::test]
async fn message_get_select_headers_and_attachments() {
    let env = start(m365_emulator::Config {
        users: 2,
        messages_per_user: 60,
        seed: 5,
        ..Default::default()
    })
    .await;
    let user = env.emu.tenant().users[1].clone();
    let (_, _, list) = env
        .get(&format!(
            "/users/{}/messages?$top=60&$select=subject,hasAttachments,from",
            user.id
        ))
        .await;
    let items = list["value"].as_array().unwrap();
    assert!(items.iter().all(|m| m.as_object().unwrap().keys().all(|k| [
        "@odata.etag",
        "id",
        "subject",
        "hasAttachments",
        "from"
    ]
    .contains(&k.as_str()))));
    let with = items
        .iter()
        .find(|m| m["hasAttachments"] == true)
        .expect("a message with attachments");
    let id = with["id"].as_str().unwrap();
    let (s, _, full) = env.get(&format!("/users/{}/messages/{id}", user.id)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(full["body"]["content"].as_str().unwrap().len() > 10);
    assert!(full.get("internetMessageHeaders").is_none());
    let (_, _, headers) = env
        .get(&format!(
            "/users/{}/messages/{id}?$select=internetMessageHeaders",
            user.id
        ))
        .await;
    let names: Vec<&str> = headers["internetMessageHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Message-ID") && names.contains(&"MIME-Version"),
        "{names:?}"
    );
    // Prefer text body.
    let (_, h, text) = env
        .get_with(
            &format!("{}/users/{}/messages/{id}", env.graph(), user.id),
            &env.token,
            &[("Prefer", "outlook.body-content-type=\"text\"")],
        )
        .await;
    assert_eq!(text["body"]["contentType"], "text");
    assert!(h["preference-applied"]
        .to_str()
        .unwrap()
        .contains("outlook.body-content-type"));
    let (s, _, atts) = env
        .get(&format!("/users/{}/messages/{id}/attachments", user.id))
        .await;
    assert_eq!(s, StatusCode::OK);
    let file = atts["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["isInline"] == false)
        .unwrap()
        .clone();
    assert_eq!(file["@odata.type"], "#microsoft.graph.fileAttachment");
    let content = base64::engine::general_purpose::STANDARD
        .decode(file["contentBytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(content.len() as u64, file["size"].as_u64().unwrap());
    let (s, raw) = env
        .bytes(&format!(
            "/users/{}/messages/{id}/attachments/{}/$value",
            user.id,
            file["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(raw, content);
    // Inline images do not count as attachments for hasAttachments (Outlook's behaviour).
    let mut inline_found = false;
    for m in items.iter().filter(|m| m["hasAttachments"] == false) {
        let (_, _, atts) = env
            .get(&format!(
                "/users/{}/messages/{}/attachments?$select=id,isInline",
                user.id,
                m["id"].as_str().unwrap()
            ))
            .await;
        if atts["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["isInline"] == true)
        {
            inline_found = true;
            break;
        }
    }
    assert!(
        inline_found,
        "no message with only inline images among {} messages",
        items.len()
    );
}

#[tokio::test]
async fn immutable_ids_survive_moves_and_both_formats_resolve() {
    let env = small().await;
    let user = env.mailbox_user();
    let prefer = [("Prefer", "IdType=\"ImmutableId\"")];
    let (_, h, list) = env
        .get_with(
            &format!(
                "{}/users/{}/mailFolders/inbox/messages?$select=id",
                env.graph(),
                user.id
            ),
            &env.token,
            &prefer,
        )
        .await;
    assert!(h["preference-applied"]
        .to_str()
        .unwrap()
        .contains("IdType=\"ImmutableId\""));
    let immutable = list["value"][0]["id"].as_str().unwrap().to_string();
    let (_, _, rest_list) = env
        .get(&format!(
            "/users/{}/mailFolders/inbox/messages?$select=id",
            user.id
        ))
        .await;
    let rest = rest_list["value"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(immutable, rest);
    assert_eq!(
        env.get(&format!("/users/{}/messages/{immutable}", user.id))
            .await
            .0,
        StatusCode::OK
    );
    let moved = env.emu.move_message(&user.id, &rest, "archive").unwrap();
    assert_eq!(moved.immutable_id, immutable);
    assert_ne!(moved.id, rest);
    assert_eq!(
        env.get(&format!("/users/{}/messages/{rest}", user.id))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, _, m): (_, _, Value) = env
        .get_with(
            &format!("{}/users/{}/messages/{immutable}", env.graph(), user.id),
            &env.token,
            &prefer,
        )
        .await;
    assert_eq!(m["id"], immutable.as_str());
    // translateExchangeIds converts both ways; unknown ids are left out.
    let body = serde_json::json!({"inputIds": [moved.id, "AAMkADunknown"], "sourceIdType": "restId", "targetIdType": "restImmutableEntryId"});
    let (s, _, t) = env
        .send(
            reqwest::Method::POST,
            &format!("/users/{}/translateExchangeIds", user.id),
            body,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["value"].as_array().unwrap().len(), 1);
    assert_eq!(t["value"][0]["targetId"], immutable.as_str());
    let body = serde_json::json!({"inputIds": [immutable], "targetIdType": "restId"});
    let (_, _, t) = env
        .send(
            reqwest::Method::POST,
            &format!("/users/{}/translateExchangeIds", user.id),
            body,
        )
        .await;
    assert_eq!(t["value"][0]["targetId"], moved.id.as_str());
}

#[tokio::test]
async fn message_lists_filter_and_order() {
    let env = start(m365_emulator::Config {
        users: 2,
        messages_per_user: 40,
        seed: 8,
        ..Default::default()
    })
    .await;
    let user = env.emu.tenant().users[0].clone();
    let (all, _) = all_pages(
        &env,
        &format!(
            "/users/{}/messages?$select=isRead,receivedDateTime",
            user.id
        ),
        &[],
    )
    .await;
    let (unread, _) = all_pages(
        &env,
        &format!(
            "/users/{}/messages?$filter=isRead eq false&$select=isRead&$top=3",
            user.id
        ),
        &[],
    )
    .await;
    assert_eq!(
        unread.len(),
        all.iter().filter(|m| m["isRead"] == false).count()
    );
    assert!(unread.iter().all(|m| m["isRead"] == false));
    let (oldest_first, _) = all_pages(
        &env,
        &format!(
            "/users/{}/messages?$orderby=receivedDateTime asc&$select=receivedDateTime",
            user.id
        ),
        &[],
    )
    .await;
    let dates: Vec<&str> = oldest_first
        .iter()
        .map(|m| m["receivedDateTime"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]));
    let (recent, _) = all_pages(
        &env,
        &format!(
            "/users/{}/messages?$filter=receivedDateTime ge 2025-06-01T00:00:00Z",
            user.id
        ),
        &[],
    )
    .await;
    assert_eq!(
        recent.len(),
        all.iter()
            .filter(|m| m["receivedDateTime"].as_str().unwrap() >= "2025-06-01T00:00:00Z")
            .count()
    );
    let (s, h, b) = env
        .get(&format!(
            "/users/{}/messages?$filter=contains(subject,'x')",
            user.id
        ))
        .await;
    assert_graph_error(s, &h, &b, 400, "BadRequest");
}
