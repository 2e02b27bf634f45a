//! Reading the audit log back: the history of script runs that
//! `virt-hook log` prints, and a daemon can read too.
//!
//! The file is read line by line, never trusted: a line that is not a
//! record (cut short by a full disk, corrupted, not JSON, not UTF-8) is
//! skipped and reported, never fatal.

use std::{
    collections::VecDeque,
    io::{self, BufRead},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;

/// One record of the audit log: a script run, or a decision about a whole
/// event (`decision` set, no `script`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// When it was recorded.
    pub time: SystemTime,
    /// The event id, shared by every record of one event (`None` in records
    /// of older versions).
    pub event_id: Option<String>,
    /// The driver.
    pub driver: String,
    /// The object (the domain, network...).
    pub object: String,
    /// The operation.
    pub operation: String,
    /// The sub-operation.
    pub sub_operation: String,
    /// The extra argument.
    pub extra: String,
    /// The script, for a script run.
    pub script: Option<String>,
    /// How it ended (`exit status 3`, `timed out`, ...), for a script run.
    pub status: Option<String>,
    /// How long it ran, for a script run.
    pub duration: Option<Duration>,
    /// True if and only if the script failed, or the event was refused.
    pub failed: bool,
    /// The end of the script's stderr.
    pub stderr_tail: Option<String>,
    /// The failure's message, as libvirt reports it.
    pub error: Option<String>,
    /// For a decision: `refused` or `unlisted`.
    pub decision: Option<String>,
    /// For a decision: why.
    pub reason: Option<String>,
    /// True if and only if it is about a deferred script: its run (after
    /// the hook answered), or a decision about the event's deferred
    /// scripts (`deferred-lost`, `deferred-skipped`).
    pub deferred: bool,
    /// The whole record as it is in the file.
    pub raw: serde_json::Value,
}

/// Which records to keep.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HistoryFilter {
    /// Only this driver's.
    pub driver: Option<String>,
    /// Only this object's.
    pub object: Option<String>,
    /// Only failures (and refused events).
    pub failed: bool,
    /// Only records made at or after this time.
    pub since: Option<SystemTime>,
    /// Only the latest this many (after the other filters).
    pub limit: Option<usize>,
}

impl HistoryFilter {
    fn keeps(&self, entry: &HistoryEntry) -> bool {
        self.driver.as_ref().is_none_or(|d| *d == entry.driver)
            && self.object.as_ref().is_none_or(|o| *o == entry.object)
            && (!self.failed || entry.failed)
            && self.since.is_none_or(|since| entry.time >= since)
    }
}

/// A line of the file that is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// Its 1-based number.
    pub line: usize,
    /// Why it is not a record.
    pub reason: String,
}

/// What [`read_history`] found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct History {
    /// The records kept by the filter, oldest first.
    pub entries: Vec<HistoryEntry>,
    /// The lines that are not records.
    pub skipped: Vec<SkippedLine>,
}

/// The fields of a record that are read; everything else stays in `raw`.
#[derive(Deserialize)]
struct Fields {
    time: Time,
    event_id: Option<String>,
    driver: String,
    object: String,
    operation: String,
    sub_operation: String,
    #[serde(default)]
    extra: String,
    script: Option<String>,
    status: Option<String>,
    duration: Option<f64>,
    exit_code: Option<i32>,
    #[serde(default)]
    failed: bool,
    stderr_tail: Option<String>,
    error: Option<String>,
    decision: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    deferred: bool,
}

/// ISO-8601 text, or seconds since the epoch (older records).
#[derive(Deserialize)]
#[serde(untagged)]
enum Time {
    Text(String),
    Seconds(f64),
}

/// Reads the records of an audit log from `reader`, keeping those `filter`
/// keeps, oldest first.
///
/// # Errors
///
/// Only an error reading `reader`; bad lines are in [`History::skipped`].
pub fn read_history(reader: impl BufRead, filter: &HistoryFilter) -> io::Result<History> {
    let mut entries = VecDeque::new();
    let mut skipped = Vec::new();
    let mut reader = reader;
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let complete = line.last() == Some(&b'\n');
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse(text) {
            Ok(entry) => {
                if filter.keeps(&entry) {
                    entries.push_back(entry);
                    if filter.limit.is_some_and(|n| entries.len() > n) {
                        entries.pop_front();
                    }
                }
            }
            Err(reason) => {
                let reason =
                    if complete { reason } else { format!("cut short (no newline): {reason}") };
                skipped.push(SkippedLine { line: number, reason });
            }
        }
    }
    Ok(History { entries: entries.into(), skipped })
}

fn parse(text: &[u8]) -> Result<HistoryEntry, String> {
    let raw: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let f = Fields::deserialize(&raw).map_err(|e| format!("not an audit record: {e}"))?;
    let time = match f.time {
        Time::Text(text) => humantime::parse_rfc3339_weak(&text)
            .map_err(|e| format!("not an audit record: bad time \"{text}\": {e}"))?,
        Time::Seconds(secs) => Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .ok_or_else(|| format!("not an audit record: bad time {secs}"))?,
    };
    let status = f.status.or_else(|| f.exit_code.map(|code| format!("exit status {code}")));
    Ok(HistoryEntry {
        time,
        event_id: f.event_id,
        driver: f.driver,
        object: f.object,
        operation: f.operation,
        sub_operation: f.sub_operation,
        extra: f.extra,
        script: f.script,
        status,
        duration: f.duration.and_then(|d| Duration::try_from_secs_f64(d).ok()),
        failed: f.failed,
        stderr_tail: f.stderr_tail,
        error: f.error,
        decision: f.decision,
        reason: f.reason,
        deferred: f.deferred,
        raw,
    })
}

