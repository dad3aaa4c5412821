//! The emulator's own ceiling on loopback with throttling off: requests per second for a small
//! Graph GET, and MB/s of `$value` (generated-on-demand and stored MIME). Later benchmarks
//! compare against these figures to show the emulator is not their bottleneck.
//!
//! `cargo bench -p m365-emulator --bench ceiling [-- --quick]` (quick: about 6 s; full: about 30 s).

use m365_emulator::{Config, Emulator, Throttle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKERS: usize = 16;

async fn hammer(
    http: &reqwest::Client,
    urls: Vec<String>,
    token: &str,
    duration: Duration,
) -> (u64, u64, Duration) {
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (http, urls, token) = (http.clone(), urls.clone(), token.to_string());
            let (requests, bytes) = (requests.clone(), bytes.clone());
            tokio::spawn(async move {
                let mut i = w;
                while start.elapsed() < duration {
                    let resp = http
                        .get(&urls[i % urls.len()])
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("request");
                    assert!(resp.status().is_success(), "{}", resp.status());
                    let body = resp.bytes().await.expect("body");
                    requests.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                    i += WORKERS;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    (
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let duration = Duration::from_secs(if quick { 2 } else { 8 });
    // Tenant generation speed (it bounds how large a benchmark tenant can be).
    let (users, per_user) = if quick { (10, 100) } else { (20, 250) };
    let started = Instant::now();
    let generated = m365_emulator::tenant::generate::tenant(
        42,
        users,
        per_user,
        m365_emulator::Attachments::Realistic,
    );
    let generation = started.elapsed();
    let generated_messages: usize = generated
        .users
        .iter()
        .filter_map(|u| u.mailbox.as_ref())
        .map(|m| m.messages.len())
        .sum();
    drop(generated);

    let emu = Emulator::start(Config {
        users: 3,
        messages_per_user: 120,
        seed: 42,
        throttle: Throttle::Off,
        ..Default::default()
    })
    .await
    .expect("emulator");
    let info = emu.info().clone();
    let http = reqwest::Client::new();
    let resp: serde_json::Value = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            info.authority, info.tenant_id
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &info.client_id),
            ("client_secret", &info.client_secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = resp["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let tenant = emu.tenant();
    let user = tenant
        .users
        .iter()
        .find(|u| u.mailbox.is_some())
        .expect("a mailbox");
    let graph = format!("{}/v1.0/users/{}", info.graph, user.id);

    let (n, _, elapsed) = hammer(
        &http,
        vec![format!("{graph}/mailFolders/inbox")],
        &token,
        duration,
    )
    .await;
    let rps = n as f64 / elapsed.as_secs_f64();

    // The largest generated messages: $value rebuilds their MIME on every request.
    let mut messages: Vec<_> = user
        .mailbox
        .as_ref()
        .unwrap()
        .folders
        .iter()
        .flat_map(|f| f.messages.clone())
        .collect();
    messages.sort_by_key(|m| std::cmp::Reverse(m.size));
    let big: Vec<String> = messages
        .iter()
        .take(8)
        .map(|m| format!("{graph}/messages/{}/$value", m.id))
        .collect();
    let (_, generated_bytes, elapsed) = hammer(&http, big, &token, duration).await;
    let generated_mbps = generated_bytes as f64 / 1e6 / elapsed.as_secs_f64();

    // Stored MIME (imported or restored) is served from memory.
    let stored: Vec<String> = messages
        .iter()
        .take(8)
        .map(|m| {
            let ids = emu
                .add_message(&user.id, "Inbox/Bench", &m.mime)
                .expect("store");
            format!("{graph}/messages/{}/$value", ids.id)
        })
        .collect();
    let (_, stored_bytes, elapsed) = hammer(&http, stored, &token, duration).await;
    let stored_mbps = stored_bytes as f64 / 1e6 / elapsed.as_secs_f64();

    println!(
        "emulator ceiling (loopback, throttling off, {WORKERS} concurrent clients, {} s each):",
        duration.as_secs()
    );
    println!("  small GET (mailFolders/inbox): {rps:.0} requests/s");
    println!("  $value, generated MIME:        {generated_mbps:.1} MB/s");
    println!("  $value, stored MIME:           {stored_mbps:.1} MB/s");
    let per_second = generated_messages as f64 / generation.as_secs_f64();
    println!("  tenant generation:             {generated_messages} messages in {:.2} s ({per_second:.0} messages/s)", generation.as_secs_f64());
    println!(
        "{}",
        serde_json::json!({"bench": "emulator-ceiling", "quick": quick, "small_get_rps": rps.round(), "value_generated_mb_s": (generated_mbps * 10.0).round() / 10.0, "value_stored_mb_s": (stored_mbps * 10.0).round() / 10.0, "generated_messages_per_s": per_second.round()})
    );
    emu.shutdown().await;
}
