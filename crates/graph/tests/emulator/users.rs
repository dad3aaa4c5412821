//! Listing users, their mailbox kinds, and the users delta.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use strongroom_graph::{Change, MailboxKind};

use crate::common::*;

#[tokio::test]
async fn users_and_mailbox_kinds_match_the_tenant() {
    let emu = seeded(12, 2, 7).await;
    let graph = client(&emu);
    let listed: Vec<_> = graph
        .users()
        .map_ok(|p| p.value)
        .try_concat()
        .await
        .unwrap();
    let tenant = emu.tenant();
    let want: BTreeSet<_> = tenant.users.iter().map(|u| u.id.clone()).collect();
    let got: BTreeSet<_> = listed.iter().map(|u| u.id.clone()).collect();
    assert_eq!(got, want);
    let mut kinds = BTreeSet::new();
    for u in &tenant.users {
        let kind = graph.mailbox_kind(&u.id).await.unwrap();
        let expected = match u.mailbox.as_ref().map(|m| m.purpose.as_str()) {
            None => MailboxKind::None,
            Some("user") => MailboxKind::User,
            Some("shared") => MailboxKind::Shared,
            Some("room") => MailboxKind::Room,
            Some("equipment") => MailboxKind::Equipment,
            Some(other) => panic!("unexpected purpose {other}"),
        };
        assert_eq!(kind, expected, "{}", u.user_principal_name);
        let listed = listed.iter().find(|l| l.id == u.id).unwrap();
        assert_eq!(
            listed.is_licensed(),
            u.licensed,
            "{}",
            u.user_principal_name
        );
        kinds.insert(format!("{kind:?}"));
    }
    assert!(
        kinds.contains("None") && kinds.contains("Shared"),
        "every kind is exercised: {kinds:?}"
    );
}

#[tokio::test]
async fn users_delta_reports_new_and_removed_users() {
    let emu = seeded(4, 1, 14).await;
    let graph = client(&emu);
    let mut link = None;
    let mut first = BTreeSet::new();
    let mut pages = graph.users_delta(None).unwrap();
    while let Some(page) = pages.try_next().await.unwrap() {
        for c in page.changes {
            if let Change::Upsert(u) = c {
                first.insert(u.id);
            }
        }
        link = page.delta_link;
    }
    assert_eq!(first.len(), emu.tenant().users.len());
    let gone = first.iter().next().unwrap().clone();
    let added = emu
        .add_user(&m365_emulator::NewUser {
            display_name: "New Hire".into(),
            user_principal_name: Some("new.hire".into()),
            kind: None,
            password: None,
        })
        .unwrap();
    emu.remove_user(&gone).unwrap();
    let mut changes = Vec::new();
    let mut pages = graph.users_delta(link.as_ref()).unwrap();
    while let Some(page) = pages.try_next().await.unwrap() {
        changes.extend(page.changes);
    }
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Upsert(u) if u.id == added.id)),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Removed { id, .. } if *id == gone)),
        "{changes:?}"
    );
}
