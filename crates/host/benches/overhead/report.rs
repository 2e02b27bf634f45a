//! The results: one typed [`Row`] per line of the table, the console line
//! printed as each is recorded, the JSON file, and the markdown table
//! rendered from that JSON.

use std::{fmt::Write as _, fs, path::Path};

use serde::{Deserialize, Serialize};

use crate::{
    fail::{Context, Result},
    stats::{Paired, median, quantile},
};

/// What a row's goal is applied to, and the bound.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// ours / baseline <= x
    RatioLe(f64),
    /// ours / baseline >= x
    RatioGe(f64),
    /// ours <= x (in the row's unit)
    OursLe(f64),
    /// ours >= x (in the row's unit)
    OursGe(f64),
    /// A correctness check: ours is 1 when it held, 0 when not.
    Holds,
    /// Informational row, no goal.
    Info,
}

/// The `goal_on` field of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GoalOn {
    Ratio,
    Ours,
    None,
}

impl Goal {
    fn text(self, unit: &str) -> String {
        match self {
            Goal::RatioLe(x) => format!("<= {x:.2}"),
            Goal::RatioGe(x) => format!(">= {x:.2}"),
            Goal::OursLe(x) => format!("<= {x} {unit}"),
            Goal::OursGe(x) => format!(">= {x} {unit}"),
            Goal::Holds => "== 1".to_owned(),
            Goal::Info => "-".to_owned(),
        }
    }

    fn on(self) -> GoalOn {
        match self {
            Goal::RatioLe(_) | Goal::RatioGe(_) => GoalOn::Ratio,
            Goal::OursLe(_) | Goal::OursGe(_) | Goal::Holds => GoalOn::Ours,
            Goal::Info => GoalOn::None,
        }
    }

    fn met(self, ours: f64, ratio: f64) -> Option<bool> {
        match self {
            Goal::RatioLe(x) => Some(ratio <= x),
            Goal::RatioGe(x) => Some(ratio >= x),
            Goal::OursLe(x) => Some(ours <= x),
            Goal::OursGe(x) => Some(ours >= x),
            Goal::Holds => Some(ours == 1.0),
            Goal::Info => None,
        }
    }
}

/// How a [`Paired`] set of samples becomes a row's two numbers. Every sample
/// is a wall time in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// The median time, in µs.
    Micros,
    /// The median time, in ms.
    Millis,
    /// `work` divided by the median time (`per` names the unit: `GiB/s`).
    Rate { work: f64, per: &'static str },
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Micros => "µs",
            Unit::Millis => "ms",
            Unit::Rate { per, .. } => per,
        }
    }

    fn of(self, seconds: f64) -> f64 {
        match self {
            Unit::Micros => seconds * 1e6,
            Unit::Millis => seconds * 1e3,
            Unit::Rate { work, .. } => work / seconds,
        }
    }
}

/// A row's two numbers before they are recorded.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) unit: &'static str,
    pub(crate) ours: f64,
    pub(crate) baseline: f64,
    pub(crate) samples: usize,
}

impl Measured {
    /// The medians of `p` in `unit`.
    pub(crate) fn of(p: &Paired, unit: Unit) -> Measured {
        Measured {
            unit: unit.name(),
            ours: unit.of(median(&p.ours)),
            baseline: unit.of(median(&p.base)),
            samples: p.ours.len(),
        }
    }
}

/// Prints both sides' median, p10 and p90 in `unit` under their labels,
/// and the median of the per-pair ratios.
pub(crate) fn show(p: &Paired, unit: Unit, labels: [&str; 2]) {
    for (label, v) in labels.into_iter().zip([&p.ours, &p.base]) {
        let (lo, hi) = (unit.of(quantile(v, 0.1)), unit.of(quantile(v, 0.9)));
        // A rate is high where the time is low.
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        println!(
            "    {label:<28} median {:>10} {}  (p10 {} p90 {}, n={})",
            fmt_num(unit.of(median(v))),
            unit.name(),
            fmt_num(lo),
            fmt_num(hi),
            v.len()
        );
    }
    println!("    median of per-pair time ratios {:.3}", p.pair_ratio());
}

/// Whether the run was `--quick`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    Quick,
    Full,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
}

/// Where and on what a run was made; every row carries it.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) machine: String,
    pub(crate) mode: Mode,
    pub(crate) trivial_hook: String,
    pub(crate) commit: String,
    pub(crate) date: String,
}

