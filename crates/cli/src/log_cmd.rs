//! `virt-hook log`: the latest script runs from the audit log, oldest
//! first. Reads only.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use virt_hooks::{HistoryEntry, HistoryFilter, read_history};

use crate::{Format, exit};

/// What `virt-hook log` is asked for.
#[derive(Debug, clap::Args)]
pub(crate) struct LogArgs {
    /// Show the latest N records.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
    lines: usize,
    /// Only this driver's records.
    #[arg(long, value_name = "DRIVER")]
    driver: Option<String>,
    /// Only this object's records (a domain, a network...).
    #[arg(long, value_name = "OBJECT")]
    object: Option<String>,
    /// Only failed scripts and refused events.
    #[arg(long)]
    failed: bool,
    /// Only records since TIME: ISO-8601 UTC (2024-05-01T10:00:00Z,
    /// 2024-05-01) or an age (30m, 1h, 2d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Read this file instead of the configured audit log.
    #[arg(long, value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Output format: text is one line per record; json is the records as
    /// an array.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Prints the records of `path` (or `--file`) that `args` asks for.
pub(crate) fn log(args: &LogArgs, path: Option<&Path>, out: &mut impl Write) -> anyhow::Result<u8> {
    let path =
        args.file.as_deref().or(path).context(
            "no audit log: audit_log is off in the configuration (name a file with --file)",
        )?;
    let since = args
        .since
        .as_deref()
        .map(|s| virt_hooks::parse_since(s, SystemTime::now()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let mut filter = HistoryFilter::default();
    filter.driver.clone_from(&args.driver);
    filter.object.clone_from(&args.object);
    filter.failed = args.failed;
    filter.since = since;
    filter.limit = Some(args.lines);
    let file =
        File::open(path).with_context(|| format!("cannot read audit log {}", path.display()))?;
    let history = read_history(BufReader::new(file), &filter)
        .with_context(|| format!("cannot read audit log {}", path.display()))?;
    for skipped in &history.skipped {
        log::warn!(
            "audit log {}, line {}: skipped: {}",
            path.display(),
            skipped.line,
            skipped.reason
        );
    }
    match args.format {
        Format::Json => {
            let records: Vec<&serde_json::Value> = history.entries.iter().map(|e| &e.raw).collect();
            crate::print_json(out, &records)?;
        }
        Format::Text => {
            for entry in &history.entries {
                writeln!(out, "{}", line(entry))?;
            }
        }
    }
    Ok(exit::OK)
}

/// One record as one line: time, event, script, status, duration, first
/// line of stderr (or the failure's message, or a decision's reason). A
/// deferred script's status reads `deferred: <status>`.
fn line(e: &HistoryEntry) -> String {
    let time = humantime::format_rfc3339_seconds(e.time);
    let event =
        format!("{} {} {} {} {}", e.driver, e.object, e.operation, e.sub_operation, e.extra);
    let first = |s: &str| s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_owned();
    match &e.script {
        Some(script) => {
            let status = e.status.as_deref().unwrap_or("?");
            let status = if e.deferred { format!("deferred: {status}") } else { status.to_owned() };
            let duration =
                e.duration.map_or("?".to_owned(), |d| format!("{:.3}s", d.as_secs_f64()));
            let words = e
                .stderr_tail
                .as_deref()
                .map(first)
                .filter(|s| !s.is_empty())
                .or_else(|| e.error.as_deref().filter(|_| e.failed).map(first))
                .unwrap_or_default();
            format!("{time}  {event}  {script}  {status}  {duration}  {words}")
                .trim_end()
                .to_owned()
        }
        None => {
            let decision = e.decision.as_deref().unwrap_or("?");
            let reason = e.reason.as_deref().map(first).unwrap_or_default();
            format!("{time}  {event}  -  {decision}  -  {reason}").trim_end().to_owned()
        }
    }
}