/// A `--since` value: an ISO-8601 time (`2024-05-01T10:00:00Z`,
/// `2024-05-01 10:00:00`, `2024-05-01`, UTC) or an age before `now`
/// (`90s`, `30m`, `1h`, `2d`, `1w`).
///
/// # Errors
///
/// A message naming the value and the forms accepted.
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    let date_only = format!("{text}T00:00:00Z");
    if let Ok(time) =
        humantime::parse_rfc3339_weak(text).or_else(|_| humantime::parse_rfc3339_weak(&date_only))
    {
        return Ok(time);
    }
    humantime::parse_duration(text).ok().and_then(|age| now.checked_sub(age)).ok_or_else(|| {
        format!(
            "invalid time \"{text}\": use an ISO-8601 UTC time (2024-05-01T10:00:00Z, \
                 2024-05-01) or an age (30m, 1h, 2d)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"{"time":"2024-05-01T10:00:00.000Z","event_id":"e1","driver":"qemu","object":"vm1","operation":"release","sub_operation":"end","extra":"-","script":"/h/qemu.d/vm1/release/end","status":"exit status 3","exit_code":3,"duration":0.5,"failed":true,"stderr_tail":"boom\nmore"}"#;

    fn read(text: &str, filter: &HistoryFilter) -> History {
        read_history(text.as_bytes(), filter).expect("read")
    }

    #[test]
    fn records_are_read_and_bad_lines_skipped() {
        let text = format!(
            "{RUN}\nnot json\n{{\"no\":\"fields\"}}\n\n\u{1}\n{}\n{}",
            RUN.replace("vm1", "vm2").replace("true", "false"),
            &RUN[..40]
        );
        let h = read(&text, &HistoryFilter::default());
        assert_eq!(h.entries.len(), 2);
        assert_eq!(h.entries[0].object, "vm1");
        assert_eq!(h.entries[0].status.as_deref(), Some("exit status 3"));
        assert_eq!(h.entries[0].duration, Some(Duration::from_millis(500)));
        assert_eq!(h.entries[1].object, "vm2");
        let lines: Vec<usize> = h.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 3, 5, 7]);
        assert!(h.skipped[3].reason.starts_with("cut short"), "{:?}", h.skipped[3]);
    }

    #[test]
    fn invalid_utf8_is_skipped() {
        let mut text = RUN.as_bytes().to_vec();
        text.extend_from_slice(b"\n{\"time\":\"\xff\"}\n");
        let h = read_history(&text[..], &HistoryFilter::default()).expect("read");
        assert_eq!((h.entries.len(), h.skipped.len()), (1, 1));
    }

    #[test]
    fn filters_and_limit_keep_the_latest() {
        let mut text = String::new();
        for i in 0..10 {
            let failed = if i % 2 == 0 { "true" } else { "false" };
            let line = RUN
                .replace("vm1", &format!("vm{i}"))
                .replace("\"failed\":true", &format!("\"failed\":{failed}"))
                .replace("10:00:00", &format!("10:00:0{i}"));
            text.push_str(&line);
            text.push('\n');
        }
        let objects = |f: &HistoryFilter| -> Vec<String> {
            read(&text, f).entries.into_iter().map(|e| e.object).collect()
        };
        let f = HistoryFilter { limit: Some(3), ..Default::default() };
        assert_eq!(objects(&f), ["vm7", "vm8", "vm9"]);
        let f = HistoryFilter { failed: true, limit: Some(2), ..Default::default() };
        assert_eq!(objects(&f), ["vm6", "vm8"]);
        let f = HistoryFilter { object: Some("vm4".into()), ..Default::default() };
        assert_eq!(objects(&f), ["vm4"]);
        let f = HistoryFilter { driver: Some("lxc".into()), ..Default::default() };
        assert!(objects(&f).is_empty());
        let since = parse_since("2024-05-01T10:00:08Z", SystemTime::now()).expect("since");
        let f = HistoryFilter { since: Some(since), ..Default::default() };
        assert_eq!(objects(&f), ["vm8", "vm9"]);
    }

    #[test]
    fn older_records_with_numeric_times_are_read() {
        let old = r#"{"time":1714557600.5,"driver":"qemu","object":"vm1","operation":"start","sub_operation":"begin","extra":"-","script":"/h/qemu","exit_code":0,"failed":false}"#;
        let h = read(old, &HistoryFilter::default());
        assert_eq!(h.entries.len(), 1);
        assert_eq!(h.entries[0].status.as_deref(), Some("exit status 0"));
    }

    #[test]
    fn since_takes_times_and_ages() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_since("1h", now), Ok(now - Duration::from_secs(3600)));
        assert_eq!(parse_since("30m", now), Ok(now - Duration::from_secs(1800)));
        assert_eq!(parse_since("2d", now), Ok(now - Duration::from_secs(2 * 86400)));
        assert_eq!(parse_since("1970-01-02", now), Ok(UNIX_EPOCH + Duration::from_secs(86400)));
        assert_eq!(
            parse_since("1970-01-01T00:01:00Z", now),
            Ok(UNIX_EPOCH + Duration::from_secs(60))
        );
        let err = parse_since("yesterday", now).expect_err("bad");
        assert!(err.contains("invalid time \"yesterday\""), "{err}");
    }
}
