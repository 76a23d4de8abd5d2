//! The analytics plugin's pure rules: calendar maths on UTC days, the order read model
//! and the revenue rule, and the query parameters of the routes. Nothing here touches a
//! host capability, so all of it is unit-tested natively.

use kirana_sdk::{ApiError, Validator};

// ---------------------------------------------------------------------------------
// Days
// ---------------------------------------------------------------------------------

/// A calendar day in UTC, as days since 1970-01-01 (negative before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub i64);

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `s` as an unsigned decimal number when it is all ASCII digits.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A valid `YYYY-MM-DD` prefix of `s` (years 0001..9999) as (y, m, d).
fn ymd(s: &str) -> Option<(i64, i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(s.get(0..4)?)?;
    let m = digits(s.get(5..7)?)?;
    let d = digits(s.get(8..10)?)?;
    let ok = y >= 1 && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m);
    ok.then_some((y, m, d))
}

impl Day {
    /// Parses exactly `YYYY-MM-DD`, a real date (no `2025-02-30`).
    pub fn parse(s: &str) -> Option<Day> {
        if s.len() != 10 {
            return None;
        }
        let (y, m, d) = ymd(s)?;
        Some(Day(days_from_civil(y, m, d)))
    }

    /// The UTC day containing the Unix time `secs`.
    pub fn of_unix(secs: i64) -> Day {
        Day(secs.div_euclid(86_400))
    }

    /// `n` days later (earlier when negative).
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Unix seconds of an RFC 3339 timestamp (`2025-01-31T23:30:00Z`, `…+05:30`, fractions
/// allowed and dropped). `None` for anything else.
pub fn unix_of_rfc3339(s: &str) -> Option<i64> {
    let (y, mo, d) = ymd(s)?;
    let rest = s.get(10..)?;
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))?;
    let b = rest.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = digits(rest.get(0..2)?)?;
    let mi = digits(rest.get(3..5)?)?;
    let sec = digits(rest.get(6..8)?)?;
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut zone = rest.get(8..)?;
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        zone = frac.get(n..)?;
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.as_bytes()[3] != b':' {
                return None;
            }
            let oh = digits(zone.get(1..3)?)?;
            let om = digits(zone.get(4..6)?)?;
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// The UTC day (`YYYY-MM-DD`) of an RFC 3339 timestamp.
pub fn utc_day_of(ts: &str) -> Option<String> {
    unix_of_rfc3339(ts).map(|s| Day::of_unix(s).to_string())
}

// ---------------------------------------------------------------------------------
// Statuses
// ---------------------------------------------------------------------------------

/// Order statuses in lifecycle order. The state machine only moves forward and both
/// `delivered` and `cancelled` are final, so the furthest status seen is the current one,
/// whatever order the events arrive in.
pub const ORDER_STATUSES: [&str; 6] = [
    "pending",
    "confirmed",
    "preparing",
    "out_for_delivery",
    "delivered",
    "cancelled",
];

pub fn order_status_rank(status: &str) -> Option<usize> {
    ORDER_STATUSES.iter().position(|s| *s == status)
}

/// Delivery statuses in lifecycle order (ties between events of the same second are
/// broken by this rank).
pub const DELIVERY_STATUSES: [&str; 6] = [
    "unassigned",
    "assigned",
    "picked_up",
    "in_transit",
    "delivered",
    "cancelled",
];

/// Deliveries counted by `active_deliveries`.
pub const ACTIVE_DELIVERY_STATUSES: [&str; 3] = ["assigned", "picked_up", "in_transit"];

pub fn delivery_status_rank(status: &str) -> Option<i64> {
    DELIVERY_STATUSES
        .iter()
        .position(|s| *s == status)
        .and_then(|p| i64::try_from(p).ok())
}

// ---------------------------------------------------------------------------------
// The order read model and the revenue rule
// ---------------------------------------------------------------------------------

/// What analytics knows about one order, merged from any events in any order. Every
/// merge sets state (furthest status, paid once seen, refund totals as reported), so
/// applying an event twice or out of order converges to the same row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderState {
    pub user_id: Option<String>,
    /// From `order.created`; an order is not counted anywhere before it is known.
    pub total: Option<i64>,
    pub payment_method: Option<String>,
    pub status: Option<String>,
    pub created_at: Option<String>,
    /// UTC day of `created_at`.
    pub day: Option<String>,
    /// A capture was seen (or the order was created paid).
    pub paid: bool,
    /// Paise refunded so far over the order's payments.
    pub refunded_amount: i64,
    /// A payment of the order was refunded in full.
    pub fully_refunded: bool,
}

