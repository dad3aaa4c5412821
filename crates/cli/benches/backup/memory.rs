//! Peak memory: the `strongroom backup` process's peak RSS (its own `ru_maxrss`, see
//! `measure`) on tenants of 1×, 2× and 4× the size, throttling off. Each size has twice as
//! many generated messages per mailbox as the one before, and twice as many messages with a
//! large attachment (tens of MB), spread over different mailboxes so that the client meets
//! several of them at once, as a tenant-wide backup does. The target is a flat peak (4× ÷ 1×
//! close to 1) well under 300 MiB.
//!
//! Every size also runs without the large messages, which tells growth with the message
//! count apart from buffering of large messages. The floor is the Argon2id key derivation
//! that opens the archive (64 MiB, production cost), paid by every command.

use m365_emulator::{Config, Emulator, Throttle};

use crate::strongroom::Archive;
use crate::Args;

/// One tenant size's result.
struct Point {
    scale: usize,
    messages: u64,
    mb: f64,
    large: usize,
    wall_s: f64,
    peak_mib: f64,
}

pub async fn run(args: &Args) {
    // 10 users: 8 mailboxes (licensed, shared, room, disabled), 2 accounts without one.
    let (users, per_user, attachment_mb) = if args.quick {
        (10, 20, 24)
    } else {
        (10, 80, 40)
    };
    let mut points = Vec::new();
    for (scale, large_per_unit) in [(1, 0), (2, 0), (4, 0), (1, 2), (2, 2), (4, 2)] {
        let emu = Emulator::start(Config {
            users,
            messages_per_user: per_user * scale,
            seed: 23,
            throttle: Throttle::Off,
            ..Config::default()
        })
        .await
        .expect("emulator");
        // Two large messages per 1× (in the second series), in different mailboxes' Inboxes.
        let mailboxes: Vec<String> = emu
            .tenant_metadata()
            .users
            .into_iter()
            .filter(|u| u.mailbox.is_some())
            .map(|u| u.id)
            .collect();
        let large = large_per_unit * scale;
        for i in 0..large {
            let user = &mailboxes[i % mailboxes.len()];
            let mime = crate::mime::with_attachment(
                i as u64 + 1,
                "bench@example.org",
                attachment_mb << 20,
            );
            emu.add_message(user, "Inbox", &mime)
                .expect("large message delivered");
        }
        let scratch = crate::scratch("strongroom-bench-memory-");
        let info = emu.info().clone();
        let path = scratch.path().to_owned();
        let backup = tokio::task::spawn_blocking(move || Archive::connect(&path, &info).backup())
            .await
            .expect("backup");
        for f in backup.failures() {
            println!("  FAILED {f}");
        }
        points.push(Point {
            scale,
            messages: backup.messages(),
            mb: backup.bytes() as f64 / 1e6,
            large,
            wall_s: backup.run.wall_s,
            peak_mib: backup.run.peak_mib(),
        });
        emu.shutdown().await;
    }

    println!(
        "\npeak memory of `strongroom backup` (throttling off; large messages carry a {attachment_mb} MiB attachment):"
    );
    for p in &points {
        println!(
            "  {}×: {:>5} messages ({} large), {:>7.1} MB in {:>5.1} s: peak RSS {:>6.1} MiB",
            p.scale, p.messages, p.large, p.mb, p.wall_s, p.peak_mib
        );
    }
    let plain = points[2].peak_mib / points[0].peak_mib;
    let flat = points[5].peak_mib / points[3].peak_mib;
    let worst = points.iter().map(|p| p.peak_mib).fold(0.0, f64::max);
    println!("  4× ÷ 1× peak: {flat:.2} with large messages, {plain:.2} without   (target: about 1.0, all well under 300 MiB; worst {worst:.0} MiB)");
    println!(
        "{}",
        serde_json::json!({
            "bench": "backup-memory", "quick": args.quick, "attachment_mib": attachment_mb,
            "peak_mib": points.iter().map(|p| (p.peak_mib * 10.0).round() / 10.0).collect::<Vec<_>>(),
            "messages": points.iter().map(|p| p.messages).collect::<Vec<_>>(),
            "large": points.iter().map(|p| p.large).collect::<Vec<_>>(),
            "ratio_4x_1x": (flat * 100.0).round() / 100.0,
            "ratio_4x_1x_without_large": (plain * 100.0).round() / 100.0,
        })
    );
}
