//! A shopper's review of a product: one per shopper and SKU (id [`review_id`]), editable,
//! with a rating of 1 to 5, a title and a body, and its moderation: `pending` until an
//! operator approves or rejects it (or `approved` at once when the shop auto-approves and
//! the content filter found nothing), and back to `pending` when it is edited or reported
//! by [`REPORTS_TO_HIDE`] shoppers.
//!
//! A review is placed in its product's partition (`store::partition::placement_id`), so a
//! product's approved reviews and its rating are read and written where the product is.
//! Pure: the edge passes the time, the verified-purchase check and the filter's flags.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode, Sku};

/// Reports that send an approved review back to moderation.
pub const REPORTS_TO_HIDE: usize = 3;
/// Most reports one review remembers.
pub const MAX_REPORTS: usize = 100;
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 5000;
pub const MAX_REASON: usize = 500;

/// The id of `author`'s review of `sku`: `{sku}~{author}` (`~` is in no SKU).
pub fn review_id(sku: &Sku, author: Uuid) -> String {
    format!("{sku}~{author}")
}

/// The SKU and author a review id names.
pub fn parse_review_id(id: &str) -> Option<(Sku, Uuid)> {
    let (sku, author) = id.split_once('~')?;
    Some((Sku::parse(sku).ok()?, Uuid::parse_str(author).ok()?))
}

