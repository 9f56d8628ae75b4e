//! A simulated machine's memory, as pure structs: the seq journal of unacked messages and
//! the book of commands already handled. No IO, so both are unit-tested directly.

use crate::grpc::pb::{self, machine_message::Body, MachineMessage};
use std::collections::{HashMap, VecDeque};

/// Messages a machine keeps until acked. Past this it stops selling (heartbeats and
/// command answers still go out, and are kept too) until acks catch up.
pub const MAX_UNACKED: usize = 10_000;

/// The machine's outgoing messages: seqs are assigned here, never reused, and a message
/// is kept until an ack (or a `Welcome.acked_seq`) covers it.
#[derive(Debug, Default)]
pub struct SeqJournal {
    last_seq: u64,
    acked: u64,
    unacked: VecDeque<MachineMessage>,
}

impl SeqJournal {
    /// Assigns the next seq to `body` and keeps the message until acked.
    pub fn push(&mut self, body: Body, at_unix_ms: i64) -> MachineMessage {
        self.last_seq += 1;
        let m = MachineMessage {
            seq: self.last_seq,
            at_unix_ms,
            body: Some(body),
        };
        self.unacked.push_back(m.clone());
        m
    }

    /// Drops every message with `seq <= up_to`. A server that holds a higher seq than this
    /// machine ever sent (a machine that lost its memory, or a new simulator run under an
    /// old id) moves the next seq past it: seqs below are taken, and would be ignored.
    pub fn ack(&mut self, up_to: u64) {
        self.acked = self.acked.max(up_to);
        self.last_seq = self.last_seq.max(self.acked);
        while self.unacked.front().is_some_and(|m| m.seq <= self.acked) {
            self.unacked.pop_front();
        }
    }

    /// The highest seq known to be durable at the server.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Messages still unacked, oldest first: what a new session replays.
    pub fn unacked(&self) -> impl Iterator<Item = &MachineMessage> {
        self.unacked.iter()
    }

    pub fn len(&self) -> usize {
        self.unacked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unacked.is_empty()
    }

    /// Whether new sales should wait for acks.
    pub fn is_full(&self) -> bool {
        self.unacked.len() >= MAX_UNACKED
    }
}

/// What a machine answered to each command id, so a re-sent command is answered the same
/// way and never carried out twice. Bounded: the oldest answers are forgotten first.
#[derive(Debug, Default)]
pub struct CommandBook {
    answers: HashMap<String, pb::command_ack::Status>,
    order: VecDeque<String>,
}

/// Most command answers remembered.
pub const MAX_COMMANDS_REMEMBERED: usize = 1_024;

impl CommandBook {
    /// The earlier answer to this command, if it was handled already.
    pub fn answered(&self, command_id: &str) -> Option<pb::command_ack::Status> {
        self.answers.get(command_id).copied()
    }

    pub fn record(&mut self, command_id: &str, status: pb::command_ack::Status) {
        if self.answers.insert(command_id.to_owned(), status).is_none() {
            self.order.push_back(command_id.to_owned());
            while self.order.len() > MAX_COMMANDS_REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.answers.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb() -> Body {
        Body::Heartbeat(pb::Heartbeat::default())
    }

    #[test]
    fn seqs_grow_acks_trim_and_replay_starts_after_the_welcome() {
        let mut j = SeqJournal::default();
        let seqs: Vec<u64> = (0..5).map(|_| j.push(hb(), 0).seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        j.ack(2);
        assert_eq!(j.unacked().map(|m| m.seq).collect::<Vec<_>>(), [3, 4, 5]);
        // A Welcome with an older seq than already acked changes nothing.
        j.ack(1);
        assert_eq!(j.acked(), 2);
        assert_eq!(j.len(), 3);
        // A Welcome further ahead (the server got 4 before the link dropped).
        j.ack(4);
        assert_eq!(j.unacked().map(|m| m.seq).collect::<Vec<_>>(), [5]);
        // Seqs are never reused after acks.
        assert_eq!(j.push(hb(), 0).seq, 6);
        j.ack(6);
        assert!(j.is_empty());
        // A server ahead of this machine (its memory was lost): continue after it.
        let mut fresh = SeqJournal::default();
        fresh.ack(42);
        assert_eq!(fresh.push(hb(), 0).seq, 43);
    }

    #[test]
    fn a_resent_command_gets_the_same_answer() {
        let mut b = CommandBook::default();
        assert_eq!(b.answered("c1"), None);
        b.record("c1", pb::command_ack::Status::Done);
        assert_eq!(b.answered("c1"), Some(pb::command_ack::Status::Done));
        for i in 0..MAX_COMMANDS_REMEMBERED {
            b.record(&format!("x{i}"), pb::command_ack::Status::Rejected);
        }
        assert_eq!(b.answered("c1"), None, "the oldest answers are forgotten");
    }
}
