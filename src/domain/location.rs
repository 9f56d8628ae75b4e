//! The stock locations: one entity (id [`BOOK_ID`]) holding every store, warehouse, truck
//! and machine location with its name, its kind, its draw priority and whether it is
//! open. Each SKU keeps its own units per location (`stock.rs`); this book says which
//! locations a checkout may draw from and in which order.
//!
//! The default location [`MAIN`] always exists (a warehouse of priority 0, open) unless
//! the book says otherwise, so a shop that never defines a location keeps one stock
//! figure per SKU, as before locations existed. Pure: the caller passes the time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode, Sku};

/// The one id of the location book.
pub const BOOK_ID: &str = "locations";
/// The default location: adjustments without a location, and every unit recorded before
/// locations existed, are here.
pub const MAIN: &str = "main";
/// Most locations a shop defines.
pub const MAX_LOCATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Store,
    Warehouse,
    Truck,
    Machine,
}

impl LocationKind {
    /// Whether a checkout may draw from a location of this kind: a truck's units are on
    /// the road and a machine's are sold by the machine itself.
    pub fn sells_online(self) -> bool {
        matches!(self, Self::Store | Self::Warehouse)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub kind: LocationKind,
    pub name: String,
    /// Lower numbers are drawn first (then by id).
    pub priority: u32,
    /// A closed location is not drawn from and receives no transfer; its units stay.
    pub open: bool,
    pub updated_at: Millis,
}

impl Location {
    fn main() -> Self {
        Self {
            kind: LocationKind::Warehouse,
            name: "Main".into(),
            priority: 0,
            open: true,
            updated_at: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationsState {
    /// Every location the operator defined ([`MAIN`] only if it was redefined).
    pub locations: BTreeMap<String, Location>,
}

impl LocationsState {
    /// A location by id; [`MAIN`] exists even when not defined.
    pub fn get(&self, id: &str) -> Option<Location> {
        match self.locations.get(id) {
            Some(l) => Some(l.clone()),
            None if id == MAIN => Some(Location::main()),
            None => None,
        }
    }

    /// Every location, [`MAIN`] included, by id.
    pub fn all(&self) -> BTreeMap<String, Location> {
        let mut all = self.locations.clone();
        all.entry(MAIN.to_owned()).or_insert_with(Location::main);
        all
    }

    /// The open locations a checkout draws from, in the order it draws: by priority,
    /// then id.
    pub fn draw_order(&self) -> Vec<String> {
        let mut open: Vec<(u32, String)> = self
            .all()
            .into_iter()
            .filter(|(_, l)| l.open && l.kind.sells_online())
            .map(|(id, l)| (l.priority, id))
            .collect();
        open.sort();
        open.into_iter().map(|(_, id)| id).collect()
    }

    /// Whether `id` is a location that can receive stock now.
    pub fn is_open(&self, id: &str) -> bool {
        self.get(id).is_some_and(|l| l.open)
    }
}

/// A location id: 1 to 64 of `[A-Za-z0-9._-]`, as a SKU.
pub fn valid_location_id(id: &str) -> Result<(), Rejection> {
    Sku::parse(id).map(|_| ()).map_err(|_| {
        Rejection::new(
            RejectionCode::Validation,
            "a location id is 1 to 64 letters, digits, '.', '_' or '-'",
        )
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LocationCommand {
    /// Creates or replaces a location.
    Put {
        id: String,
        kind: LocationKind,
        name: String,
        priority: u32,
        open: bool,
        now: Millis,
    },
    /// Closes a location: no longer drawn from, no transfer into it.
    Close { id: String, now: Millis },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocationEvent {
    Put { id: String, location: Location },
    Closed { id: String, at: Millis },
}

pub struct Locations;

impl Aggregate for Locations {
    const KIND: EntityKind = EntityKind::Location;
    type State = LocationsState;
    type Command = LocationCommand;
    type Event = LocationEvent;

    fn decide(s: &LocationsState, cmd: &LocationCommand) -> Result<Vec<LocationEvent>, Rejection> {
        match cmd {
            LocationCommand::Put {
                id,
                kind,
                name,
                priority,
                open,
                now,
            } => {
                valid_location_id(id)?;
                let n = name.trim().chars().count();
                if n == 0 || n > 100 {
                    return reject(
                        RejectionCode::Validation,
                        "name must be 1 to 100 characters",
                    );
                }
                if !s.locations.contains_key(id) && s.locations.len() >= MAX_LOCATIONS {
                    return reject(
                        RejectionCode::Validation,
                        format!("a shop holds at most {MAX_LOCATIONS} locations"),
                    );
                }
                let location = Location {
                    kind: *kind,
                    name: name.trim().to_owned(),
                    priority: *priority,
                    open: *open,
                    updated_at: *now,
                };
                let same = s.locations.get(id).is_some_and(|e| {
                    Location {
                        updated_at: *now,
                        ..e.clone()
                    } == location
                });
                if same {
                    return Ok(vec![]);
                }
                Ok(vec![LocationEvent::Put {
                    id: id.clone(),
                    location,
                }])
            }
            LocationCommand::Close { id, now } => match s.get(id) {
                None => reject(RejectionCode::NotFound, format!("no location {id}")),
                Some(l) if !l.open => Ok(vec![]),
                Some(_) => Ok(vec![LocationEvent::Closed {
                    id: id.clone(),
                    at: *now,
                }]),
            },
        }
    }

    fn apply(s: &mut LocationsState, e: &LocationEvent) {
        match e {
            LocationEvent::Put { id, location } => {
                s.locations.insert(id.clone(), location.clone());
            }
            LocationEvent::Closed { id, at } => {
                let mut l = s.get(id).unwrap_or_else(Location::main);
                l.open = false;
                l.updated_at = *at;
                s.locations.insert(id.clone(), l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str, kind: LocationKind, priority: u32) -> LocationCommand {
        LocationCommand::Put {
            id: id.into(),
            kind,
            name: id.to_uppercase(),
            priority,
            open: true,
            now: 1,
        }
    }

    fn run(s: &mut LocationsState, c: LocationCommand) -> Result<(), Rejection> {
        for e in Locations::decide(s, &c)? {
            Locations::apply(s, &e);
        }
        Ok(())
    }

    #[test]
    fn main_exists_until_redefined_and_draws_by_priority_then_id() {
        let mut s = LocationsState::default();
        assert_eq!(s.draw_order(), vec![MAIN.to_owned()]);
        run(&mut s, put("b", LocationKind::Store, 1)).unwrap();
        run(&mut s, put("a", LocationKind::Warehouse, 1)).unwrap();
        run(&mut s, put("truck-1", LocationKind::Truck, 0)).unwrap();
        run(&mut s, put("m-1", LocationKind::Machine, 0)).unwrap();
        assert_eq!(s.draw_order(), vec!["main", "a", "b"]);
        run(&mut s, put(MAIN, LocationKind::Warehouse, 9)).unwrap();
        assert_eq!(s.draw_order(), vec!["a", "b", "main"]);
        run(
            &mut s,
            LocationCommand::Close {
                id: "a".into(),
                now: 2,
            },
        )
        .unwrap();
        assert_eq!(s.draw_order(), vec!["b", "main"]);
        assert!(!s.is_open("a") && s.is_open("truck-1") && !s.is_open("nowhere"));
    }

    #[test]
    fn closing_main_closes_it_and_bad_input_is_refused() {
        let mut s = LocationsState::default();
        run(
            &mut s,
            LocationCommand::Close {
                id: MAIN.into(),
                now: 2,
            },
        )
        .unwrap();
        assert!(s.draw_order().is_empty());
        let e = run(
            &mut s,
            LocationCommand::Close {
                id: "x".into(),
                now: 2,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, RejectionCode::NotFound);
        let e = run(&mut s, put("a b", LocationKind::Store, 0)).unwrap_err();
        assert_eq!(e.code, RejectionCode::Validation);
        let mut bad = put("a", LocationKind::Store, 0);
        if let LocationCommand::Put { name, .. } = &mut bad {
            *name = " ".into();
        }
        assert_eq!(
            run(&mut s, bad).unwrap_err().code,
            RejectionCode::Validation
        );
    }
}
