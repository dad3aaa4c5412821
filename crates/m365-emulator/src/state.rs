//! State shared by every handler of one emulator instance.

use crate::clock::Clock;
use crate::config::Config;
use crate::counters::Counters;
use crate::faults::Faults;
use crate::identity::jwt::TokenSigner;
use crate::identity::IdentityState;
use crate::tenant::Tenant;
use crate::throttle::Throttler;
use crate::ReadyInfo;
use std::sync::{Arc, Mutex, RwLock};

pub type AppState = Arc<Shared>;

#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub info: ReadyInfo,
    pub tenant: RwLock<Tenant>,
    pub clock: Clock,
    pub signer: TokenSigner,
    pub identity: Mutex<IdentityState>,
    pub throttle: Throttler,
    pub faults: Faults,
    pub counters: Counters,
    pub uploads: Mutex<crate::graph::uploads::UploadSessions>,
}

impl Shared {
    pub fn tenant(&self) -> std::sync::RwLockReadGuard<'_, Tenant> {
        self.tenant.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn tenant_mut(&self) -> std::sync::RwLockWriteGuard<'_, Tenant> {
        self.tenant.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn identity(&self) -> std::sync::MutexGuard<'_, IdentityState> {
        self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }
}
