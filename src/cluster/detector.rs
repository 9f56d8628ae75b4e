//! The failure detector: application heartbeats with deadlines, because ractor_cluster's
//! own pings never close a silent session. Pure: the caller feeds it what it heard and the
//! time, and acts on the transitions it returns (re-dial with backoff, stop routing to a
//! node that is down, report `GET /v1/cluster`).
//!
//! A member heard from within `suspect_after_ms` is `Alive`; silent longer it is
//! `Suspect`; silent past `down_after_ms` it is `Down`. Hearing from it again makes it
//! `Alive` at once. The defaults aim at detection in under 3 s.

use std::collections::BTreeMap;

use super::placement::NodeName;
use crate::domain::Millis;

/// What this node believes of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Alive,
    Suspect,
    Down,
}

/// A change of belief, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub node: NodeName,
    pub from: Health,
    pub to: Health,
}

/// A member's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub health: Health,
    /// When it was last heard from (this node's clock).
    pub last_heard: Millis,
}

/// Heartbeat deadlines per member.
#[derive(Debug, Clone)]
pub struct Detector {
    suspect_after_ms: u64,
    down_after_ms: u64,
    members: BTreeMap<NodeName, Member>,
}

impl Detector {
    /// `suspect_after_ms` must be below `down_after_ms`; both are clamped to at least 1.
    pub fn new(suspect_after_ms: u64, down_after_ms: u64) -> Self {
        let suspect = suspect_after_ms.max(1);
        Self {
            suspect_after_ms: suspect,
            down_after_ms: down_after_ms.max(suspect + 1),
            members: BTreeMap::new(),
        }
    }

    /// Starts watching `node` as if just heard from (a new member, or a seed at start).
    pub fn watch(&mut self, node: &str, now: Millis) {
        self.members.entry(node.to_owned()).or_insert(Member {
            health: Health::Alive,
            last_heard: now,
        });
    }

    /// Stops watching `node` (it left, or was removed).
    pub fn forget(&mut self, node: &str) {
        self.members.remove(node);
    }

    /// A heartbeat (or any message) from `node` arrived at `now`.
    pub fn heard(&mut self, node: &str, now: Millis) -> Option<Transition> {
        let m = self.members.get_mut(node)?;
        m.last_heard = m.last_heard.max(now);
        (m.health != Health::Alive).then(|| {
            let from = m.health;
            m.health = Health::Alive;
            Transition {
                node: node.to_owned(),
                from,
                to: Health::Alive,
            }
        })
    }

    /// Re-evaluates every deadline at `now`.
    pub fn tick(&mut self, now: Millis) -> Vec<Transition> {
        let mut out = vec![];
        for (node, m) in &mut self.members {
            let silent = now.saturating_sub(m.last_heard);
            let health = if silent >= self.down_after_ms {
                Health::Down
            } else if silent >= self.suspect_after_ms {
                Health::Suspect
            } else {
                Health::Alive
            };
            // Only silence degrades a member here; recovery comes from `heard`.
            let worse = matches!(
                (m.health, health),
                (Health::Alive, Health::Suspect | Health::Down) | (Health::Suspect, Health::Down)
            );
            if worse {
                out.push(Transition {
                    node: node.clone(),
                    from: m.health,
                    to: health,
                });
                m.health = health;
            }
        }
        out
    }

    /// Every watched member.
    pub fn members(&self) -> &BTreeMap<NodeName, Member> {
        &self.members
    }

    /// When the next deadline can fire, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.members
            .values()
            .filter_map(|m| match m.health {
                Health::Alive => Some(m.last_heard + self.suspect_after_ms),
                Health::Suspect => Some(m.last_heard + self.down_after_ms),
                Health::Down => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(node: &str, from: Health, to: Health) -> Transition {
        Transition {
            node: node.into(),
            from,
            to,
        }
    }

    #[test]
    fn silence_makes_suspect_then_down_and_a_heartbeat_revives() {
        let mut d = Detector::new(1_000, 2_500);
        d.watch("a", 0);
        d.watch("b", 0);
        assert_eq!(d.next_deadline(), Some(1_000));
        assert_eq!(d.heard("b", 900), None, "already alive");
        assert!(d.tick(999).is_empty());
        assert_eq!(d.tick(1_000), vec![t("a", Health::Alive, Health::Suspect)]);
        assert_eq!(d.next_deadline(), Some(1_900));
        assert_eq!(d.tick(1_000), vec![], "a transition is reported once");
        assert_eq!(
            d.tick(2_500),
            vec![
                t("a", Health::Suspect, Health::Down),
                t("b", Health::Alive, Health::Suspect)
            ]
        );
        assert_eq!(
            d.heard("a", 2_600),
            Some(t("a", Health::Down, Health::Alive))
        );
        assert_eq!(d.members()["a"].health, Health::Alive);
        // A late heartbeat with an older time never moves the clock back.
        d.heard("a", 100);
        assert_eq!(d.members()["a"].last_heard, 2_600);
        d.forget("a");
        assert_eq!(d.heard("a", 3_000), None, "forgotten members are ignored");
    }

    #[test]
    fn a_member_silent_past_the_down_deadline_skips_suspect() {
        let mut d = Detector::new(1_000, 2_000);
        d.watch("a", 0);
        assert_eq!(d.tick(5_000), vec![t("a", Health::Alive, Health::Down)]);
        assert_eq!(d.next_deadline(), None);
        // Deadlines that make no sense are repaired: down comes after suspect.
        let mut d = Detector::new(0, 0);
        d.watch("a", 0);
        assert_eq!(d.tick(1), vec![t("a", Health::Alive, Health::Suspect)]);
    }
}
