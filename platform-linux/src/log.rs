//! A small stderr logger for the `log` facade, shared by `notifysvc`, the
//! client library and the `nfy` tool.
//!
//! Each record becomes one line, written with a single `write` so lines of
//! concurrent threads do not interleave:
//!
//! ```text
//! 2025-03-01T12:00:00.123Z notifysvc[4242] WARN  #3.0: bad message: member "to" is missing
//! ```
//!
//! (UTC timestamp, program name and process id, level, message.)
//!
//! # The journal
//!
//! When standard error is connected to the systemd journal, which systemd
//! tells a service by setting `JOURNAL_STREAM` to the device and inode
//! numbers of that stream (`<dev>:<ino>` in decimal; systemd.exec(5),
//! sd-daemon(3)), and those match standard error's own, each line starts
//! with its syslog priority instead of the timestamp, which the journal
//! parses and strips (it records its own time):
//!
//! ```text
//! <4>notifysvc[4242] WARN  #3.0: bad message: member "to" is missing
//! ```
//!
//! `error` is 3 (ERR), `warn` 4 (WARNING), `info` 6 (INFO), `debug` and
//! `trace` 7 (DEBUG), so `journalctl -p warning` shows errors and warnings
//! only. A message of several lines gets the prefix on each line (the
//! journal makes one entry per line). `JOURNAL_STREAM` inherited by a
//! process whose standard error was redirected elsewhere (a file, a pipe)
//! does not match it, and lines stay as above.
//!
//! **Decision**: the program name and process id stay in the line: the
//! journal's identifier and pid are those of the process that owns the
//! stream, which may not be the one logging (a C or C++ app's
//! libvfiipc logs under the app's name; a script's children share its
//! stream).
//!
//! # Choosing what is logged
//!
//! - `NFY_LOGMASK`: the original service's syslog-style bit mask, decimal or
//!   `0x` hexadecimal. Bit `1 << prio` enables syslog priority `prio`
//!   (EMERG=0, ALERT=1, CRIT=2, ERR=3, WARNING=4, NOTICE=5, INFO=6, DEBUG=7).
//!   The `log` levels map onto them as: `error` = ERR (bit 3, 0x08),
//!   `warn` = WARNING (bit 4, 0x10), `info` = NOTICE or INFO (bit 5 or 6,
//!   0x20/0x40), `debug` and `trace` = DEBUG (bit 7, 0x80). Examples: `0xf8`
//!   everything, `0x18` errors and warnings, `0` nothing.
//! - `RUST_LOG`: a comma-separated list of `LEVEL` (the default for every
//!   target) and `TARGET=LEVEL` (for targets starting with `TARGET`, the
//!   longest match wins), with LEVEL one of `off`, `error`, `warn`, `info`,
//!   `debug`, `trace`. A level enables itself and everything more severe.
//! - Neither set (or set but empty): `info`.
//! - Both set: `NFY_LOGMASK` wins.
//!
//! An unparsable `NFY_LOGMASK` is ignored (falls back to `RUST_LOG`) and
//! reported once as a warning; unknown `RUST_LOG` words are ignored the
//! same way.
//!
//! # Why this and not a logging crate (Decision, issue 14)
//!
//! Weighed, with the size each adds to a stripped x86-64 release binary
//! that logs one line (the same small program each time; a terminal's
//! flash is scarce):
//!
//! | choice | adds | what it would replace |
//! |---|---|---|
//! | `env_logger` (default features off, `humantime`) | about 58 KB | the writer, `RUST_LOG`, timestamps |
//! | `env_filter` + `humantime` | about 30 KB | `RUST_LOG`, timestamps |
//! | `humantime` | about 6 KB | timestamps |
//!
//! Kept: `humantime` for the timestamps (the calendar arithmetic was the
//! part most worth not owning). Not taken: a crate for `RUST_LOG`.
//! `NFY_LOGMASK`, the variable terminal operators use (the original
//! service's syslog priority mask), enables any *set* of levels (`0x80`
//! is debug without errors), which no `RUST_LOG` filter expresses, so
//! [`LevelSet`] and the mask stay ours whatever crate parses `RUST_LOG`;
//! what remains of our own `RUST_LOG` parsing is about 50 lines with
//! tests, the subset above, against 25 to 50 KB in `notifysvc`. The
//! writer is one `write` per line, which is what the crates do too.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Environment variable holding the syslog-style mask.
pub const LOGMASK_ENV: &str = "NFY_LOGMASK";

