//! `MachineGateway.Session`: one bidirectional stream per connected machine.
//!
//! 1. The first message must be `Hello` (seq 0) naming a registered machine and its secret,
//!    within `grpc.hello_timeout_ms`; otherwise the call ends `UNAUTHENTICATED`. The secret
//!    is compared, in constant time, as its SHA-256 with the hash stored at registration.
//! 2. The machine actor records the connection, and the server answers `Welcome` with the
//!    seq it holds durably. The session is registered (replacing an older one, which ends
//!    `ABORTED`), and every command still waiting for the machine is sent again.
//! 3. Each machine message goes to the machine actor through the router. The actor answers
//!    only after its events are fsync'd, and only then is `Ack{up_to_seq}` sent, so an ack
//!    is never ahead of the disk. Duplicates (seq at or below the acked seq) are acked again
//!    without effect.
//! 4. Silence past three heartbeat intervals ends the stream `UNAVAILABLE`; the actor marks
//!    the machine offline on its own timer.
//!
//! Everything is bounded: the outbound queue per session, the sessions per node, the size
//! of a message, and every call to an actor has the router's deadline.

use super::convert::machine_input;
use super::pb::{self, machine_message::Body, server_message, MachineMessage, ServerMessage};
use super::sessions::{Outbound, Sessions};
use crate::clock::now_ms;
use crate::domain::machine::{Machine, MachineInput};
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
    pub max_sessions: usize,
}

/// The `MachineGateway` service.
pub struct Gateway {
    router: Router,
    sessions: Arc<Sessions>,
    config: GatewayConfig,
}

impl Gateway {
    pub fn new(router: Router, sessions: Arc<Sessions>, config: GatewayConfig) -> Self {
        Self {
            router,
            sessions,
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

type SessionStream = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::machine_gateway_server::MachineGateway for Gateway {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<MachineMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
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
        let state = self
            .router
            .get::<Machine>(&id)
            .await
            .map_err(route_status)?;
        let known = state.registration.as_ref().is_some_and(|r| {
            constant_time_eq(
                r.secret_hash.as_bytes(),
                secret_hash(&hello.secret).as_bytes(),
            )
        });
        if !known {
            metrics::counter!("emporium_grpc_auth_failures_total").increment(1);
            tracing::warn!(machine = %id, "machine authentication failed");
            return Err(unauthenticated());
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(Status::resource_exhausted(
                "too many machine sessions on this node",
            ));
        }
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
            session: opened.session,
            router: self.router.clone(),
            sessions: self.sessions.clone(),
            tx,
            idle_limit: Duration::from_secs(u64::from(self.config.heartbeat_interval_s) * 3),
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
    session: u64,
    router: Router,
    sessions: Arc<Sessions>,
    tx: Outbound,
    idle_limit: Duration,
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
