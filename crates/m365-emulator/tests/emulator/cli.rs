//! The binary prints exactly one JSON line when ready and serves until killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn serve_prints_one_ready_line_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_m365-emulator"))
        .args([
            "serve",
            "--port",
            "0",
            "--users",
            "3",
            "--messages-per-user",
            "2",
            "--seed",
            "5",
            "--throttle",
            "scaled",
            "--latency-ms",
            "1",
        ])
        .args([
            "--import-eml",
            crate::common::FIXTURES,
            "--into",
            "admin@contoso.onmicrosoft.com/Imported/2019",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn m365-emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    for key in [
        "authority",
        "graph",
        "tenant_id",
        "client_id",
        "client_secret",
        "control",
    ] {
        assert!(info[key].is_string(), "{key} missing in {line}");
    }
    assert!(info["admin"]["username"].is_string() && info["admin"]["password"].is_string());
    let http = crate::common::client();
    let token = crate::common::secret_token(
        &http,
        info["authority"].as_str().unwrap(),
        info["tenant_id"].as_str().unwrap(),
        info["client_id"].as_str().unwrap(),
        info["client_secret"].as_str().unwrap(),
    )
    .await;
    let resp = http
        .get(format!("{}/v1.0/users", info["graph"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    // --import-eml put the fixture .eml files into the folder path it named.
    let graph = info["graph"].as_str().unwrap();
    let folders: serde_json::Value = http
        .get(format!(
            "{graph}/v1.0/users/admin@contoso.onmicrosoft.com/mailFolders?$top=50"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let imported = folders["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["displayName"] == "Imported")
        .unwrap_or_else(|| panic!("Imported folder in {folders}"))
        .clone();
    let children: serde_json::Value = http
        .get(format!(
            "{graph}/v1.0/users/admin@contoso.onmicrosoft.com/mailFolders/{}/childFolders",
            imported["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(children["value"][0]["displayName"], "2019");
    assert_eq!(children["value"][0]["totalItemCount"], 1);
    child.kill().unwrap();
    child.wait().unwrap();
}
