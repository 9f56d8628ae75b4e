//! The router as an [`EntityClient`]: the typed calls of a behavior, erased by kind
//! ([`ClientKind`], one per hosted kind) and run as any caller's `command`/`get`, with
//! the deadline the caller gave. Kinds get a [`WeakRouter`], so the entities of a
//! router that was dropped are refused rather than keeping it alive.

use super::{Inner, RouteError, Router, UnavailableKind};
use crate::actors::client::{Deferred, EntityClient, Erased};
use crate::domain::{Aggregate, EntityKind};
use futures::future::BoxFuture;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// One kind's side of the client, erased over the aggregate type.
pub(super) trait ClientKind: Send + Sync + 'static {
    fn command(
        &self,
        router: Router,
        id: String,
        cmd: Erased,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>>;
    fn get(
        &self,
        router: Router,
        id: String,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>>;
}

pub(super) struct Typed<A>(pub std::marker::PhantomData<fn() -> A>);

impl<A: Aggregate> ClientKind for Typed<A> {
    fn command(
        &self,
        router: Router,
        id: String,
        cmd: Erased,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        Box::pin(async move {
            let Ok(cmd) = cmd.downcast::<A::Command>() else {
                return Err(unavailable(format!("not a command of kind {}", A::KIND)));
            };
            let applied = router.command_at::<A>(&id, *cmd, within, false).await?;
            Ok(Box::new(applied) as Erased)
        })
    }

    fn get(
        &self,
        router: Router,
        id: String,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        Box::pin(async move {
            let state = router.get_at::<A>(&id, within, false).await?;
            Ok(Box::new(state) as Erased)
        })
    }
}

fn unavailable(detail: String) -> RouteError {
    RouteError::Unavailable {
        kind: UnavailableKind::EntityUnavailable,
        retry_after: Duration::from_secs(1),
        detail,
    }
}

fn refuse(detail: String) -> BoxFuture<'static, Result<Erased, RouteError>> {
    Box::pin(async move { Err(unavailable(detail)) })
}

impl Router {
    fn client_kind(&self, kind: EntityKind) -> Option<Arc<dyn ClientKind>> {
        self.inner.clients.get(&kind).cloned()
    }
}

impl EntityClient for Router {
    fn ask_timeout(&self) -> Duration {
        self.inner.ask_timeout
    }

    fn command_erased(
        &self,
        kind: EntityKind,
        id: String,
        cmd: Erased,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        match self.client_kind(kind) {
            Some(k) => k.command(self.clone(), id, cmd, within),
            None => refuse(format!("kind {kind} is not registered with the router")),
        }
    }

    fn get_erased(
        &self,
        kind: EntityKind,
        id: String,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        match self.client_kind(kind) {
            Some(k) => k.get(self.clone(), id, within),
            None => refuse(format!("kind {kind} is not registered with the router")),
        }
    }

    /// On one node every partition is this node's and never moves: the effect runs. In a
    /// cluster it holds its partition's gate ([`crate::cluster::Cluster::enter`]).
    fn gated(
        &self,
        kind: EntityKind,
        id: String,
        effect: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<(), Deferred>> {
        let cluster = self.cluster().cloned();
        Box::pin(async move {
            match cluster {
                None => effect.await,
                Some(cluster) => cluster.enter(kind, &id)?.run(effect).await,
            }
            Ok(())
        })
    }
}

/// The router as its kinds hold it.
pub(super) struct WeakRouter {
    pub inner: Weak<Inner>,
    pub ask_timeout: Duration,
}

impl WeakRouter {
    fn router(&self) -> Option<Router> {
        self.inner.upgrade().map(|inner| Router { inner })
    }
}

const GONE: &str = "the router that hosts this entity has stopped";

impl EntityClient for WeakRouter {
    fn ask_timeout(&self) -> Duration {
        self.ask_timeout
    }

    fn command_erased(
        &self,
        kind: EntityKind,
        id: String,
        cmd: Erased,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        match self.router() {
            Some(r) => r.command_erased(kind, id, cmd, within),
            None => refuse(GONE.into()),
        }
    }

    fn get_erased(
        &self,
        kind: EntityKind,
        id: String,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        match self.router() {
            Some(r) => r.get_erased(kind, id, within),
            None => refuse(GONE.into()),
        }
    }

    fn gated(
        &self,
        kind: EntityKind,
        id: String,
        effect: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<(), Deferred>> {
        match self.router() {
            Some(r) => r.gated(kind, id, effect),
            None => Box::pin(async { Err(Deferred::Stopped) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cart::Cart;

    #[tokio::test]
    async fn a_kind_the_router_does_not_host_is_refused_typed() {
        let router = Router::builder(Duration::from_millis(50)).build();
        let client: Arc<dyn EntityClient> = Arc::new(router);
        let err = client.get::<Cart>("c-1").await.expect_err("refused");
        assert!(err.to_string().contains("not registered"), "{err}");
    }

    #[tokio::test]
    async fn the_handle_kinds_hold_refuses_once_its_router_is_dropped() {
        let router = Router::builder(Duration::from_millis(50)).build();
        let handle: Arc<dyn EntityClient> = Arc::new(WeakRouter {
            inner: Arc::downgrade(&router.inner),
            ask_timeout: Duration::from_millis(50),
        });
        let live = handle.get::<Cart>("c-1").await.expect_err("not hosted");
        assert!(live.to_string().contains("not registered"), "{live}");
        drop(router);
        let gone = handle.get::<Cart>("c-1").await.expect_err("gone");
        assert!(gone.to_string().contains(GONE), "{gone}");
    }
}