/// Environment variable holding `env_logger`-style directives.
pub const RUST_LOG_ENV: &str = "RUST_LOG";

/// Environment variable systemd sets when standard output or error is
/// the journal: `<dev>:<ino>` of that stream.
pub const JOURNAL_STREAM_ENV: &str = "JOURNAL_STREAM";

/// Syslog priority numbers, as used by `NFY_LOGMASK` bits.
pub mod syslog {
    /// System is unusable.
    pub const EMERG: u8 = 0;
    /// Action must be taken immediately.
    pub const ALERT: u8 = 1;
    /// Critical conditions.
    pub const CRIT: u8 = 2;
    /// Error conditions (`log::Level::Error`).
    pub const ERR: u8 = 3;
    /// Warning conditions (`log::Level::Warn`).
    pub const WARNING: u8 = 4;
    /// Normal but significant (`log::Level::Info`).
    pub const NOTICE: u8 = 5;
    /// Informational (`log::Level::Info`).
    pub const INFO: u8 = 6;
    /// Debug-level messages (`log::Level::Debug` and `Trace`).
    pub const DEBUG: u8 = 7;
}

/// A set of enabled `log` levels (bit `level as usize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelSet(u8);

impl LevelSet {
    /// Nothing enabled.
    pub const NONE: LevelSet = LevelSet(0);

    /// `level` and every more severe level (the usual "up to" filter).
    pub fn up_to(filter: LevelFilter) -> LevelSet {
        let mut set = 0u8;
        for level in [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ] {
            if level <= filter {
                set |= 1 << level as usize;
            }
        }
        LevelSet(set)
    }

    /// The levels a syslog-style mask enables (see the module docs).
    pub fn from_syslog_mask(mask: u32) -> LevelSet {
        let bit = |prio: u8| mask & (1 << prio) != 0;
        let mut set = 0u8;
        if bit(syslog::ERR) {
            set |= 1 << Level::Error as usize;
        }
        if bit(syslog::WARNING) {
            set |= 1 << Level::Warn as usize;
        }
        if bit(syslog::NOTICE) || bit(syslog::INFO) {
            set |= 1 << Level::Info as usize;
        }
        if bit(syslog::DEBUG) {
            set |= (1 << Level::Debug as usize) | (1 << Level::Trace as usize);
        }
        LevelSet(set)
    }

    /// True when `level` is enabled.
    pub fn contains(self, level: Level) -> bool {
        self.0 & (1 << level as usize) != 0
    }

    /// The least severe level enabled, for `log::set_max_level`.
    pub fn max_filter(self) -> LevelFilter {
        [
            (Level::Trace, LevelFilter::Trace),
            (Level::Debug, LevelFilter::Debug),
            (Level::Info, LevelFilter::Info),
            (Level::Warn, LevelFilter::Warn),
            (Level::Error, LevelFilter::Error),
        ]
        .into_iter()
        .find(|(l, _)| self.contains(*l))
        .map_or(LevelFilter::Off, |(_, f)| f)
    }
}

/// What the logger lets through: a default set and per-target overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelSet,
    targets: Vec<(String, LevelSet)>,
}

impl Default for Filter {
    /// `info` and more severe, for every target.
    fn default() -> Self {
        Filter::uniform(LevelSet::up_to(LevelFilter::Info))
    }
}

impl Filter {
    /// The same levels for every target.
    pub fn uniform(levels: LevelSet) -> Filter {
        Filter {
            default: levels,
            targets: Vec::new(),
        }
    }

