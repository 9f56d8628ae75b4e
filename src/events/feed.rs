//! The `feed` projection: every public event, kept in its partition in log order, for
//! `GET /v1/events`. Its records are the events themselves (JSON), keyed by the log seq
//! they came from and the type, so a reset rebuilds the same records with the same ids.
//!
//! [`page`] reads it: per partition from a cursor position, merged by time, never
//! splitting the events of one log entry across pages; [`cluster_page`] does the same
//! over every node, each owner reading its partitions ([`owner_events`]).

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::handler::{EventHandler, HandlerError};
use super::public::{EventType, PublicEvent};
use crate::store::partition_store::Record;
use crate::store::{Journal, StoreError};

/// The projection's name: the key of its offsets and records.
pub const NAME: &str = "feed";

/// The feed's handler: nothing outside the partition, only its records.
pub struct Feed;

fn key(ev: &PublicEvent) -> Vec<u8> {
    let mut k = ev.pseq.to_be_bytes().to_vec();
    let ty = EventType::ALL
        .iter()
        .position(|t| *t == ev.r#type)
        .unwrap_or(0);
    k.push(ty as u8);
    k
}

impl EventHandler for Feed {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>> {
        Box::pin(async move {
            Ok(match serde_json::to_vec(ev) {
                Ok(v) => vec![(key(ev), v)],
                Err(_) => Vec::new(),
            })
        })
    }
}

/// Where a reader is: per partition, the last log seq it has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(pub BTreeMap<u32, u64>);

impl Cursor {
    /// `p.seq` pairs joined by `-`, e.g. `3.17-12.4`; empty for the start.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(p, s)| format!("{p}.{s}"))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The cursor `encode` spelled; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = BTreeMap::new();
        for pair in s.split('-').filter(|x| !x.is_empty()) {
            let (p, seq) = pair.split_once('.')?;
            let p: u32 = p.parse().ok()?;
            if p >= 4096 || out.insert(p, seq.parse().ok()?).is_some() {
                return None;
            }
        }
        Some(Self(out))
    }
}

/// A page of the feed.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<PublicEvent>,
    pub cursor: Cursor,
}

/// Up to about `limit` events of `partitions` after `cursor`, of `types` (all when
/// empty), oldest first across partitions and in log order within each.
pub fn page(
    journal: &Journal,
    partitions: &[u32],
    cursor: &Cursor,
    types: &[EventType],
    limit: usize,
) -> Result<Page, StoreError> {
    Ok(assemble(
        owner_events(journal, partitions, cursor, limit)?,
        cursor,
        types,
        limit,
    ))
}

/// One owner's part of a page: about `limit` events of `partitions` after `cursor`, of
/// every type (a filtered-out event still moves the cursor), in feed order, whole log
/// entries. What the merge of every owner's part ([`assemble`]) takes of a partition is
/// a prefix of that partition's events after the cursor, so a page loses and repeats
/// nothing; across partitions it is ordered by time as far as the parts reach (the feed
/// promises order within a partition only).
pub fn owner_events(
    journal: &Journal,
    partitions: &[u32],
    cursor: &Cursor,
    limit: usize,
) -> Result<Vec<PublicEvent>, StoreError> {
    let cap = limit + EventType::ALL.len();
    let mut all = Vec::new();
    for &p in partitions {
        let after = cursor.0.get(&p).map(|s| {
            let mut k = s.to_be_bytes().to_vec();
            k.push(u8::MAX);
            k
        });
        let records = journal
            .partition(p)
            .projected(NAME, after.as_deref(), cap)?;
        let full = records.len() == cap;
        let mut evs: Vec<PublicEvent> = records
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect();
        // A read cut short may have cut the last entry's events: leave that entry whole
        // for the next page.
        if full {
            if let Some(last) = evs.last().map(|e| e.pseq) {
                if evs.iter().any(|e| e.pseq != last) {
                    evs.retain(|e| e.pseq != last);
                }
            }
        }
        all.extend(evs);
    }
    let page = assemble(all, cursor, &[], limit);
    Ok(page.events)
}

/// The page of about `limit` events of `types` from `events` (one owner's, or merged
/// from all), whole log entries, and the cursor after what it read.
pub fn assemble(
    mut all: Vec<PublicEvent>,
    cursor: &Cursor,
    types: &[EventType],
    limit: usize,
) -> Page {
    let ty = |e: &PublicEvent| EventType::ALL.iter().position(|t| *t == e.r#type);
    all.sort_by_key(|e| (e.at, e.partition, e.pseq, ty(e)));
    all.dedup_by(|a, b| a.id == b.id); // read twice, from an old and a new owner
    let mut next = cursor.clone();
    let mut events = Vec::new();
    let mut last: Option<(u32, u64)> = None;
    for ev in all {
        let entry = (ev.partition, ev.pseq);
        // Whole log entries only: the events of one entry share (partition, pseq).
        if events.len() >= limit && last != Some(entry) {
            break;
        }
        last = Some(entry);
        next.0.insert(ev.partition, ev.pseq);
        if types.is_empty() || types.contains(&ev.r#type) {
            events.push(ev);
        }
    }
    Page {
        events,
        cursor: next,
    }
}

/// A page of the whole cluster's feed: every partition's owner reads its part
/// ([`owner_events`], through the router's fan-out), and the parts merge here. With
/// `partial`, partitions that cannot answer are left where the cursor has them (their
/// events come on a later page) and named; without it, they fail the read.
pub async fn cluster_page(
    router: &crate::router::Router,
    cursor: &Cursor,
    types: &[EventType],
    limit: usize,
    partial: bool,
) -> Result<(Page, Vec<u32>), crate::router::listing::ListingError> {
    let (records, missing) = router
        .feed_records(cursor.0.clone(), limit as u32, partial)
        .await?;
    let events = records
        .iter()
        .filter_map(|r| serde_json::from_slice::<PublicEvent>(r).ok())
        .collect();
    Ok((assemble(events, cursor, types, limit), missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_junk() {
        let c = Cursor([(3, 17), (12, 4)].into_iter().collect());
        assert_eq!(c.encode(), "3.17-12.4");
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse(""), Some(Cursor::default()));
        for bad in ["3", "3.x", "x.1", "5000.1", "3.1-3.2", "3.-1"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
