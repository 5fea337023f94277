//! The demo-lake generator: a synthetic municipality's CRM, call-center and web-log exports with planted citizen segments.
//!
//! `civica demo` writes one Italian municipality's raw exports (Comune di Bologna, ISTAT 037006) for a window of
//! days, deterministic for a seed, so newcomers, tests and benchmarks share the same realistic input. Every
//! citizen belongs to a planted segment (see `truth/segments.csv`) whose behaviour — web sessions, SPID logins,
//! calls, service requests, and for "failure demand" calls that follow a failed online attempt — the
//! clustering pipeline is expected to recover from the raw files alone.
//!
//! Layout under `out`:
//! - `raw/crm/citizens/citizens.csv` and `raw/crm/service_requests/service_requests.csv` (`;`-separated)
//! - `raw/callcenter/calls_YYYY-MM-DD.csv`, one per day (`;`-separated, Italian number and date formats)
//! - `raw/weblogs/access_YYYY-MM-DD.log.gz`, one per day (Apache Combined Log Format, Europe/Rome time)
//! - `raw/sportello/appointments_YYYY-MM-DD.csv` and `raw/email/messages_YYYY-MM-DD.csv`, one per day: the desk's
//!   appointments and the e-mail contact log of the requests opened there (`;`-separated)
//! - `truth/segments.csv` (`citizen_id,segment`), `truth/crm_records.csv` (`citizen_id,person_id`: records of
//!   one person share a `person_id`) and `truth/touchpoints.csv` (`source,record_id,person_id`: whose each call,
//!   desk visit and e-mail is, empty where what it holds can tell no one)
//! - `_demo/pseudonym.key`: a random pseudonym key for this lake (made once, readable by its owner only,
//!   kept when the lake is written again), for `CIVICA_PSEUDONYM_KEY_FILE`
//!
//! The citizens are drawn for a fixed registry date, not for the window: lakes ending on different days hold
//! the same people under the same codes and ids, and a later one appends the records registered since.
//!
//! Generation streams: citizens are drawn once and kept as compact profiles, with Poisson totals of each kind of
//! event for the whole window (the segment's 90-day rate scaled to the window). Activity is planned one day at a
//! time from per-(citizen, day) random streams that spend those totals, and each day's web log is expanded
//! session by session and merged in timestamp order, so memory stays bounded however many citizens and days
//! are asked for.

mod activity;
mod clock;
mod contacts;

mod names;
mod population;
mod sampling;
mod site;
mod weblog;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use flate2::Compression;
use flate2::write::GzEncoder;

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Directory that receives `raw/` and `truth/`; created if missing, existing files are overwritten.
    pub out: PathBuf,
    /// Number of residents in the CRM (at least 1).
    pub citizens: u64,
    /// Length of the window in days (1–3660).
    pub days: u32,
    /// Seed: the same options always produce byte-identical files.
    pub seed: u64,
    /// Last day of the window, inclusive.
    pub end_date: chrono::NaiveDate,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DemoSummary {
    /// Rows in the citizens export.
    pub citizens: u64,
    /// Rows in the service-request export.
    pub service_requests: u64,
    /// Rows across all call-center exports.
    pub calls: u64,
    /// Rows across all desk (sportello) exports.
    pub desk_visits: u64,
    /// Rows across all e-mail contact logs.
    pub emails: u64,
    /// Lines across all web logs.
    pub web_lines: u64,
    /// Files written.
    pub files: u64,
    /// Bytes on disk across all files (web logs compressed).
    pub bytes: u64,
    /// The lake's pseudonym key file.
    pub key_file: PathBuf,
}

/// Why the demo lake could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file or directory could not be created or written.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file or directory concerned.
        path: std::path::PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid demo option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Most days a window may span (ten years).
const MAX_DAYS: u32 = 3660;
/// Citizens are indexed with 32 bits and their profiles kept in memory.
const MAX_CITIZENS: u64 = 50_000_000;

/// The validated options as the generators use them.
pub(crate) struct Window {
    pub(crate) out: PathBuf,
    pub(crate) seed: u64,
    /// Epoch day of the first day of the window.
    pub(crate) first_day: i64,
    /// Epoch day of the last day of the window.
    pub(crate) last_day: i64,
    /// Days in the window.
    pub(crate) days: u32,
}

/// A text output file, plain or gzipped, written through a buffer.
pub(crate) struct Sink {
    path: PathBuf,
    inner: SinkInner,
}

enum SinkInner {
    Plain(BufWriter<File>),
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

impl Sink {
    /// Creates the file (and its directory), truncating any previous content.
    pub(crate) fn create(path: &Path, gzip: bool) -> Result<Self, DemoError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| DemoError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = File::create(path).map_err(|source| DemoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let buffered = BufWriter::with_capacity(1 << 18, file);
        // Level 1: the web logs dominate the lake's size and gzip time; ratio hardly improves above it.
        let inner = if gzip {
            SinkInner::Gzip(Box::new(GzEncoder::new(buffered, Compression::fast())))
        } else {
            SinkInner::Plain(buffered)
        };
        Ok(Self {
            path: path.to_path_buf(),
            inner,
        })
    }

