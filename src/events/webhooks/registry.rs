//! The node's view of the webhook endpoint registry ([`crate::domain::webhook`]): read
//! through the router (the registry is one entity, in one partition, anywhere in the
//! cluster) and kept with the time the read began, so a reader can tell whether an
//! endpoint registered before some event is certainly in it.

use std::sync::{Arc, RwLock};

use crate::clock::now_ms;
use crate::domain::webhook::{Webhooks, WebhooksState, REGISTRY_ID};
use crate::domain::Millis;
use crate::router::{RouteError, Router};

/// The registry as last read, and when that read began.
pub struct Registry {
    router: Router,
    snap: RwLock<(Millis, Arc<WebhooksState>)>,
}

impl Registry {
    pub fn new(router: Router) -> Arc<Self> {
        Arc::new(Self {
            router,
            snap: RwLock::new((0, Arc::new(WebhooksState::default()))),
        })
    }

    /// Reads the registry again. Every change committed before the returned time is in
    /// the state (the time is taken before the read).
    pub async fn refresh(&self) -> Result<(Millis, Arc<WebhooksState>), RouteError> {
        let started = now_ms();
        let state = Arc::new(self.router.get::<Webhooks>(REGISTRY_ID).await?);
        let mut snap = self.snap.write().unwrap_or_else(|p| p.into_inner());
        if started >= snap.0 {
            *snap = (started, state);
        }
        Ok(snap.clone())
    }

    /// The last read, and when it began (0 before the first).
    pub fn current(&self) -> (Millis, Arc<WebhooksState>) {
        self.snap.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
