//! Restoring: folders, messages with their original dates, attachments, MIME, deletion.

use crate::common::*;

#[tokio::test]
async fn restore_a_message_as_sent_with_attachments_then_delete_it() {
    let emu = seeded(2, 2, 12).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let restored = graph
        .create_mail_folder(&user.id, Some("msgfolderroot"), "Restored")
        .await
        .unwrap();
    let again = graph
        .create_mail_folder(&user.id, Some("msgfolderroot"), "Restored")
        .await
        .unwrap();
    assert_eq!(again.id, restored.id, "an existing folder is reused");

    let received = chrono::DateTime::parse_from_rfc3339("2023-11-16T05:42:47Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let sent = chrono::DateTime::parse_from_rfc3339("2023-11-16T05:42:46Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let message = serde_json::json!({
        "subject": "quarterly numbers",
        "body": {"contentType": "text", "content": "see attached"},
        "from": {"emailAddress": {"name": "Ann", "address": "ann@example.com"}},
        "toRecipients": [{"emailAddress": {"name": "Bob", "address": "bob@example.com"}}],
    });
    let original = strongroom_graph::OriginalState {
        received,
        sent: Some(sent),
        is_read: true,
        ..Default::default()
    };
    let created = graph
        .create_message(&user.id, &restored.id, message, &original)
        .await
        .unwrap();
    assert_eq!(created.received_date_time, Some(received));
    assert_eq!(created.sent_date_time, Some(sent));
    assert_eq!(
        created.parent_folder_id.as_deref(),
        Some(restored.id.as_str())
    );

    let small = vec![7u8; 1000];
    let large: Vec<u8> = (0..(9 * 1024 * 1024 + 5))
        .map(|i| (i % 251) as u8)
        .collect();
    for (name, bytes) in [("small.bin", &small), ("large.bin", &large)] {
        let a = strongroom_graph::NewAttachment {
            name,
            content_type: "application/octet-stream",
            bytes,
            is_inline: false,
            content_id: None,
        };
        graph
            .add_attachment(&user.id, &created.id, &a)
            .await
            .unwrap();
    }
    let attachments = graph.attachments(&user.id, &created.id).await.unwrap();
    let by_name = |n: &str| {
        attachments
            .iter()
            .find(|a| a.name.as_deref() == Some(n))
            .unwrap()
            .bytes()
            .unwrap()
            .unwrap()
    };
    assert_eq!(by_name("small.bin"), small);
    assert_eq!(by_name("large.bin"), large);

    let snapshot = emu.tenant();
    let snap_user = snapshot.users.iter().find(|u| u.id == user.id).unwrap();
    let snap_msg = all_messages(snap_user)
        .find(|m| m.immutable_id == created.id)
        .unwrap();
    assert!(!snap_msg.is_draft, "JSON create with 0x0E07 is not a draft");

    let from_mime = graph
        .create_message_from_mime(
            &user.id,
            &restored.id,
            b"Subject: hi\r\nFrom: a@example.com\r\n\r\nbody\r\n",
        )
        .await
        .unwrap();
    assert_eq!(from_mime.subject.as_deref(), Some("hi"));

    graph.delete_message(&user.id, &created.id).await.unwrap();
    assert!(graph
        .message_mime(&user.id, &created.id, MIME_LIMIT)
        .await
        .is_err());
}
