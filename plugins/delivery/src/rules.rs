//! The delivery plugin's pure rules: delivery and agent statuses, the agent's steps,
//! distances and the ranking of agents, coordinate checks. Nothing here touches a host
//! capability, so all of it is unit-tested natively.

use kirana_sdk::{json, ApiError, Validator};

/// A delivery's lifecycle (API.md "Details clients rely on → Delivery").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unassigned,
    Assigned,
    PickedUp,
    InTransit,
    Delivered,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Unassigned,
        Status::Assigned,
        Status::PickedUp,
        Status::InTransit,
        Status::Delivered,
        Status::Cancelled,
    ];

    /// The statuses in which a delivery occupies its agent.
    pub const ACTIVE: [Status; 3] = [Status::Assigned, Status::PickedUp, Status::InTransit];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unassigned => "unassigned",
            Status::Assigned => "assigned",
            Status::PickedUp => "picked_up",
            Status::InTransit => "in_transit",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A `status` list filter: unknown is `400 validation_failed`.
    pub fn parse_filter(s: &str) -> Result<Status, ApiError> {
        Status::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "must be one of unassigned, assigned, picked_up, in_transit, delivered, cancelled",
            )
        })
    }

    /// Assigned, picked up or in transit: the agent is busy with it.
    pub fn is_active(self) -> bool {
        Status::ACTIVE.contains(&self)
    }

    /// Delivered or cancelled: nothing changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Delivered | Status::Cancelled)
    }

    /// The step an agent may ask for (`picked_up`, `in_transit`, `delivered`); any
    /// other value is `400 validation_failed` (field `status`).
    pub fn parse_step(s: &str) -> Result<Status, ApiError> {
        match Status::parse(s) {
            Some(st @ (Status::PickedUp | Status::InTransit | Status::Delivered)) => Ok(st),
            _ => Err(ApiError::invalid_field(
                "status",
                "must be one of picked_up, in_transit, delivered",
            )),
        }
    }

    /// The status an agent's step must start from.
    pub fn step_from(self) -> Option<Status> {
        match self {
            Status::PickedUp => Some(Status::Assigned),
            Status::InTransit => Some(Status::PickedUp),
            Status::Delivered => Some(Status::InTransit),
            _ => None,
        }
    }

    /// `409 invalid_transition` (details `{from, to}`) unless `self → to` is the next
    /// step: assigned → picked_up → in_transit → delivered, nothing skipped or repeated.
    pub fn check_step(self, to: Status) -> Result<(), ApiError> {
        if to.step_from() == Some(self) {
            Ok(())
        } else {
            Err(kirana_shop::errors::invalid_transition(format!(
                "a delivery cannot go from {} to {}",
                self.as_str(),
                to.as_str()
            ))
            .with_details(json!({"from": self.as_str(), "to": to.as_str()})))
        }
    }

    /// The order status a step moves the order to, if any.
    pub fn order_status(self) -> Option<&'static str> {
        match self {
            Status::PickedUp => Some("out_for_delivery"),
            Status::Delivered => Some("delivered"),
            _ => None,
        }
    }

    /// The delivery column stamped when a delivery reaches this status.
    pub fn timestamp_column(self) -> Option<&'static str> {
        match self {
            Status::Assigned => Some("assigned_at"),
            Status::PickedUp => Some("picked_up_at"),
            Status::InTransit => Some("in_transit_at"),
            Status::Delivered => Some("delivered_at"),
            Status::Cancelled => Some("cancelled_at"),
            Status::Unassigned => None,
        }
    }
}

