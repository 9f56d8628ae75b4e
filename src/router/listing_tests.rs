//! Tests of the listing merge: order, dedup, cut, and paging over any split.

use super::*;
use proptest::prelude::*;

fn key(k: &str) -> Row {
    Row {
        key: k.into(),
        data: RowData::Key,
    }
}

#[test]
fn merge_orders_dedups_and_cuts() {
    let (rows, next) = merge(vec![key("c"), key("a"), key("b"), key("a")], 2);
    let keys: Vec<_> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(next.as_deref(), Some("b"));
    let (rows, next) = merge(vec![key("b"), key("a")], 2);
    assert_eq!(rows.len(), 2);
    assert_eq!(next, None);
}

proptest! {
    /// Paging through any split of a key set over owners, each answering its first
    /// `limit + 1` keys after the cursor, yields every key once, in order: the pages
    /// do not depend on which owner holds which key.
    #[test]
    fn paging_over_any_split_lists_every_key_once(
        keys in proptest::collection::btree_set("[a-z]{1,4}", 0..60),
        owners in proptest::collection::vec(0usize..3, 60),
        limit in 1usize..7,
    ) {
        let keys: Vec<String> = keys.into_iter().collect();
        let owner_of = |i: usize| owners[i % owners.len()];
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..=keys.len() {
            let mut rows = Vec::new();
            for o in 0..3 {
                rows.extend(
                    keys.iter()
                        .enumerate()
                        .filter(|(i, k)| owner_of(*i) == o && cursor.as_ref().is_none_or(|c| k.as_str() > c.as_str()))
                        .take(limit + 1)
                        .map(|(_, k)| key(k)),
                );
            }
            let (page, next) = merge(rows, limit);
            seen.extend(page.into_iter().map(|r| r.key));
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        prop_assert_eq!(seen, keys);
    }
}