/// The fields of `order.created` the model keeps.
#[derive(Debug, Clone)]
pub struct Created<'a> {
    pub user_id: &'a str,
    pub status: &'a str,
    pub payment_method: &'a str,
    pub payment_status: &'a str,
    pub total: i64,
    pub created_at: &'a str,
}

impl OrderState {
    fn set_user(&mut self, user_id: Option<&str>) {
        if let Some(u) = user_id.filter(|u| !u.is_empty()) {
            self.user_id = Some(u.to_string());
        }
    }

    /// `order.created`.
    pub fn apply_created(&mut self, c: &Created<'_>) {
        self.set_user(Some(c.user_id));
        self.total = Some(c.total);
        self.payment_method = Some(c.payment_method.to_string());
        self.created_at = Some(c.created_at.to_string());
        self.day = utc_day_of(c.created_at);
        self.apply_status(c.status);
        match c.payment_status {
            "paid" => self.paid = true,
            "refunded" => {
                self.paid = true;
                self.fully_refunded = true;
            }
            _ => {}
        }
    }

    /// `order.status_changed` / `order.cancelled`: keeps the furthest status.
    /// Unknown statuses are ignored.
    pub fn apply_status(&mut self, status: &str) {
        let Some(new) = order_status_rank(status) else {
            return;
        };
        let current = self.status.as_deref().and_then(order_status_rank);
        if current.is_none_or(|c| new > c) {
            self.status = Some(status.to_string());
        }
    }

    /// `payment.captured`.
    pub fn apply_paid(&mut self, user_id: Option<&str>) {
        self.set_user(user_id);
        self.paid = true;
    }

    /// `payment.refunded`: the order's refund totals as recomputed from every payment's
    /// latest report (set, not added, so redelivery changes nothing).
    pub fn apply_refunds(&mut self, refunded_amount: i64, any_full: bool) {
        self.paid = true;
        self.refunded_amount = refunded_amount.max(0);
        self.fully_refunded = self.fully_refunded || any_full;
    }

    /// API.md: revenue counts orders that are paid, or COD and delivered, and drops an
    /// order when it is cancelled. Also dropped: a fully refunded order (its money went
    /// back) and an order whose `order.created` was not seen yet.
    pub fn counted(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        if self.day.is_none() {
            return false;
        }
        let status = self.status.as_deref().unwrap_or("");
        if status == "cancelled" || self.fully_refunded || self.refunded_amount >= total.max(1) {
            return false;
        }
        self.paid || (self.payment_method.as_deref() == Some("cod") && status == "delivered")
    }

    /// The paise this order contributes: its total less partial refunds, 0 when not
    /// counted.
    pub fn revenue(&self) -> i64 {
        match self.total {
            Some(total) if self.counted() => (total - self.refunded_amount).max(0),
            _ => 0,
        }
    }
}

/// Integer average in paise, rounded half up; 0 when there is nothing to average.
pub fn average(sum: i64, count: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    (sum + count / 2).div_euclid(count)
}

// ---------------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------------

/// The longest `from`..`to` range, in days (inclusive).
pub const MAX_RANGE_DAYS: i64 = 366;

/// A `YYYY-MM-DD` query parameter: absent is `Ok(None)`, anything unparsable is recorded
/// in `v` (and `Ok(None)` returned so every bad field is listed).
fn day_param(v: &mut Validator, name: &str, raw: Option<&str>) -> Option<Day> {
    let raw = raw?;
    let day = Day::parse(raw.trim());
    v.check(day.is_some(), name, "must be a date as YYYY-MM-DD");
    day
}

