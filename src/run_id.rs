//! A run's id, `YYYYMMDDTHHMMSS.mmmZ-<pid>`: made when the run starts, and
//! read back to tell whether the run that named a staging folder, a
//! version, a publish record or a lock is still running.

use chrono::{DateTime, Utc};

/// How a run id writes its start time: sorts as the time does.
const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";

/// The id of a run of this process started at `started`.
pub fn new_run_id(started: DateTime<Utc>) -> String {
    format!("{}-{}", started.format(STAMP), std::process::id())
}

/// When the run that wrote `path` started, read from the last run id in it
/// (`part-<run_id>.parquet`, a version folder, `<run_id>_<pipeline>.json`):
/// unlike the time a file was last modified, it does not change when an
/// erasure rewrites the file.
pub(crate) fn started_of(path: &str) -> Option<DateTime<Utc>> {
    static RUN_ID: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(\d{8}T\d{6}\.\d{3}Z)-\d+").ok());
    let stamp = RUN_ID
        .as_ref()?
        .captures_iter(path)
        .last()?
        .get(1)?
        .as_str();
    chrono::NaiveDateTime::parse_from_str(stamp, STAMP)
        .ok()
        .map(|t| t.and_utc())
}

/// Whether the run that named a staging folder, a version or an intent may
/// still be running: the process its id ends with is alive on this
/// machine, and started before the run did. A process started later only
/// reuses the pid, as civica does every night when it is PID 1 of a
/// container.
pub(crate) fn run_alive(run_id: &str) -> bool {
    let Some((stamp, pid)) = run_id.rsplit_once('-') else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (
        pid.parse::<u32>(),
        chrono::NaiveDateTime::parse_from_str(stamp, STAMP),
    ) else {
        return false;
    };
    // A minute of slack, for the clock stepping forward while the run
    // runs: a run taken for alive wrongly is only waited for, one taken
    // for dead wrongly would lose its files.
    process_start(pid).is_some_and(|process| process <= started.and_utc().timestamp() + 60)
}

/// When process `pid` started, in seconds since the epoch, from `/proc`.
fn process_start(pid: u32) -> Option<i64> {
    /// The unit of `/proc` times (`USER_HZ`), 100 on Linux.
    const TICKS_PER_SECOND: i64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces; the start time is field 22, the 20th of these.
    let (_, fields) = stat.rsplit_once(')')?;
    let ticks: i64 = fields.split_whitespace().nth(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + ticks / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_of_the_run_that_wrote_a_file_is_read_from_its_path() {
        let started = new_run_id(DateTime::from_timestamp(1_764_633_600, 0).expect("time"));
        for path in [
            format!("part-{started}.parquet"),
            format!("_versions/{started}/ds=2026-11-21/part-00000.parquet"),
            format!("{started}_citizen_segments.json"),
        ] {
            assert_eq!(
                started_of(&path).map(|t| t.timestamp()),
                Some(1_764_633_600),
                "{path}"
            );
        }
        assert_eq!(started_of("part-00000.parquet"), None);
    }

    /// A run id is alive while its process runs; one naming this
    /// process's pid from before it started is a dead run whose pid was
    /// reused (civica as PID 1 of a container, night after night).
    #[test]
    fn a_reused_pid_does_not_keep_a_dead_run_alive() {
        let pid = std::process::id();
        assert!(run_alive(&new_run_id(Utc::now())));
        let yesterday = new_run_id(Utc::now() - chrono::Duration::days(1));
        assert!(!run_alive(&yesterday), "{pid} was reused");
        let now = Utc::now().format(STAMP);
        assert!(!run_alive(&format!("{now}-999999999")), "no such process");
        assert!(!run_alive("validate"));
    }
}