/// One line of the table, as written to the JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) unit: String,
    #[serde(with = "finite")]
    pub(crate) ours: f64,
    #[serde(with = "finite")]
    pub(crate) baseline: f64,
    /// ours / baseline.
    #[serde(with = "finite")]
    pub(crate) ratio: f64,
    /// The bound, as text (`<= 1.10`, `>= 1 GiB/s`, `-`).
    pub(crate) goal: String,
    pub(crate) goal_on: GoalOn,
    /// `None` for an informational row.
    pub(crate) met: Option<bool>,
    pub(crate) samples: usize,
    pub(crate) note: String,
    pub(crate) machine: String,
    pub(crate) mode: Mode,
    pub(crate) trivial_hook: String,
    /// `git rev-parse --short HEAD` of the measured tree, `+dirty` when it
    /// had uncommitted changes.
    #[serde(default)]
    pub(crate) commit: String,
    /// When the run started, UTC.
    #[serde(default)]
    pub(crate) date: String,
}

/// JSON has no NaN or infinity: they are written as `null` and read back as
/// NaN.
mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() { s.serialize_f64(*x) } else { s.serialize_none() }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// The rows of a run, and the correctness checks that failed.
#[derive(Debug)]
pub(crate) struct Report {
    info: RunInfo,
    rows: Vec<Row>,
    broken: Vec<String>,
}

impl Report {
    pub(crate) fn new(info: RunInfo) -> Report {
        Report { info, rows: Vec::new(), broken: Vec::new() }
    }

    /// Records one row and prints it: the one way a row gets into the
    /// report. A failed [`Goal::Holds`] also marks the run broken.
    pub(crate) fn record(&mut self, scenario: &str, m: Measured, goal: Goal, note: &str) {
        let ratio = m.ours / m.baseline;
        let met = goal.met(m.ours, ratio);
        println!(
            "  => {scenario}: ours {} {unit}, baseline {} {unit}, ratio {ratio:.3}, goal {} [{}]",
            fmt_num(m.ours),
            fmt_num(m.baseline),
            goal.text(m.unit),
            match met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "info",
            },
            unit = m.unit,
        );
        if matches!(goal, Goal::Holds) && met == Some(false) {
            self.broken.push(format!("{scenario}: {note}"));
        }
        let RunInfo { machine, mode, trivial_hook, commit, date } = self.info.clone();
        self.rows.push(Row {
            scenario: scenario.to_owned(),
            unit: m.unit.to_owned(),
            ours: round(m.ours),
            baseline: round(m.baseline),
            ratio: round(ratio),
            goal: goal.text(m.unit),
            goal_on: goal.on(),
            met,
            samples: m.samples,
            note: note.to_owned(),
            machine,
            mode,
            trivial_hook,
            commit,
            date,
        });
    }

    /// The correctness checks that failed, one line each.
    pub(crate) fn broken(&self) -> &[String] {
        &self.broken
    }

    /// Writes the rows to `json` (an array of [`Row`] objects), then
    /// renders that file into the markdown table `md`. Returns the table.
    pub(crate) fn write(&self, json: &Path, md: &Path) -> Result<String> {
        let text = serde_json::to_string_pretty(&self.rows)?;
        fs::write(json, format!("{text}\n"))
            .with_context(|| format!("write {}", json.display()))?;
        let table = markdown(&read(json)?);
        fs::write(md, &table).with_context(|| format!("write {}", md.display()))?;
        Ok(table)
    }
}

/// The rows of a results file.
pub(crate) fn read(json: &Path) -> Result<Vec<Row>> {
    let bytes = fs::read(json).with_context(|| format!("read {}", json.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a results file", json.display()))
}

/// The markdown table of a run's rows, under one line naming the machine,
/// the mode, the commit and the date.
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    if let Some(r) = rows.first() {
        let _ = write!(s, "Machine: {}. Mode: {}.", r.machine, r.mode.name());
        if !r.commit.is_empty() {
            let _ = write!(s, " Commit: {}.", r.commit);
        }
        if !r.date.is_empty() {
            let _ = write!(s, " Date: {}.", r.date);
        }
        s.push_str("\n\n");
    }
    s.push_str("| scenario | unit | virt-hooks | baseline | ratio | goal | met |\n");
    s.push_str("|---|---|---:|---:|---:|---|---|\n");
    let num = |x: f64| if x.is_finite() { fmt_num(x) } else { "-".to_owned() };
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let goal = match r.goal_on {
            GoalOn::Ours => format!("virt-hooks {}", r.goal),
            GoalOn::Ratio => format!("ratio {}", r.goal),
            GoalOn::None => "-".to_owned(),
        };
        let ratio = if r.ratio.is_finite() { format!("{:.3}", r.ratio) } else { "-".to_owned() };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {ratio} | {goal} | {met} |",
            r.scenario,
            r.unit,
            num(r.ours),
            num(r.baseline),
        );
    }
    s
}

/// `x` to five significant digits.
fn round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let digits = 4 - (x.abs().max(1e-9).log10().floor() as i32);
    let m = 10f64.powi(digits.max(0));
    (x * m).round() / m
}

/// `x` with as many decimals as its size deserves.
pub(crate) fn fmt_num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}