    /// True when a record of `level` from `target` is logged.
    pub fn enabled(&self, target: &str, level: Level) -> bool {
        self.targets
            .iter()
            .filter(|(prefix, _)| target.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, set)| *set)
            .contains(level)
    }

    /// The least severe level any target enables.
    pub fn max_filter(&self) -> LevelFilter {
        let all = self
            .targets
            .iter()
            .fold(self.default.0, |acc, (_, set)| acc | set.0);
        LevelSet(all).max_filter()
    }

    /// Parses an `NFY_LOGMASK` value (decimal or `0x` hex).
    pub fn from_logmask(text: &str) -> Option<Filter> {
        let text = text.trim();
        let mask = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => text.parse::<u32>().ok()?,
        };
        Some(Filter::uniform(LevelSet::from_syslog_mask(mask)))
    }

    /// Parses a `RUST_LOG` value; returns the filter and the directives it
    /// did not understand.
    pub fn from_rust_log(text: &str) -> (Filter, Vec<String>) {
        let mut filter = Filter::default();
        let mut bad = Vec::new();
        for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                None => match parse_level(directive) {
                    Some(level) => filter.default = LevelSet::up_to(level),
                    None => bad.push(directive.to_owned()),
                },
                Some((target, level)) => match parse_level(level.trim()) {
                    Some(level) if !target.trim().is_empty() => filter
                        .targets
                        .push((target.trim().to_owned(), LevelSet::up_to(level))),
                    _ => bad.push(directive.to_owned()),
                },
            }
        }
        (filter, bad)
    }

    /// The filter the environment asks for (see the module docs), and any
    /// complaint about it to log once the logger is installed.
    pub fn from_env_with(env: &dyn Fn(&str) -> Option<OsString>) -> (Filter, Option<String>) {
        let rust_log = env(RUST_LOG_ENV).map(|v| v.to_string_lossy().into_owned());
        let from_rust_log = || match rust_log.as_deref().filter(|v| !v.trim().is_empty()) {
            None => (Filter::default(), None),
            Some(text) => {
                let (filter, bad) = Filter::from_rust_log(text);
                let complaint = (!bad.is_empty())
                    .then(|| format!("{RUST_LOG_ENV}: ignored {}", bad.join(", ")));
                (filter, complaint)
            }
        };
        match env(LOGMASK_ENV).map(|v| v.to_string_lossy().into_owned()) {
            Some(mask) if !mask.trim().is_empty() => match Filter::from_logmask(&mask) {
                Some(filter) => (filter, None),
                None => {
                    let (filter, _) = from_rust_log();
                    (
                        filter,
                        Some(format!(
                            "{LOGMASK_ENV}={mask:?} is not a number (decimal or 0x hex); ignored"
                        )),
                    )
                }
            },
            _ => from_rust_log(),
        }
    }
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    Some(match text.to_ascii_lowercase().as_str() {
        "off" | "none" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

/// The syslog priority of a `log` level (see the module docs).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => syslog::ERR,
        Level::Warn => syslog::WARNING,
        Level::Info => syslog::INFO,
        Level::Debug | Level::Trace => syslog::DEBUG,
    }
}

/// How the logger writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `<time> <program>[<pid>] <LEVEL> <message>`: a console, a file.
    Plain,
    /// `<priority><program>[<pid>] <LEVEL> <message>`: the systemd
    /// journal, which reads the priority and keeps the time itself.
    Journal,
}

impl LineFormat {
    /// [`LineFormat::Journal`] when `JOURNAL_STREAM` names this process's
    /// standard error, else [`LineFormat::Plain`].
    pub fn of_stderr() -> LineFormat {
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .and_then(|fd| File::from(fd).metadata())
            .ok()
            .map(|m| (m.dev(), m.ino()));
        LineFormat::detect(std::env::var_os(JOURNAL_STREAM_ENV).as_deref(), stderr)
    }

    /// The format for a `JOURNAL_STREAM` value and standard error's device
    /// and inode numbers (`None`: unknown).
    pub fn detect(journal_stream: Option<&OsStr>, stderr: Option<(u64, u64)>) -> LineFormat {
        let named = journal_stream
            .and_then(OsStr::to_str)
            .and_then(|v| v.split_once(':'))
            .and_then(|(dev, ino)| Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?)));
        match (named, stderr) {
            (Some(named), Some(actual)) if named == actual => LineFormat::Journal,
            _ => LineFormat::Plain,
        }
    }
}

