//! A node's view of one entity that a projection reads whole (the webhook registry, the
//! saved notification templates): read through the router (the entity lives in one
//! partition, anywhere in the cluster) and kept with the time the read began, so a
//! reader can tell whether a change committed before some event is certainly in it.

use std::sync::{Arc, RwLock};

use super::handler::HandlerError;
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

    /// Whether the view certainly holds every change committed before `at` (allowing
    /// `margin_ms` of clock difference between nodes), reading again if it might not: a
    /// read that began too early is [`HandlerError::NotYet`] (the event waits one pass),
    /// an unreachable entity `Unavailable` naming `what`.
    pub async fn caught_up(
        &self,
        at: Millis,
        margin_ms: u64,
        what: &str,
    ) -> Result<(), HandlerError> {
        let needed = at.saturating_add(margin_ms);
        if self.current().0 >= needed {
            return Ok(());
        }
        let (read_at, _) = self
            .refresh()
            .await
            .map_err(|e| HandlerError::Unavailable(format!("{what}: {e}")))?;
        if read_at < needed {
            return Err(HandlerError::NotYet);
        }
        Ok(())
    }

    /// The entity as read at most `max_age_ms` ago: read again when the last read is
    /// older. When that read fails, a previous read is still answered (a cart's price
    /// shown from a copy a few seconds old; a checkout reads the entity itself).
    pub async fn recent(&self, max_age_ms: u64) -> Result<Arc<A::State>, RouteError> {
        let (at, state) = self.current();
        if at > 0 && now_ms().saturating_sub(at) < max_age_ms {
            return Ok(state);
        }
        match self.refresh().await {
            Ok((_, s)) => Ok(s),
            Err(_) if at > 0 => Ok(state),
            Err(e) => Err(e),
        }
    }

    /// The last read, and when it began (0 before the first).
    pub fn current(&self) -> (Millis, Arc<A::State>) {
        self.snap.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
