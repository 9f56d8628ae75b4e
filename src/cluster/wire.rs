//! The cluster protocol: every request and reply between nodes, in one versioned envelope
//! encoded with the storage codec (itself versioned by a leading byte).
//!
//! ractor_cluster dispatches remote messages by variant name and silently drops what
//! it cannot decode, so the actor message itself is only `bytes in, bytes out`; the
//! protocol evolves here, behind [`PROTOCOL`], and a peer that speaks another version
//! gets a clear error back instead of a silent drop.

use super::map::{ClusterMap, MemberInfo, Refusal};
use super::paxos::{MetaMsg, MetaReply};
use crate::domain::machine::MachineCommand;
use crate::store::codec;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Bumped when a request or reply changes shape incompatibly.
pub const PROTOCOL: u16 = 3;

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub protocol: u16,
    pub body: T,
}

/// What an entity request asks of the owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum EntityOp {
    /// A codec-encoded `A::Command`.
    Command(Vec<u8>),
    Get,
    WaitSettled,
    Activate,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Heartbeat {
        from: String,
        epoch: u64,
    },
    GetMap,
    Join {
        name: String,
        info: MemberInfo,
    },
    Meta(MetaMsg),
    Entity {
        kind: u8,
        id: String,
        op: EntityOp,
        /// The caller's remaining deadline.
        timeout_ms: u64,
        /// The caller's epoch: an owner that no longer owns the partition says so.
        epoch: u64,
    },
    Handoff(HandoffChunk),
    /// A command for a vending machine whose session may be on this node.
    PushMachine {
        machine_id: String,
        command_id: uuid::Uuid,
        command: MachineCommand,
    },
    /// A listing or journal read over `partitions`, answered for those the receiver owns
    /// at its epoch (added last: earlier variants keep their encoding).
    PartitionRead {
        read: crate::router::listing::PartitionRead,
        partitions: Vec<u32>,
        /// The caller's remaining deadline.
        timeout_ms: u64,
        /// The caller's epoch.
        epoch: u64,
    },
    /// A replay of dead letters, run for the partitions the receiver owns (added last).
    Replay {
        op: crate::router::replay::ReplayOp,
        /// The caller's remaining deadline.
        timeout_ms: u64,
    },
}

/// One bounded piece of a partition's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandoffChunk {
    pub partition: u32,
    /// The epoch that marked the partition moving; chunks of another epoch are refused.
    pub epoch: u64,
    /// 0 for the first chunk: the receiver then clears what it holds of the partition.
    pub seq: u32,
    /// `(key, value)` of the partition's journal range, in key order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a forwarded entity request was not answered by its entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RemoteError {
    Timeout,
    Unavailable {
        kind: crate::router::UnavailableKind,
        retry_after_ms: u64,
        detail: String,
    },
    /// The receiver does not own the partition at its epoch (carried).
    NotOwner {
        epoch: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Heartbeat {
        epoch: u64,
    },
    Map(Option<ClusterMap>),
    Joined(Result<ClusterMap, JoinError>),
    Meta(MetaReply),
    /// A codec-encoded reply of the entity operation.
    Entity(Result<Vec<u8>, RemoteError>),
    HandoffStored(Result<(), String>),
    Pushed(bool),
    /// The receiver could not handle the request at all.
    Error(String),
    /// The answer to [`Request::PartitionRead`].
    PartitionRead(
        Result<crate::router::listing::PartitionReply, crate::router::listing::ReadFailure>,
    ),
    /// The answer to [`Request::Replay`]: how many records were queued again.
    Replayed(Result<u32, crate::router::replay::ReplayFailure>),
}

#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the cluster cannot change now: {0}")]
    Unavailable(String),
}

pub fn encode<T: Serialize>(body: T) -> Vec<u8> {
    codec::encode(&Envelope {
        protocol: PROTOCOL,
        body,
    })
}