/// The logger: writes enabled records to stderr.
#[derive(Debug)]
pub struct StderrLogger {
    program: &'static str,
    pid: u32,
    filter: Filter,
    line_format: LineFormat,
}

impl StderrLogger {
    /// A logger tagging lines with `program`, in the format standard error
    /// calls for ([`LineFormat::of_stderr`]).
    pub fn new(program: &'static str, filter: Filter) -> StderrLogger {
        StderrLogger::with_format(program, filter, LineFormat::of_stderr())
    }

    /// A logger writing lines in `line_format`.
    pub fn with_format(
        program: &'static str,
        filter: Filter,
        line_format: LineFormat,
    ) -> StderrLogger {
        StderrLogger {
            program,
            pid: std::process::id(),
            filter,
            line_format,
        }
    }

    /// Formats one line (without writing it).
    pub fn format(&self, now: SystemTime, record: &Record<'_>) -> String {
        let mut line = String::with_capacity(128);
        let (program, pid, level) = (self.program, self.pid, record.level());
        match self.line_format {
            LineFormat::Plain => {
                let _ = writeln!(
                    line,
                    "{} {program}[{pid}] {level:<5} {}",
                    humantime::format_rfc3339_millis(now),
                    record.args()
                );
            }
            LineFormat::Journal => {
                let prefix = format!("<{}>", priority(level));
                let message = record.args().to_string();
                let message = message
                    .trim_end_matches('\n')
                    .replace('\n', &format!("\n{prefix}"));
                let _ = writeln!(line, "{prefix}{program}[{pid}] {level:<5} {message}");
            }
        }
        line
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self.format(SystemTime::now(), record);
        // A failing stderr cannot be reported anywhere; drop the line.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the stderr logger with the filter from the environment. Returns
/// false when a logger was already installed (the call then changes
/// nothing), which lets a library call it defensively.
pub fn init(program: &'static str) -> bool {
    let (filter, complaint) = Filter::from_env_with(&|k| std::env::var_os(k));
    let installed = init_with(program, filter);
    if installed {
        if let Some(complaint) = complaint {
            log::warn!("{complaint}");
        }
    }
    installed
}

/// Installs the stderr logger with an explicit filter; false when a logger
/// was already installed.
pub fn init_with(program: &'static str, filter: Filter) -> bool {
    let max = filter.max_filter();
    let logger = Box::new(StderrLogger::new(program, filter));
    match log::set_boxed_logger(logger) {
        Ok(()) => {
            log::set_max_level(max);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn env_of(pairs: Vec<(&'static str, &'static str)>) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn logmask_bits_map_to_levels() {
        let f = Filter::from_logmask("0x18").unwrap();
        assert!(f.enabled("x", Level::Error));
        assert!(f.enabled("x", Level::Warn));
        assert!(!f.enabled("x", Level::Info));
        assert!(!f.enabled("x", Level::Debug));

        // NOTICE alone or INFO alone enable info; nothing else.
        for mask in ["32", "64"] {
            let f = Filter::from_logmask(mask).unwrap();
            assert!(f.enabled("x", Level::Info), "{mask}");
            assert!(!f.enabled("x", Level::Error), "{mask}");
            assert!(!f.enabled("x", Level::Debug), "{mask}");
        }
        let f = Filter::from_logmask("0X80").unwrap();
        assert!(f.enabled("x", Level::Debug) && f.enabled("x", Level::Trace));
        assert!(!f.enabled("x", Level::Warn));
        assert_eq!(f.max_filter(), LevelFilter::Trace);

        // EMERG..CRIT alone enable none of our levels.
        let f = Filter::from_logmask("7").unwrap();
        assert_eq!(f.max_filter(), LevelFilter::Off);
        assert!(Filter::from_logmask("0xzz").is_none());
        assert!(Filter::from_logmask("-1").is_none());
    }

    #[test]
    fn rust_log_directives() {
        let (f, bad) = Filter::from_rust_log("warn,nfy_linux::server=debug,bogus,x=");
        assert_eq!(bad, vec!["bogus".to_owned(), "x=".to_owned()]);
        assert!(f.enabled("other", Level::Warn));
        assert!(!f.enabled("other", Level::Info));
        assert!(f.enabled("nfy_linux::server::event_loop", Level::Debug));
        assert!(!f.enabled("nfy_linux::server::event_loop", Level::Trace));
        assert_eq!(f.max_filter(), LevelFilter::Debug);

        let (f, _) = Filter::from_rust_log("nfy=off,nfy_linux=trace");
        assert!(f.enabled("nfy_linux", Level::Trace));
        assert!(!f.enabled("nfy_core", Level::Error));
    }

    #[test]
    fn environment_precedence() {
        let (f, c) = Filter::from_env_with(&env_of(vec![]));
        assert_eq!(f, Filter::default());
        assert!(c.is_none());

        let (f, _) = Filter::from_env_with(&env_of(vec![("RUST_LOG", "error")]));
        assert!(!f.enabled("x", Level::Warn));

        // NFY_LOGMASK wins.
        let (f, _) = Filter::from_env_with(&env_of(vec![
            ("RUST_LOG", "error"),
            ("NFY_LOGMASK", "0x80"),
        ]));
        assert!(f.enabled("x", Level::Debug));
        assert!(!f.enabled("x", Level::Error));

        // A bad mask falls back to RUST_LOG and complains.
        let (f, c) = Filter::from_env_with(&env_of(vec![
            ("RUST_LOG", "debug"),
            ("NFY_LOGMASK", "lots"),
        ]));
        assert!(f.enabled("x", Level::Debug));
        assert!(c.unwrap().contains("NFY_LOGMASK"));
    }

    #[test]
    fn line_format() {
        let logger = StderrLogger::with_format("notifysvc", Filter::default(), LineFormat::Plain);
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = logger.format(
            at,
            &Record::builder()
                .level(Level::Warn)
                .args(format_args!("hello {}", 1))
                .build(),
        );
        assert_eq!(
            line,
            format!(
                "2023-11-14T22:13:20.123Z notifysvc[{}] WARN  hello 1\n",
                std::process::id()
            )
        );
    }

    fn record_line(logger: &StderrLogger, level: Level, message: &str) -> String {
        logger.format(
            UNIX_EPOCH,
            &Record::builder()
                .level(level)
                .args(format_args!("{message}"))
                .build(),
        )
    }

    #[test]
    fn journal_lines_carry_the_priority_and_no_timestamp() {
        let logger = StderrLogger::with_format("notifysvc", Filter::default(), LineFormat::Journal);
        let pid = std::process::id();
        for (level, expected) in [
            (Level::Error, format!("<3>notifysvc[{pid}] ERROR m\n")),
            (Level::Warn, format!("<4>notifysvc[{pid}] WARN  m\n")),
            (Level::Info, format!("<6>notifysvc[{pid}] INFO  m\n")),
            (Level::Debug, format!("<7>notifysvc[{pid}] DEBUG m\n")),
            (Level::Trace, format!("<7>notifysvc[{pid}] TRACE m\n")),
        ] {
            assert_eq!(record_line(&logger, level, "m"), expected);
        }
        // Every line of a message gets the priority (one journal entry each).
        assert_eq!(
            record_line(&logger, Level::Warn, "first\nsecond\n"),
            format!("<4>notifysvc[{pid}] WARN  first\n<4>second\n")
        );
        // The plain format is unchanged, message lines as they are.
        let plain = StderrLogger::with_format("notifysvc", Filter::default(), LineFormat::Plain);
        assert_eq!(
            record_line(&plain, Level::Warn, "a\nb"),
            format!("1970-01-01T00:00:00.000Z notifysvc[{pid}] WARN  a\nb\n")
        );
    }

    #[test]
    fn the_journal_is_recognised_by_device_and_inode() {
        let at = Some((2049, 77));
        let detect = |v: &str, s| LineFormat::detect(Some(OsStr::new(v)), s);
        assert_eq!(detect("2049:77", at), LineFormat::Journal);
        // Inherited by a process whose stderr went elsewhere.
        assert_eq!(detect("2049:78", at), LineFormat::Plain);
        assert_eq!(detect("2048:77", at), LineFormat::Plain);
        for bad in ["", "2049", "2049:", ":77", "x:77", "2049:77:1", "-1:77"] {
            assert_eq!(detect(bad, at), LineFormat::Plain, "{bad:?}");
        }
        assert_eq!(LineFormat::detect(None, at), LineFormat::Plain);
        assert_eq!(detect("2049:77", None), LineFormat::Plain);
    }

    /// Marks the child process of [`journal_stream_of_stderr_in_a_child`].
    const CHILD_ENV: &str = "NFY_TEST_LOG_CHILD";

    /// The child's part: installs the logger and logs at every level. Runs
    /// only in that child (ignored, and a no-op without [`CHILD_ENV`]).
    #[test]
    #[ignore = "run by journal_stream_of_stderr_in_a_child"]
    fn log_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        assert!(init("child"));
        log::error!("e");
        log::warn!("w");
        log::info!("i");
        log::debug!("d");
        log::trace!("t");
        log::info!("two\nlines");
    }

    /// Runs [`log_child`] in a child process whose stderr is a pipe, with
    /// `JOURNAL_STREAM` set to `journal_stream(dev, ino of the pipe)`;
    /// returns what it wrote to stderr and its pid.
    fn run_child(journal_stream: impl Fn(u64, u64) -> String) -> (String, u32) {
        use std::io::Read as _;
        let (read, write) = nix::unistd::pipe().unwrap();
        let meta = File::from(write.try_clone().unwrap()).metadata().unwrap();
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["log::tests::log_child", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env(JOURNAL_STREAM_ENV, journal_stream(meta.dev(), meta.ino()))
            .env("RUST_LOG", "trace")
            .env_remove(LOGMASK_ENV)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(write));
        let mut child = cmd.spawn().unwrap();
        // The command holds the pipe's other write end: close it, so the
        // read ends when the child exits.
        drop(cmd);
        let mut out = String::new();
        File::from(read).read_to_string(&mut out).unwrap();
        assert!(child.wait().unwrap().success(), "{out}");
        (out, child.id())
    }

    #[test]
    fn journal_stream_of_stderr_in_a_child() {
        let (out, pid) = run_child(|dev, ino| format!("{dev}:{ino}"));
        let expected: String = [
            "<3>child[P] ERROR e",
            "<4>child[P] WARN  w",
            "<6>child[P] INFO  i",
            "<7>child[P] DEBUG d",
            "<7>child[P] TRACE t",
            "<6>child[P] INFO  two",
            "<6>lines",
        ]
        .iter()
        .map(|l| format!("{}\n", l.replace('P', &pid.to_string())))
        .collect();
        assert_eq!(out, expected);

        // Another stream's numbers (stderr redirected away from the
        // journal): plain lines with their timestamps.
        let (out, pid) = run_child(|dev, ino| format!("{dev}:{}", ino + 1));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 7, "{out}");
        let first = lines[0];
        assert!(
            first.ends_with(&format!("Z child[{pid}] ERROR e")),
            "{first}"
        );
        assert!(humantime::parse_rfc3339(&first[..24]).is_ok(), "{first}");
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let logger = StderrLogger::with_format("x", Filter::default(), LineFormat::Plain);
        let record = Record::builder()
            .level(Level::Info)
            .args(format_args!("m"))
            .build();
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_007, "2000-02-29T00:00:00.007Z"),
            (1_704_067_199_999, "2023-12-31T23:59:59.999Z"),
        ] {
            let line = logger.format(UNIX_EPOCH + Duration::from_millis(ms), &record);
            assert!(line.starts_with(text), "{line}");
        }
    }
}
