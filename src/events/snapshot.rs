//! A node's view of one entity that a projection reads whole (the webhook registry, the
//! saved notification templates): read through the router (the entity lives in one
//! partition, anywhere in the cluster) and kept with the time the read began, so a
//! reader can tell whether a change committed before some event is certainly in it.

use std::sync::{Arc, RwLock};

use crate::clock::now_ms;
use crate::domain::{Aggregate, Millis};
use crate::router::{RouteError, Router};

/// The entity as last read, and when that read began.
pub struct EntitySnapshot<A: Aggregate> {
    router: Router,
    id: &'static str,
    snap: RwLock<(Millis, Arc<A::State>)>,
}

impl<A: Aggregate> EntitySnapshot<A> {
    pub fn new(router: Router, id: &'static str) -> Arc<Self> {
        Arc::new(Self {
            router,
            id,
            snap: RwLock::new((0, Arc::new(A::State::default()))),
        })
    }

    /// Reads the entity again. Every change committed before the returned time is in the
    /// state (the time is taken before the read).
    pub async fn refresh(&self) -> Result<(Millis, Arc<A::State>), RouteError> {
        let started = now_ms();
        let state = Arc::new(self.router.get::<A>(self.id).await?);
        let mut snap = self.snap.write().unwrap_or_else(|p| p.into_inner());
        if started >= snap.0 {
            *snap = (started, state);
        }
        Ok(snap.clone())
    }

    /// The last read, and when it began (0 before the first).
    pub fn current(&self) -> (Millis, Arc<A::State>) {
        self.snap.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
