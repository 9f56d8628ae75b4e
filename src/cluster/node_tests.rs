//! Tests of [`super`] (node.rs): the partition gates and the effects that hold them.

use super::*;

async fn founded() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        &crate::store::StoreOptions {
            cache_capacity_bytes: 8 << 20,
            group_commit_max_batch: 64,
            group_commit_queue: 64,
            partitions: 64,
        },
    )
    .unwrap();
    let cfg = ClusterConfig {
        node_name: "n1".into(),
        ..ClusterConfig::default()
    };
    let c = Cluster::open(cfg, &store).unwrap();
    c.bootstrap().await.unwrap();
    (dir, c)
}

/// A saga step counts in its partition's gate while it runs, cannot start once the
/// gate is frozen, and its own requests to the partition pass the frozen gate while
/// everyone else's are held.
#[tokio::test]
async fn an_effect_holds_its_partition_gate_and_none_starts_after_the_freeze() {
    let (_dir, c) = founded().await;
    let id = "6f1c2b4e-8a0d-4c1e-9b7a-3d2f1e0c9b8a";
    let p = c.partition_of(EntityKind::Order, id) as usize;
    let gate = &c.inner.gates[p];
    let guard = c.enter(EntityKind::Order, id).expect("owned and open");
    assert_eq!(gate.in_flight.load(Ordering::SeqCst), 1);
    gate.frozen.store(true, Ordering::SeqCst);
    assert_eq!(
        c.enter(EntityKind::Order, id).err(),
        Some(EffectRefused::Moving(p as u32)),
        "no effect starts after the freeze"
    );
    assert_eq!(
        gate.in_flight.load(Ordering::SeqCst),
        1,
        "a refusal counts nothing"
    );
    let outside = matches!(
        c.place(EntityKind::Payment, id, false),
        Placement::Hold { .. }
    );
    assert!(outside, "others are held at the frozen gate");
    let c2 = c.clone();
    let inside = guard
        .run(async move {
            // The order's payment is in the same partition: its request passes.
            matches!(
                c2.place(EntityKind::Payment, id, false),
                Placement::Local(_)
            )
        })
        .await;
    assert!(inside, "the effect's own request passes");
    assert_eq!(
        gate.in_flight.load(Ordering::SeqCst),
        0,
        "released when the effect ends"
    );
}
