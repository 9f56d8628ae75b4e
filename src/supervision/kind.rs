//! A kind's runtime: activation on first message, and its supervisor.
//!
//! The supervisor is the parent of every entity actor of its kind. It overrides
//! `handle_supervisor_evt` (ractor's default stops the supervisor when any child
//! exits): a normal stop frees the registry slot; a failure restarts the entity by
//! replaying its journal after an exponential backoff, or quarantines it past the
//! restart-intensity limit.

use super::policy::{Decision, RestartPolicy};
use super::registry::{Live, Lookup, Registry};
use crate::actors::client::Unrouted;
use crate::actors::entity::{EntityArgs, EntityConfig};
use crate::actors::unavailable::UnavailableKind;
use crate::actors::{Behavior, EntityActor, EntityClient, EntityMsg};
use crate::domain::{Aggregate, LogId};
use crate::store::Journal;
use metrics::{counter, gauge};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Why an entity could not be reached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActivationError {
    #[error("{kind}: {detail}")]
    Unavailable {
        kind: UnavailableKind,
        retry_after: Duration,
        detail: String,
    },
    #[error("timed out waiting for the entity to start")]
    Timeout,
}

/// Everything needed to run the entities of one kind.
pub struct KindRuntime<A: Aggregate> {
    pub registry: Arc<Registry<EntityMsg<A>>>,
    journal: Journal,
    behavior: Arc<dyn Behavior<A>>,
    config: Arc<EntityConfig>,
    policy: RestartPolicy,
    supervisor: OnceLock<ActorCell>,
    /// How the kind's effects reach other entities: the router that hosts the kind binds
    /// itself here when it is built, before it can activate any entity.
    client: OnceLock<Arc<dyn EntityClient>>,
}

impl<A: Aggregate> KindRuntime<A> {
    /// Builds the runtime and starts its supervisor under `parent`.
    pub async fn start(
        journal: Journal,
        behavior: Arc<dyn Behavior<A>>,
        config: EntityConfig,
        policy: RestartPolicy,
        parent: Option<ActorCell>,
    ) -> Result<Arc<Self>, ractor::SpawnErr> {
        let rt = Arc::new(Self {
            registry: Arc::new(Registry::default()),
            journal,
            behavior,
            config: Arc::new(config),
            policy,
            supervisor: OnceLock::new(),
            client: OnceLock::new(),
        });
        // Export the kind's series from the start, so dashboards and alerts see 0
        // rather than a missing metric.
        let kind = A::KIND.as_str();
        counter!("emporium_actor_restarts_total", "kind" => kind).absolute(0);
        counter!("emporium_entity_expired_total", "kind" => kind).absolute(0);
        counter!("emporium_entity_overloaded_total", "kind" => kind).absolute(0);
        gauge!("emporium_actors_active", "kind" => kind).set(0.0);
        let sup = KindSupervisor::<A>(std::marker::PhantomData);
        let (sup_ref, _) = match parent {
            Some(p) => Actor::spawn_linked(None, sup, rt.clone(), p).await?,
            None => Actor::spawn(None, sup, rt.clone()).await?,
        };
        let _ = rt.supervisor.set(sup_ref.get_cell());
        Ok(rt)
    }

    /// Gives the kind's entities the way to other entities (called once, by the router
    /// that hosts the kind; a later call is ignored). Until then, and for a runtime no
    /// router hosts, their effects' calls are refused with a typed error.
    pub fn bind_client(&self, client: Arc<dyn EntityClient>) {
        let _ = self.client.set(client);
    }

