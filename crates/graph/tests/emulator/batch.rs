//! JSON batching: message reads, dependsOn, the 20-request limit, throttled items.

use std::time::Duration;

use m365_emulator::Throttle;
use strongroom_graph::{BatchRequest, GraphClient, GraphError, Lane, Message};

use crate::common::*;

/// A batch item named `name` that reads one message of `user`.
fn read_message(
    graph: &GraphClient,
    user: &str,
    name: impl Into<String>,
    message: &str,
) -> BatchRequest {
    BatchRequest::get(
        name,
        graph.batch_path(&["users", user, "messages", message]),
    )
}

#[tokio::test]
async fn batch_of_message_reads() {
    let emu = seeded(2, 25, 8).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let ids = message_ids(&user, 20);
    let requests: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            read_message(&graph, &user.id, i.to_string(), id)
                .header("Prefer", r#"IdType="ImmutableId""#)
        })
        .collect();
    let answers = graph
        .batch(&Lane::mailbox(&user.id), requests)
        .await
        .unwrap();
    assert_eq!(answers.len(), 20);
    for (answer, id) in answers.iter().zip(&ids) {
        let m: Message = answer.json().unwrap();
        assert_eq!(&m.id, id);
    }
    // dependsOn: a failed dependency gives 424 to the dependant.
    let requests = vec![
        read_message(&graph, &user.id, "a", "no-such-message"),
        read_message(&graph, &user.id, "b", &ids[0]).depends_on("a"),
    ];
    let answers = graph
        .batch(&Lane::mailbox(&user.id), requests)
        .await
        .unwrap();
    assert_eq!(answers[0].status, 404);
    assert_eq!(answers[1].status, 424);
    // 21 requests are refused before sending.
    let too_many: Vec<_> = (0..21)
        .map(|i| BatchRequest::get(i.to_string(), "/users"))
        .collect();
    assert!(matches!(
        graph.batch(&Lane::Tenant, too_many).await,
        Err(GraphError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn throttled_batch_items_are_sent_again_after_their_retry_after() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 25,
        seed: 13,
        throttle: Throttle::Scaled {
            requests: 8,
            per: Duration::from_secs(2),
        },
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let ids = message_ids(&user, 20);
    let requests: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| read_message(&graph, &user.id, format!("m{i}"), id))
        .collect();
    let answers = graph
        .batch(&Lane::mailbox(&user.id), requests)
        .await
        .unwrap();
    for (answer, id) in answers.iter().zip(&ids) {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(&answer.json::<Message>().unwrap().id, id);
    }
    assert!(
        emu.counters().throttled > 0,
        "the budget did throttle some items"
    );
}
