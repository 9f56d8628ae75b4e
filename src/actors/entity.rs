//! The generic entity actor: one per `(kind, id)`, activated on its first message.
//!
//! Lifecycle: `pre_start` recovers the state from the journal (a record that does not
//! decode fails the start, so only this entity is unavailable). Each command is decided,
//! its events are written and fsync'd through group commit, then applied, then answered:
//! persist, then reply. Business rejections are replies; only storage failures return
//! `Err`, which hands the actor to its supervisor for a restart.
//!
//! Passivation: when idle past the timeout (and the behavior allows it), the actor marks
//! its registry slot `Stopping` and drains its mailbox. New callers wait for the stop,
//! callers holding the old handle get a send error and are re-routed, so no message is
//! lost and no second actor exists while the first still runs.
//!
//! Deadlines: a caller's message carries its deadline in an admission ticket
//! ([`super::admission`]). Dequeued after the deadline, or after its caller gave up, it
//! is dropped unapplied (`emporium_entity_expired_total{kind}`), so a caller that
//! timed out may say "not applied".

use super::admission::Ticket;
use super::behavior::{Behavior, Effects};
use super::client::{Applied, CommandReply, EntityClient};
use crate::clock::Clock;
use crate::domain::{Aggregate, LogId, Millis, Rejection, RejectionCode};
use crate::store::{Journal, StoreError};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages to an entity. A caller's message carries its [`Ticket`]: the actor runs it
/// only if it dequeues it before the caller's deadline and the caller has not given up;
/// otherwise it drops it unapplied. Internal messages (effects, timers) carry none and
/// are never dropped.
pub enum EntityMsg<A: Aggregate> {
    Command(A::Command, RpcReplyPort<CommandReply<A>>, Ticket),
    Get(RpcReplyPort<A::State>, Ticket),
    /// Answers once the behavior says the entity is settled (a saga finished).
    WaitSettled(RpcReplyPort<A::State>, Ticket),
    /// A side effect finished; `None` asks for a retry later.
    EffectDone(Option<A::Command>),
    /// Run the next side effect if none is running.
    Drive,
    /// Timer: passivation check and the behavior's wake-up. Carries the generation of
    /// the timer that sent it; only the latest timer counts, so an earlier wake-up can be
    /// scheduled without multiplying timers.
    Tick(u64),
    /// Test-only fault hook: panics inside the handler.
    #[cfg(test)]
    Panic,
}

// Entity messages never leave the node (only the per-node cluster agent is
// remote-capable), so they are local-only messages under ractor's `cluster` feature.
impl<A: Aggregate> ractor::Message for EntityMsg<A> {}

/// Settings shared by every entity of a kind.
pub struct EntityConfig {
    pub snapshot_every: u64,
    pub idle_timeout: Duration,
    /// Delay before re-driving a side effect that asked to be retried.
    pub effect_retry: Duration,
    /// The kind's clock: event stamps, timers, and the clock its effects are given.
    pub clock: Arc<dyn Clock>,
}

/// The entity's slot in its kind's registry, as the shell sees it (the supervision tree
/// implements it): the one place an idle actor asks to stop.
pub trait Slots: Send + Sync + 'static {
    /// Marks `id` stopping if `actor` still owns its slot; false if it no longer does.
    fn begin_stop(&self, id: &str, actor: ActorId) -> bool;
}

/// What an entity actor is started with.
pub struct EntityArgs<A: Aggregate> {
    pub id: String,
    pub journal: Journal,
    pub behavior: Arc<dyn Behavior<A>>,
    pub config: Arc<EntityConfig>,
    pub registry: Arc<dyn Slots>,
    /// How its behavior's effects reach other entities (the router that hosts the kind).
    pub client: Arc<dyn EntityClient>,
}

pub struct EntityState<A: Aggregate> {
    args: EntityArgs<A>,
    /// What its behavior's effects are handed (the client and the clock of `args`).
    effects: Effects,
    state: A::State,
    seq: u64,
    snapshot_seq: u64,
    last_active: Instant,
    effect_running: bool,
    waiters: Vec<RpcReplyPort<A::State>>,
    /// The generation of the live timer, and when it fires.
    tick_gen: u64,
    tick_at: Instant,
}

pub struct EntityActor<A: Aggregate>(std::marker::PhantomData<fn() -> A>);

impl<A: Aggregate> Default for EntityActor<A> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// Idle limit of an entity that has no events.
const EMPTY_ENTITY_IDLE: Duration = Duration::from_secs(1);