/// An agent's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    Offline,
    Available,
    Busy,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 3] = [
        AgentStatus::Offline,
        AgentStatus::Available,
        AgentStatus::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Offline => "offline",
            AgentStatus::Available => "available",
            AgentStatus::Busy => "busy",
        }
    }

    pub fn parse(s: &str) -> Option<AgentStatus> {
        AgentStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A status an agent may ask for: `available` or `offline`. `busy` is set by the
    /// system only; it and anything else are `400 validation_failed` (field `status`).
    pub fn parse_requested(s: &str) -> Result<AgentStatus, ApiError> {
        match AgentStatus::parse(s) {
            Some(st @ (AgentStatus::Available | AgentStatus::Offline)) => Ok(st),
            Some(AgentStatus::Busy) => Err(ApiError::invalid_field(
                "status",
                "busy is set by the system; use available or offline",
            )),
            None => Err(ApiError::invalid_field(
                "status",
                "must be available or offline",
            )),
        }
    }

    /// A list filter: unknown is `400 validation_failed`.
    pub fn parse_filter(s: &str) -> Result<AgentStatus, ApiError> {
        AgentStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field("status", "must be one of offline, available, busy")
        })
    }
}

/// The store location used when the configuration is missing or out of range.
pub const DEFAULT_STORE: (f64, f64) = (12.9716, 77.5946);

/// A latitude in [-90, 90] and longitude in [-180, 180].
pub fn in_range(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// The configured store location, or the default when it is out of range.
pub fn store_location(lat: f64, lon: f64) -> (f64, f64) {
    if in_range(lat, lon) {
        (lat, lon)
    } else {
        DEFAULT_STORE
    }
}

/// A `{lat, lon}` body: both must be JSON numbers within range; every bad field is
/// listed.
pub fn parse_location(body: &kirana_sdk::serde_json::Value) -> Result<(f64, f64), ApiError> {
    let mut v = Validator::new();
    let mut read = |field: &str, max: f64| -> f64 {
        match body.get(field) {
            None | Some(kirana_sdk::serde_json::Value::Null) => {
                v.push(field, "is required");
                0.0
            }
            Some(value) => match value.as_f64() {
                Some(x) if x.is_finite() => {
                    v.range(field, x, -max, max);
                    x
                }
                _ => {
                    v.push(field, "must be a number");
                    0.0
                }
            },
        }
    };
    let lat = read("lat", 90.0);
    let lon = read("lon", 180.0);
    v.finish()?;
    Ok((lat, lon))
}

/// Great-circle distance in kilometres between two `(lat, lon)` points.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = lon2 - lon1;
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// An available agent as the assignment sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub location: Option<(f64, f64)>,
    /// When the agent became available (RFC 3339; sorts lexically).
    pub since: String,
}

/// Candidate indexes, best first: agents with a known location by distance to the
/// store, then agents without one; ties (and the location-less) go to whoever has
/// been available longest, then by id.
pub fn rank(candidates: &[Candidate], store: (f64, f64)) -> Vec<usize> {
    let mut order: Vec<(usize, Option<f64>)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.location.map(|l| haversine_km(l, store))))
        .collect();
    order.sort_by(|(ia, da), (ib, db)| {
        let by_distance = match (da, db) {
            (Some(a), Some(b)) => a.total_cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        let (a, b) = (&candidates[*ia], &candidates[*ib]);
        by_distance
            .then_with(|| a.since.cmp(&b.since))
            .then_with(|| a.id.cmp(&b.id))
    });
    order.into_iter().map(|(i, _)| i).collect()
}

