//! Shared setup: starting the emulator, credentials, clients, and the delta and sign-in
//! loops that several areas drive.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
pub use m365_emulator::{Config, Emulator};
use strongroom_graph::{
    AppCertificate, AppCredential, AppSecret, AssertionAlgorithm, Backoff, Change, ClientOptions,
    Cloud, DeltaLink, GraphClient, GraphError, MailFolder, Message, MessageDeltaOptions, SignIn,
    SignInRequest,
};

pub type UserSnapshot = m365_emulator::control::UserSnapshot;

pub const MIME_LIMIT: usize = 64 << 20;

pub async fn emulator(config: Config) -> Emulator {
    Emulator::start(config).await.expect("emulator starts")
}

/// An emulator with the default fault and throttle settings and a seeded tenant.
pub async fn seeded(users: usize, messages_per_user: usize, seed: u64) -> Emulator {
    emulator(Config {
        users,
        messages_per_user,
        seed,
        ..Default::default()
    })
    .await
}

pub fn cloud(emu: &Emulator) -> Cloud {
    Cloud::new(&emu.info().authority, &emu.info().graph).unwrap()
}

/// Fast backoff so fault tests do not sleep for long; the fence still honours Retry-After.
pub fn options() -> ClientOptions {
    ClientOptions {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(200), 10)
            .with_seed(5),
        ..ClientOptions::default()
    }
}

/// The emulator's own app, with `secret` in place of its client secret.
pub fn credential_with_secret(emu: &Emulator, secret: &str) -> AppCredential {
    let info = emu.info();
    AppCredential::new(
        &cloud(emu),
        &info.tenant_id,
        &info.client_id,
        AppSecret::Secret(secret.to_owned()),
    )
}

pub fn secret_credential(emu: &Emulator) -> AppCredential {
    credential_with_secret(emu, &emu.info().client_secret)
}

pub fn certificate_credential(
    cloud: &Cloud,
    tenant_id: &str,
    client_id: &str,
    certificate: AppCertificate,
    algorithm: AssertionAlgorithm,
) -> AppCredential {
    AppCredential::new(
        cloud,
        tenant_id,
        client_id,
        AppSecret::Certificate {
            certificate,
            algorithm,
        },
    )
}

pub fn client(emu: &Emulator) -> GraphClient {
    GraphClient::with_options(&cloud(emu), secret_credential(emu), options())
}

/// A licensed user with a mailbox, and its snapshot.
pub fn licensed_user(emu: &Emulator) -> UserSnapshot {
    emu.tenant()
        .users
        .into_iter()
        .find(|u| u.kind == m365_emulator::UserKind::Licensed && u.mailbox.is_some())
        .expect("a licensed user")
}

/// Every message of the user's mailbox, search folders included, in folder order.
pub fn all_messages(
    user: &UserSnapshot,
) -> impl Iterator<Item = &m365_emulator::control::MessageSnapshot> {
    user.mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| &f.messages)
}

/// The immutable ids of the first `n` messages of the user's mailbox.
pub fn message_ids(user: &UserSnapshot, n: usize) -> Vec<String> {
    all_messages(user)
        .map(|m| m.immutable_id.clone())
        .take(n)
        .collect()
}

/// Immutable id → MIME of every message outside search folders: what a backup must fetch.
pub fn expected_mime(user: &UserSnapshot) -> BTreeMap<String, bytes::Bytes> {
    user.mailbox
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
        .collect()
}

/// The user's folder tree without search folders: the folders a backup walks.
pub async fn mail_folders(graph: &GraphClient, user: &str) -> Vec<MailFolder> {
    let mut tree = graph.folder_tree(user).await.unwrap();
    tree.retain(|f| !f.is_search_folder());
    tree
}

/// The ids of the upserted items among `changes`.
pub fn upserted_ids<'a>(changes: impl IntoIterator<Item = &'a Change<Message>>) -> Vec<String> {
    changes
        .into_iter()
        .filter_map(|c| match c {
            Change::Upsert(m) => Some(m.id.clone()),
            Change::Removed { .. } => None,
        })
        .collect()
}

pub async fn full_delta(
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

pub async fn changes_since(
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

/// Start an interactive sign-in for the emulator's app, redirecting to a loopback URL.
pub fn begin_sign_in(emu: &Emulator, scopes: &[&str]) -> (SignIn, SignInRequest) {
    let info = emu.info();
    let redirect = url::Url::parse("http://127.0.0.1:53682/").unwrap();
    SignIn::begin(
        &cloud(emu),
        &info.tenant_id,
        &info.client_id,
        &redirect,
        scopes,
    )
}

/// Drive the sign-in window as the admin would (the emulator plays the browser).
/// Returns the URL the webview is redirected to.
pub async fn sign_in_as_admin(emu: &Emulator, authorize: &url::Url) -> url::Url {
    let landed = emu.sign_in_as_admin(authorize.as_str()).await.unwrap();
    url::Url::parse(&landed).unwrap()
}
