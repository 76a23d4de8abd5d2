//! The one table the benchmark prints: a row per figure with its baseline (measured in
//! the same run), the ratio between the two, the target and whether it is met.

use std::fmt::Write as _;

/// What a target compares.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    None,
    /// ratio ≥ x.
    RatioAtLeast(f64),
    /// The value (as a number) ≥ x, with its unit.
    AtLeast(f64, &'static str),
    /// The value (as a number) ≤ x, with its unit.
    AtMost(f64, &'static str),
}

#[derive(Clone, Debug)]
pub struct Row {
    /// The item (1..=7); rows print grouped by it.
    pub item: u8,
    pub name: String,
    pub value: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    pub target: Target,
    /// The number `Target::AtLeast` / `AtMost` compare.
    pub number: Option<f64>,
    /// p50 / p99 or other detail.
    pub detail: String,
}

impl Row {
    pub fn new(item: u8, name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            item,
            name: name.into(),
            value: value.into(),
            baseline: String::new(),
            ratio: None,
            target: Target::None,
            number: None,
            detail: String::new(),
        }
    }

    /// A figure that could not be measured, and why.
    pub fn unavailable(item: u8, name: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(item, name, "-").detail(why)
    }

    pub fn baseline(mut self, baseline: impl Into<String>) -> Self {
        self.baseline = baseline.into();
        self
    }

    pub fn ratio(mut self, value: f64, baseline: f64) -> Self {
        self.ratio = (baseline > 0.0).then(|| value / baseline);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    pub fn number(mut self, n: f64) -> Self {
        self.number = Some(n);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => String::new(),
            Target::RatioAtLeast(x) => format!(">= {x:.2}x"),
            Target::AtLeast(x, unit) => format!(">= {} {unit}", thousands(x)),
            Target::AtMost(x, unit) => format!("<= {} {unit}", thousands(x)),
        }
    }

    /// Whether the target is met; None without a target or without a measurement.
    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::None => None,
            Target::RatioAtLeast(x) => self.ratio.map(|r| r >= x),
            Target::AtLeast(x, _) => self.number.map(|n| n >= x),
            Target::AtMost(x, _) => self.number.map(|n| n <= x),
        }
    }
}

/// `12345.6` → `12,346`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

const SECTIONS: [&str; 7] = [
    "1. Platform overhead (no-op plugin route vs native route)",
    "2. Instantiate + first call, in-process",
    "3. Shop routes",
    "4. Checkout",
    "5. Swap under load",
    "6. Restart and memory",
    "7. A Python plugin next to a Rust one",
];

/// Renders the rows as a fixed-width text table, grouped by item.
pub fn render(rows: &[Row]) -> String {
    let head = [
        "figure",
        "value",
        "baseline",
        "ratio",
        "target",
        "met?",
        "p50 / p99, notes",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.value.clone(),
                r.baseline.clone(),
                r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default(),
                r.target_text(),
                match r.met() {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => String::new(),
                },
                r.detail.clone(),
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for c in &cells {
        for (i, cell) in c.iter().enumerate().take(6) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 7]| -> String {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == 6 {
                s.push_str(c);
            } else if (1..=3).contains(&i) {
                let _ = write!(s, "{c:>w$}  ", w = width[i]);
            } else {
                let _ = write!(s, "{c:<w$}  ", w = width[i]);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(head));
    out.push('\n');
    let rule: usize = width.iter().sum::<usize>() + 2 * 6 + 16;
    out.push_str(&"-".repeat(rule));
    out.push('\n');
    for (item, title) in SECTIONS.iter().enumerate() {
        let item = item as u8 + 1;
        let mine: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].item == item).collect();
        if mine.is_empty() {
            continue;
        }
        out.push_str(title);
        out.push('\n');
        for i in mine {
            let c = &cells[i];
            out.push_str(&line([
                &format!("  {}", c[0]),
                &c[1],
                &c[2],
                &c[3],
                &c[4],
                &c[5],
                &c[6],
            ]));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-12345.0), "-12,345");
    }

    #[test]
    fn targets_are_judged() {
        let r = Row::new(1, "x", "1").ratio(40.0, 100.0);
        assert_eq!(r.target(Target::RatioAtLeast(0.35)).met(), Some(true));
        let r = Row::new(3, "x", "9,000").number(9000.0);
        assert_eq!(
            r.clone().target(Target::AtLeast(10_000.0, "req/s")).met(),
            Some(false)
        );
        assert_eq!(
            r.clone().target(Target::AtMost(9000.0, "ms")).met(),
            Some(true)
        );
        assert_eq!(r.met(), None);
        assert_eq!(
            Row::unavailable(5, "x", "why")
                .target(Target::AtMost(0.0, ""))
                .met(),
            None
        );
    }

    #[test]
    fn renders_sections_in_order() {
        let rows = vec![
            Row::new(3, "later", "2"),
            Row::new(1, "first", "1").ratio(1.0, 2.0),
        ];
        let text = render(&rows);
        let first = text.find("first").expect("row printed");
        let later = text.find("later").expect("row printed");
        assert!(first < later);
        assert!(text.contains("0.50x"));
        assert!(!text.contains("4. Checkout"));
    }
}
