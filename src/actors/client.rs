//! How a behavior reaches another entity: the narrow [`EntityClient`] trait, and the
//! typed failure of such a call ([`RouteError`]).
//!
//! A command's answer is an [`Applied`] (or its [`Rejection`]), whoever asks.
//!
//! The router implements the trait (`router/client.rs`) and hands it to every kind it
//! hosts when it is built; the entity shell passes it to its behavior with each side
//! effect ([`super::behavior::Effects`]). So `actors` depends on this trait only, never on
//! the router or the supervision tree that sit above it.
//!
//! The trait itself is object-safe (each call erases its command and answer to
//! `Box<dyn Any>`); the typed calls a behavior makes are the inherent methods on
//! `dyn EntityClient` below ([`command`](trait.EntityClient.html#method.command),
//! `command_within`, `get`), each with a deadline, each answering a typed result.

use super::unavailable::UnavailableKind;
use crate::domain::{Aggregate, EntityKind, Rejection};
use futures::future::BoxFuture;
use std::any::Any;
use std::time::Duration;

/// The result of an accepted command: the state after it, and the events it produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Applied<A: Aggregate> {
    pub state: A::State,
    pub events: Vec<A::Event>,
}

pub type CommandReply<A> = Result<Applied<A>, Rejection>;

/// Why a routed request did not get an answer from its entity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The deadline passed and the request was not applied (it never will be).
    #[error("the entity did not answer in time; the request was not applied")]
    Timeout,
    /// The entity has `actors.max_pending` messages in flight; nothing was queued.
    #[error("the entity has too many requests in flight")]
    Overloaded { retry_after: Duration },
    #[error("the entity is unavailable ({kind}): {detail}")]
    Unavailable {
        kind: UnavailableKind,
        retry_after: Duration,
        detail: String,
    },
    /// A forwarded request reached a node that does not own the entity at `epoch`.
    #[error("this node does not own the entity at epoch {epoch}")]
    NotOwner { epoch: u64 },
    /// The owner's store failed (fail-stop): no write is acknowledged until it restarts.
    #[error("the store failed: {0}")]
    StoreFailed(String),
}

/// A command, a state or an answer of some kind, erased for the object-safe calls.
pub type Erased = Box<dyn Any + Send>;

/// The way to other entities, by `(kind, id)`. Every call has a deadline; a call whose
/// kind is not hosted fails with [`RouteError::Unavailable`].
pub trait EntityClient: Send + Sync + 'static {
    /// The deadline of a call whose caller names none (`actors.ask_timeout_ms`).
    fn ask_timeout(&self) -> Duration;

    /// Runs `cmd` (an `A::Command` of `kind = A::KIND`) on `(kind, id)` within `within`;
    /// answers its `Applied<A>`. Use the typed [`command`](#method.command).
    fn command_erased(
        &self,
        kind: EntityKind,
        id: String,
        cmd: Erased,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>>;

    /// Runs `effect`, a side effect of `(kind, id)`, inside its partition's gate: a
    /// handoff of the partition waits for it, and it does not start once the partition
    /// froze or belongs to another node ([`Deferred`]). Requests the effect makes to its
    /// own partition pass the gate it holds. Use the typed
    /// [`in_gate`](#method.in_gate).
    ///
    /// The default, for a client that hosts no partitions (no router, test doubles), runs
    /// the effect as it is; the router overrides it.
    fn gated(
        &self,
        _kind: EntityKind,
        _id: String,
        effect: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<(), Deferred>> {
        Box::pin(async move {
            effect.await;
            Ok(())
        })
    }

    /// The current `A::State` of `(kind, id)`, within `within`. Use the typed
    /// [`get`](#method.get).
    fn get_erased(
        &self,
        kind: EntityKind,
        id: String,
        within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>>;
}

/// Why a side effect did not start on this node; it runs where and when its entity
/// resumes (after the handoff, on the partition's new owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Deferred {
    #[error("this node has no cluster map yet")]
    NoMap,
    #[error("partition {0} belongs to another node")]
    NotOwner(u32),
    #[error("partition {0} is moving")]
    Moving(u32),
    /// The router that hosts the entity has stopped (the node is shutting down).
    #[error("the router that hosts this entity has stopped")]
    Stopped,
}

impl dyn EntityClient {
    /// Runs `effect` inside the partition gate of `(kind, id)` ([`EntityClient::gated`]),
    /// answering its output, or why it did not start.
    pub async fn in_gate<T: Send + 'static>(
        &self,
        kind: EntityKind,
        id: &str,
        effect: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, Deferred> {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let filled = slot.clone();
        let run: BoxFuture<'static, ()> = Box::pin(async move {
            let out = effect.await;
            *filled.lock().expect("effect slot") = Some(out);
        });
        self.gated(kind, id.to_owned(), run).await?;
        let out = slot.lock().expect("effect slot").take();
        // `gated` answers Ok only after running the effect to its end.
        Ok(out.expect("a gated effect that ran left its output"))
    }

    /// Sends a command to `(A::KIND, id)` and waits (up to the ask timeout) for its
    /// durable outcome.
    pub async fn command<A: Aggregate>(
        &self,
        id: &str,
        cmd: A::Command,
    ) -> Result<Applied<A>, RouteError> {
        self.command_within::<A>(id, cmd, self.ask_timeout()).await
    }

    /// As [`command`](#method.command), with the caller's own deadline.
    pub async fn command_within<A: Aggregate>(
        &self,
        id: &str,
        cmd: A::Command,
        within: Duration,
    ) -> Result<Applied<A>, RouteError> {
        let answer = self
            .command_erased(A::KIND, id.to_owned(), Box::new(cmd), within)
            .await?;
        typed::<Applied<A>>(A::KIND, answer)
    }

    /// The current state of `(A::KIND, id)`, within the ask timeout.
    pub async fn get<A: Aggregate>(&self, id: &str) -> Result<A::State, RouteError> {
        let answer = self
            .get_erased(A::KIND, id.to_owned(), self.ask_timeout())
            .await?;
        typed::<A::State>(A::KIND, answer)
    }
}

