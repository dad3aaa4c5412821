//! Restore writes: folders, MIME and JSON messages, attachments and upload sessions, move,
//! delete.

use crate::common::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn folders_can_be_created_nested_and_not_duplicated() {
    let env = small().await;
    let user = env.mailbox_user();
    let (s, _, top) = env
        .send(
            Method::POST,
            &format!("/users/{}/mailFolders", user.id),
            json!({"displayName": "Restored 2026-01-01"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{top}");
    let id = top["id"].as_str().unwrap();
    let (s, _, child) = env
        .send(
            Method::POST,
            &format!("/users/{}/mailFolders/{id}/childFolders", user.id),
            json!({"displayName": "Inbox", "isHidden": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(child["parentFolderId"], id);
    let (s, h, b) = env
        .send(
            Method::POST,
            &format!("/users/{}/mailFolders/{id}/childFolders", user.id),
            json!({"displayName": "inbox"}),
        )
        .await;
    assert_graph_error(s, &h, &b, 409, "ErrorFolderExists");
    let (s, _, _) = env
        .send(
            Method::DELETE,
            &format!("/users/{}/mailFolders/{id}", user.id),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        env.get(&format!(
            "/users/{}/mailFolders/{}",
            user.id,
            child["id"].as_str().unwrap()
        ))
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn mime_messages_are_drafts_stored_byte_for_byte() {
    let env = small().await;
    let user = env.mailbox_user();
    let mime = std::fs::read(format!("{FIXTURES}/message-value-mime-example.eml")).unwrap();
    let (s, _, m) = env
        .post_text(
            &format!("/users/{}/mailFolders/inbox/messages", user.id),
            STANDARD.encode(&mime),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["isDraft"], true);
    assert_eq!(m["subject"], "Press conference");
    assert_eq!(m["sentDateTime"], "2019-04-22T19:48:16Z");
    assert_eq!(
        m["from"]["emailAddress"]["address"],
        "AdeleV@contoso.OnMicrosoft.com"
    );
    let (s, bytes) = env
        .bytes(&format!(
            "/users/{}/messages/{}/$value",
            user.id,
            m["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bytes, mime);
    // Without a folder, the message lands in Drafts.
    let (_, _, d) = env
        .post_text(
            &format!("/users/{}/messages", user.id),
            STANDARD.encode(&mime),
        )
        .await;
    let (_, _, drafts) = env
        .get(&format!("/users/{}/mailFolders/drafts", user.id))
        .await;
    assert_eq!(d["parentFolderId"], drafts["id"]);

    let (s, h, b) = env
        .post_text(
            &format!("/users/{}/mailFolders/inbox/messages", user.id),
            "this is not base64!!".into(),
        )
        .await;
    assert_graph_error(s, &h, &b, 400, "ErrorMimeContentInvalidBase64String");
    assert_eq!(
        b["error"]["message"],
        "Invalid base64 string for MIME content."
    );
    let big = STANDARD.encode(vec![b'a'; 3_200_000]);
    let (s, _, _) = env
        .post_text(
            &format!("/users/{}/mailFolders/inbox/messages", user.id),
            big,
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn json_messages_honour_flags_and_dates_extended_properties() {
    let env = small().await;
    let user = env.mailbox_user();
    let message = json!({
        "subject": "Restored — Übersicht",
        "body": {"contentType": "html", "content": "<p>Bonjour à tous</p>"},
        "from": {"emailAddress": {"name": "Zoë Müller", "address": "zoe@example.com"}},
        "toRecipients": [{"emailAddress": {"name": "Alex", "address": "alex@example.com"}}],
        "isDraft": true,
        "singleValueExtendedProperties": [
            {"id": "Integer 0x0E07", "value": "4"},
            {"id": "SystemTime 0x0039", "value": "2023-11-16T05:42:46Z"},
            {"id": "SystemTime 0x0E06", "value": "2023-11-16T05:42:47Z"}
        ]
    });
    let (s, _, m) = env
        .send(
            Method::POST,
            &format!("/users/{}/mailFolders/inbox/messages", user.id),
            message,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["isDraft"], false);
    assert_eq!(m["sentDateTime"], "2023-11-16T05:42:46Z");
    assert_eq!(m["receivedDateTime"], "2023-11-16T05:42:47Z");
    assert_eq!(m["bodyPreview"], "Bonjour à tous");
    let (_, _, draft) = env
        .send(
            Method::POST,
            &format!("/users/{}/mailFolders/inbox/messages", user.id),
            json!({"subject": "no flags"}),
        )
        .await;
    assert_eq!(draft["isDraft"], true);
    // Later writes to PidTagMessageFlags are ignored.
    let id = draft["id"].as_str().unwrap();
    let (_, _, patched) = env.send(Method::PATCH, &format!("/users/{}/messages/{id}", user.id), json!({"singleValueExtendedProperties": [{"id": "Integer 0x0E07", "value": "1"}], "isRead": false})).await;
    assert_eq!(patched["isDraft"], true);
    assert_eq!(patched["isRead"], false);
    // The synthesised MIME carries the subject.
    let (_, mime) = env
        .bytes(&format!(
            "/users/{}/messages/{}/$value",
            user.id,
            m["id"].as_str().unwrap()
        ))
        .await;
    let parsed = mail_parser::MessageParser::default()
        .parse(&mime[..])
        .unwrap();
    assert_eq!(parsed.subject(), Some("Restored — Übersicht"));
}

#[tokio::test]
async fn attachments_small_and_through_an_upload_session() {
    let env = small().await;
    let user = env.mailbox_user();
    let (_, _, m) = env.send(Method::POST, &format!("/users/{}/mailFolders/inbox/messages", user.id), json!({"subject": "with files", "singleValueExtendedProperties": [{"id": "Integer 0x0E07", "value": "1"}]})).await;
    let mid = m["id"].as_str().unwrap().to_string();
    let small = b"small attachment bytes".to_vec();
    let (s, _, a) = env.send(Method::POST, &format!("/users/{}/messages/{mid}/attachments", user.id), json!({"@odata.type": "#microsoft.graph.fileAttachment", "name": "note.txt", "contentType": "text/plain", "contentBytes": STANDARD.encode(&small)})).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["size"], small.len());

    let large: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let (s, _, session) = env.send(Method::POST, &format!("/users/{}/messages/{mid}/attachments/createUploadSession", user.id), json!({"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": large.len()}})).await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_eq!(session["nextExpectedRanges"][0], "0-");
    let upload = session["uploadUrl"].as_str().unwrap().to_string();
    assert!(upload.contains("AttachmentSessions(") && upload.contains("authtoken="));
    let put = |range: String, bytes: Vec<u8>, url: String| {
        let http = env.http.clone();
        async move {
            http.put(url)
                .header("Content-Range", range)
                .header("Content-Type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .unwrap()
        }
    };
    let chunk = 4 * 1024 * 1024;
    // Out of order: 416.
    let resp = put(
        format!("bytes {chunk}-{}/{}", large.len() - 1, large.len()),
        large[chunk..].to_vec(),
        upload.clone(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Without the pre-authentication token: 401.
    let bare = upload.split('?').next().unwrap().to_string();
    assert_eq!(
        put(
            format!("bytes 0-{}/{}", chunk - 1, large.len()),
            large[..chunk].to_vec(),
            bare
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = put(
        format!("bytes 0-{}/{}", chunk - 1, large.len()),
        large[..chunk].to_vec(),
        upload.clone(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["nextExpectedRanges"][0], chunk.to_string());
    assert!(body["ExpirationDateTime"].is_string());
    let resp = put(
        format!("bytes {chunk}-{}/{}", large.len() - 1, large.len()),
        large[chunk..].to_vec(),
        upload,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/Attachments('"));
    let (_, _, list) = env
        .get(&format!(
            "/users/{}/messages/{mid}/attachments?$select=id,name,size",
            user.id
        ))
        .await;
    let big = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "big.bin")
        .unwrap()
        .clone();
    assert_eq!(big["size"], large.len());
    let (_, bytes) = env
        .bytes(&format!(
            "/users/{}/messages/{mid}/attachments/{}/$value",
            user.id,
            big["id"].as_str().unwrap()
        ))
        .await;
    assert!(bytes == large);
    let (_, _, full) = env.get(&format!("/users/{}/messages/{mid}", user.id)).await;
    assert_eq!(full["hasAttachments"], true);
}

#[tokio::test]
async fn messages_move_and_delete() {
    let env = small().await;
    let user = env.mailbox_user();
    let (_, _, list) = env
        .get(&format!(
            "/users/{}/mailFolders/inbox/messages?$select=id",
            user.id
        ))
        .await;
    let id = list["value"][0]["id"].as_str().unwrap().to_string();
    let (s, _, moved) = env
        .send(
            Method::POST,
            &format!("/users/{}/messages/{id}/move", user.id),
            json!({"destinationId": "archive"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, _, archive) = env
        .get(&format!("/users/{}/mailFolders/archive", user.id))
        .await;
    assert_eq!(moved["parentFolderId"], archive["id"]);
    let new_id = moved["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let (s, _, _) = env
        .send(
            Method::DELETE,
            &format!("/users/{}/messages/{new_id}", user.id),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, h, b) = env
        .get(&format!("/users/{}/messages/{new_id}", user.id))
        .await;
    assert_graph_error(s, &h, &b, 404, "ErrorItemNotFound");
}
