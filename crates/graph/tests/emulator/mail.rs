//! Mail folders, message delta (full, incremental, expired), MIME downloads, and the
//! typed errors of a full mailbox and an access policy.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use m365_emulator::MessageUpdate;
use strongroom_graph::{Change, GraphError, MailFolder, MessageDeltaOptions};

use crate::common::*;

#[tokio::test]
async fn folder_tree_includes_hidden_folders() {
    let emu = seeded(3, 5, 3).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let mailbox = user.mailbox.unwrap();
    let root = &mailbox.folders[0];
    let tree = graph.folder_tree(&user.id).await.unwrap();
    let got: BTreeSet<_> = tree.iter().map(|f| f.id.clone()).collect();
    let want: BTreeSet<_> = mailbox
        .folders
        .iter()
        .filter(|f| f.id != root.id)
        .map(|f| f.id.clone())
        .collect();
    let missing: Vec<_> = mailbox
        .folders
        .iter()
        .filter(|f| f.id != root.id && !got.contains(&f.id))
        .map(|f| (&f.display_name, &f.path, &f.well_known, f.hidden))
        .collect();
    assert_eq!(got, want, "missing: {missing:?}");
    assert!(
        tree.iter().any(MailFolder::is_hidden),
        "hidden folders are included"
    );
    assert!(tree.iter().any(MailFolder::is_search_folder));
    // Parents come before children.
    let mut seen = BTreeSet::from([root.id.clone()]);
    for f in &tree {
        assert!(
            seen.contains(f.parent_folder_id.as_deref().unwrap()),
            "{f:?}"
        );
        seen.insert(f.id.clone());
    }
    // The flat folder delta agrees.
    let delta: Vec<_> = graph
        .mail_folder_delta(&user.id, None)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let from_delta: BTreeSet<_> = delta
        .into_iter()
        .flat_map(|p| p.changes)
        .filter_map(|c| match c {
            Change::Upsert(f) => Some(f.id),
            Change::Removed { .. } => None,
        })
        .collect();
    // Recoverable Items lives outside the folder hierarchy that delta walks.
    let deletions = graph
        .mail_folder(&user.id, "recoverableitemsdeletions")
        .await
        .unwrap();
    assert!(
        got.contains(&deletions.id),
        "folder_tree adds Recoverable Items Deletions"
    );
    let not_in_delta: Vec<_> = tree
        .iter()
        .filter(|f| f.id != deletions.id && !from_delta.contains(&f.id))
        .map(|f| f.display_name.clone())
        .collect();
    assert!(
        from_delta.iter().all(|id| got.contains(id)),
        "delta folders are in the tree"
    );
    assert_eq!(not_in_delta, Vec::<Option<String>>::new());
}

#[tokio::test]
async fn full_delta_of_a_mailbox_and_every_mime_byte_for_byte() {
    let emu = seeded(3, 30, 11).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let expected = expected_mime(&user);
    assert!(expected.len() >= 30);
    let mut fetched = 0;
    for folder in mail_folders(&graph, &user.id).await {
        let (changes, _link) = full_delta(&graph, &user.id, &folder.id, 7).await;
        for change in changes {
            let Change::Upsert(m) = change else {
                panic!("a first round has no removals")
            };
            assert_eq!(m.parent_folder_id.as_deref(), Some(folder.id.as_str()));
            assert!(m.received_date_time.is_some() && m.change_key.is_some());
            let want = expected
                .get(&m.id)
                .unwrap_or_else(|| panic!("{} is an immutable id of the tenant", m.id));
            let mime = graph
                .message_mime(&user.id, &m.id, MIME_LIMIT)
                .await
                .unwrap();
            assert_eq!(&mime, want, "MIME of {}", m.id);
            fetched += 1;
        }
    }
    assert_eq!(fetched, expected.len());
    // Streaming gives the same bytes.
    let (id, want) = expected.iter().next().unwrap();
    let stream = graph.message_mime_stream(&user.id, id).await.unwrap();
    let streamed: Vec<u8> = stream.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(&streamed[..], &want[..]);
    // A limit below the size is refused rather than buffered.
    assert!(matches!(
        graph.message_mime(&user.id, id, 10).await,
        Err(GraphError::TooLarge { limit: 10 })
    ));
}

