//! Throttling per (app, mailbox), fault injection and counters.

use crate::common::*;
use m365_emulator::{Config, FaultKind, ScheduledFault, Throttle};
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn concurrency_over_four_gets_mailbox_concurrency_429() {
    // Latency keeps requests in flight long enough to overlap.
    let env = start(Config {
        users: 3,
        messages_per_user: 5,
        seed: 2,
        throttle: Throttle::Realistic,
        latency: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let user = env.emu.tenant().users[1].id.clone();
    let url = format!("{}/users/{user}/mailFolders/inbox", env.graph());
    let requests = (0..10).map(|_| {
        let http = env.http.clone();
        let url = url.clone();
        let token = env.token.clone();
        async move { split(http.get(url).bearer_auth(token).send().await.unwrap()).await }
    });
    let results = futures::future::join_all(requests).await;
    let ok = results.iter().filter(|r| r.0 == StatusCode::OK).count();
    let throttled: Vec<_> = results
        .iter()
        .filter(|r| r.0 == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(ok, 4, "exactly the concurrency limit gets through");
    assert_eq!(throttled.len(), 6);
    for (_, headers, body) in throttled {
        assert_eq!(body["error"]["code"], "ApplicationThrottled");
        assert_eq!(
            body["error"]["message"],
            "Application is over its MailboxConcurrency limit."
        );
        let retry: f64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry > 0.0 && retry < 5.0);
    }
    let counters = env.emu.counters();
    let mailbox = &counters.mailboxes[&user];
    assert_eq!(mailbox.max_concurrency, 4);
    assert_eq!(mailbox.throttled, 6);
    assert_eq!(mailbox.requests, 10);
    assert_eq!(mailbox.endpoints["GET /users/{id}/mailFolders/{id}"], 10);
    // Another mailbox is not affected.
    let other = env.emu.tenant().users[0].id.clone();
    assert_eq!(
        env.get(&format!("/users/{other}/mailFolders/inbox"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn request_budget_returns_fractional_retry_after_until_the_window_slides() {
    let env = start(Config {
        users: 2,
        messages_per_user: 2,
        seed: 2,
        throttle: Throttle::Scaled {
            requests: 5,
            per: Duration::from_secs(60),
        },
        ..Default::default()
    })
    .await;
    let user = env.emu.tenant().users[0].id.clone();
    let url = format!("/users/{user}/mailboxSettings");
    for _ in 0..5 {
        assert_eq!(env.get(&url).await.0, StatusCode::OK);
    }
    let (s, h, b) = env.get(&url).await;
    assert_graph_error(s, &h, &b, 429, "TooManyRequests");
    assert_eq!(b["error"]["innerError"]["status"], "429");
    let retry: f64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 50.0 && retry <= 60.0, "{retry}");
    // Directory calls are not mailbox-throttled.
    assert_eq!(env.get("/users").await.0, StatusCode::OK);
    env.emu.advance_clock(Duration::from_secs(61));
    assert_eq!(env.get(&url).await.0, StatusCode::OK);
    assert_eq!(env.emu.counters().throttled, 1);
}

#[tokio::test]
async fn injected_faults_look_like_production_failures() {
    let env = small().await;
    let user = env.mailbox_user();
    let url = format!("/users/{}/mailFolders/inbox/messages", user.id);
    let schedule = |kind| {
        env.emu.schedule_fault(
            ScheduledFault {
                kind,
                path_contains: Some("/messages".into()),
            },
            1,
        )
    };

    schedule(FaultKind::Unavailable);
    let (s, h, b) = env.get(&url).await;
    assert_graph_error(s, &h, &b, 503, "serviceNotAvailable");
    assert!(h.contains_key("retry-after"));

    schedule(FaultKind::UnavailableEmpty);
    let resp = env.raw_get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.bytes().await.unwrap().is_empty());

    schedule(FaultKind::GatewayTimeout);
    assert_eq!(env.get(&url).await.0, StatusCode::GATEWAY_TIMEOUT);

    schedule(FaultKind::Throttled);
    let (s, h, _) = env.get(&url).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(h["retry-after"].to_str().unwrap().parse::<f64>().is_ok());

    schedule(FaultKind::ConnectionReset);
    let err = env.raw_get(&url).await.expect_err("connection reset");
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );

    schedule(FaultKind::TruncatedBody);
    let resp = env.raw_get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.is_err(), "the body must end early");

    // Everything works again, and the faults were counted.
    assert_eq!(env.get(&url).await.0, StatusCode::OK);
    assert_eq!(env.emu.counters().faults, 6);
}

#[tokio::test]
async fn random_fault_rate_applies_to_a_share_of_requests() {
    let env = start(Config {
        users: 2,
        messages_per_user: 1,
        seed: 4,
        fault_rate: 0.3,
        fault_kinds: vec![FaultKind::GatewayTimeout],
        ..Default::default()
    })
    .await;
    let mut failed = 0;
    for _ in 0..200 {
        if env.get("/users").await.0 == StatusCode::GATEWAY_TIMEOUT {
            failed += 1;
        }
    }
    assert!((35..=85).contains(&failed), "{failed} of 200");
    assert_eq!(env.emu.counters().faults, failed);
}

#[tokio::test]
async fn full_mailboxes_refuse_delta_and_access_policies_scope_apps() {
    let env = small().await;
    let user = env.mailbox_user();
    env.emu.set_mailbox_full(&user.id, true).unwrap();
    let (s, h, b) = env
        .get(&format!(
            "/users/{}/mailFolders/inbox/messages/delta",
            user.id
        ))
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorQuotaExceeded");
    let (s, h, b) = env
        .get(&format!("/users/{}/mailFolders/delta", user.id))
        .await;
    assert_graph_error(s, &h, &b, 403, "ErrorQuotaExceeded");
    assert_eq!(
        env.get(&format!("/users/{}/mailFolders/inbox/messages", user.id))
            .await
            .0,
        StatusCode::OK
    );
    env.emu.set_mailbox_full(&user.id, false).unwrap();
    assert_eq!(
        env.get(&format!(
            "/users/{}/mailFolders/inbox/messages/delta",
            user.id
        ))
        .await
        .0,
        StatusCode::OK
    );

    let admin = env.emu.info().admin.username.clone();
    let client_id = env.emu.info().client_id.clone();
    env.emu
        .set_access_policy(&client_id, Some(std::slice::from_ref(&admin)))
        .unwrap();
    let (s, h, b) = env.get(&format!("/users/{}/messages", user.id)).await;
    assert_graph_error(s, &h, &b, 403, "ErrorAccessDenied");
    assert_eq!(b["error"]["message"], "Access to OData is disabled.");
    assert_eq!(
        env.get(&format!("/users/{admin}/messages")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        env.get("/users").await.0,
        StatusCode::OK,
        "directory calls are not scoped"
    );
    let resp = env
        .http
        .post(format!(
            "{}/apps/{client_id}/access-policy",
            env.emu.info().control
        ))
        .json(&serde_json::json!({"mailboxes": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        env.get(&format!("/users/{}/messages", user.id)).await.0,
        StatusCode::OK
    );
}
