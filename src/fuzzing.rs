//! Entry points for the fuzzers: every decoder of bytes that arrive from outside the
//! process, behind one function per fuzz target.
//!
//! `fuzz/fuzz_targets/*.rs` (cargo-fuzz, see `scripts/fuzz.sh`) call these, and the
//! normal test suite replays the committed corpora in `fuzz/corpus/<target>/` through the
//! same functions ([`TARGETS`]), so a crash once found stays a regression test. Each
//! function must return for every input: a decoder may refuse bytes, never panic or
//! allocate beyond its limits (the codec's 4 MiB bound holds for every decode here).
//!
//! The HTTP edge's decoders (path segments, query strings, JSON bodies) are fuzzed
//! through the real routes by the `http_request` target, which needs a running app and so
//! lives in `fuzz/` itself; its corpus is replayed by `tests/api/fuzz_corpus.rs` against
//! the real binary.

use crate::cluster::wire;
use crate::domain::{self, Aggregate};
use crate::grpc::{convert, pb};
use crate::store::codec;
use crate::store::journal::{EventRecord, SnapshotRecord};
use crate::store::layout;
use prost::Message;

/// A fuzz target: takes any bytes, and returns (never panics).
pub type Target = fn(&[u8]);

/// Every target of this module, by the name of its `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: &[(&str, Target)] = &[
    ("grpc_messages", grpc_messages),
    ("journal_records", journal_records),
    ("cluster_frames", cluster_frames),
];

/// Calls the macro `$m` with every entity kind's aggregate type.
macro_rules! every_kind {
    ($m:ident) => {
        $m!(
            domain::cart::Cart,
            domain::order::Order,
            domain::stock::Stock,
            domain::product::Product,
            domain::payment::Payment,
            domain::user::User,
            domain::user::EmailClaim,
            domain::session::Session,
            domain::machine::Machine
        )
    };
}

/// The messages of `MachineGateway` in both directions: a machine's message is decoded
/// and converted to the machine aggregate's input (as the gateway does after `Hello`),
/// and a server message is decoded as `vm-sim` does.
pub fn grpc_messages(data: &[u8]) {
    if let Ok(m) = pb::MachineMessage::decode(data) {
        let _ = convert::machine_input(m, 1_700_000_000_000);
    }
    let _ = pb::ServerMessage::decode(data);
}

/// Journal records and snapshots of every entity kind, and partition-log entries: what
/// recovery decodes from disk, and what a handoff chunk brings from a peer.
pub fn journal_records(data: &[u8]) {
    macro_rules! each_kind {
        ($($a:ty),*) => {$(
            let _ = codec::decode::<EventRecord<<$a as Aggregate>::Event>>(data);
            let _ = codec::decode::<SnapshotRecord<<$a as Aggregate>::State>>(data);
        )*};
    }
    every_kind!(each_kind);
    let _ = codec::decode::<layout::LogEntry>(data);
    // The key readers a receiver applies to a chunk's keys.
    let _ = layout::partition_of_key(data);
    let _ = layout::id_of_entity_key(data);
    let _ = layout::log_seq_of(data);
    let _ = layout::seq_of_event_key(data);
    let _ = layout::index_entry_of(data);
}

/// Cluster wire frames (requests and responses, handoff chunks among them) and the
/// entity commands and replies they carry, as a node decodes them from a peer.
pub fn cluster_frames(data: &[u8]) {
    if let Ok(wire::Request::Handoff(chunk)) = wire::decode::<wire::Request>(data) {
        for (key, value) in &chunk.records {
            journal_records(key);
            journal_records(value);
        }
    }
    let _ = wire::decode::<wire::Response>(data);
    macro_rules! each_kind {
        ($($a:ty),*) => {$(
            let _ = codec::decode::<<$a as Aggregate>::Command>(data);
            let _ = codec::decode::<<$a as Aggregate>::State>(data);
        )*};
    }
    every_kind!(each_kind);
}

#[cfg(test)]
mod tests {
    use super::TARGETS;
    use std::path::Path;