#[tokio::test]
async fn incremental_delta_after_changes() {
    let emu = seeded(2, 10, 5).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let inbox = graph.mail_folder(&user.id, "inbox").await.unwrap();
    let (first, link) = full_delta(&graph, &user.id, &inbox.id, 50).await;
    let ids = upserted_ids(&first);
    assert!(ids.len() >= 2, "inbox has messages");

    // Nothing changed: an empty round.
    let (none, link) = changes_since(&graph, &user.id, &inbox.id, &link)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    let mime = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: new one\r\nMessage-ID: <new@example.com>\r\nDate: Mon, 22 Apr 2019 19:48:16 +0000\r\n\r\nhello\r\n";
    let added = emu.add_message(&user.id, "inbox", mime).unwrap();
    emu.update_message(
        &user.id,
        &ids[0],
        &MessageUpdate {
            is_read: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    emu.delete_message(&user.id, &ids[1]).unwrap();

    let (changes, _) = changes_since(&graph, &user.id, &inbox.id, &link)
        .await
        .unwrap();
    let upserts: BTreeSet<_> = upserted_ids(&changes).into_iter().collect();
    let removed: BTreeSet<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Removed { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        upserts,
        BTreeSet::from([added.immutable_id.clone(), ids[0].clone()])
    );
    assert_eq!(removed, BTreeSet::from([ids[1].clone()]));
    let new_mime = graph
        .message_mime(&user.id, &added.immutable_id, MIME_LIMIT)
        .await
        .unwrap();
    assert_eq!(&new_mime[..], &mime[..]);
}

#[tokio::test]
async fn expired_delta_state_names_the_folder_to_resync() {
    let emu = seeded(2, 10, 6).await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let inbox = graph.mail_folder(&user.id, "inbox").await.unwrap();
    let (first, link) = full_delta(&graph, &user.id, &inbox.id, 50).await;
    emu.expire_delta_tokens(Some(&user.id)).unwrap();
    match changes_since(&graph, &user.id, &inbox.id, &link).await {
        Err(GraphError::SyncStateNotFound { resource, source }) => {
            assert_eq!(resource, inbox.id);
            assert_eq!(source.status, 410);
        }
        other => panic!("expected SyncStateNotFound, got {other:?}"),
    }
    // Resync of that folder alone: a fresh full round gives the same items.
    let (again, _) = full_delta(&graph, &user.id, &inbox.id, 50).await;
    assert_eq!(again.len(), first.len());
}

#[tokio::test]
async fn access_policy_and_full_mailbox_surface_as_typed_errors() {
    let emu = seeded(6, 3, 15).await;
    let graph = client(&emu);
    let tenant = emu.tenant();
    let mut with_mailbox = tenant
        .users
        .iter()
        .filter(|u| u.kind == m365_emulator::UserKind::Licensed);
    let (a, b) = (with_mailbox.next().unwrap(), with_mailbox.next().unwrap());

    // A full mailbox refuses delta (it writes sync state) but plain listing still works.
    emu.set_mailbox_full(&a.id, true).unwrap();
    let inbox = graph.mail_folder(&a.id, "inbox").await.unwrap();
    let mut delta = graph
        .message_delta(&a.id, &inbox.id, None, &MessageDeltaOptions::default())
        .unwrap();
    let err = delta.try_next().await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&strongroom_graph::ErrorCode::QuotaExceeded),
        "{err}"
    );
    let listed: Vec<_> = graph
        .messages(&a.id, &inbox.id, 50)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|p| p.value.len()).sum::<usize>(),
        a.mailbox
            .as_ref()
            .unwrap()
            .folders
            .iter()
            .find(|f| f.id == inbox.id)
            .unwrap()
            .messages
            .len()
    );

    // An application access policy that leaves out mailbox b: ErrorAccessDenied, typed.
    emu.set_access_policy(&emu.info().client_id, Some(std::slice::from_ref(&a.id)))
        .unwrap();
    let err = graph.folder_tree(&b.id).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&strongroom_graph::ErrorCode::AccessDenied),
        "{err}"
    );
    assert_eq!(err.status(), Some(403));
    assert!(graph.folder_tree(&a.id).await.is_ok());
}
