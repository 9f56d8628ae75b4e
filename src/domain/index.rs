//! Secondary indexes, declared by the kinds that write them.
//!
//! An index entry is written in the same atomic batch as the events of the entity that
//! writes it, in that entity's partition, so it moves with the entity on a handoff. The
//! store treats the key as opaque bytes; each [`super::Aggregate`] lists the indexes it
//! may write in [`super::Aggregate::INDEXES`], and the journal refuses any other.

/// Every secondary index. The discriminant is the index's byte in the journal key and
/// never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    /// Orders whose saga has not settled; resumed at start-up. Written by orders.
    OpenOrders = 1,
    /// Every product sku, for rebuilding the catalog view. Written by products.
    Products = 2,
    /// `user_id/inverted placement time/order_id`: a shopper's orders, newest first.
    /// Written by orders.
    UserOrders = 3,
    /// Every registered machine id, for listing machines. Written by machines.
    Machines = 4,
    /// Machines that must be active after a restart: online, or holding app units,
    /// pending commands or undelivered outcomes. Written by machines.
    LiveMachines = 5,
    /// Review listings, written by reviews: a product's approved reviews by time
    /// (`{sku}/t/...`) and by rating (`{sku}/r/...`), and the moderation queue
    /// (`~pending/...`); see `domain::review::index_keys`.
    Reviews = 6,
}

impl Index {
    /// The index's byte in the journal key.
    pub fn byte(self) -> u8 {
        self as u8
    }
}
