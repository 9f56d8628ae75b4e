//! The live machine sessions of this node: one per machine, keyed by machine id.
//!
//! Opening a session for a machine that already has one replaces it: the old session is
//! told to stop, and closes its stream with `ABORTED`. The registry is also the machine
//! actors' [`CommandSink`]: a command is pushed into the session's bounded outbound queue
//! without waiting; when the queue is full or there is no session, the command stays
//! pending and the actor's resend timer tries again. When the machine's secret is rotated,
//! the actor [revokes](CommandSink::revoke) its session, which ends `UNAUTHENTICATED`.

use super::convert::command_message;
use super::pb::ServerMessage;
use crate::actors::machine::CommandSink;
use crate::domain::machine::MachineCommand;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use uuid::Uuid;

/// What a session's stream carries.
pub type Outbound = mpsc::Sender<Result<ServerMessage, Status>>;

struct Entry {
    session: u64,
    tx: Outbound,
    stop: oneshot::Sender<Status>,
}

/// The sessions of this node.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Entry>>,
    next: AtomicU64,
}

/// A registered session: its number, and the signal to stop, with the status to end with
/// (`ABORTED` when a newer session replaced it, `UNAVAILABLE` at shutdown).
pub struct Opened {
    pub session: u64,
    pub stop: oneshot::Receiver<Status>,
}

impl Sessions {
    /// Registers a session for `machine_id`, replacing (and stopping) any older one.
    pub fn open(&self, machine_id: &str, tx: Outbound) -> Opened {
        let session = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (stop, stop_rx) = oneshot::channel();
        let old = {
            let mut map = self.inner.lock();
            let old = map.insert(machine_id.to_owned(), Entry { session, tx, stop });
            metrics::gauge!("emporium_grpc_sessions").set(map.len() as f64);
            old
        };
        if let Some(old) = old {
            tracing::info!(
                machine = machine_id,
                old = old.session,
                new = session,
                "session replaced"
            );
            let _ = old.stop.send(Status::aborted(
                "replaced by a newer session of this machine",
            ));
        }
        Opened {
            session,
            stop: stop_rx,
        }
    }

    /// Ends every session with `UNAVAILABLE` (shutdown); machines reconnect elsewhere or later.
    pub fn stop_all(&self) {
        let all: Vec<Entry> = self.inner.lock().drain().map(|(_, e)| e).collect();
        for e in all {
            let _ = e
                .stop
                .send(Status::unavailable("the server is shutting down"));
        }
        metrics::gauge!("emporium_grpc_sessions").set(0.0);
    }

    /// Removes the session if it is still the machine's current one.
    pub fn close(&self, machine_id: &str, session: u64) {
        let mut map = self.inner.lock();
        if map.get(machine_id).is_some_and(|e| e.session == session) {
            map.remove(machine_id);
        }
        // Set under the lock, so that sets land in the order the map changed.
        metrics::gauge!("emporium_grpc_sessions").set(map.len() as f64);
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CommandSink for Sessions {
    fn push(&self, machine_id: &str, command_id: Uuid, command: &MachineCommand) -> bool {
        let tx = match self.inner.lock().get(machine_id) {
            Some(e) => e.tx.clone(),
            None => return false,
        };
        let sent = tx
            .try_send(Ok(command_message(command_id, command)))
            .is_ok();
        if sent {
            metrics::counter!("emporium_grpc_commands_sent_total").increment(1);
        }
        sent
    }

    fn revoke(&self, machine_id: &str) {
        let Some(e) = self.inner.lock().remove(machine_id) else {
            return;
        };
        tracing::info!(
            machine = machine_id,
            session = e.session,
            "secret rotated: ending the session"
        );
        metrics::counter!("emporium_grpc_sessions_revoked_total").increment(1);
        let _ = e.stop.send(super::gateway::secret_rotated());
        metrics::gauge!("emporium_grpc_sessions").set(self.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_session_replaces_the_first_and_commands_go_to_the_current_one() {
        let s = Sessions::default();
        let (tx1, mut rx1) = mpsc::channel(4);
        let first = s.open("vm", tx1);
        let (tx2, mut rx2) = mpsc::channel(4);
        let second = s.open("vm", tx2);
        let status = first.stop.await.expect("the first session is told to stop");
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert_eq!(s.len(), 1);
        assert!(s.push("vm", Uuid::nil(), &MachineCommand::RequestAudit));
        assert!(rx2.try_recv().is_ok());
        assert!(rx1.try_recv().is_err());
        // Closing the replaced session does not remove the current one.
        s.close("vm", first.session);
        assert_eq!(s.len(), 1);
        s.close("vm", second.session);
        assert!(s.is_empty());
        assert!(!s.push("vm", Uuid::nil(), &MachineCommand::RequestAudit));
    }

    #[tokio::test]
    async fn revoking_ends_the_session_unauthenticated_and_stops_pushes() {
        let s = Sessions::default();
        let (tx, _rx) = mpsc::channel(4);
        let open = s.open("vm", tx);
        s.revoke("vm");
        let status = open.stop.await.expect("the session is told to stop");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(s.is_empty());
        assert!(!s.push("vm", Uuid::nil(), &MachineCommand::RequestAudit));
        s.revoke("vm"); // no session: nothing to do
    }

    #[tokio::test]
    async fn a_full_session_queue_refuses_without_waiting() {
        let s = Sessions::default();
        let (tx, _rx) = mpsc::channel(1);
        let _open = s.open("vm", tx);
        assert!(s.push("vm", Uuid::nil(), &MachineCommand::RequestAudit));
        assert!(!s.push("vm", Uuid::nil(), &MachineCommand::RequestAudit));
    }
}
