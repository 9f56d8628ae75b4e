//! `MachineGateway.Session`: one bidirectional stream per connected machine.
//!
//! 0. Before anything is read, the stream takes a slot counted against `grpc.max_sessions`
//!    (authenticated or not) and a slot among `grpc.max_pending_hellos`; without either it
//!    ends `RESOURCE_EXHAUSTED`. The pending slot is held until the Hello is verified.
//! 1. The first message must be `Hello` (seq 0) naming a registered machine and its secret,
//!    within `grpc.hello_timeout_ms`; otherwise the call ends `UNAUTHENTICATED`. The id must
//!    be well formed and have a journal (a read on its owner that activates nothing), so an
//!    unknown id never starts an actor; only then is the registered machine's state read and
//!    the secret compared, in constant time, as its SHA-256 with the hash stored at
//!    registration or rotation. A wrong secret for a registered id can thus activate that
//!    machine's actor, which exists anyway for a fleet the operator registered, and at most
//!    `grpc.max_pending_hellos` such reads run at once.
//! 2. The machine actor records the connection, and the server answers `Welcome` with the
//!    seq it holds durably. The session is registered (replacing an older one, which ends
//!    `ABORTED`), and every command still waiting for the machine is sent again.
//! 3. Each machine message goes to the machine actor through the router. The actor answers
//!    only after its events are fsync'd, and only then is `Ack{up_to_seq}` sent, so an ack
//!    is never ahead of the disk. Duplicates (seq at or below the acked seq) are acked again
//!    without effect.
//! 4. Rotating the machine's secret ends its session `UNAUTHENTICATED`: the machine actor
//!    revokes the session of this node once the rotation is durable; and any session whose
//!    machine answers with a secret hash other than the one it authenticated with ends the
//!    same way, unacked (the backstop for a session on another node than the machine).
//! 5. Silence past three heartbeat intervals ends the stream `UNAVAILABLE`; the actor marks
//!    the machine offline on its own timer.
//!
//! Everything is bounded: the outbound queue per session, the streams and pending Hellos
//! per node, the size of a message, and every call to an actor has the router's deadline.

use super::convert::machine_input;
use super::limits::StreamLimits;
use super::pb::{self, machine_message::Body, server_message, MachineMessage, ServerMessage};
use super::sessions::{Outbound, Sessions};
use crate::clock::now_ms;
use crate::domain::machine::{Machine, MachineInput, MachineState};
use crate::domain::EntityKind;
use crate::router::{RouteError, Router};
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// Outbound messages queued per session before pushes are refused (and re-sent later).
const OUTBOUND_QUEUE: usize = 256;

/// Session settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub hello_timeout: Duration,
    pub heartbeat_interval_s: u32,
    /// Streams open at once, authenticated or not.
    pub max_sessions: usize,
    /// Streams whose Hello is not yet verified.
    pub max_pending_hellos: usize,
}

/// The `MachineGateway` service.
pub struct Gateway {
    router: Router,
    sessions: Arc<Sessions>,
    limits: Arc<StreamLimits>,
    config: GatewayConfig,
}

impl Gateway {
    pub fn new(router: Router, sessions: Arc<Sessions>, config: GatewayConfig) -> Self {
        Self {
            router,
            sessions,
            limits: StreamLimits::new(config.max_sessions, config.max_pending_hellos),
            config,
        }
    }
}

/// The SHA-256 hex of a machine secret, as stored at registration.
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn route_status(e: RouteError) -> Status {
    match e {
        RouteError::Rejected(r) => Status::failed_precondition(r.to_string()),
        RouteError::Timeout => {
            Status::unavailable("the machine actor did not answer in time; reconnect")
        }
        RouteError::Overloaded { .. } => {
            Status::unavailable("overloaded: the machine actor has too many requests in flight")
        }
        RouteError::Unavailable { kind, detail, .. } => {
            Status::unavailable(format!("{}: {detail}", kind.as_str()))
        }
        RouteError::NotOwner { .. } => Status::unavailable("partition_moving: retry"),
        RouteError::StoreFailed(reason) => Status::unavailable(format!(
            "store_failed: no ack until the node restarts: {reason}"
        )),
    }
}

fn unauthenticated() -> Status {
    Status::unauthenticated("unknown machine or wrong secret")
}

/// The status a session ends with once its machine's secret has changed.
pub fn secret_rotated() -> Status {
    Status::unauthenticated("the machine's secret was rotated; reconnect with the new one")
}

