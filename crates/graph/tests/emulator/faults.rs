//! Transient faults, throttling and Retry-After: absorbed by the governor and retries.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use m365_emulator::{FaultKind, ScheduledFault, Throttle};
use strongroom_graph::{Backoff, Change, ClientOptions, GraphClient, Lane};

use crate::common::*;

/// Every kind of transient failure the emulator can inject.
const TRANSIENT_FAULTS: [FaultKind; 6] = [
    FaultKind::Throttled,
    FaultKind::Unavailable,
    FaultKind::UnavailableEmpty,
    FaultKind::GatewayTimeout,
    FaultKind::ConnectionReset,
    FaultKind::TruncatedBody,
];

#[tokio::test]
async fn faults_and_throttling_are_absorbed_within_four_in_flight() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 40,
        seed: 9,
        throttle: Throttle::Realistic,
        concurrency_limit: 4,
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let messages = expected_mime(&user);
    // Every kind of transient failure, on MIME downloads of this mailbox.
    for kind in TRANSIENT_FAULTS {
        emu.schedule_fault(
            ScheduledFault {
                kind,
                path_contains: Some("$value".into()),
            },
            2,
        );
    }
    emu.reset_counters();
    let results: Vec<_> = futures::stream::iter(messages.iter())
        .map(|(id, mime)| {
            let graph = graph.clone();
            let user = user.id.clone();
            async move { (graph.message_mime(&user, id, MIME_LIMIT).await, mime) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (got, want) in results {
        assert_eq!(&got.unwrap(), want);
    }
    let counters = emu.counters();
    let mb = &counters.mailboxes[&user.id];
    assert!(
        mb.max_concurrency <= 4,
        "peak {} in flight",
        mb.max_concurrency
    );
    assert_eq!(
        mb.throttled, 0,
        "the governor never trips MailboxConcurrency"
    );
    assert!(
        counters.faults >= 12,
        "every scheduled fault was served: {}",
        counters.faults
    );
    assert_eq!(graph.governor().fenced_for(&Lane::mailbox(&user.id)), None);
}

#[tokio::test]
async fn retry_after_fences_the_whole_mailbox() {
    let emu = seeded(2, 5, 4).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let id = all_messages(&user).next().unwrap().immutable_id.clone();
    emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::Throttled,
            path_contains: Some("$value".into()),
        },
        1,
    );
    let started = std::time::Instant::now();
    graph.message_mime(&user.id, &id, MIME_LIMIT).await.unwrap();
    // The emulator's Retry-After is between 0.5 and 3 seconds; we waited for it.
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_whole_mailbox_backs_up_exactly_through_random_faults() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 15,
        seed: 18,
        fault_rate: 0.15,
        fault_kinds: TRANSIENT_FAULTS.to_vec(),
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let expected = expected_mime(&user);
    let mut got = BTreeMap::new();
    for folder in mail_folders(&graph, &user.id).await {
        let (changes, _) = full_delta(&graph, &user.id, &folder.id, 4).await;
        for change in changes {
            if let Change::Upsert(m) = change {
                let mime = graph
                    .message_mime(&user.id, &m.id, MIME_LIMIT)
                    .await
                    .unwrap();
                got.insert(m.id, mime);
            }
        }
    }
    assert_eq!(got, expected);
    assert!(emu.counters().faults > 0, "faults were injected");
}

/// A mailbox budget tighter than the governor's own pacing (as when Microsoft's is): many
/// downloads contend for each freed slot and one request may be refused many times in a row.
/// Each refusal came with a Retry-After that was honoured, so none of them is a failed
/// attempt: every download completes, and the mailbox's budget is used, not wasted.
#[tokio::test]
async fn a_budget_tighter_than_the_governor_delays_requests_but_never_fails_them() {
    let budget = 5;
    let window = Duration::from_secs(1);
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 40,
        seed: 31,
        throttle: Throttle::Scaled {
            requests: budget,
            per: window,
        },
        concurrency_limit: 4,
        latency: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    // Two attempts for transient failures: a throttled request must not use them up.
    let graph = GraphClient::with_options(
        &cloud(&emu),
        secret_credential(&emu),
        ClientOptions {
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(200), 2),
            ..ClientOptions::default()
        },
    );
    let user = licensed_user(&emu);
    let messages = expected_mime(&user);
    emu.set_throttle(
        Throttle::Scaled {
            requests: budget,
            per: window,
        },
        4,
    );
    emu.reset_counters();
    let started = std::time::Instant::now();
    let results: Vec<_> = futures::stream::iter(messages.iter())
        .map(|(id, mime)| {
            let graph = graph.clone();
            let user = user.id.clone();
            async move { (graph.message_mime(&user, id, MIME_LIMIT).await, mime) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    for (got, want) in results {
        assert_eq!(
            &got.expect("a throttled download is delayed, not failed"),
            want
        );
    }
    let counters = emu.counters();
    let mb = &counters.mailboxes[&user.id];
    assert!(mb.throttled > 0, "the budget did throttle");
    assert!(
        mb.max_concurrency <= 4,
        "peak {} in flight",
        mb.max_concurrency
    );
    // The sliding window admits at most budget × (t / window + 1) requests in t seconds;
    // honouring each Retry-After at once keeps close to that.
    let admitted = (mb.requests - mb.throttled) as f64;
    let limit = f64::from(budget) * (elapsed / window.as_secs_f64() + 1.0);
    assert!(
        admitted / limit > 0.6,
        "{admitted} requests in {elapsed:.2} s is {:.2} of the budget",
        admitted / limit
    );
}

/// Refusals with Retry-After are not failed attempts: a request throttled more often in a
/// row than the transient-failure attempt limit still completes once the service lets it.
#[tokio::test]
async fn a_request_throttled_more_times_than_its_attempt_limit_still_completes() {
    let emu = seeded(2, 3, 41).await;
    let graph = GraphClient::with_options(
        &cloud(&emu),
        secret_credential(&emu),
        ClientOptions {
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(200), 2),
            ..ClientOptions::default()
        },
    );
    let user = licensed_user(&emu);
    let (id, mime) = expected_mime(&user).into_iter().next().unwrap();
    emu.schedule_fault(
        ScheduledFault {
            kind: FaultKind::Throttled,
            path_contains: Some("$value".into()),
        },
        3,
    );
    assert_eq!(
        graph.message_mime(&user.id, &id, MIME_LIMIT).await.unwrap(),
        mime
    );
    assert_eq!(emu.counters().faults, 3, "refused three times, then served");
}