/// The inclusive range of `from` / `to`. A missing `to` is `today`; a missing `from` is
/// `default_days - 1` days before `to` (so the range holds `default_days` days). A bad
/// date, `from` after `to`, or more than [`MAX_RANGE_DAYS`] days is 400.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    today: Day,
    default_days: i64,
) -> Result<(Day, Day), ApiError> {
    let mut v = Validator::new();
    let from = day_param(&mut v, "from", from);
    let to = day_param(&mut v, "to", to);
    v.finish()?;
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| to.plus(1 - default_days.max(1)));
    if from > to {
        return Err(ApiError::invalid_field("from", "must not be after to"));
    }
    if to.0 - from.0 + 1 > MAX_RANGE_DAYS {
        return Err(ApiError::invalid_field(
            "to",
            format!("the range may span at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// `limit` of top products: an integer 1..=100, default 10.
pub fn limit_param(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw {
        None => Ok(10),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_field(
                "limit",
                "must be an integer from 1 to 100",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for s in [
            "1970-01-01",
            "1969-12-31",
            "2000-02-29",
            "2024-02-29",
            "2025-12-31",
            "0001-01-01",
            "9999-12-31",
        ] {
            let d = Day::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(Day::parse("1970-01-01"), Some(Day(0)));
        assert_eq!(Day::parse("2025-01-01"), Some(Day(20_089)));
        assert_eq!(
            Day::parse("2024-02-28").map(|d| d.plus(1).to_string()),
            Some("2024-02-29".to_string())
        );
        assert_eq!(
            Day::parse("2023-02-28").map(|d| d.plus(1).to_string()),
            Some("2023-03-01".to_string())
        );
        // Every day of four centuries survives the round trip.
        let start = Day::parse("1900-01-01").unwrap_or(Day(0));
        for n in 0..(400 * 366) {
            let d = start.plus(n);
            assert_eq!(Day::parse(&d.to_string()), Some(d));
        }
    }

    #[test]
    fn bad_days() {
        for s in [
            "",
            "2025-1-01",
            "2025-13-01",
            "2025-00-10",
            "2025-02-29",
            "1900-02-29",
            "2025-04-31",
            "2025-01-00",
            "0000-01-01",
            "2025/01/01",
            "2025-01-01T00:00:00Z",
            "20250101",
            "+025-01-01",
            "2025-01-0a",
            "२०२५-01-01",
        ] {
            assert_eq!(Day::parse(s), None, "{s}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(unix_of_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_of_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            unix_of_rfc3339("2023-11-14T22:13:20.999999Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            unix_of_rfc3339("2023-11-15T03:43:20+05:30"),
            Some(1_700_000_000)
        );
        assert_eq!(
            unix_of_rfc3339("2023-11-14T17:13:20-05:00"),
            Some(1_700_000_000)
        );
        // The UTC day, not the local one.
        assert_eq!(
            utc_day_of("2025-03-01T02:00:00+05:30").as_deref(),
            Some("2025-02-28")
        );
        assert_eq!(
            utc_day_of("2025-02-28T23:59:59-01:00").as_deref(),
            Some("2025-03-01")
        );
        for bad in [
            "2025-03-01",
            "2025-03-01T25:00:00Z",
            "2025-03-01T10:00:00",
            "2025-03-01T10:00:00.Z",
            "2025-03-01T10:00:00+0530",
            "2025-03-01X10:00:00Z",
            "nope",
        ] {
            assert_eq!(unix_of_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(Day::of_unix(-1).to_string(), "1969-12-31");
    }

    fn created<'a>(method: &'a str, status: &'a str, ps: &'a str) -> Created<'a> {
        Created {
            user_id: "usr_1",
            status,
            payment_method: method,
            payment_status: ps,
            total: 11_500,
            created_at: "2025-05-01T10:00:00Z",
        }
    }

    #[test]
    fn cod_counts_only_when_delivered() {
        let mut o = OrderState::default();
        o.apply_created(&created("cod", "confirmed", "cod"));
        assert_eq!(o.day.as_deref(), Some("2025-05-01"));
        assert!(!o.counted());
        for s in ["preparing", "out_for_delivery"] {
            o.apply_status(s);
            assert!(!o.counted(), "{s}");
        }
        o.apply_status("delivered");
        assert!(o.counted());
        assert_eq!(o.revenue(), 11_500);
        // A late, stale status never moves it back.
        o.apply_status("preparing");
        assert_eq!(o.status.as_deref(), Some("delivered"));
        assert!(o.counted());
    }

    #[test]
    fn paid_counts_until_cancelled_or_refunded() {
        let mut o = OrderState::default();
        o.apply_created(&created("online", "pending", "awaiting"));
        assert!(!o.counted());
        o.apply_paid(Some("usr_1"));
        assert!(o.counted());
        o.apply_refunds(1_500, false);
        assert!(o.counted());
        assert_eq!(o.revenue(), 10_000);
        o.apply_refunds(11_500, true);
        assert!(!o.counted());
        assert_eq!(o.revenue(), 0);

        let mut c = OrderState::default();
        c.apply_created(&created("online", "pending", "awaiting"));
        c.apply_paid(None);
        c.apply_status("cancelled");
        assert!(!c.counted());
        assert_eq!(c.revenue(), 0);

        // An online order that was never paid does not count even when delivered.
        let mut u = OrderState::default();
        u.apply_created(&created("online", "pending", "awaiting"));
        for s in ["confirmed", "preparing", "out_for_delivery", "delivered"] {
            u.apply_status(s);
        }
        assert!(!u.counted());
    }

    #[test]
    fn events_in_any_order_converge() {
        type Step = fn(&mut OrderState);
        let steps: [Step; 5] = [
            |o| o.apply_created(&created("online", "pending", "awaiting")),
            |o| o.apply_paid(Some("usr_1")),
            |o| o.apply_status("confirmed"),
            |o| o.apply_status("preparing"),
            |o| o.apply_refunds(500, false),
        ];
        let mut expected = OrderState::default();
        for s in steps {
            s(&mut expected);
        }
        assert!(expected.counted());
        assert_eq!(expected.status.as_deref(), Some("preparing"));
        assert_eq!(expected.revenue(), 11_000);
        // Every permutation, each step applied twice (at-least-once delivery).
        let mut idx = [0usize, 1, 2, 3, 4];
        let mut perms = 0;
        permute(&mut idx, 0, &mut |order| {
            let mut o = OrderState::default();
            for &i in order {
                steps[i](&mut o);
                steps[i](&mut o);
            }
            assert_eq!(o, expected, "{order:?}");
            perms += 1;
        });
        assert_eq!(perms, 120);
        // Before order.created the order is unknown to every figure.
        let mut early = OrderState::default();
        early.apply_paid(Some("usr_1"));
        assert!(!early.counted());
    }

    fn permute(a: &mut [usize; 5], k: usize, f: &mut dyn FnMut(&[usize])) {
        if k == a.len() {
            f(a);
            return;
        }
        for i in k..a.len() {
            a.swap(k, i);
            permute(a, k + 1, f);
            a.swap(k, i);
        }
    }

    #[test]
    fn averages() {
        assert_eq!(average(0, 0), 0);
        assert_eq!(average(100, 3), 33);
        assert_eq!(average(200, 3), 67);
        assert_eq!(average(23_000, 2), 11_500);
    }

    #[test]
    fn ranges() {
        let today = Day::parse("2025-05-10").unwrap_or(Day(0));
        let show = |r: Result<(Day, Day), ApiError>| {
            r.map(|(a, b)| format!("{a}..{b}"))
                .map_err(|e| e.details["fields"][0]["field"].as_str().map(str::to_string))
        };
        assert_eq!(
            show(date_range(None, None, today, 7)),
            Ok("2025-05-04..2025-05-10".into())
        );
        assert_eq!(
            show(date_range(None, None, today, 1)),
            Ok("2025-05-10..2025-05-10".into())
        );
        assert_eq!(
            show(date_range(Some("2025-05-01"), Some("2025-05-03"), today, 7)),
            Ok("2025-05-01..2025-05-03".into())
        );
        assert_eq!(
            show(date_range(None, Some("2025-01-03"), today, 7)),
            Ok("2024-12-28..2025-01-03".into())
        );
        assert_eq!(
            show(date_range(Some("2024-05-10"), Some("2025-05-10"), today, 7)),
            Ok("2024-05-10..2025-05-10".into())
        );
        assert_eq!(
            show(date_range(Some("2024-05-09"), Some("2025-05-10"), today, 7)),
            Err(Some("to".into()))
        );
        assert_eq!(
            show(date_range(Some("2025-05-11"), None, today, 7)),
            Err(Some("from".into()))
        );
        assert_eq!(
            show(date_range(Some("2025-13-01"), None, today, 7)),
            Err(Some("from".into()))
        );
        assert_eq!(
            show(date_range(Some("2025-01-01"), Some(""), today, 7)),
            Err(Some("to".into()))
        );
        let both = date_range(Some("x"), Some("y"), today, 7).unwrap_err();
        assert_eq!(both.details["fields"].as_array().map(Vec::len), Some(2));
        assert_eq!(both.code, "validation_failed");
    }

    #[test]
    fn limits() {
        assert_eq!(limit_param(None).ok(), Some(10));
        assert_eq!(limit_param(Some("1")).ok(), Some(1));
        assert_eq!(limit_param(Some("100")).ok(), Some(100));
        for bad in ["0", "101", "-1", "x", "", "2.5"] {
            let e = limit_param(Some(bad)).unwrap_err();
            assert_eq!((e.status, e.code), (400, "validation_failed"), "{bad}");
        }
    }
}