/// The stored secret hash, if the machine is registered.
fn stored_hash(state: &MachineState) -> Option<&str> {
    state.registration.as_ref().map(|r| r.secret_hash.as_str())
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::machine_gateway_server::MachineGateway for Gateway {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<MachineMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        let stream_slot = self.limits.try_open()?;
        let pending = self.limits.try_pending()?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(self.config.hello_timeout, inbound.message())
            .await
            .map_err(|_| Status::unauthenticated("no Hello before the timeout"))??
            .ok_or_else(|| Status::unauthenticated("the stream ended before Hello"))?;
        let hello = match first.body {
            Some(Body::Hello(h)) if first.seq == 0 => h,
            _ => {
                return Err(Status::unauthenticated(
                    "the first message must be Hello with seq 0",
                ))
            }
        };
        let id = hello.machine_id.clone();
        if crate::domain::machine::valid_machine_id(&id).is_err() {
            metrics::counter!("emporium_grpc_auth_failures_total").increment(1);
            return Err(unauthenticated());
        }
        // An id with no journal is not a machine: refused without activating an actor.
        let exists = self
            .router
            .entity_exists(EntityKind::Machine, &id)
            .await
            .map_err(|e| Status::unavailable(format!("cannot verify the machine now: {e}")))?;
        if !exists {
            metrics::counter!("emporium_grpc_auth_failures_total").increment(1);
            tracing::warn!(machine = %id, "machine authentication failed: unknown machine");
            return Err(unauthenticated());
        }
        let state = self
            .router
            .get::<Machine>(&id)
            .await
            .map_err(route_status)?;
        let presented = secret_hash(&hello.secret);
        let known = stored_hash(&state)
            .is_some_and(|h| constant_time_eq(h.as_bytes(), presented.as_bytes()));
        if !known {
            metrics::counter!("emporium_grpc_auth_failures_total").increment(1);
            tracing::warn!(machine = %id, "machine authentication failed");
            return Err(unauthenticated());
        }
        drop(pending);
        let applied = self
            .router
            .command::<Machine>(&id, MachineInput::Connected { at: now_ms() })
            .await
            .map_err(route_status)?;
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let opened = self.sessions.open(&id, tx.clone());
        let welcome = ServerMessage {
            body: Some(server_message::Body::Welcome(pb::Welcome {
                session_id: format!("{id}/{}", opened.session),
                acked_seq: applied.state.acked_seq,
                heartbeat_interval_s: self.config.heartbeat_interval_s,
            })),
        };
        // The queue is new and empty, but the registry already holds it: a command pushed in
        // between would precede the Welcome. The session is opened first so no command is
        // missed, and the resend below repeats anything pushed early, after the Welcome.
        if tx.try_send(Ok(welcome)).is_err() {
            self.sessions.close(&id, opened.session);
            return Err(Status::unavailable("session queue unavailable"));
        }
        tracing::info!(machine = %id, session = opened.session, acked_seq = applied.state.acked_seq,
            last_acked_seq = hello.last_acked_seq, firmware = %hello.firmware, "machine connected");
        metrics::counter!("emporium_grpc_sessions_opened_total").increment(1);
        let run = SessionRun {
            id,
            connection: applied.state.connection,
            session: opened.session,
            router: self.router.clone(),
            sessions: self.sessions.clone(),
            tx,
            idle_limit: Duration::from_secs(u64::from(self.config.heartbeat_interval_s) * 3),
            secret_hash: presented,
            _slot: stream_slot,
        };
        tokio::spawn(run.run(inbound, opened.stop));
        let out =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        Ok(Response::new(Box::pin(out)))
    }
}

/// One open session's inbound loop.
struct SessionRun {
    id: String,
    /// The machine's count of sessions when this one opened (names it to the entity).
    connection: u64,
    session: u64,
    router: Router,
    sessions: Arc<Sessions>,
    tx: Outbound,
    idle_limit: Duration,
    /// The hash this session authenticated with; a machine that answers with another one
    /// had its secret rotated.
    secret_hash: String,
    _slot: super::limits::StreamGuard,
}

impl SessionRun {
    async fn run(
        self,
        mut inbound: Streaming<MachineMessage>,
        mut stop: tokio::sync::oneshot::Receiver<Status>,
    ) {
        if let Err(e) = self
            .router
            .command::<Machine>(&self.id, MachineInput::ResendPending { at: now_ms() })
            .await
        {
            tracing::warn!(machine = %self.id, error = %e, "cannot re-send pending commands; the resend timer will");
        }
        let end: Option<Status> = loop {
            tokio::select! {
                stopped = &mut stop => break Some(stopped.unwrap_or_else(|_| Status::aborted("session closed"))),
                next = tokio::time::timeout(self.idle_limit, inbound.message()) => match next {
                    Err(_) => break Some(Status::unavailable("no message for 3 heartbeat intervals")),
                    Ok(Ok(None)) => break None,
                    Ok(Err(status)) => {
                        tracing::debug!(machine = %self.id, %status, "machine stream ended with an error");
                        break None;
                    }
                    Ok(Ok(Some(m))) => {
                        if let Err(status) = self.handle(m).await {
                            break Some(status);
                        }
                    }
                },
            }
        };
        if let Some(status) = end {
            tracing::info!(machine = %self.id, session = self.session, code = ?status.code(), message = status.message(), "closing machine session");
            // Bounded: a machine that stopped reading does not hold the session open.
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.send(Err(status))).await;
        }
        self.sessions.close(&self.id, self.session);
        // The machine is offline as soon as its stream ends, not after 3 silent
        // heartbeat intervals: an app purchase is refused at once (`machine_offline`)
        // rather than authorized and held for a machine that cannot receive its Dispense.
        let ended = MachineInput::Disconnected {
            at: now_ms(),
            connection: self.connection,
        };
        if let Err(e) = self.router.command::<Machine>(&self.id, ended).await {
            tracing::warn!(machine = %self.id, error = %e, "cannot record the end of the session; the silence timer will mark it offline");
        }
        metrics::counter!("emporium_grpc_sessions_closed_total").increment(1);
    }

    /// Applies one machine message and acks it once durable.
    async fn handle(&self, m: MachineMessage) -> Result<(), Status> {
        let input = machine_input(m, now_ms())?;
        let applied = self
            .router
            .command::<Machine>(&self.id, input)
            .await
            .map_err(route_status)?;
        if stored_hash(&applied.state) != Some(self.secret_hash.as_str()) {
            tracing::warn!(machine = %self.id, session = self.session, "secret rotated: ending the session unacked");
            return Err(secret_rotated());
        }
        metrics::counter!("emporium_grpc_messages_total").increment(1);
        let ack = ServerMessage {
            body: Some(server_message::Body::Ack(pb::Ack {
                up_to_seq: applied.state.acked_seq,
            })),
        };
        self.tx
            .send(Ok(ack))
            .await
            .map_err(|_| Status::cancelled("the machine went away"))
    }
}
