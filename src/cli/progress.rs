//! The live line on a terminal while a step runs: its name, elapsed time
//! and, for a scan of CSV and log files, a bar of the bytes read.

use std::io::Write;

use crate::run::human_bytes;

/// A live line on stderr naming the running step and its elapsed time,
/// redrawn ten times a second; only when stderr is a terminal.
pub(super) struct Spinner {
    state: std::sync::Arc<std::sync::Mutex<SpinnerState>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SpinnerState {
    /// The running step and when it started.
    current: Option<(String, std::time::Instant)>,
    /// The running step's scan, and the session's count of scanned bytes
    /// when it started.
    scan: Option<(crate::run::Scan, u64)>,
    /// Whether a line is drawn that must be erased.
    drawn: bool,
    stop: bool,
}

impl Spinner {
    /// A spinner, when stderr is a terminal.
    pub(super) fn start() -> Option<Spinner> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let state = std::sync::Arc::new(std::sync::Mutex::new(SpinnerState::default()));
        let shared = std::sync::Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            for frame in FRAMES.iter().cycle() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let Ok(mut state) = shared.lock() else {
                    return;
                };
                if state.stop {
                    return;
                }
                if let Some((label, since)) = &state.current {
                    let progress = state.scan.as_ref().map(scan_progress).unwrap_or_default();
                    let line = format!(
                        "{frame} {label}  {progress}{:.1} s",
                        since.elapsed().as_secs_f64()
                    );
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                    state.drawn = true;
                }
            }
        });
        Some(Spinner {
            state,
            thread: Some(thread),
        })
    }

    /// Shows `label` as the running step, with a bar of the bytes it has
    /// scanned when it scans `scanned` bytes of CSV and log files.
    pub(super) fn show(&self, label: String, scan: Option<crate::run::Scan>) {
        if let Ok(mut state) = self.state.lock() {
            state.current = Some((label, std::time::Instant::now()));
            state.scan = scan.map(|scan| {
                let before = scan.scanned.get();
                (scan, before)
            });
        }
    }

    /// Erases the line, before a step's line is printed.
    pub(super) fn clear(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.current = None;
            if std::mem::take(&mut state.drawn) {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
        }
    }
}

/// A step's scan as a bar: `[########------------]  40%  1.2 of 3.0 GiB  `.
fn scan_progress((scan, before): &(crate::run::Scan, u64)) -> String {
    const WIDTH: u64 = 20;
    let total = scan.total;
    let done = scan.scanned.get().saturating_sub(*before).min(total);
    let filled = (done * WIDTH / total.max(1)) as usize;
    format!(
        "[{}{}] {:>3}%  {} of {}  ",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled),
        done * 100 / total.max(1),
        human_bytes(done),
        human_bytes(total)
    )
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
        if let Ok(mut state) = self.state.lock() {
            state.stop = true;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