impl<A: Aggregate> EntityActor<A> {
    /// Decides, persists (durably), applies, and runs the follow-ups.
    async fn execute(
        myself: &ActorRef<EntityMsg<A>>,
        st: &mut EntityState<A>,
        cmd: &A::Command,
    ) -> Result<CommandReply<A>, ActorProcessingErr> {
        let events = match A::decide(&st.state, cmd) {
            Ok(events) => events,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if events.is_empty() {
            return Ok(Ok(Applied {
                state: st.state.clone(),
                events,
            }));
        }
        // Apply first so the snapshot and indexes see the new state. If the write then
        // fails, we return Err and the supervisor rebuilds this actor from the journal.
        for e in &events {
            A::apply(&mut st.state, e);
        }
        let first = st.seq + 1;
        let last = st.seq + events.len() as u64;
        let every = st.args.config.snapshot_every.max(1);
        let snapshot = (last / every > st.snapshot_seq / every).then_some(&st.state);
        let at = st.args.config.clock.now_ms();
        let stamped: Vec<(Millis, A::Event)> = events.iter().map(|e| (at, e.clone())).collect();
        let index_ops = st.args.behavior.index_ops(&st.args.id, &events, &st.state);
        match st
            .args
            .journal
            .append::<A>(&st.args.id, first, &stamped, snapshot, &index_ops)
            .await
        {
            Ok(()) => {}
            // Refused before the journal: nothing was written, so undo the in-memory
            // apply by reloading, and answer with a rejection rather than a restart.
            Err(e @ StoreError::TooLarge { .. }) => {
                tracing::warn!(kind = %A::KIND, id = %LogId(A::KIND, &st.args.id), error = %e, "command refused: record too large");
                st.state = st.args.journal.load::<A>(&st.args.id)?.state;
                return Ok(Err(Rejection::new(
                    RejectionCode::EntityTooLarge,
                    e.to_string(),
                )));
            }
            Err(e) => return Err(e.into()),
        }
        st.seq = last;
        if snapshot.is_some() {
            st.snapshot_seq = last;
        }
        st.args
            .behavior
            .on_persisted(&st.args.id, &events, &st.state);
        Self::after_change(myself, st);
        Self::reschedule_if_earlier(myself, st);
        Ok(Ok(Applied {
            state: st.state.clone(),
            events,
        }))
    }

    fn after_change(myself: &ActorRef<EntityMsg<A>>, st: &mut EntityState<A>) {
        if !st.waiters.is_empty() && st.args.behavior.is_settled(&st.state) {
            for w in st.waiters.drain(..) {
                let _ = w.send(st.state.clone());
            }
        }
        Self::drive(myself, st);
    }

    fn drive(myself: &ActorRef<EntityMsg<A>>, st: &mut EntityState<A>) {
        if st.effect_running {
            return;
        }
        if let Some(fut) = st
            .args
            .behavior
            .next_effect(&st.args.id, &st.state, &st.effects)
        {
            st.effect_running = true;
            let me = myself.clone();
            tokio::spawn(async move {
                let outcome = fut.await;
                // The actor may have stopped or restarted; a restarted actor re-drives
                // from its journal, and every step is idempotent at its target.
                let _ = me.send_message(EntityMsg::EffectDone(outcome));
            });
        }
    }

    /// How long this entity may stay idle. An entity with no events (a lookup of an id
    /// that does not exist) goes quickly, so probing random ids cannot pile up actors.
    fn idle_limit(st: &EntityState<A>) -> Duration {
        if st.seq == 0 {
            st.args.config.idle_timeout.min(EMPTY_ENTITY_IDLE)
        } else {
            st.args.config.idle_timeout
        }
    }

    /// A command may have made the behavior's wake-up earlier than the live timer (a new
    /// hold, a machine that came online): replace the timer then.
    fn reschedule_if_earlier(myself: &ActorRef<EntityMsg<A>>, st: &mut EntityState<A>) {
        if let Some(wake) = st.args.behavior.next_wakeup(&st.state) {
            let until = Instant::now()
                + Duration::from_millis(wake.saturating_sub(st.args.config.clock.now_ms()));
            if until + Duration::from_millis(10) < st.tick_at {
                Self::schedule_tick(myself, st);
            }
        }
    }

    fn schedule_tick(myself: &ActorRef<EntityMsg<A>>, st: &mut EntityState<A>) {
        let idle = Self::idle_limit(st);
        let mut wait = idle.saturating_sub(st.last_active.elapsed());
        if let Some(wake) = st.args.behavior.next_wakeup(&st.state) {
            let until = Duration::from_millis(wake.saturating_sub(st.args.config.clock.now_ms()));
            wait = wait.min(until);
        }
        let wait = wait.max(Duration::from_millis(10));
        st.tick_gen += 1;
        st.tick_at = Instant::now() + wait;
        let generation = st.tick_gen;
        // The timer task runs on its own; its handle is not needed.
        drop(myself.send_after(wait, move || EntityMsg::Tick(generation)));
    }
}

impl<A: Aggregate> Actor for EntityActor<A> {
    type Msg = EntityMsg<A>;
    type State = EntityState<A>;
    type Arguments = EntityArgs<A>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: EntityArgs<A>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let rec = args.journal.load::<A>(&args.id)?;
        let effects = Effects {
            client: args.client.clone(),
            clock: args.config.clock.clone(),
        };
        Ok(EntityState {
            args,
            effects,
            state: rec.state,
            seq: rec.seq,
            snapshot_seq: rec.snapshot_seq,
            last_active: Instant::now(),
            effect_running: false,
            waiters: vec![],
            tick_gen: 0,
            tick_at: Instant::now(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Self::drive(&myself, st);
        Self::schedule_tick(&myself, st);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The guard below claims a caller's message (`start` moves its ticket to
        // Started) before the arm that runs it; a message it cannot claim is dropped.
        match msg {
            EntityMsg::Command(_, _, ref t)
            | EntityMsg::Get(_, ref t)
            | EntityMsg::WaitSettled(_, ref t)
                if !t.start() =>
            {
                // Its caller gave up or its deadline passed: dropped unapplied (and
                // uncounted as it drops).
                metrics::counter!("emporium_entity_expired_total", "kind" => A::KIND.as_str())
                    .increment(1);
            }
            EntityMsg::Command(cmd, reply, _ticket) => {
                st.last_active = Instant::now();
                let result = Self::execute(&myself, st, &cmd).await?;
                let _ = reply.send(result);
            }
            EntityMsg::Get(reply, _ticket) => {
                st.last_active = Instant::now();
                let _ = reply.send(st.state.clone());
            }
            EntityMsg::WaitSettled(reply, ticket) => {
                st.last_active = Instant::now();
                if st.args.behavior.is_settled(&st.state) {
                    let _ = reply.send(st.state.clone());
                } else {
                    // A parked waiter no longer counts against the mailbox bound.
                    drop(ticket);
                    st.waiters.retain(|w| !w.is_closed());
                    st.waiters.push(reply);
                }
            }
            EntityMsg::EffectDone(outcome) => {
                st.effect_running = false;
                match outcome {
                    Some(cmd) => {
                        if let Err(rejection) = Self::execute(&myself, st, &cmd).await? {
                            tracing::warn!(kind = %A::KIND, id = %LogId(A::KIND, &st.args.id), %rejection, "effect outcome rejected");
                        }
                        Self::drive(&myself, st);
                    }
                    None => {
                        drop(myself.send_after(st.args.config.effect_retry, || EntityMsg::Drive));
                    }
                }
            }
            EntityMsg::Drive => Self::drive(&myself, st),
            EntityMsg::Tick(generation) if generation != st.tick_gen => {}
            EntityMsg::Tick(_) => {
                let now = st.args.config.clock.now_ms();
                if st
                    .args
                    .behavior
                    .next_wakeup(&st.state)
                    .is_some_and(|w| w <= now)
                {
                    if let Some(cmd) = st.args.behavior.on_wakeup(&st.state, now) {
                        if let Err(rejection) = Self::execute(&myself, st, &cmd).await? {
                            tracing::warn!(kind = %A::KIND, id = %LogId(A::KIND, &st.args.id), %rejection, "timer command rejected");
                        }
                    }
                }
                let idle = st.last_active.elapsed() >= Self::idle_limit(st);
                if idle
                    && !st.effect_running
                    && st.waiters.is_empty()
                    && A::can_passivate(&st.state)
                    && st.args.registry.begin_stop(&st.args.id, myself.get_id())
                {
                    tracing::debug!(kind = %A::KIND, id = %LogId(A::KIND, &st.args.id), "passivating");
                    metrics::counter!("emporium_passivations_total", "kind" => A::KIND.as_str())
                        .increment(1);
                    let _ = myself.get_cell().drain();
                    return Ok(());
                }
                Self::schedule_tick(&myself, st);
            }
            #[cfg(test)]
            EntityMsg::Panic => panic!("test fault hook: {} {} panics", A::KIND, st.args.id),
        }
        Ok(())
    }
}