    /// Replays every committed corpus file through its target: a crash the fuzzer found
    /// (and whose input was added to the corpus) fails here, in the normal suite.
    #[test]
    fn every_committed_corpus_input_is_decoded_without_a_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            assert!(files.len() >= 5, "{name}: only {} seeds", files.len());
            for f in files {
                target(&std::fs::read(&f).unwrap());
            }
        }
    }

    /// The seeds are real encodings, so the fuzzer starts past the decoders' first byte.
    #[test]
    fn seeds_are_regenerated_byte_for_byte() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (target, name, bytes) in super::seeds::all() {
            let path = root.join(target).join(format!("seed-{name}"));
            let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run `cargo run --example fuzz_seeds` to write the seeds",
                    path.display()
                )
            });
            assert_eq!(
                on_disk,
                bytes,
                "{} differs from its encoding",
                path.display()
            );
        }
    }
}

/// The seed corpus: real encodings of each decoder's input, written to
/// `fuzz/corpus/<target>/seed-<name>` by `cargo run --example fuzz_seeds`.
pub mod seeds {
    use super::*;
    use crate::domain::cart::{CartCommand, CartEvent, CartState};
    use crate::domain::EntityKind;

    /// `(target, name, bytes)` of every seed.
    pub fn all() -> Vec<(&'static str, &'static str, Vec<u8>)> {
        let mut out = Vec::new();
        use pb::machine_message::Body;
        let hello = pb::Hello {
            machine_id: "00000000-0000-4000-8000-000000000001".into(),
            ..Default::default()
        };
        let vend = pb::VendEvent {
            vend_id: "00000000-0000-4000-8000-000000000002".into(),
            ..Default::default()
        };
        let machine_messages = [
            ("hello", Some(Body::Hello(hello))),
            ("heartbeat", Some(Body::Heartbeat(Default::default()))),
            ("vend", Some(Body::Vend(vend))),
            ("alarm", Some(Body::Alarm(Default::default()))),
            ("empty", None),
        ];
        for (seq, (name, body)) in (0u64..).zip(machine_messages) {
            let m = pb::MachineMessage {
                seq,
                body,
                ..Default::default()
            };
            out.push(("grpc_messages", name, m.encode_to_vec()));
        }

        let cart = "6d3c0000-0000-4000-8000-000000000000";
        let added = EventRecord {
            at: 1_700_000_000_000,
            event: CartEvent::Created { owner: None },
        };
        let state = SnapshotRecord {
            seq: 3,
            state: CartState::default(),
        };
        let entry = layout::LogEntry {
            kind: EntityKind::Cart.byte(),
            id: cart.into(),
            seq: 1,
            at: 1_700_000_000_000,
        };
        let event_key = layout::event_key(7, EntityKind::Cart, cart, 1).expect("a short id");
        out.push(("journal_records", "cart_event", codec::encode(&added)));
        out.push(("journal_records", "cart_snapshot", codec::encode(&state)));
        out.push(("journal_records", "log_entry", codec::encode(&entry)));
        out.push(("journal_records", "event_key", event_key.clone()));
        out.push(("journal_records", "log_key", layout::log_key(7, 42)));

        let chunk = wire::HandoffChunk {
            partition: 7,
            epoch: 3,
            seq: 0,
            records: vec![
                (event_key, codec::encode(&added)),
                (layout::log_key(7, 1), codec::encode(&entry)),
            ],
        };
        let command = codec::encode(&CartCommand::Create { owner: None });
        out.push((
            "cluster_frames",
            "handoff",
            wire::encode(wire::Request::Handoff(chunk)),
        ));
        out.push((
            "cluster_frames",
            "heartbeat",
            wire::encode(wire::Request::Heartbeat {
                from: "node1".into(),
                epoch: 9,
            }),
        ));
        out.push((
            "cluster_frames",
            "get_map",
            wire::encode(wire::Request::GetMap),
        ));
        out.push((
            "cluster_frames",
            "entity_command",
            wire::encode(wire::Request::Entity {
                kind: EntityKind::Cart.byte(),
                id: cart.into(),
                op: wire::EntityOp::Command(command.clone()),
                timeout_ms: 1000,
                epoch: 9,
            }),
        ));
        out.push(("cluster_frames", "cart_command", command));
        out.push((
            "cluster_frames",
            "entity_reply",
            wire::encode(wire::Response::Entity(Ok(codec::encode(
                &CartState::default(),
            )))),
        ));
        out
    }
}