/// What the content filter finds in a review: `link` for a URL, `word:<w>` for each
/// listed word present (whole words, case-insensitive).
pub fn content_flags(text: &str, words: &[String], links: bool) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut flags = Vec::new();
    if links
        && ["http://", "https://", "www."]
            .iter()
            .any(|l| lower.contains(l))
    {
        flags.push("link".to_owned());
    }
    let present: BTreeSet<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for w in words {
        let w = w.trim().to_lowercase();
        if !w.is_empty() && present.contains(w.as_str()) {
            flags.push(format!("word:{w}"));
        }
    }
    flags
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewText {
    pub sku: Sku,
    pub author: Uuid,
    pub rating: u8,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewState {
    pub text: Option<ReviewText>,
    pub status: ReviewStatus,
    /// Why an operator rejected it.
    pub reason: Option<String>,
    /// What the content filter (or reports) found: why it waits for moderation.
    pub flags: Vec<String>,
    /// Who reported it since it was last approved.
    pub reports: BTreeSet<Uuid>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReviewCommand {
    /// Writes or edits the review. `flags` are the content filter's findings; with none
    /// and `auto_approve`, it is approved at once.
    Write {
        text: ReviewText,
        flags: Vec<String>,
        auto_approve: bool,
        now: Millis,
    },
    Approve {
        now: Millis,
    },
    Reject {
        reason: String,
        now: Millis,
    },
    Report {
        by: Uuid,
        now: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewEvent {
    Written {
        text: ReviewText,
        status: ReviewStatus,
        flags: Vec<String>,
        at: Millis,
    },
    Approved {
        at: Millis,
    },
    Rejected {
        reason: String,
        at: Millis,
    },
    Reported {
        by: Uuid,
        at: Millis,
    },
}

pub struct Review;

fn check_text(t: &ReviewText) -> Result<(), Rejection> {
    let invalid = |m: String| reject(RejectionCode::Validation, m);
    if !(1..=5).contains(&t.rating) {
        return invalid("rating must be 1 to 5".into());
    }
    let title = t.title.trim().chars().count();
    if title == 0 || title > MAX_TITLE {
        return invalid(format!("title must be 1 to {MAX_TITLE} characters"));
    }
    if t.body.chars().count() > MAX_BODY {
        return invalid(format!("body must be at most {MAX_BODY} characters"));
    }
    Ok(())
}

impl Aggregate for Review {
    const KIND: EntityKind = EntityKind::Review;
    const INDEXES: &'static [crate::domain::Index] = &[super::Index::Reviews];
    type State = ReviewState;
    type Command = ReviewCommand;
    type Event = ReviewEvent;

    fn decide(s: &ReviewState, cmd: &ReviewCommand) -> Result<Vec<ReviewEvent>, Rejection> {
        let exists = || -> Result<(), Rejection> {
            match &s.text {
                Some(_) => Ok(()),
                None => reject(RejectionCode::NotFound, "no such review"),
            }
        };
        match cmd {
            ReviewCommand::Write {
                text,
                flags,
                auto_approve,
                now,
            } => {
                check_text(text)?;
                if let Some(t) = &s.text {
                    if t.sku != text.sku || t.author != text.author {
                        return reject(
                            RejectionCode::Validation,
                            "a review keeps its product and author",
                        );
                    }
                    if t == text {
                        return Ok(vec![]);
                    }
                }
                let status = if flags.is_empty() && *auto_approve {
                    ReviewStatus::Approved
                } else {
                    ReviewStatus::Pending
                };
                Ok(vec![ReviewEvent::Written {
                    text: text.clone(),
                    status,
                    flags: flags.clone(),
                    at: *now,
                }])
            }
            ReviewCommand::Approve { now } => {
                exists()?;
                if s.status == ReviewStatus::Approved {
                    return Ok(vec![]);
                }
                Ok(vec![ReviewEvent::Approved { at: *now }])
            }
            ReviewCommand::Reject { reason, now } => {
                exists()?;
                let n = reason.trim().chars().count();
                if n == 0 || n > MAX_REASON {
                    return reject(
                        RejectionCode::Validation,
                        format!("reason must be 1 to {MAX_REASON} characters"),
                    );
                }
                if s.status == ReviewStatus::Rejected && s.reason.as_deref() == Some(reason.trim())
                {
                    return Ok(vec![]);
                }
                Ok(vec![ReviewEvent::Rejected {
                    reason: reason.trim().to_owned(),
                    at: *now,
                }])
            }
            ReviewCommand::Report { by, now } => {
                exists()?;
                if s.reports.contains(by) || s.reports.len() >= MAX_REPORTS {
                    return Ok(vec![]);
                }
                Ok(vec![ReviewEvent::Reported { by: *by, at: *now }])
            }
        }
    }

    fn apply(s: &mut ReviewState, e: &ReviewEvent) {
        match e {
            ReviewEvent::Written {
                text,
                status,
                flags,
                at,
            } => {
                if s.text.is_none() {
                    s.created_at = *at;
                }
                s.text = Some(text.clone());
                s.status = *status;
                s.flags = flags.clone();
                s.reason = None;
                s.reports.clear();
                s.updated_at = *at;
            }
            ReviewEvent::Approved { at } => {
                s.status = ReviewStatus::Approved;
                s.reason = None;
                s.flags.clear();
                s.reports.clear();
                s.updated_at = *at;
            }
            ReviewEvent::Rejected { reason, at } => {
                s.status = ReviewStatus::Rejected;
                s.reason = Some(reason.clone());
                s.updated_at = *at;
            }
            ReviewEvent::Reported { by, at } => {
                s.reports.insert(*by);
                if s.reports.len() >= REPORTS_TO_HIDE && s.status == ReviewStatus::Approved {
                    s.status = ReviewStatus::Pending;
                    s.flags.push("reported".to_owned());
                }
                s.updated_at = *at;
            }
        }
    }
}

/// The review-listing index keys (`Index::Reviews`) of a review in state `s`:
/// an approved review is listed under its product by time (`{sku}/t/{inverted
/// created}/{author}`) and by rating (`{sku}/r/{5 - rating}/...`); a pending one in the
/// moderation queue (`~pending/{inverted created}/{id}`). `stale` are the keys a review
/// may have had before, to remove (every rating's, since the index cannot read the old).
pub fn index_keys(s: &ReviewState) -> (Vec<String>, Vec<String>) {
    let Some(t) = &s.text else {
        return (vec![], vec![]);
    };
    let inv = u64::MAX - s.created_at;
    let by_time = format!("{}/t/{inv:016x}/{}", t.sku, t.author);
    let by_rating = |r: u8| format!("{}/r/{}/{inv:016x}/{}", t.sku, 5 - r, t.author);
    let pending = format!("{PENDING_PREFIX}{inv:016x}/{}", review_id(&t.sku, t.author));
    let mut all: Vec<String> = (1..=5).map(by_rating).collect();
    all.push(by_time.clone());
    all.push(pending.clone());
    let live = match s.status {
        ReviewStatus::Approved => vec![by_time, by_rating(t.rating)],
        ReviewStatus::Pending => vec![pending],
        ReviewStatus::Rejected => vec![],
    };
    let stale = all.into_iter().filter(|k| !live.contains(k)).collect();
    (live, stale)
}

/// The prefix of the moderation queue's keys.
pub const PENDING_PREFIX: &str = "~pending/";

/// The rating of a by-rating key (`{sku}/r/{5 - rating}/...`).
pub fn rating_of_key(key: &str, sku: &Sku) -> Option<u8> {
    let rest = key.strip_prefix(&format!("{sku}/r/"))?;
    let d: u8 = rest.get(..1)?.parse().ok()?;
    (d < 5).then(|| 5 - d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(rating: u8) -> ReviewText {
        ReviewText {
            sku: Sku::parse("MUG-1").unwrap(),
            author: Uuid::from_u128(7),
            rating,
            title: "Good mug".into(),
            body: "Holds tea.".into(),
        }
    }

    fn run(s: &mut ReviewState, c: ReviewCommand) -> Result<(), Rejection> {
        for e in Review::decide(s, &c)? {
            Review::apply(s, &e);
        }
        Ok(())
    }

    #[test]
    fn the_filter_flags_links_and_listed_words() {
        let words = vec!["Scam".to_owned()];
        assert_eq!(
            content_flags("A scam! see https://x.example", &words, true),
            ["link", "word:scam"]
        );
        assert!(content_flags("scampi are fine", &words, true).is_empty());
        assert!(content_flags("www.example.com", &words, false).is_empty());
    }

    #[test]
    fn moderation_edits_and_reports() {
        let mut s = ReviewState::default();
        let write = |rating, flags: Vec<String>, auto| ReviewCommand::Write {
            text: text(rating),
            flags,
            auto_approve: auto,
            now: 10,
        };
        run(&mut s, write(4, vec!["link".into()], true)).unwrap();
        assert_eq!(
            s.status,
            ReviewStatus::Pending,
            "flagged: moderated even with auto-approve"
        );
        run(&mut s, ReviewCommand::Approve { now: 11 }).unwrap();
        assert_eq!((s.status, s.flags.len()), (ReviewStatus::Approved, 0));
        let (live, stale) = index_keys(&s);
        assert_eq!(live.len(), 2);
        assert_eq!(rating_of_key(&live[1], &text(4).sku), Some(4));
        assert_eq!(stale.len(), 5);
        for by in 1..=3u128 {
            run(
                &mut s,
                ReviewCommand::Report {
                    by: Uuid::from_u128(by),
                    now: 12,
                },
            )
            .unwrap();
        }
        assert_eq!(s.status, ReviewStatus::Pending);
        assert!(index_keys(&s).0[0].starts_with(PENDING_PREFIX));
        let e = run(
            &mut s,
            ReviewCommand::Reject {
                reason: " ".into(),
                now: 13,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, RejectionCode::Validation);
        run(
            &mut s,
            ReviewCommand::Reject {
                reason: "off topic".into(),
                now: 13,
            },
        )
        .unwrap();
        assert!(index_keys(&s).0.is_empty());
        assert_eq!(s.created_at, 10);
        assert_eq!(
            parse_review_id(&review_id(&text(1).sku, Uuid::from_u128(7))),
            Some((text(1).sku, Uuid::from_u128(7)))
        );
    }

    proptest! {
        /// Whatever the commands, an approved review is listed exactly under its product
        /// (by time and by its rating), a pending one only in the queue, a rejected one
        /// nowhere; and every key it may have had is either live or removed.
        #[test]
        fn the_index_follows_the_status(ops in proptest::collection::vec((0u8..5, 1u8..=5, any::<bool>()), 0..40)) {
            let mut s = ReviewState::default();
            for (op, rating, flag) in ops {
                let cmd = match op {
                    0 => ReviewCommand::Write { text: text(rating), flags: if flag { vec!["link".into()] } else { vec![] }, auto_approve: !flag, now: 5 },
                    1 => ReviewCommand::Approve { now: 6 },
                    2 => ReviewCommand::Reject { reason: "no".into(), now: 7 },
                    _ => ReviewCommand::Report { by: Uuid::from_u128(u128::from(rating)), now: 8 },
                };
                let _ = run(&mut s, cmd);
                let (live, stale) = index_keys(&s);
                prop_assert!(live.iter().all(|k| !stale.contains(k)));
                match (s.status, &s.text) {
                    (_, None) => prop_assert!(live.is_empty()),
                    (ReviewStatus::Approved, Some(t)) => {
                        prop_assert_eq!(live.len(), 2);
                        prop_assert_eq!(rating_of_key(&live[1], &t.sku), Some(t.rating));
                    }
                    (ReviewStatus::Pending, Some(_)) => prop_assert!(live.len() == 1 && live[0].starts_with(PENDING_PREFIX)),
                    (ReviewStatus::Rejected, Some(_)) => prop_assert!(live.is_empty()),
                }
            }
        }
    }
}
