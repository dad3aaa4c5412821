//! End-to-end: strongroom-graph against the in-process m365 emulator.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use m365_emulator::{
    AppSpec, Config, Emulator, FaultKind, MessageUpdate, ScheduledFault, Throttle,
};
use strongroom_graph::{
    AppCertificate, AppCredential, AppSecret, AssertionAlgorithm, Backoff, BatchRequest, Change,
    ClientOptions, Cloud, DeltaLink, GraphClient, GraphError, Lane, MailFolder, MailboxKind,
    Message, MessageDeltaOptions, TokenSource,
};

const MIME_LIMIT: usize = 64 << 20;

async fn emulator(config: Config) -> Emulator {
    Emulator::start(config).await.expect("emulator starts")
}

fn cloud(emu: &Emulator) -> Cloud {
    Cloud::new(&emu.info().authority, &emu.info().graph).unwrap()
}

/// Fast backoff so fault tests do not sleep for long; the fence still honours Retry-After.
fn options() -> ClientOptions {
    ClientOptions {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(200), 10)
            .with_seed(5),
        ..ClientOptions::default()
    }
}

fn secret_credential(emu: &Emulator) -> AppCredential {
    let info = emu.info();
    AppCredential::new(
        &cloud(emu),
        &info.tenant_id,
        &info.client_id,
        AppSecret::Secret(info.client_secret.clone()),
    )
}

fn client(emu: &Emulator) -> GraphClient {
    GraphClient::with_options(&cloud(emu), secret_credential(emu), options())
}

/// A licensed user with a mailbox, and its snapshot.
fn licensed_user(emu: &Emulator) -> m365_emulator::control::UserSnapshot {
    emu.tenant()
        .users
        .into_iter()
        .find(|u| u.kind == m365_emulator::UserKind::Licensed && u.mailbox.is_some())
        .expect("a licensed user")
}

async fn full_delta(
    graph: &GraphClient,
    user: &str,
    folder: &str,
    page_size: u32,
) -> (Vec<Change<Message>>, DeltaLink) {
    let options = MessageDeltaOptions {
        page_size,
        ..Default::default()
    };
    let mut pages = graph.message_delta(user, folder, None, &options).unwrap();
    let mut changes = Vec::new();
    let mut link = None;
    while let Some(page) = pages.try_next().await.unwrap() {
        assert!(
            page.changes.len() <= page_size as usize,
            "Prefer: odata.maxpagesize honoured"
        );
        assert!(link.is_none(), "the delta link comes on the last page only");
        changes.extend(page.changes);
        link = page.delta_link;
    }
    (changes, link.expect("a delta round ends with a delta link"))
}

async fn changes_since(
    graph: &GraphClient,
    user: &str,
    folder: &str,
    link: &DeltaLink,
) -> Result<(Vec<Change<Message>>, DeltaLink), GraphError> {
    let mut pages =
        graph.message_delta(user, folder, Some(link), &MessageDeltaOptions::default())?;
    let mut changes = Vec::new();
    let mut next = None;
    while let Some(page) = pages.try_next().await? {
        changes.extend(page.changes);
        next = page.delta_link;
    }
    Ok((changes, next.expect("delta link")))
}