/// The answer as the type its kind promises. A mismatch is a wiring bug (a client that
/// dispatched to the wrong kind); it is answered as an unavailable entity, not a panic.
fn typed<T: 'static>(kind: EntityKind, answer: Erased) -> Result<T, RouteError> {
    answer
        .downcast::<T>()
        .map(|b| *b)
        .map_err(|_| RouteError::Unavailable {
            kind: UnavailableKind::EntityUnavailable,
            retry_after: Duration::from_secs(1),
            detail: format!("kind {kind} answered with an unexpected type"),
        })
}

/// A client for entities that no router hosts (a kind runtime started on its own, as in
/// tests): every call is refused, typed, at once.
pub struct Unrouted;

impl Unrouted {
    fn refuse(kind: EntityKind) -> BoxFuture<'static, Result<Erased, RouteError>> {
        Box::pin(async move {
            Err(RouteError::Unavailable {
                kind: UnavailableKind::EntityUnavailable,
                retry_after: Duration::from_secs(1),
                detail: format!("no router hosts kind {kind} here"),
            })
        })
    }
}

impl EntityClient for Unrouted {
    fn ask_timeout(&self) -> Duration {
        Duration::ZERO
    }
    fn command_erased(
        &self,
        kind: EntityKind,
        _id: String,
        _cmd: Erased,
        _within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        Self::refuse(kind)
    }
    fn get_erased(
        &self,
        kind: EntityKind,
        _id: String,
        _within: Duration,
    ) -> BoxFuture<'static, Result<Erased, RouteError>> {
        Self::refuse(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cart::{Cart, CartCommand};
    use std::sync::Arc;

    /// Answers every command of any kind with a `String`: the typed call must refuse it.
    struct WrongType;
    impl EntityClient for WrongType {
        fn ask_timeout(&self) -> Duration {
            Duration::from_millis(10)
        }
        fn command_erased(
            &self,
            _: EntityKind,
            _: String,
            _: Erased,
            _: Duration,
        ) -> BoxFuture<'static, Result<Erased, RouteError>> {
            Box::pin(async { Ok(Box::new(String::from("not an Applied")) as Erased) })
        }
        fn get_erased(
            &self,
            _: EntityKind,
            _: String,
            _: Duration,
        ) -> BoxFuture<'static, Result<Erased, RouteError>> {
            Box::pin(async { Ok(Box::new(7u8) as Erased) })
        }
    }

    #[tokio::test]
    async fn an_answer_of_the_wrong_type_is_a_typed_error_not_a_panic() {
        let c: Arc<dyn EntityClient> = Arc::new(WrongType);
        let cmd = CartCommand::Lock {
            order_id: uuid::Uuid::nil(),
        };
        let answer = c.command::<Cart>("c-1", cmd).await;
        assert!(matches!(
            answer,
            Err(RouteError::Unavailable {
                kind: UnavailableKind::EntityUnavailable,
                ..
            })
        ));
        assert!(c.get::<Cart>("c-1").await.is_err());
    }

    #[tokio::test]
    async fn an_unrouted_client_refuses_at_once() {
        let c: Arc<dyn EntityClient> = Arc::new(Unrouted);
        let err = c.get::<Cart>("c-1").await.unwrap_err();
        assert!(err.to_string().contains("no router hosts kind"), "{err}");
    }
}
