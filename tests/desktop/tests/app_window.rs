//! The desktop app's window, driven through WebDriver: the first screen and the engine IPC.

use std::time::Duration;

use fantoccini::Locator;
use strongroom_desktop_tests::AppSession;

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_shows_the_engine_version_over_ipc() {
    let app = AppSession::start().await;
    let client = &app.client;

    // The footer is filled from the `engine_status` command: if IPC breaks, it never appears
    // and the window shows an error alert instead.
    let footer = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=engine-version]"))
        .await
        .expect("the engine version appears in the footer");
    let expected = format!(
        "Strongroom {} · idle",
        strongroom_engine::api::status().version
    );
    assert_eq!(footer.text().await.unwrap(), expected);

    let heading = client.find(Locator::Css("h2")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "No backup tasks yet");
    assert_eq!(client.title().await.unwrap(), "Strongroom");

    let shot = app.screenshot("desktop-dashboard").await;
    // A blank display compresses to ~4 KB; the rendered dashboard is several times that.
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 15_000,
        "the screenshot shows the window"
    );
    app.finish().await;
}