    fn io(&self, source: std::io::Error) -> DemoError {
        DemoError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes raw bytes.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), DemoError> {
        let result = match &mut self.inner {
            SinkInner::Plain(w) => w.write_all(bytes),
            SinkInner::Gzip(w) => w.write_all(bytes),
        };
        result.map_err(|e| self.io(e))
    }

    /// Writes one line, adding the `\n`.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> Result<(), DemoError> {
        self.write_all(line)?;
        self.write_all(b"\n")
    }

    /// Flushes and closes the file, returning its size on disk.
    pub(crate) fn finish(self) -> Result<u64, DemoError> {
        let buffered = match self.inner {
            SinkInner::Plain(w) => Ok(w),
            SinkInner::Gzip(w) => w.finish(),
        };
        let file = buffered
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|source| DemoError::Io {
                path: self.path.clone(),
                source,
            })?;
        let len = file
            .metadata()
            .map_err(|source| DemoError::Io {
                path: self.path.clone(),
                source,
            })?
            .len();
        Ok(len)
    }
}

fn validate(opts: &DemoOptions) -> Result<Window, DemoError> {
    if opts.citizens < 1 || opts.citizens > MAX_CITIZENS {
        return Err(DemoError::InvalidOption {
            option: "citizens",
            reason: format!(
                "must be between 1 and {MAX_CITIZENS}, got {}",
                opts.citizens
            ),
        });
    }
    if opts.days < 1 || opts.days > MAX_DAYS {
        return Err(DemoError::InvalidOption {
            option: "days",
            reason: format!("must be between 1 and {MAX_DAYS}, got {}", opts.days),
        });
    }
    let last_day = i64::from(opts.end_date.num_days_from_ce()) - clock::UNIX_EPOCH_DAYS_FROM_CE;
    Ok(Window {
        out: opts.out.clone(),
        seed: opts.seed,
        first_day: last_day - i64::from(opts.days) + 1,
        last_day,
        days: opts.days,
    })
}

/// Writes the demo lake described by `opts` and reports what it wrote.
///
/// Files are streamed to disk: memory holds the citizens' compact profiles plus a few days of planned
/// sessions, never the whole lake's events.
pub fn write_demo_lake(opts: &DemoOptions) -> Result<DemoSummary, DemoError> {
    let window = validate(opts)?;
    let profiles = population::write_population(&window, opts.citizens)?;
    let citizens_bytes = file_len(&window.out.join("raw/crm/citizens/citizens.csv"))?
        + file_len(&window.out.join("truth/segments.csv"))?
        + file_len(&window.out.join("truth/crm_records.csv"))?;
    let activity = activity::write_activity(&window, &profiles)?;
    let key_file = write_key(&window.out)?;
    Ok(DemoSummary {
        citizens: opts.citizens,
        service_requests: activity.requests,
        calls: activity.calls,
        desk_visits: activity.desk_visits,
        emails: activity.emails,
        web_lines: activity.web_lines,
        files: activity.files + 3,
        bytes: activity.bytes + citizens_bytes,
        key_file,
    })
}

/// Where a demo lake keeps its pseudonym key, under its folder.
pub const DEMO_KEY_FILE: &str = "_demo/pseudonym.key";

