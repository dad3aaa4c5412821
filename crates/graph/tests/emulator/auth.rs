//! Client credentials (secret and certificate), delegated sign-in, token lifetime, and
//! keeping secrets out of logs and errors.

use std::time::Duration;

use futures::TryStreamExt;
use m365_emulator::{AppSpec, FaultKind, ScheduledFault};
use strongroom_graph::{AppCertificate, AssertionAlgorithm, GraphClient, GraphError, TokenSource};

use crate::common::*;

#[tokio::test]
async fn client_credentials_with_a_secret_and_a_wrong_secret() {
    let emu = emulator(Config::default()).await;
    let token = secret_credential(&emu).access_token().await.unwrap();
    assert!(!token.secret().is_empty());
    let wrong = credential_with_secret(&emu, "nope");
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
    let tenant_id = &emu.info().tenant_id;
    for algorithm in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let credential =
            certificate_credential(&c, tenant_id, &app.client_id, cert.clone(), algorithm);
        let graph = GraphClient::with_options(&c, credential, options());
        let users: Vec<_> = graph.users().try_collect().await.unwrap();
        assert!(!users.is_empty(), "{algorithm:?}");
    }
    // A certificate the app does not know is refused by the token endpoint.
    let stranger = AppCertificate::generate("stranger").unwrap();
    let credential = certificate_credential(
        &c,
        tenant_id,
        &app.client_id,
        stranger,
        AssertionAlgorithm::Ps256,
    );
    assert!(
        matches!(credential.fetch().await, Err(GraphError::Identity(e)) if e.error == "invalid_client")
    );
}

#[tokio::test]
async fn a_tampered_redirect_is_refused() {
    let emu = emulator(Config::default()).await;
    let (sign_in, request) = begin_sign_in(&emu, &["openid", "offline_access"]);
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
async fn an_access_token_the_service_calls_expired_is_replaced_once() {
    let emu = seeded(2, 1, 17).await;
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
    let (sign_in, request) = begin_sign_in(
        &emu,
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

    let emu = seeded(2, 5, 16).await;
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
    let wrong = credential_with_secret(&emu, "wrong-secret-value");
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