    /// The live actor for `id` (with its count of messages in flight), activating it if
    /// needed. Waits at most `timeout`.
    pub async fn actor(
        self: &Arc<Self>,
        id: &str,
        timeout: Duration,
    ) -> Result<Live<EntityMsg<A>>, ActivationError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Each pass either returns or waits for a transition to end; transitions are
        // bounded by the deadline, so the loop is too.
        loop {
            match self.registry.lookup(id) {
                Lookup::Ready(r) => return Ok(r),
                Lookup::Unavailable {
                    retry_after,
                    detail,
                } => {
                    return Err(ActivationError::Unavailable {
                        kind: UnavailableKind::EntityQuarantined,
                        retry_after,
                        detail,
                    })
                }
                Lookup::Wait(mut rx) => {
                    if tokio::time::timeout_at(deadline, rx.changed())
                        .await
                        .is_err()
                    {
                        return Err(ActivationError::Timeout);
                    }
                }
                Lookup::Activate(done) => {
                    // Activation runs in its own task so a caller that gives up (a
                    // dropped HTTP request) cannot leave the slot stuck in `Activating`.
                    let me = self.clone();
                    let owned = id.to_owned();
                    let task = tokio::spawn(async move {
                        me.spawn_entity(&owned).await;
                        drop(done);
                    });
                    if tokio::time::timeout_at(deadline, task).await.is_err() {
                        return Err(ActivationError::Timeout);
                    }
                }
            }
        }
    }

    /// Spawns and recovers the actor for `id`, then records it (or quarantines `id`).
    async fn spawn_entity(self: &Arc<Self>, id: &str) {
        let Some(sup) = self.supervisor.get().cloned() else {
            self.registry.clear(id);
            return;
        };
        let args = EntityArgs {
            id: id.to_owned(),
            journal: self.journal.clone(),
            behavior: self.behavior.clone(),
            config: self.config.clone(),
            registry: self.registry.clone(),
            client: self
                .client
                .get()
                .cloned()
                .unwrap_or_else(|| Arc::new(Unrouted)),
        };
        match Actor::spawn_linked(None, EntityActor::<A>::default(), args, sup).await {
            Ok((actor, _)) => {
                let p =
                    crate::store::partition::partition_of(A::KIND, id, self.journal.partitions());
                self.registry.activated(id, p, actor);
                counter!("emporium_activations_total", "kind" => A::KIND.as_str()).increment(1);
                gauge!("emporium_actors_active", "kind" => A::KIND.as_str()).increment(1.0);
            }
            Err(e) => {
                // Recovery failed: a record does not decode, or the store failed. Only
                // this entity is affected; it is retried after the quarantine period.
                let detail = format!("the entity's journal does not recover: {e}");
                tracing::error!(kind = %A::KIND, id = %LogId(A::KIND, id), error = %e, "entity failed to recover; quarantined");
                counter!("emporium_entity_quarantined_total", "kind" => A::KIND.as_str(), "reason" => "recovery").increment(1);
                self.registry
                    .quarantine(id, Instant::now() + self.policy.quarantine, detail);
            }
        }
    }

    /// Stops the live actors of partition `p`, letting each finish what it holds.
    pub async fn drain_partition(&self, p: u32, timeout: Duration) {
        let actors = self.registry.active_in(p);
        let waits = actors.iter().map(|a| a.drain_and_wait(Some(timeout)));
        futures::future::join_all(waits).await;
    }

    /// Stops every live actor of this kind, letting each finish what it holds.
    pub async fn drain_all(&self, timeout: Duration) {
        let actors = self.registry.active();
        let waits = actors.iter().map(|a| a.drain_and_wait(Some(timeout)));
        futures::future::join_all(waits).await;
    }
}

/// The supervisor of one kind's entity actors.
pub struct KindSupervisor<A: Aggregate>(std::marker::PhantomData<fn() -> A>);

pub struct SupervisorState<A: Aggregate> {
    rt: Arc<KindRuntime<A>>,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl<A: Aggregate> Actor for KindSupervisor<A> {
    type Msg = ();
    type State = SupervisorState<A>;
    type Arguments = Arc<KindRuntime<A>>;

    async fn pre_start(
        &self,
        _me: ActorRef<()>,
        rt: Arc<KindRuntime<A>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            rt,
            failures: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<()>,
        _msg: (),
        _st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<()>,
        event: SupervisionEvent,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let kind = A::KIND.as_str();
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _)
                if st.rt.registry.stopped(cell.get_id()).is_some() =>
            {
                gauge!("emporium_actors_active", "kind" => kind).decrement(1.0);
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(id) = st.rt.registry.failed(cell.get_id()) else {
                    return Ok(());
                };
                gauge!("emporium_actors_active", "kind" => kind).decrement(1.0);
                counter!("emporium_actor_restarts_total", "kind" => kind).increment(1);
                let history = st.failures.entry(id.clone()).or_default();
                match st.rt.policy.on_failure(history, Instant::now()) {
                    Decision::RestartAfter(backoff) => {
                        tracing::warn!(kind, id = %LogId(A::KIND, &id), error = %err, ?backoff, "entity failed; restarting from its journal");
                        let rt = st.rt.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(backoff).await;
                            rt.spawn_entity(&id).await;
                        });
                    }
                    Decision::Quarantine(period) => {
                        tracing::error!(kind, id = %LogId(A::KIND, &id), error = %err, ?period, "entity exceeded its restart limit; quarantined");
                        counter!("emporium_entity_quarantined_total", "kind" => kind, "reason" => "restarts").increment(1);
                        st.rt.registry.quarantine(
                            &id,
                            Instant::now() + period,
                            "too many restarts".into(),
                        );
                    }
                }
                // Forget histories that can no longer count against the limit.
                let window = st.rt.policy.window;
                st.failures
                    .retain(|_, h| h.back().is_some_and(|t| t.elapsed() <= window));
            }
            _ => {}
        }
        Ok(())
    }
}
