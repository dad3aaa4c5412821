//! Interactive admin sign-in, then provisioning an app that backs up with its certificate.

use futures::TryStreamExt;
use strongroom_graph::{AppCertificate, AssertionAlgorithm, GraphClient, TokenSource};

use crate::common::*;

#[tokio::test]
async fn interactive_sign_in_then_provision_an_app_that_backs_up_with_its_certificate() {
    let emu = seeded(3, 3, 2).await;
    let c = cloud(&emu);
    let info = emu.info().clone();
    let scopes = strongroom_graph::provision::provisioning_scopes(&c);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let (sign_in, request) = begin_sign_in(&emu, &scopes);
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
    let credential =
        certificate_credential(&c, &tenant_id, &app.app_id, cert, AssertionAlgorithm::Ps256);
    let graph = GraphClient::with_options(&c, credential, options());
    let user = licensed_user(&emu);
    let tree = graph.folder_tree(&user.id).await.unwrap();
    assert!(!tree.is_empty());
    let (id, mime) = all_messages(&user)
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