#[tokio::test]
async fn client_credentials_with_a_secret_and_a_wrong_secret() {
    let emu = emulator(Config::default()).await;
    let token = secret_credential(&emu).access_token().await.unwrap();
    assert!(!token.secret().is_empty());
    let info = emu.info();
    let wrong = AppCredential::new(
        &cloud(&emu),
        &info.tenant_id,
        &info.client_id,
        AppSecret::Secret("nope".into()),
    );
    match wrong.fetch().await {
        Err(GraphError::Identity(e)) => {
            assert_eq!(e.error, "invalid_client");
            assert_eq!(e.aadsts, Some(7000215), "{e}");
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn client_credentials_with_a_certificate_ps256_and_rs256() {
    let emu = emulator(Config::default()).await;
    let cert = AppCertificate::generate("Strongroom test").unwrap();
    let app = emu
        .register_app(&AppSpec {
            display_name: Some("cert app".into()),
            roles: vec!["User.Read.All".into()],
            certificate: Some(cert.certificate_pem()),
            redirect_uris: vec![],
        })
        .unwrap();
    let c = cloud(&emu);
    for algorithm in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let credential = AppCredential::new(
            &c,
            &emu.info().tenant_id,
            &app.client_id,
            AppSecret::Certificate {
                certificate: cert.clone(),
                algorithm,
            },
        );
        let graph = GraphClient::with_options(&c, credential, options());
        let users: Vec<_> = graph.users().try_collect().await.unwrap();
        assert!(!users.is_empty(), "{algorithm:?}");
    }
    // A certificate the app does not know is refused by the token endpoint.
    let stranger = AppCertificate::generate("stranger").unwrap();
    let credential = AppCredential::new(
        &c,
        &emu.info().tenant_id,
        &app.client_id,
        AppSecret::Certificate {
            certificate: stranger,
            algorithm: AssertionAlgorithm::Ps256,
        },
    );
    assert!(
        matches!(credential.fetch().await, Err(GraphError::Identity(e)) if e.error == "invalid_client")
    );
}

#[tokio::test]
async fn users_and_mailbox_kinds_match_the_tenant() {
    let emu = emulator(Config {
        users: 12,
        messages_per_user: 2,
        seed: 7,
        ..Default::default()
    })
    .await;
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
async fn folder_tree_includes_hidden_folders() {
    let emu = emulator(Config {
        users: 3,
        messages_per_user: 5,
        seed: 3,
        ..Default::default()
    })
    .await;
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
    let emu = emulator(Config {
        users: 3,
        messages_per_user: 30,
        seed: 11,
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let mailbox = user.mailbox.unwrap();
    let mut expected: BTreeMap<String, bytes::Bytes> = BTreeMap::new();
    for f in mailbox.folders.iter().filter(|f| !f.search_folder) {
        for m in &f.messages {
            expected.insert(m.immutable_id.clone(), m.mime.clone());
        }
    }
    assert!(expected.len() >= 30);
    let mut fetched = 0;
    for folder in graph
        .folder_tree(&user.id)
        .await
        .unwrap()
        .iter()
        .filter(|f| !f.is_search_folder())
    {
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
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 10,
        seed: 5,
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let inbox = graph.mail_folder(&user.id, "inbox").await.unwrap();
    let (first, link) = full_delta(&graph, &user.id, &inbox.id, 50).await;
    let ids: Vec<String> = first
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(m) => Some(m.id.clone()),
            Change::Removed { .. } => None,
        })
        .collect();
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
    let upserts: BTreeSet<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(m) => Some(m.id.clone()),
            _ => None,
        })
        .collect();
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
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 10,
        seed: 6,
        ..Default::default()
    })
    .await;
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
    let mailbox = user.mailbox.unwrap();
    let messages: Vec<_> = mailbox
        .folders
        .iter()
        .filter(|f| !f.search_folder)
        .flat_map(|f| {
            f.messages
                .iter()
                .map(|m| (m.immutable_id.clone(), m.mime.clone()))
        })
        .collect();
    // Every kind of transient failure, on MIME downloads of this mailbox.
    for kind in [
        FaultKind::Throttled,
        FaultKind::Unavailable,
        FaultKind::UnavailableEmpty,
        FaultKind::GatewayTimeout,
        FaultKind::ConnectionReset,
        FaultKind::TruncatedBody,
    ] {
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
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 5,
        seed: 4,
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let id = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| &f.messages)
        .next()
        .unwrap()
        .immutable_id
        .clone();
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
async fn batch_of_message_reads() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 25,
        seed: 8,
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let ids: Vec<String> = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| f.messages.iter().map(|m| m.immutable_id.clone()))
        .take(20)
        .collect();
    let requests: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            BatchRequest::get(
                i.to_string(),
                graph.batch_path(&["users", &user.id, "messages", id]),
            )
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
        BatchRequest::get(
            "a",
            graph.batch_path(&["users", &user.id, "messages", "no-such-message"]),
        ),
        BatchRequest::get(
            "b",
            graph.batch_path(&["users", &user.id, "messages", &ids[0]]),
        )
        .depends_on("a"),
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

