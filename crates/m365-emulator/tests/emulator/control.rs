//! The control API over HTTP, tenant files and .eml imports.

use crate::common::*;
use m365_emulator::{Config, EmlImport};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn control_api_mutates_the_tenant_and_reports_counters() {
    let env = small().await;
    let control = env.emu.info().control.clone();
    let http = &env.http;
    let (s, _, info) = env.control(Method::GET, "/info", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["client_id"], env.emu.info().client_id);
    let (_, _, tenant) = env.control(Method::GET, "/tenant", None).await;
    assert_eq!(tenant["users"].as_array().unwrap().len(), 8);

    let (s, _, user) = env.control(Method::POST, "/users", Some(json!({"displayName": "Ines Duarte", "userPrincipalName": "ines", "kind": "shared"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    let upn = user["user_principal_name"].as_str().unwrap().to_string();
    assert_eq!(upn, format!("ines@{}", env.emu.info().tenant_domain));
    let (_, _, settings) = env.get(&format!("/users/{upn}/mailboxSettings")).await;
    assert_eq!(settings["userPurpose"], "shared");

    let (s, _, folder) = env
        .control(
            Method::POST,
            &format!("/users/{upn}/folders"),
            Some(json!({"parent": "Inbox", "displayName": "Factures"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mime = std::fs::read(format!("{FIXTURES}/message-value-mime-example.eml")).unwrap();
    let (s, _, ids) = split(
        http.post(format!(
            "{control}/users/{upn}/messages?folder=Inbox/Factures"
        ))
        .body(mime.clone())
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ids}");
    let id = ids["id"].as_str().unwrap();
    let (_, _, listed) = env
        .get(&format!(
            "/users/{upn}/mailFolders/{}/messages",
            folder["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed["value"][0]["id"], id);
    assert_eq!(listed["value"][0]["isRead"], false);
    let (_, raw) = env
        .bytes(&format!("/users/{upn}/messages/{id}/$value"))
        .await;
    assert_eq!(raw, mime);
    let resp = http
        .get(format!("{control}/users/{upn}/messages/{id}/mime"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), mime);
    assert_eq!(
        env.control_status(
            Method::PATCH,
            &format!("/users/{upn}/messages/{id}"),
            Some(json!({"isRead": true, "flagStatus": "flagged"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (_, _, m) = env.get(&format!("/users/{upn}/messages/{id}")).await;
    assert_eq!(m["isRead"], true);
    assert_eq!(m["flag"]["flagStatus"], "flagged");
    let (s, _, moved) = env
        .control(
            Method::POST,
            &format!("/users/{upn}/messages/{id}/move"),
            Some(json!({"folder": "Archive"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_id = moved["id"].as_str().unwrap();
    assert_eq!(
        env.control_status(
            Method::DELETE,
            &format!("/users/{upn}/messages/{new_id}"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.control_status(
            Method::PATCH,
            &format!("/users/{upn}/folders/Inbox%2FFactures"),
            Some(json!({"displayName": "Rechnungen"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.control_status(
            Method::DELETE,
            &format!("/users/{upn}/folders/Inbox%2FRechnungen"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.control_status(Method::DELETE, &format!("/users/{upn}/folders/Inbox"), None)
            .await,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(
        env.control_status(Method::POST, &format!("/users/{upn}/unlicense"), None)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.control_status(Method::DELETE, &format!("/users/{upn}"), None)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.get(&format!("/users/{upn}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.control_status(Method::DELETE, &format!("/users/{upn}"), None)
            .await,
        StatusCode::NOT_FOUND
    );

    // Throttle, faults, clock and counters.
    assert_eq!(
        env.control_status(
            Method::POST,
            "/throttle",
            Some(json!({"mode": "scaled", "requests": 1, "per_ms": 60000}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let target = env.mailbox_user().id;
    assert_eq!(
        env.get(&format!("/users/{target}/mailFolders")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        env.get(&format!("/users/{target}/mailFolders")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (_, _, now) = env
        .control(Method::POST, "/clock/advance", Some(json!({"seconds": 61})))
        .await;
    assert!(now["now"].is_string());
    assert_eq!(
        env.get(&format!("/users/{target}/mailFolders")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        env.control_status(Method::POST, "/throttle", Some(json!({"mode": "off"})))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.control_status(
            Method::POST,
            "/faults/schedule",
            Some(json!({"kind": "gateway_timeout", "count": 2, "path_contains": "/mailFolders"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.get(&format!("/users/{target}/mailFolders")).await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        env.get(&format!("/users/{target}/mailFolders")).await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        env.get(&format!("/users/{target}/mailFolders")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        env.control_status(
            Method::POST,
            "/faults",
            Some(json!({"rate": 1.0, "kinds": ["gateway_timeout"]}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.get("/organization").await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        env.control_status(Method::POST, "/faults", Some(json!({"rate": 0.0})))
            .await,
        StatusCode::NO_CONTENT
    );
    let (_, _, counters) = env.control(Method::GET, "/counters", None).await;
    assert_eq!(counters["throttled"], 1);
    assert_eq!(counters["faults"], 3);
    assert!(counters["mailboxes"][&target]["requests"].as_u64().unwrap() >= 6);
    assert_eq!(
        env.control_status(Method::POST, "/counters/reset", None)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.emu.counters().requests, 0);

    // Delta expiry and app registration.
    let (_, delta) = all_pages(
        &env,
        &format!("/users/{target}/mailFolders/inbox/messages/delta"),
        &[],
    )
    .await;
    assert_eq!(
        env.control_status(Method::POST, "/delta/expire", Some(json!({"user": target})))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.get(&delta.unwrap()).await.0, StatusCode::GONE);
    let (s, _, app) = env
        .control(Method::POST, "/apps", Some(json!({"roles": ["Mail.Read"]})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = secret_token(
        http,
        &env.emu.info().authority,
        &env.emu.info().tenant_id,
        app["client_id"].as_str().unwrap(),
        app["client_secret"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        env.get_with(&format!("{}/users", env.graph()), &token, &[])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, _, _) = env
        .control(
            Method::POST,
            "/apps",
            Some(json!({"roles": ["Not.A.Role"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tenant_file_and_eml_imports_are_stored_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    let example = std::fs::read(format!("{FIXTURES}/message-value-mime-example.eml")).unwrap();
    // CRLF and LF variants must both come back unchanged.
    let lf: Vec<u8> = String::from_utf8(example.clone())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    std::fs::write(mails.join("a.eml"), &example).unwrap();
    std::fs::write(mails.join("b.eml"), &lf).unwrap();
    std::fs::write(mails.join("notes.txt"), b"ignored").unwrap();
    let spec = json!({
        "seed": 3,
        "domain": "fabrikam.onmicrosoft.com",
        "generate": {"users": 2, "messagesPerUser": 3},
        "users": [
            {"userPrincipalName": "alice", "displayName": "Alice Martin", "password": "S3cret!", "folders": ["Inbox/Projects/2024"], "generatedMessages": 4, "eml": [{"path": "mails", "folder": "Inbox/Imported"}]},
            {"userPrincipalName": "desk", "kind": "shared"}
        ]
    });
    let file = dir.path().join("tenant.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    let env = start(Config {
        tenant_file: Some(file),
        eml_imports: vec![EmlImport {
            dir: mails.clone(),
            into: "desk@fabrikam.onmicrosoft.com/Archive/Old mail".into(),
        }],
        ..Default::default()
    })
    .await;
    let tenant = env.emu.tenant();
    assert_eq!(tenant.domain, "fabrikam.onmicrosoft.com");
    assert_eq!(tenant.users.len(), 4);
    let alice = tenant
        .users
        .iter()
        .find(|u| u.user_principal_name == "alice@fabrikam.onmicrosoft.com")
        .unwrap();
    assert_eq!(alice.password, "S3cret!");
    let folders = &alice.mailbox.as_ref().unwrap().folders;
    assert!(folders.iter().any(|f| f.path == "Inbox/Projects/2024"));
    let imported = folders.iter().find(|f| f.path == "Inbox/Imported").unwrap();
    assert_eq!(imported.messages.len(), 2);
    let desk = tenant
        .users
        .iter()
        .find(|u| u.user_principal_name.starts_with("desk@"))
        .unwrap();
    let old = desk
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .find(|f| f.path == "Archive/Old mail")
        .unwrap();
    for (m, original) in old.messages.iter().zip([&example, &lf]) {
        let (s, bytes) = env
            .bytes(&format!("/users/{}/messages/{}/$value", desk.id, m.id))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&bytes, original);
    }
    let (_, _, msg): (_, _, Value) = env
        .get(&format!(
            "/users/{}/messages/{}",
            desk.id, old.messages[0].id
        ))
        .await;
    assert_eq!(msg["receivedDateTime"], "2019-04-22T19:48:16Z");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"users": [{"nope": 1}]}"#).unwrap();
    let err = m365_emulator::Emulator::start(Config {
        tenant_file: Some(bad),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, m365_emulator::EmulatorError::TenantFile { .. }),
        "{err}"
    );
}
