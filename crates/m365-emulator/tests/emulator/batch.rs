//! JSON batching.

use crate::common::*;
use base64::Engine as _;
use m365_emulator::{Config, Throttle};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn batch_runs_items_with_dependencies_and_binary_bodies() {
    let env = small().await;
    let user = env.mailbox_user();
    let message = env
        .mailbox(&user.id)
        .folders
        .iter()
        .flat_map(|f| f.messages.clone())
        .next()
        .unwrap();
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{}/mailFolders/inbox", user.id)},
        {"id": "2", "method": "GET", "url": format!("/users/{}/messages/{}/$value", user.id, message.id)},
        {"id": "3", "method": "GET", "url": "/users/nobody@nowhere.example/mailFolders"},
        {"id": "4", "method": "GET", "url": "/organization", "dependsOn": ["3"]},
        {"id": "5", "method": "POST", "url": format!("/users/{}/mailFolders", user.id), "headers": {"Content-Type": "application/json"}, "body": {"displayName": "From batch"}, "dependsOn": ["1"]},
        {"id": "6", "method": "GET", "url": "users?$select=id,displayName&$top=2"}
    ]});
    let (s, _, b) = env.send(Method::POST, "/$batch", body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let responses = b["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 6);
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["displayName"], "Inbox");
    let mime = base64::engine::general_purpose::STANDARD
        .decode(by_id("2")["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(mime, message.mime.to_vec());
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(by_id("3")["body"]["error"]["code"], "ErrorInvalidUser");
    assert_eq!(by_id("4")["status"], 424);
    assert_eq!(by_id("5")["status"], 201);
    assert_eq!(by_id("6")["body"]["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_batches_are_rejected_whole() {
    let env = small().await;
    let dup = json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/organization"}]});
    let (s, h, b) = env.send(Method::POST, "/$batch", dup).await;
    assert_graph_error(s, &h, &b, 400, "BadRequest");
    let many: Vec<_> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (s, h, b) = env
        .send(Method::POST, "/$batch", json!({"requests": many}))
        .await;
    assert_graph_error(s, &h, &b, 400, "BadRequest");
}

#[tokio::test]
async fn throttled_batch_items_carry_their_own_retry_after() {
    let env = start(Config {
        users: 2,
        messages_per_user: 3,
        seed: 9,
        throttle: Throttle::Scaled {
            requests: 3,
            per: Duration::from_secs(30),
        },
        ..Default::default()
    })
    .await;
    let user = env.emu.tenant().users[0].id.clone();
    let requests: Vec<_> = (0..5).map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{user}/mailFolders/inbox")})).collect();
    let (s, _, b) = env
        .send(Method::POST, "/$batch", json!({"requests": requests}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let responses = b["responses"].as_array().unwrap();
    let throttled: Vec<_> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(throttled.len(), 2);
    for t in throttled {
        let retry: f64 = t["headers"]["retry-after"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0.0);
    }
    assert_eq!(env.emu.counters().mailboxes[&user].requests, 5);
}