/// An id that could have been issued by a plugin: anything else cannot exist (404) and
/// is never put into a peer's path.
pub use kirana_shop::plausible_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_go_strictly_forward() {
        use Status::*;
        assert!(Assigned.check_step(PickedUp).is_ok());
        assert!(PickedUp.check_step(InTransit).is_ok());
        assert!(InTransit.check_step(Delivered).is_ok());
        for (from, to) in [
            (Assigned, InTransit),
            (Assigned, Delivered),
            (PickedUp, PickedUp),
            (PickedUp, Delivered),
            (Delivered, Delivered),
            (Cancelled, PickedUp),
            (Unassigned, PickedUp),
            (InTransit, PickedUp),
        ] {
            let e = from.check_step(to).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (409, "invalid_transition"),
                "{from:?}→{to:?}"
            );
            assert_eq!(e.details["from"], from.as_str());
        }
        assert_eq!(PickedUp.order_status(), Some("out_for_delivery"));
        assert_eq!(InTransit.order_status(), None);
        assert_eq!(Delivered.order_status(), Some("delivered"));
    }

    #[test]
    fn parsing_steps_and_statuses() {
        assert_eq!(Status::parse_step("picked_up").unwrap(), Status::PickedUp);
        for bad in ["assigned", "cancelled", "unassigned", "flying", ""] {
            let e = Status::parse_step(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "validation_failed"), "{bad}");
        }
        assert!(Status::parse_filter("in_transit").is_ok());
        assert_eq!(Status::parse_filter("lost").unwrap_err().status, 400);
        assert!(Status::Assigned.is_active() && !Status::Unassigned.is_active());
        assert!(Status::Cancelled.is_final() && !Status::InTransit.is_final());
    }

    #[test]
    fn agents_ask_only_for_available_or_offline() {
        assert_eq!(
            AgentStatus::parse_requested("available").unwrap(),
            AgentStatus::Available
        );
        assert_eq!(
            AgentStatus::parse_requested("offline").unwrap(),
            AgentStatus::Offline
        );
        let e = AgentStatus::parse_requested("busy").unwrap_err();
        assert_eq!((e.status, e.code), (400, "validation_failed"));
        assert!(e.message.contains("system"));
        assert_eq!(
            AgentStatus::parse_requested("asleep").unwrap_err().status,
            400
        );
    }

    #[test]
    fn locations_are_validated() {
        let ok = parse_location(&json!({"lat": 12.9, "lon": 77})).unwrap();
        assert_eq!(ok, (12.9, 77.0));
        assert!(parse_location(&json!({"lat": -90, "lon": 180})).is_ok());
        let e = parse_location(&json!({"lat": 91, "lon": -181})).unwrap_err();
        assert_eq!(e.details["fields"].as_array().map(Vec::len), Some(2));
        let e = parse_location(&json!({"lat": "12", "lon": null})).unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "lat");
        assert_eq!(e.details["fields"][0]["message"], "must be a number");
        assert_eq!(e.details["fields"][1]["message"], "is required");
        assert!(parse_location(&json!({"lat": true, "lon": 1})).is_err());
        assert_eq!(store_location(100.0, 0.0), DEFAULT_STORE);
        assert_eq!(store_location(1.0, 2.0), (1.0, 2.0));
    }

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude is about 111.2 km.
        let d = haversine_km((0.0, 0.0), (1.0, 0.0));
        assert!((d - 111.2).abs() < 0.2, "{d}");
        assert_eq!(haversine_km(DEFAULT_STORE, DEFAULT_STORE), 0.0);
        // Bengaluru (MG Road) to Mysuru is about 126 km as the crow flies.
        let d = haversine_km(DEFAULT_STORE, (12.2958, 76.6394));
        assert!((120.0..135.0).contains(&d), "{d}");
    }

    #[test]
    fn ranking_prefers_near_then_located_then_longest_waiting() {
        let c = |id: &str, location: Option<(f64, f64)>, since: &str| Candidate {
            id: id.into(),
            location,
            since: since.into(),
        };
        let store = DEFAULT_STORE;
        let candidates = vec![
            c("far", Some((13.2, 77.7)), "2026-01-01T10:00:00Z"),
            c("nowhere-late", None, "2026-01-01T10:05:00Z"),
            c("near", Some((12.972, 77.595)), "2026-01-01T10:09:00Z"),
            c("nowhere-early", None, "2026-01-01T09:00:00Z"),
            c("near-twin", Some((12.972, 77.595)), "2026-01-01T10:01:00Z"),
        ];
        let ids: Vec<&str> = rank(&candidates, store)
            .into_iter()
            .map(|i| candidates[i].id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["near-twin", "near", "far", "nowhere-early", "nowhere-late"]
        );
        assert!(rank(&[], store).is_empty());
    }

    #[test]
    fn ids() {
        assert!(plausible_id("ord_0192abc"));
        assert!(!plausible_id(""));
        assert!(!plausible_id("a/b"));
        assert!(!plausible_id(&"x".repeat(129)));
    }
}
