//! Black-box API tests: every test starts the real `emporium` binary on its
//! own temporary data directory and talks to it over HTTP only.

mod domain;
mod helpers;
mod users;

mod catalog;
mod concurrency;
mod crash;
mod lifecycle;
mod metrics;
mod orders;
mod passivation;
mod purchase;
mod reservation_ttl;
mod validation;

// Issue 3: identity, access control and the HTTP edge.
mod edge;
mod ownership;
mod rbac;
mod tokens;

// Issue 12: bounded state and expiry.
mod bounded;

// Issue 4: vending machines over gRPC.
mod cluster;
mod machine_client;
mod vending;

// Issue 12: durability and integrity under faults.
mod durability;
// Issue 12: deadlines and bounded mailboxes at the entity.
mod deadlines;
// Issue 12: idempotency that never lies.
mod idempotency;

// Issue 13: partition-owned state.
mod storage_layout;
// Issue 13: payments are entities, and idempotency is cluster-wide.
mod payments_cluster;
// Issue 13: listings are cluster-wide, and the edges reach data only through the router.
mod layering;
mod listings;
// Issue 14: hostile clients at the HTTP edge.
mod connections;
mod hostile;
mod proxies;
// Issue 14: the fuzzers' HTTP corpus, replayed against the real binary.
mod fuzz_corpus;
// Issue 14: gRPC pays only for authenticated machines.
mod grpc_hardening;
// Issue 14: credentials and secrets at rest.
mod credentials;
// Issue 20: the API contract (405 Allow, the document's references).
mod contract;

// Issue 15: events out.
mod events_feed;
mod notify;
mod notify_channels;
mod sink;
mod smtp;
mod webhooks;

// Issue 16: promotions and coupons, the category tree, stock locations.
mod categories;
mod images;
mod locations;
mod promotions;
mod reviews;