/// Decodes a frame from a peer. The codec's byte limit holds, so no length prefix can make
/// it allocate beyond [`codec::DECODE_LIMIT_BYTES`]; a frame that does not decode is
/// counted (`emporium_cluster_bad_frames_total`) and answered as an error or dropped by
/// the caller, and the node stays up.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let bad = |why: String| {
        metrics::counter!("emporium_cluster_bad_frames_total").increment(1);
        tracing::warn!(bytes = bytes.len(), error = %why, "dropped a cluster frame that does not decode");
        why
    };
    let env: Envelope<T> = codec::decode(bytes).map_err(|e| bad(format!("undecodable: {e}")))?;
    if env.protocol != PROTOCOL {
        return Err(bad(format!(
            "protocol {} is not supported (this node speaks {PROTOCOL})",
            env.protocol
        )));
    }
    Ok(env.body)
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_other_versions_are_refused() {
        let b = encode(Request::Heartbeat {
            from: "a".into(),
            epoch: 7,
        });
        match decode::<Request>(&b).unwrap() {
            Request::Heartbeat { from, epoch } => assert_eq!((from.as_str(), epoch), ("a", 7)),
            other => panic!("{other:?}"),
        }
        let other = codec::encode(&Envelope {
            protocol: PROTOCOL + 1,
            body: Request::GetMap,
        });
        assert!(decode::<Request>(&other)
            .unwrap_err()
            .contains("not supported"));
        assert!(decode::<Request>(&[1, 2, 3]).is_err());
    }

    #[test]
    fn partition_reads_round_trip() {
        use crate::router::listing::{ListingQuery, PartitionRead, PartitionReply, PartitionRows};
        let read = PartitionRead::List(ListingQuery::UserOrders {
            user: "u".into(),
            after: Some("u/0001/x".into()),
            limit: 20,
        });
        let b = encode(Request::PartitionRead {
            read: read.clone(),
            partitions: vec![1, 5],
            timeout_ms: 900,
            epoch: 4,
        });
        match decode::<Request>(&b).unwrap() {
            Request::PartitionRead {
                read: r,
                partitions,
                timeout_ms,
                epoch,
            } => assert_eq!(
                (r, partitions, timeout_ms, epoch),
                (read, vec![1, 5], 900, 4)
            ),
            other => panic!("{other:?}"),
        }
        let b = encode(Response::PartitionRead(Ok(PartitionReply {
            rows: PartitionRows::Exists(true),
            not_owned: vec![5],
            epoch: 4,
        })));
        match decode::<Response>(&b).unwrap() {
            Response::PartitionRead(Ok(r)) => {
                assert_eq!(
                    (r.rows, r.not_owned, r.epoch),
                    (PartitionRows::Exists(true), vec![5], 4)
                )
            }
            other => panic!("{other:?}"),
        }
    }

    /// A 2^40 length prefix spliced in at every position of a real frame (so it lands on
    /// each string, byte and sequence length): each decode is an error, never an
    /// allocation that aborts the process.
    #[test]
    fn a_huge_length_prefix_anywhere_in_a_frame_is_an_error() {
        let frame = encode(Request::Entity {
            kind: 1,
            id: "cart-1".into(),
            op: EntityOp::Command(vec![1, 2, 3]),
            timeout_ms: 500,
            epoch: 3,
        });
        let mut huge = vec![0xFD];
        huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
        for at in 1..frame.len() {
            let mut bad = frame[..at].to_vec();
            bad.extend_from_slice(&huge);
            bad.extend_from_slice(&frame[at..]);
            let _ = decode::<Request>(&bad);
            bad.truncate(at + huge.len());
            let _ = decode::<Request>(&bad);
        }
        // In place of the id's length: a string of a terabyte is refused.
        let pos = frame
            .windows(6)
            .position(|w| w == b"cart-1")
            .expect("the id is in the frame")
            - 1;
        let mut bad = frame[..pos].to_vec();
        bad.extend_from_slice(&huge);
        bad.extend_from_slice(&frame[pos + 1..]);
        assert!(decode::<Request>(&bad).unwrap_err().contains("undecodable"));
    }
}