/// The value of the hidden `ctx` input of the emulator's sign-in and consent pages.
fn ctx_of(html: &str) -> String {
    let marker = r#"name="ctx" value=""#;
    let start = html.find(marker).expect("a ctx field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Drive the sign-in window as the admin would: open the authorize URL, sign in, consent.
/// Returns the URL the webview is redirected to.
async fn sign_in_as_admin(emu: &Emulator, authorize: &url::Url) -> url::Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let info = emu.info();
    let page = http
        .get(authorize.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login = format!("{}/{}/login", info.authority, info.tenant_id);
    let form = [
        ("ctx", ctx_of(&page)),
        ("login", info.admin.username.clone()),
        ("passwd", info.admin.password.clone()),
    ];
    let resp = http.post(&login).form(&form).send().await.unwrap();
    let resp = if resp.status().is_redirection() {
        resp
    } else {
        let page = resp.text().await.unwrap();
        let consent = format!("{}/{}/consent", info.authority, info.tenant_id);
        http.post(&consent)
            .form(&[("ctx", ctx_of(&page)), ("accept", "yes".into())])
            .send()
            .await
            .unwrap()
    };
    assert!(resp.status().is_redirection(), "{}", resp.status());
    url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn interactive_sign_in_then_provision_an_app_that_backs_up_with_its_certificate() {
    let emu = emulator(Config {
        users: 3,
        messages_per_user: 3,
        seed: 2,
        ..Default::default()
    })
    .await;
    let c = cloud(&emu);
    let info = emu.info().clone();
    let redirect = url::Url::parse("http://127.0.0.1:53682/").unwrap();
    let scopes = strongroom_graph::provision::provisioning_scopes(&c);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let (sign_in, request) =
        strongroom_graph::SignIn::begin(&c, &info.tenant_id, &info.client_id, &redirect, &scopes);
    let landed = sign_in_as_admin(&emu, &request.url).await;
    let session = sign_in.finish(&landed).await.unwrap();
    assert_eq!(
        session.tenant_id(),
        Some(info.tenant_id.as_str()),
        "tenant from the ID token"
    );
    let tenant_id = session.tenant_id().unwrap().to_owned();
    let first_refresh = session.refresh_token();

    // The refresh token works and rotates.
    session.invalidate();
    session.access_token().await.unwrap();
    assert_ne!(
        session.refresh_token(),
        first_refresh,
        "refresh tokens rotate"
    );

    let admin = GraphClient::with_options(&c, session, options());
    let cert = AppCertificate::generate("Strongroom backup").unwrap();
    let app = admin
        .provision_app("Strongroom backup", &cert, strongroom_graph::READ_ROLES)
        .await
        .unwrap();
    assert_ne!(app.app_id, info.client_id);
    assert_eq!(app.granted_roles.len(), strongroom_graph::READ_ROLES.len());

    // Unattended backup with the provisioned app and its certificate.
    let credential = AppCredential::new(
        &c,
        &tenant_id,
        &app.app_id,
        AppSecret::Certificate {
            certificate: cert,
            algorithm: AssertionAlgorithm::Ps256,
        },
    );
    let graph = GraphClient::with_options(&c, credential, options());
    let user = licensed_user(&emu);
    let tree = graph.folder_tree(&user.id).await.unwrap();
    assert!(!tree.is_empty());
    let (id, mime) = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| &f.messages)
        .map(|m| (m.immutable_id.clone(), m.mime.clone()))
        .next()
        .unwrap();
    assert_eq!(
        graph.message_mime(&user.id, &id, MIME_LIMIT).await.unwrap(),
        mime
    );
    let users: Vec<_> = graph.users().try_collect().await.unwrap();
    assert!(!users.is_empty());
}

#[tokio::test]
async fn a_tampered_redirect_is_refused() {
    let emu = emulator(Config::default()).await;
    let c = cloud(&emu);
    let info = emu.info().clone();
    let redirect = url::Url::parse("http://127.0.0.1:53682/").unwrap();
    let (sign_in, request) = strongroom_graph::SignIn::begin(
        &c,
        &info.tenant_id,
        &info.client_id,
        &redirect,
        &["openid", "offline_access"],
    );
    let mut landed = sign_in_as_admin(&emu, &request.url).await;
    let pairs: Vec<(String, String)> = landed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    landed.query_pairs_mut().clear().extend_pairs(pairs);
    assert!(matches!(
        sign_in.finish(&landed).await,
        Err(GraphError::SignIn(_))
    ));
}

#[tokio::test]
async fn restore_a_message_as_sent_with_attachments_then_delete_it() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 2,
        seed: 12,
        ..Default::default()
    })
    .await;
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
    let snap_msg = snap_user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| &f.messages)
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
    let ids: Vec<String> = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| f.messages.iter().map(|m| m.immutable_id.clone()))
        .take(20)
        .collect();
    let requests: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            BatchRequest::get(
                format!("m{i}"),
                graph.batch_path(&["users", &user.id, "messages", id]),
            )
        })
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