/// The lake's pseudonym key file: 32 random bytes from the system, as 64
/// hex digits, readable and writable by its owner only. A key already
/// there is kept, so that a lake written again for the next day keeps its
/// pseudonyms and profile ids. It is a demo's key, not derived from the
/// seed: pseudonyms of real data need a key of their own (README,
/// "Personal data").
fn write_key(out: &Path) -> Result<PathBuf, DemoError> {
    use rand::RngCore;
    use std::os::unix::fs::OpenOptionsExt;
    let path = out.join(DEMO_KEY_FILE);
    if path.exists() {
        return Ok(path);
    }
    let io = |source| DemoError::Io {
        path: path.clone(),
        source,
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(io)?;
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    file.write_all(hex.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(io)?;
    Ok(path)
}

fn file_len(path: &Path) -> Result<u64, DemoError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|source| DemoError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{codice_fiscale, email, phone};
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Weekday};
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::io::Read;

    /// A scratch directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("civica-demo-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn end() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    /// The day the population's ages and registrations are drawn for.
    fn registry() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
    }

    fn options(
        out: &Path,
        citizens: u64,
        days: u32,
        seed: u64,
        end_date: NaiveDate,
    ) -> DemoOptions {
        DemoOptions {
            out: out.to_path_buf(),
            citizens,
            days,
            seed,
            end_date,
        }
    }

    /// Every file of the lake but its key, which is random.
    fn read_tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_path_buf();
                    if rel != Path::new(DEMO_KEY_FILE) {
                        out.insert(rel, std::fs::read(&path).unwrap());
                    }
                }
            }
        }
        out
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    fn text(tree: &BTreeMap<PathBuf, Vec<u8>>, rel: &str) -> String {
        String::from_utf8(tree[Path::new(rel)].clone()).unwrap()
    }

    /// One parsed Combined Log Format line.
    struct WebLine {
        ip: String,
        user: String,
        at: DateTime<chrono::FixedOffset>,
        method: String,
        path: String,
        status: u16,
        bytes: Option<u64>,
        referer: String,
        agent: String,
    }

    fn parse_web_line(line: &str) -> WebLine {
        let quoted: Vec<&str> = line.split('"').collect();
        assert_eq!(quoted.len(), 7, "{line}");
        let head: Vec<&str> = quoted[0].trim_end().splitn(4, ' ').collect();
        assert_eq!(head[1], "-", "{line}");
        let ts = head[3].trim_start_matches('[').trim_end_matches(']');
        let at = DateTime::parse_from_str(ts, "%d/%b/%Y:%H:%M:%S %z").unwrap();
        let request: Vec<&str> = quoted[1].split(' ').collect();
        assert_eq!(request.len(), 3, "{line}");
        assert_eq!(request[2], "HTTP/1.1");
        let tail: Vec<&str> = quoted[2].trim().split(' ').collect();
        assert_eq!(tail.len(), 2, "{line}");
        WebLine {
            ip: head[0].to_string(),
            user: head[2].to_string(),
            at,
            method: request[0].to_string(),
            path: request[1].to_string(),
            status: tail[0].parse().unwrap(),
            bytes: (tail[1] != "-").then(|| tail[1].parse().unwrap()),
            referer: quoted[3].to_string(),
            agent: quoted[5].to_string(),
        }
    }

    fn iso(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn same_options_give_identical_files_and_another_seed_differs() {
        let (a, b, c) = (
            TempDir::new("same-a"),
            TempDir::new("same-b"),
            TempDir::new("other-seed"),
        );
        let sa = write_demo_lake(&options(&a.0, 60, 4, 7, end())).unwrap();
        let sb = write_demo_lake(&options(&b.0, 60, 4, 7, end())).unwrap();
        let sc = write_demo_lake(&options(&c.0, 60, 4, 8, end())).unwrap();
        let same_but_key = |x: &DemoSummary, y: &DemoSummary| {
            DemoSummary {
                key_file: y.key_file.clone(),
                ..x.clone()
            } == *y
        };
        assert!(same_but_key(&sa, &sb));
        let (ta, tb, tc) = (read_tree(&a.0), read_tree(&b.0), read_tree(&c.0));
        assert_eq!(ta, tb);
        assert_eq!(ta.keys().collect::<Vec<_>>(), tc.keys().collect::<Vec<_>>());
        // A day's desk or e-mail export of 60 citizens may hold only its
        // header, whatever the seed; and each CRM record is its own person
        // whatever the seed.
        let header_only = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count() == 1;
        let same_for_every_seed = |path: &Path| path == Path::new("truth/crm_records.csv");
        for (path, bytes) in ta
            .iter()
            .filter(|(p, b)| !header_only(b) && !same_for_every_seed(p))
        {
            assert_ne!(
                bytes,
                &tc[path],
                "{} did not change with the seed",
                path.display()
            );
        }
        assert!(!same_but_key(&sa, &sc));
    }

    #[test]
    fn a_later_day_exports_the_same_citizens_and_appends_new_records() {
        let (a, b) = (TempDir::new("june"), TempDir::new("december"));
        let june = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let december = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        write_demo_lake(&options(&a.0, 2000, 1, 42, june)).unwrap();
        write_demo_lake(&options(&b.0, 2000, 1, 42, december)).unwrap();
        let (ta, tb) = (read_tree(&a.0), read_tree(&b.0));
        let crm = "raw/crm/citizens/citizens.csv";
        let (ca, cb) = (text(&ta, crm), text(&tb, crm));
        // The citizens and the test records are the same lines, and the
        // records registered since come after the earlier ones, which
        // keep their ids.
        assert!(
            cb.starts_with(ca.as_str()),
            "the December export does not extend June's"
        );
        let added = cb[ca.len()..].lines().count();
        assert!(
            added > 0,
            "no one was registered again from June to December"
        );
        let (ra, rb) = (
            text(&ta, "truth/crm_records.csv"),
            text(&tb, "truth/crm_records.csv"),
        );
        assert!(rb.starts_with(ra.as_str()));
        assert_eq!(rb.lines().count(), ra.lines().count() + added);
    }

    #[test]
    fn the_lake_has_a_random_owner_only_key_kept_when_written_again() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (TempDir::new("key-a"), TempDir::new("key-b"));
        let summary = write_demo_lake(&options(&a.0, 20, 1, 7, end())).unwrap();
        write_demo_lake(&options(&b.0, 20, 1, 7, end())).unwrap();
        assert_eq!(summary.key_file, a.0.join(DEMO_KEY_FILE));
        let key = std::fs::read_to_string(&summary.key_file).unwrap();
        let mode = std::fs::metadata(&summary.key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(key.trim_end().len(), 64);
        assert!(crate::privacy::PseudonymKey::from_file(&summary.key_file).is_ok());
        assert_ne!(
            key,
            std::fs::read_to_string(b.0.join(DEMO_KEY_FILE)).unwrap()
        );
        // The next day's lake keeps it: pseudonyms and profile ids stay.
        write_demo_lake(&options(&a.0, 20, 1, 7, end() + chrono::Days::new(1))).unwrap();
        assert_eq!(key, std::fs::read_to_string(&summary.key_file).unwrap());
    }

    #[test]
    fn small_lake_has_expected_files_headers_and_line_formats() {
        let dir = TempDir::new("formats");
        let days = 9;
        let summary = write_demo_lake(&options(&dir.0, 300, days, 42, end())).unwrap();
        let tree = read_tree(&dir.0);
        assert_eq!(summary.files, 5 + 4 * u64::from(days));
        assert_eq!(tree.len() as u64, summary.files);
        assert_eq!(
            summary.bytes,
            tree.values().map(|b| b.len() as u64).sum::<u64>()
        );
        let first_day = end() - chrono::Days::new(u64::from(days) - 1);
        let window_start = first_day.and_hms_opt(0, 0, 0).unwrap();
        let window_end = (end() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap();

        // Citizens.
        let citizens = text(&tree, "raw/crm/citizens/citizens.csv");
        let mut lines = citizens.lines();
        assert_eq!(lines.next(), Some(population::CITIZENS_HEADER));
        let mut by_cf = HashMap::new();
        let mut phones = HashSet::new();
        let mut mailboxes = HashSet::new();
        let mut rows = 0;
        let mut objected = 0;
        let italy = phone::region("IT").unwrap();
        let lines: Vec<&str> = lines.collect();
        // After the citizens, the CRM's test records, then the citizens
        // a clerk registered again.
        let (people, rest) = lines.split_at(300);
        let (tests, again) = rest.split_at(population::TEST_RECORDS.len());
        let records = text(&tree, "truth/crm_records.csv");
        let person: HashMap<&str, &str> = records
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(','))
            .collect();
        assert!(
            (1..=20).contains(&again.len()),
            "{} recorded twice",
            again.len()
        );
        for (k, line) in again.iter().enumerate() {
            let f: Vec<&str> = line.split(';').collect();
            assert_eq!(f.len(), 15, "{line}");
            let id = 100_001 + 302 + k as u64;
            assert_eq!(f[0].parse::<u64>().unwrap(), id);
            let original = person[id.to_string().as_str()].parse::<usize>().unwrap() - 100_001;
            let o: Vec<&str> = people[original].split(';').collect();
            // The code the same, left out or mistyped; the names at
            // most one slip away; the same birth date, place and flags.
            assert!(
                f[1] == o[1]
                    || f[1].is_empty()
                    || !crate::identity::codice_fiscale::is_valid(f[1].as_bytes()),
                "{line} of {}",
                people[original]
            );
            for n in [2, 3] {
                assert!(strsim::osa_distance(f[n], o[n]) <= 1, "{line}");
            }
            assert_eq!((f[4], f[5], f[6], f[7]), (o[4], o[5], o[6], o[7]));
            assert_eq!(&f[10..14], &o[10..14]);
            // Registered again by the end of the window, in id order.
            let created = iso(f[14]);
            assert!(created < window_end, "{line}");
            if k > 0 {
                assert!(iso(again[k - 1].split(';').nth(14).unwrap()) <= created);
            }
        }
        for (k, line) in tests.iter().enumerate() {
            let f: Vec<&str> = line.split(';').collect();
            assert_eq!(f.len(), 15, "{line}");
            assert_eq!(f[0].parse::<u64>().unwrap(), 100_001 + 300 + k as u64);
            assert!(by_cf.insert(f[1].to_string(), f[0].to_string()).is_none());
        }
        for (i, line) in people.iter().enumerate() {
            let f: Vec<&str> = line.split(';').collect();
            assert_eq!(f.len(), 15, "{line}");
            assert_eq!(f[0].parse::<u64>().unwrap(), 100_001 + i as u64);
            assert!(
                crate::identity::codice_fiscale::is_valid(f[1].as_bytes()),
                "{line}"
            );
            assert!(
                by_cf.insert(f[1].to_string(), f[0].to_string()).is_none(),
                "duplicate fiscal code in {line}"
            );
            assert!(!f[2].is_empty() && !f[3].is_empty());
            let birth = NaiveDate::parse_from_str(f[4], "%Y-%m-%d").unwrap();
            assert!(matches!(f[5], "M" | "F"));
            let day_field: u32 = f[1][9..11]
                .chars()
                .map(|c| c.to_digit(10).unwrap_or(0))
                .fold(0, |a, d| a * 10 + d);
            if f[1][9..11].chars().all(|c| c.is_ascii_digit()) {
                assert_eq!(day_field > 40, f[5] == "F", "{line}");
                assert_eq!(
                    day_field % 40,
                    birth.format("%d").to_string().parse::<u32>().unwrap()
                );
            }
            assert_eq!(f[6], "037006");
            assert!((40121..=40141).contains(&f[7].parse::<u32>().unwrap()));
            assert!(
                f[8].is_empty() || (f[8].contains('@') && f[8].is_ascii()),
                "{line}"
            );
            assert!(
                f[8].is_empty() || mailboxes.insert(f[8].to_string()),
                "an address of two citizens in {line}"
            );
            if !f[9].is_empty() {
                // Written as exports do, a mobile of its own or a
                // family's or care home's landline (051 2…).
                let number = phone::normalize(f[9], italy).expect(line);
                let mobile = number.starts_with("+393") && number.len() == 13;
                assert!(mobile || number.starts_with("+390512"), "{line}");
                assert!(
                    phones.insert(number) || !mobile,
                    "duplicate mobile in {line}"
                );
            }
            for flag in &f[10..14] {
                assert!(matches!(*flag, "true" | "false"));
            }
            // Who objected to profiling never consented to it.
            assert!(!(f[12] == "true" && f[13] == "true"), "{line}");
            objected += usize::from(f[13] == "true");
            let created = iso(f[14]);
            let registry = registry().and_hms_opt(0, 0, 0).unwrap().min(window_start);
            assert!(created < registry && created > registry - chrono::Days::new(3660));
            rows += 1;
        }
        assert_eq!(rows, 300);
        assert_eq!(summary.citizens, 300);
        assert!(
            (3..=18).contains(&objected),
            "a few percent objected: {objected}"
        );

        // Truth.
        let truth = text(&tree, "truth/segments.csv");
        let mut t = truth.lines();
        assert_eq!(t.next(), Some("citizen_id,segment"));
        let names: HashSet<&str> = population::SEGMENTS.iter().map(|s| s.name).collect();
        let truth_rows: Vec<&str> = t.collect();
        // The citizens and their second records, planted where the
        // citizen is.
        assert_eq!(truth_rows.len(), 300 + again.len());
        let planted: HashMap<&str, &str> = truth_rows
            .iter()
            .filter_map(|r| r.split_once(','))
            .collect();
        for row in &truth_rows {
            let (id, seg) = row.split_once(',').unwrap();
            assert!(names.contains(seg), "{row}");
            assert_eq!(planted[person[id]], seg, "{row}");
        }

        // Service requests.
        let requests = text(&tree, "raw/crm/service_requests/service_requests.csv");
        let mut lines = requests.lines();
        assert_eq!(lines.next(), Some(activity::REQUESTS_HEADER));
        let mut count = 0u64;
        for (i, line) in lines.enumerate() {
            let f: Vec<&str> = line.split(';').collect();
            assert_eq!(f.len(), 8, "{line}");
            assert_eq!(f[0].parse::<u64>().unwrap(), i as u64 + 1);
            let citizen: u64 = f[1].parse().unwrap();
            assert!((100_001..100_301).contains(&citizen));
            let opened = iso(f[2]);
            assert!(opened >= window_start && opened < window_end, "{line}");
            assert_eq!(f[3].is_empty(), f[6] != "chiusa", "{line}");
            if !f[3].is_empty() {
                let closed = iso(f[3]);
                assert!(
                    closed >= opened + chrono::Duration::hours(1) && closed < window_end,
                    "{line}"
                );
            }
            assert!(site::SERVICES.contains(&f[4]), "{line}");
            assert!(matches!(f[5], "sportello" | "web" | "email" | "telefono"));
            assert!(matches!(f[6], "chiusa" | "aperta" | "in_lavorazione"));
            assert!(f[7].is_empty() || (1..=5).contains(&f[7].parse::<u8>().unwrap()));
            count += 1;
        }
        assert_eq!(count, summary.service_requests);

        // Calls: one file per day, ids unique across the lake, Italian formats.
        let mut last_id = 0u64;
        let mut calls = 0u64;
        for d in 0..u64::from(days) {
            let day = first_day + chrono::Days::new(d);
            let body = text(
                &tree,
                &format!("raw/callcenter/calls_{}.csv", day.format("%Y-%m-%d")),
            );
            let mut lines = body.lines();
            assert_eq!(lines.next(), Some(activity::CALLS_HEADER));
            for line in lines {
                let f: Vec<&str> = line.split(';').collect();
                assert_eq!(f.len(), 8, "{line}");
                let id: u64 = f[0].parse().unwrap();
                assert!(id > last_id, "{line}");
                last_id = id;
                // Withheld, or a number as exports write it.
                assert!(
                    phone::is_withheld(f[1]) || phone::normalize(f[1], italy).is_some(),
                    "{line}"
                );
                let at = NaiveDateTime::parse_from_str(f[2], "%d/%m/%Y %H:%M:%S").unwrap();
                assert_eq!(at.date(), day);
                assert_ne!(at.weekday(), Weekday::Sun);
                let minutes = at.hour() * 60 + at.minute();
                assert!((8 * 60 + 30..18 * 60).contains(&minutes), "{line}");
                let decimal = |s: &str| {
                    let (a, b) = s.split_once(',').unwrap();
                    assert_eq!(b.len(), 1, "{s}");
                    format!("{a}.{b}").parse::<f64>().unwrap()
                };
                assert!((5.0..=600.0).contains(&decimal(f[3])), "{line}");
                assert_eq!(f[4].is_empty(), f[6] == "abbandonata", "{line}");
                if !f[4].is_empty() {
                    assert!((30.0..=1200.0).contains(&decimal(f[4])), "{line}");
                }
                assert!(site::SERVICES.contains(&f[5]));
                assert!(matches!(f[6], "risolta" | "trasferita" | "abbandonata"));
                assert!(f[7].is_empty() || (f[7].starts_with("OP") && f[7].len() == 5));
                calls += 1;
            }
        }
        assert_eq!(calls, summary.calls);

        // Web logs: gzipped, ordered, in Rome time, parseable back with plain splits.
        let mut web = 0u64;
        let mut statuses = HashMap::new();
        let mut authenticated = 0u64;
        for d in 0..u64::from(days) {
            let day = first_day + chrono::Days::new(d);
            let rel = format!("raw/weblogs/access_{}.log.gz", day.format("%Y-%m-%d"));
            let body = gunzip(&tree[Path::new(&rel)]);
            assert!(body.ends_with('\n'));
            let mut prev = None;
            for line in body.lines() {
                let w = parse_web_line(line);
                assert_eq!(w.at.date_naive(), day, "{line}");
                assert_eq!(
                    w.at.offset().local_minus_utc(),
                    3600,
                    "November is winter time: {line}"
                );
                if let Some(p) = prev {
                    assert!(w.at >= p, "out of order: {line}");
                }
                prev = Some(w.at);
                assert!(w.ip.parse::<std::net::IpAddr>().is_ok(), "{line}");
                if let Some(cf) = w.user.strip_prefix("TINIT-") {
                    assert!(by_cf.contains_key(cf), "unknown fiscal code in {line}");
                    authenticated += 1;
                } else {
                    assert_eq!(w.user, "-");
                }
                assert!(matches!(w.method.as_str(), "GET" | "POST" | "HEAD"));
                assert!(w.path.starts_with('/'));
                assert_eq!(
                    w.bytes.is_none(),
                    w.status == 304 || w.method == "HEAD",
                    "{line}"
                );
                assert!(
                    w.referer == "-" || w.referer.starts_with("https://"),
                    "{line}"
                );
                assert!(!w.agent.is_empty());
                *statuses.entry(w.status).or_insert(0u64) += 1;
                web += 1;
            }
        }
        assert_eq!(web, summary.web_lines);
        assert!(authenticated > 0);
        for status in [200, 302, 304, 404] {
            assert!(
                statuses.contains_key(&status),
                "no {status} in {statuses:?}"
            );
        }
        assert!(
            statuses
                .keys()
                .all(|s| matches!(s, 200 | 302 | 304 | 404 | 500))
        );
    }

    #[test]
    fn invalid_options_are_rejected() {
        let dir = TempDir::new("invalid");
        for (citizens, days, option) in [(0, 10, "citizens"), (10, 0, "days"), (10, 3661, "days")] {
            match write_demo_lake(&options(&dir.0, citizens, days, 1, end())) {
                Err(DemoError::InvalidOption { option: o, reason }) => {
                    assert_eq!(o, option);
                    assert!(reason.starts_with("must be"), "{reason}");
                }
                other => panic!("expected invalid {option}, got {other:?}"),
            }
        }
        assert!(!dir.0.exists(), "nothing is written for invalid options");
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = TempDir::new("io");
        std::fs::create_dir_all(&dir.0).unwrap();
        // A file where the `raw` directory should go.
        std::fs::write(dir.0.join("raw"), b"").unwrap();
        let err = write_demo_lake(&options(&dir.0, 5, 1, 1, end())).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("cannot write `"), "{message}");
        assert!(message.contains("raw"), "{message}");
    }

    #[test]
    fn web_logs_switch_offset_on_the_autumn_dst_day() {
        let dir = TempDir::new("dst");
        let autumn = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        write_demo_lake(&options(&dir.0, 80, 2, 3, autumn)).unwrap();
        let body =
            gunzip(&std::fs::read(dir.0.join("raw/weblogs/access_2026-10-25.log.gz")).unwrap());
        let offsets: Vec<i32> = body
            .lines()
            .map(|l| parse_web_line(l).at.offset().local_minus_utc())
            .collect();
        assert_eq!(offsets.first(), Some(&7200));
        assert_eq!(offsets.last(), Some(&3600));
        assert!(
            offsets.windows(2).all(|w| w[0] >= w[1]),
            "summer time comes first, then winter time"
        );
        let before =
            gunzip(&std::fs::read(dir.0.join("raw/weblogs/access_2026-10-24.log.gz")).unwrap());
        assert!(before.lines().all(|l| l.contains(" +0200]")));
    }

    /// Every call, desk visit and e-mail whose truth names a citizen holds
    /// an identifier the CRM has for that citizen, and every other holds
    /// none of any citizen's: the truth is what the files can tell.
    #[test]
    fn contact_exports_agree_with_their_truth() {
        let dir = TempDir::new("contacts");
        let days = 20;
        let summary = write_demo_lake(&options(&dir.0, 400, days, 5, end())).unwrap();
        let tree = read_tree(&dir.0);
        assert!(
            summary.desk_visits > 20 && summary.emails > 20,
            "{summary:?}"
        );
        let it = phone::region("IT").unwrap();
        // What the CRM knows of each citizen, normalised.
        let mut known: HashMap<String, Vec<String>> = HashMap::new();
        for line in text(&tree, "raw/crm/citizens/citizens.csv").lines().skip(1) {
            let f: Vec<&str> = line.split(';').collect();
            let mut add = |id: String| known.entry(id).or_default().push(f[0].to_string());
            add(format!("cf:{}", f[1]));
            if let Some(e) = email::normalize(f[8]) {
                add(format!("email:{e}"));
            }
            if let Some(p) = phone::normalize(f[9], it) {
                add(format!("phone:{p}"));
            }
        }
        let records = text(&tree, "truth/crm_records.csv");
        assert_eq!(records.lines().next(), Some("citizen_id,person_id"));
        assert_eq!(
            records.lines().count(),
            text(&tree, "raw/crm/citizens/citizens.csv").lines().count()
        );
        // Each contact's identifiers, normalised, by (source, id).
        let mut held: HashMap<(String, String), Vec<String>> = HashMap::new();
        let mut rows = |folder: &str, source: &str, header: &str, keys: &[(usize, &str)]| {
            let mut n = 0;
            for (path, bytes) in tree.iter().filter(|(p, _)| p.starts_with(folder)) {
                let text = String::from_utf8(bytes.clone()).unwrap();
                let mut lines = text.lines();
                assert_eq!(lines.next(), Some(header), "{}", path.display());
                for line in lines {
                    n += 1;
                    let f: Vec<&str> = line.split(';').collect();
                    let ids = keys
                        .iter()
                        .filter_map(|(i, kind)| {
                            let v = match *kind {
                                "cf" => codice_fiscale::normalize(f[*i])
                                    .filter(|c| codice_fiscale::is_valid(c.as_bytes())),
                                "phone" => phone::normalize(f[*i], it),
                                _ => email::normalize(f[*i]),
                            };
                            v.map(|v| format!("{kind}:{v}"))
                        })
                        .collect();
                    held.insert((source.to_string(), f[0].to_string()), ids);
                }
            }
            n
        };
        let calls = rows(
            "raw/callcenter",
            "calls",
            activity::CALLS_HEADER,
            &[(1, "phone")],
        );
        let desk = rows(
            "raw/sportello",
            "desk",
            contacts::DESK_HEADER,
            &[(1, "cf"), (2, "phone")],
        );
        let mail = rows(
            "raw/email",
            "email",
            contacts::EMAIL_HEADER,
            &[(1, "email")],
        );
        assert_eq!(
            (calls, desk, mail),
            (
                summary.calls as usize,
                summary.desk_visits as usize,
                summary.emails as usize
            )
        );
        let truth = text(&tree, "truth/touchpoints.csv");
        let mut lines = truth.lines();
        assert_eq!(lines.next(), Some("source,record_id,person_id"));
        let mut seen = 0;
        let mut attributable = HashMap::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            let ids = &held[&(f[0].to_string(), f[1].to_string())];
            let owners: HashSet<&String> = ids
                .iter()
                .filter_map(|id| known.get(id))
                .flatten()
                .collect();
            if f[2].is_empty() {
                // No one's: held by no CRM citizen, by several (a
                // family's landline) or by a test record.
                let test = |id: &&String| id.parse::<u64>().unwrap() > 100_000 + 400;
                assert!(
                    owners.len() != 1 || owners.iter().all(test),
                    "{line}: {ids:?}"
                );
            } else {
                assert!(owners.contains(&f[2].to_string()), "{line}: {ids:?}");
                *attributable.entry(f[0]).or_insert(0) += 1;
            }
            seen += 1;
        }
        assert_eq!(seen, calls + desk + mail);
        // Most contacts can be told, not all.
        for source in ["calls", "desk", "email"] {
            let n = attributable.get(source).copied().unwrap_or(0);
            let total = [calls, desk, mail][["calls", "desk", "email"]
                .iter()
                .position(|s| *s == source)
                .unwrap()];
            assert!(n * 10 > total * 5 && n < total, "{source}: {n} of {total}");
        }
    }

    #[test]
    fn planted_segments_show_in_the_raw_files() {
        let dir = TempDir::new("segments");
        write_demo_lake(&options(&dir.0, 500, 90, 11, end())).unwrap();
        let citizens =
            std::fs::read_to_string(dir.0.join("raw/crm/citizens/citizens.csv")).unwrap();
        let truth = std::fs::read_to_string(dir.0.join("truth/segments.csv")).unwrap();
        let segment: HashMap<String, String> = truth
            .lines()
            .skip(1)
            .map(|l| {
                l.split_once(',')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .unwrap()
            })
            .collect();
        let mut by_cf = HashMap::new();
        let mut by_phone = HashMap::new();
        let italy = phone::region("IT").unwrap();
        let mut ages: HashMap<String, i64> = HashMap::new();
        for line in citizens.lines().skip(1) {
            let f: Vec<&str> = line.split(';').collect();
            by_cf.insert(f[1].to_string(), f[0].to_string());
            if let Some(number) = phone::normalize(f[9], italy) {
                by_phone.insert(number, f[0].to_string());
            }
            let birth = NaiveDate::parse_from_str(f[4], "%Y-%m-%d").unwrap();
            ages.insert(
                f[0].to_string(),
                i64::from(registry().years_since(birth).unwrap()),
            );
        }
        for (id, seg) in &segment {
            let spec = population::SEGMENTS.iter().find(|s| s.name == seg).unwrap();
            let age = ages[id];
            assert!((spec.age.0..=spec.age.1).contains(&age), "{id} {seg} {age}");
        }

        // Authenticated sessions: a 30-minute gap starts a new one; remember the services each visited.
        let mut sessions: HashMap<String, Vec<(NaiveDateTime, NaiveDateTime, HashSet<String>)>> =
            HashMap::new();
        let mut logs: Vec<_> = std::fs::read_dir(dir.0.join("raw/weblogs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        logs.sort();
        for log in logs {
            for line in gunzip(&std::fs::read(log).unwrap()).lines() {
                let w = parse_web_line(line);
                let Some(cf) = w.user.strip_prefix("TINIT-") else {
                    continue;
                };
                let id = by_cf[cf].clone();
                let at = w.at.naive_local();
                let list = sessions.entry(id).or_default();
                if list
                    .last()
                    .is_none_or(|s| at - s.1 > chrono::Duration::minutes(30))
                {
                    list.push((at, at, HashSet::new()));
                }
                if let Some(s) = list.last_mut() {
                    s.1 = at;
                    if let Some(rest) = w.path.strip_prefix("/servizi/") {
                        s.2.insert(rest.split('/').next().unwrap_or_default().to_string());
                    }
                }
            }
        }
        let mut calls: HashMap<String, (u32, u32)> = HashMap::new();
        let mut logs: Vec<_> = std::fs::read_dir(dir.0.join("raw/callcenter"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        logs.sort();
        for log in logs {
            for line in std::fs::read_to_string(log).unwrap().lines().skip(1) {
                let f: Vec<&str> = line.split(';').collect();
                let Some(id) = phone::normalize(f[1], italy).and_then(|n| by_phone.get(&n)) else {
                    continue;
                };
                let at = NaiveDateTime::parse_from_str(f[2], "%d/%m/%Y %H:%M:%S").unwrap();
                let follows = sessions.get(id).is_some_and(|list| {
                    list.iter().any(|s| {
                        s.1 < at && at - s.1 <= chrono::Duration::hours(24) && s.2.contains(f[5])
                    })
                });
                let e = calls.entry(id.clone()).or_default();
                e.0 += 1;
                e.1 += u32::from(follows);
            }
        }
        let mean = |seg: &str, f: &dyn Fn(&str) -> f64| {
            let ids: Vec<&String> = segment
                .iter()
                .filter(|(_, s)| s.as_str() == seg)
                .map(|(id, _)| id)
                .collect();
            ids.iter().map(|id| f(id)).sum::<f64>() / ids.len().max(1) as f64
        };
        let auth = |id: &str| sessions.get(id).map_or(0.0, |v| v.len() as f64);
        let n_calls = |id: &str| calls.get(id).map_or(0.0, |c| f64::from(c.0));
        let follow = |id: &str| calls.get(id).map_or(0.0, |c| f64::from(c.1));
        assert!(mean("digitali", &auth) > 15.0);
        assert!(mean("anziani_telefono", &auth) < 0.5);
        assert!(mean("anziani_telefono", &n_calls) > 6.0);
        assert!(mean("occasionali", &n_calls) < 1.5);
        // Failure demand: most of their (linked) calls follow a failed session on the same service.
        let df_calls = mean("domanda_fallita", &n_calls);
        let df_follow = mean("domanda_fallita", &follow);
        assert!(df_calls > 4.0, "{df_calls}");
        assert!(df_follow / df_calls > 0.4, "{df_follow} of {df_calls}");
        for other in [
            "digitali",
            "anziani_telefono",
            "famiglie_scuola",
            "occasionali",
        ] {
            assert!(
                mean(other, &follow) < 0.3,
                "{other} {}",
                mean(other, &follow)
            );
        }
    }
}
