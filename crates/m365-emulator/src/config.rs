//! How an emulator instance is set up: tenant size and seed, throttling, latency and faults.

use std::path::PathBuf;
use std::time::Duration;

/// Everything `Emulator::start` needs. `Config::default()` is a small, unthrottled tenant.
#[derive(Debug, Clone)]
pub struct Config {
    /// Generated users (every kind appears once there are at least eight; see docs/EMULATOR.md).
    pub users: usize,
    /// Generated messages in each mailbox.
    pub messages_per_user: usize,
    /// Seed for every generated id, name, folder tree and MIME byte.
    pub seed: u64,
    /// What generated attachments look like.
    pub attachments: Attachments,
    /// Per (app, mailbox) request budget.
    pub throttle: Throttle,
    /// Concurrent requests per (app, mailbox) before 429 MailboxConcurrency (when throttling).
    pub concurrency_limit: usize,
    /// Added to every Graph request before it is handled.
    pub latency: Duration,
    /// Probability (0.0..=1.0) that a Graph request gets one of `fault_kinds` instead.
    pub fault_rate: f64,
    pub fault_kinds: Vec<FaultKind>,
    /// A tenant spec (JSON) that replaces the generated tenant.
    pub tenant_file: Option<PathBuf>,
    /// `.eml` directories imported byte for byte into a mailbox folder.
    pub eml_imports: Vec<EmlImport>,
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            users: 5,
            messages_per_user: 20,
            seed: 1,
            attachments: Attachments::Realistic,
            throttle: Throttle::Off,
            concurrency_limit: 4,
            latency: Duration::ZERO,
            fault_rate: 0.0,
            fault_kinds: FaultKind::ALL.to_vec(),
            tenant_file: None,
            eml_imports: Vec::new(),
            port: 0,
        }
    }
}

/// Generated attachments. Either way about one message in eight carries 1–3 of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachments {
    /// Binary documents (PDF, Office, ZIP, PNG) with a long-tailed size: median around
    /// 100 KB, a few several MB. What backup and restore benchmarks need.
    Realistic,
    /// The same documents at 2–30 KB, and text files (plain text, CSV: a third of all
    /// attachments) whose content a search indexes: a large mailbox for search benchmarks,
    /// where big binary payloads would only cost disk.
    Small,
}

/// Outlook's per (app ID, mailbox) limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// No concurrency limit and no budget: for measuring the client's own ceiling.
    Off,
    /// Microsoft's documented limits: 10,000 requests per 10 minutes, 4 concurrent.
    Realistic,
    /// A smaller budget with the same shape, so benchmarks hit the bound in seconds.
    Scaled { requests: u32, per: Duration },
}

impl Throttle {
    /// The request budget, if any.
    pub fn budget(&self) -> Option<(u32, Duration)> {
        match *self {
            Throttle::Off => None,
            Throttle::Realistic => Some((10_000, Duration::from_secs(600))),
            Throttle::Scaled { requests, per } => Some((requests, per)),
        }
    }
}

/// Failures the fault injector can return instead of a normal Graph response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 TooManyRequests with a fractional Retry-After.
    Throttled,
    /// 503 with a JSON error body and Retry-After.
    Unavailable,
    /// 503 with an empty body (seen in production).
    UnavailableEmpty,
    /// 504 Gateway Timeout.
    GatewayTimeout,
    /// The TCP connection is reset before any response byte.
    ConnectionReset,
    /// A 200 whose body stops halfway (Content-Length promises more).
    TruncatedBody,
    /// Delta requests with a token get 410 SyncStateNotFound.
    DeltaTokenExpired,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Throttled,
        FaultKind::Unavailable,
        FaultKind::UnavailableEmpty,
        FaultKind::GatewayTimeout,
        FaultKind::ConnectionReset,
        FaultKind::TruncatedBody,
        FaultKind::DeltaTokenExpired,
    ];
}

/// One `--import-eml DIR --into ADDRESS[/FOLDER/PATH]`.
#[derive(Debug, Clone)]
pub struct EmlImport {
    pub dir: PathBuf,
    /// A mailbox address, optionally followed by a folder path (created when missing).
    pub into: String,
}
