//! Transient faults, throttling and Retry-After: absorbed by the governor and retries.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use m365_emulator::{FaultKind, ScheduledFault, Throttle};
use strongroom_graph::{Change, Lane};

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
