//! Why an entity could not serve a request: the typed kinds of a 503, each with the
//! wire code clients see (`error.code`). `src/http/error.rs` maps them; nothing parses
//! a message to find one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnavailableKind {
    /// Past its restart limit, or its journal does not recover: refused for a while.
    EntityQuarantined,
    /// The actor failed while handling the request; its outcome is unknown.
    EntityRestarting,
    /// Any other reason the entity cannot be reached.
    EntityUnavailable,
    /// This node cannot reach a majority of the cluster (writes only).
    NoQuorum,
    /// The partition's owner is down, or the partition is fenced briefly.
    PartitionUnavailable,
    /// The partition is being handed off.
    PartitionMoving,
    /// This node has not joined its cluster yet.
    ClusterJoining,
    /// Too many requests in flight (at an entity, or forwarded to a node).
    Overloaded,
    /// The command started but its answer did not arrive in time: it may be applied.
    OutcomeUnknown,
    /// The owner's store failed (fail-stop): no write is acknowledged until it restarts.
    StoreFailed,
}

impl UnavailableKind {
    /// The wire code, as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EntityQuarantined => "entity_quarantined",
            Self::EntityRestarting => "entity_restarting",
            Self::EntityUnavailable => "entity_unavailable",
            Self::NoQuorum => "no_quorum",
            Self::PartitionUnavailable => "partition_unavailable",
            Self::PartitionMoving => "partition_moving",
            Self::ClusterJoining => "cluster_joining",
            Self::Overloaded => "overloaded",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::StoreFailed => "store_failed",
        }
    }
}

impl std::fmt::Display for UnavailableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::UnavailableKind as K;

    #[test]
    fn wire_codes_are_distinct_snake_case() {
        let all = [
            K::EntityQuarantined,
            K::EntityRestarting,
            K::EntityUnavailable,
            K::NoQuorum,
            K::PartitionUnavailable,
            K::PartitionMoving,
            K::ClusterJoining,
            K::Overloaded,
            K::OutcomeUnknown,
            K::StoreFailed,
        ];
        let mut codes: Vec<_> = all.iter().map(|k| k.as_str()).collect();
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