#[tokio::test]
async fn users_delta_reports_new_and_removed_users() {
    let emu = emulator(Config {
        users: 4,
        messages_per_user: 1,
        seed: 14,
        ..Default::default()
    })
    .await;
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

#[tokio::test]
async fn access_policy_and_full_mailbox_surface_as_typed_errors() {
    let emu = emulator(Config {
        users: 6,
        messages_per_user: 3,
        seed: 15,
        ..Default::default()
    })
    .await;
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

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_token_or_secret_reaches_the_logs_or_error_messages() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("strongroom_graph=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emu = emulator(Config {
        users: 2,
        messages_per_user: 5,
        seed: 16,
        ..Default::default()
    })
    .await;
    let info = emu.info().clone();
    let credential = secret_credential(&emu);
    let token = credential.access_token().await.unwrap();
    let graph = GraphClient::with_options(&cloud(&emu), credential.clone(), options());
    let user = licensed_user(&emu);
    for kind in [
        FaultKind::Throttled,
        FaultKind::ConnectionReset,
        FaultKind::TruncatedBody,
        FaultKind::GatewayTimeout,
    ] {
        emu.schedule_fault(
            ScheduledFault {
                kind,
                path_contains: None,
            },
            1,
        );
    }
    graph.folder_tree(&user.id).await.unwrap();
    // Errors are shown to users and logged by callers: they must not carry secrets either.
    let mut shown = Vec::new();
    let wrong = AppCredential::new(
        &cloud(&emu),
        &info.tenant_id,
        &info.client_id,
        AppSecret::Secret("wrong-secret-value".into()),
    );
    shown.push(wrong.fetch().await.unwrap_err().to_string());
    shown.push(format!("{:?}", wrong.fetch().await.unwrap_err()));
    shown.push(format!("{credential:?} {token:?} {wrong:?}"));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("Graph request failed"),
        "the faults were logged: {logs}"
    );
    for secret in [
        info.client_secret.as_str(),
        token.secret(),
        "wrong-secret-value",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
        for s in &shown {
            assert!(
                !s.contains(secret),
                "a secret reached an error or Debug output: {s}"
            );
        }
    }
}

#[tokio::test]
async fn an_access_token_the_service_calls_expired_is_replaced_once() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 1,
        seed: 17,
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let first: Vec<_> = graph.users().try_collect().await.unwrap();
    // The service's clock moves past the token's lifetime; our cache still thinks it fresh.
    emu.advance_clock(Duration::from_secs(2 * 3600));
    let second: Vec<_> = graph.users().try_collect().await.unwrap();
    assert_eq!(first.len(), second.len());
}

#[tokio::test]
async fn a_revoked_refresh_token_is_an_identity_error() {
    let emu = emulator(Config::default()).await;
    let c = cloud(&emu);
    let info = emu.info().clone();
    let redirect = url::Url::parse("http://127.0.0.1:53682/").unwrap();
    let (sign_in, request) = strongroom_graph::SignIn::begin(
        &c,
        &info.tenant_id,
        &info.client_id,
        &redirect,
        &[
            "openid",
            "offline_access",
            "https://graph.microsoft.com/User.Read.All",
        ],
    );
    let landed = sign_in_as_admin(&emu, &request.url).await;
    let session = sign_in.finish(&landed).await.unwrap();
    emu.revoke_refresh_tokens();
    session.invalidate();
    match session.access_token().await {
        Err(GraphError::Identity(e)) => assert_eq!(e.error, "invalid_grant", "{e}"),
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn a_whole_mailbox_backs_up_exactly_through_random_faults() {
    let emu = emulator(Config {
        users: 2,
        messages_per_user: 15,
        seed: 18,
        fault_rate: 0.15,
        fault_kinds: vec![
            FaultKind::Throttled,
            FaultKind::Unavailable,
            FaultKind::UnavailableEmpty,
            FaultKind::GatewayTimeout,
            FaultKind::ConnectionReset,
            FaultKind::TruncatedBody,
        ],
        ..Default::default()
    })
    .await;
    let graph = client(&emu);
    let user = licensed_user(&emu);
    let expected: BTreeMap<String, bytes::Bytes> = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .filter(|f| !f.search_folder)
        .flat_map(|f| {
            f.messages
                .iter()
                .map(|m| (m.immutable_id.clone(), m.mime.clone()))
        })
        .collect();
    let mut got = BTreeMap::new();
    for folder in graph
        .folder_tree(&user.id)
        .await
        .unwrap()
        .iter()
        .filter(|f| !f.is_search_folder())
    {
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
