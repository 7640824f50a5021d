//! The whisper-* command-line tools: one [`Tool`] per program, run by [`main`].
//!
//! Each tool is a clap-derived struct with whisper.py's option names. Its `run` writes to the
//! [`Io`] it is given (stdout, stderr and the current time), so tests can run it in-process; the
//! binaries in `src/bin/` only call [`main`].
//!
//! Exit codes follow the Python tools: 0 on success, 1 for errors (`[ERROR] ...` on stderr),
//! 2 for bad options. A broken pipe on stdout ends the program quietly with 0.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::CommandFactory;

mod create;
mod diff;
mod dump;
mod fetch;
mod fill;
mod info;
mod merge;
mod pynum;
mod resize;
mod set_aggregation_method;
mod set_xfilesfactor;
mod update;

pub use create::Create;
pub use diff::Diff;
pub use dump::Dump;
pub use fetch::Fetch;
pub use fill::Fill;
pub use info::Info;
pub use merge::Merge;
pub use resize::Resize;
pub use set_aggregation_method::SetAggregationMethod;
pub use set_xfilesfactor::SetXFilesFactor;
pub use update::Update;

/// The environment variable that replaces the clock: seconds since the epoch, an integer or a
/// float. The Python tools read `time.time()`; tests set this to run both at the same instant.
pub const NOW_ENV: &str = "WHISPER_NOW";

/// One command-line program.
pub trait Tool: clap::Parser {
    /// Runs the program; returns its exit code.
    ///
    /// # Errors
    ///
    /// Whatever stops it. [`main`] prints the error (see [`report`]) and exits 1, or 0 for a
    /// broken pipe.
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8>;
}

/// Where a tool writes, and what time it is.
pub struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    now: f64,
}

impl<'a> Io<'a> {
    /// A tool's output streams and its `time.time()`.
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write, now: f64) -> Io<'a> {
        Io { out, err, now }
    }

    /// The current time as Python's `time.time()` (a float).
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The current time as the scripts take it: `int(time.time())`.
    pub fn now_secs(&self) -> i64 {
        self.now.trunc() as i64
    }

    /// Standard output.
    pub fn out(&mut self) -> &mut dyn Write {
        self.out
    }

    /// Writes `text` to stderr as it is, after flushing stdout so the two stay in order on a
    /// terminal.
    pub fn eprint(&mut self, text: &str) -> io::Result<()> {
        self.out.flush()?;
        self.err.write_all(text.as_bytes())?;
        self.err.flush()
    }

    /// Prints the tool's help to stdout, as optparse's `print_help()` does.
    pub fn print_help<T: CommandFactory>(&mut self) -> io::Result<()> {
        let help = T::command().render_help().to_string();
        self.out.write_all(help.as_bytes())
    }

    /// Prints the tool's usage line to stdout, as optparse's `print_usage()` does.
    pub fn print_usage<T: CommandFactory>(&mut self) -> io::Result<()> {
        let usage = T::command().render_usage().to_string();
        writeln!(self.out, "{usage}")
    }
}

/// An error whose text is printed to stderr exactly as it is, then the program exits with
/// `code` (what a Python script's `raise SystemExit('...')` does).
#[derive(Debug)]
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// `[ERROR] <message>`, exit code 1.
    pub fn error(message: impl fmt::Display) -> anyhow::Error {
        anyhow::Error::new(Failure { message: format!("[ERROR] {message}"), code: 1 })
    }

    /// `text` as it is, with exit code `code`.
    pub fn message(text: impl Into<String>, code: u8) -> anyhow::Error {
        anyhow::Error::new(Failure { message: text.into(), code })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The text of a whisper error as the Python tools print it after `[ERROR] `.
///
/// whisper.py's own messages already come out of `whisper::Error`'s `Display`. Two kinds are
/// rewritten: OS errors print as Python's `OSError` (`[Errno 2] No such file or directory:
/// 'x.wsp'`), and the header problems whisper.py also detects print as its
/// `CorruptWhisperFile` (`Unable to read header (x.wsp)`). Problems whisper.py does not detect
/// keep our more precise text.
pub fn describe(e: &whisper::Error) -> String {
    use whisper::{Corruption, Error};
    match e {
        Error::Io { path, source } => crate::pyfmt::os_error(source, path),
        Error::Corrupt { path, problem } => match problem {
            Corruption::ShortHeader { .. }
            | Corruption::UnknownAggregation { .. }
            | Corruption::XFilesFactorOutOfRange { .. } => {
                format!("Unable to read header ({})", path.display())
            }
            Corruption::ArchiveListTruncated { len, .. } => {
                let complete = len.saturating_sub(whisper::METADATA_SIZE as u64)
                    / whisper::ARCHIVE_INFO_SIZE as u64;
                format!("Unable to read archive{complete} metadata ({})", path.display())
            }
            _ => e.to_string(),
        },
        _ => e.to_string(),
    }
}

/// Reads [`NOW_ENV`], else the system clock.
///
/// # Errors
///
/// A message when the variable is set but is not a finite number.
pub fn now_from_env() -> Result<f64, String> {
    match std::env::var(NOW_ENV) {
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(t) if t.is_finite() => Ok(t),
            _ => Err(format!("{NOW_ENV}={s:?} is not a number of seconds since the epoch")),
        },
        Err(std::env::VarError::NotUnicode(s)) => {
            Err(format!("{NOW_ENV}={s:?} is not a number of seconds since the epoch"))
        }
        Err(std::env::VarError::NotPresent) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())),
    }
}

/// The `main` of every whisper-* binary: parses the arguments, runs the tool on the real
/// stdout and stderr, and turns the outcome into an exit code.
pub fn main<T: Tool>() -> ExitCode {
    let tool = match T::try_parse() {
        Ok(tool) => tool,
        Err(e) => {
            // Help and version go to stdout with code 0, usage errors to stderr with 2. A
            // failure to print them (a closed pipe) changes nothing.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let now = match now_from_env() {
        Ok(now) => now,
        Err(message) => {
            let _ = writeln!(io::stderr(), "[ERROR] {message}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    ExitCode::from(run(tool, &mut out, &mut err, now))
}

/// Runs `tool` on the given streams and returns its exit code, reporting any error on `err`.
pub fn run<T: Tool>(tool: T, out: &mut dyn Write, err: &mut dyn Write, now: f64) -> u8 {
    let mut io = Io::new(out, err, now);
    let result = tool.run(&mut io).and_then(|code| {
        io.out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) => report(&mut io, &e),
    }
}

/// Prints `e` to stderr the way the Python tools would and returns the exit code.
///
/// A [`Failure`] prints as it is; a whisper error as `[ERROR] ` and [`describe`]; a broken pipe
/// prints nothing and gives 0 (the Python tools die quietly of SIGPIPE); anything else prints as
/// `[ERROR] ` and its chain of causes.
pub fn report(io: &mut Io<'_>, e: &anyhow::Error) -> u8 {
    let (text, code) = if let Some(f) = e.downcast_ref::<Failure>() {
        (f.message.clone(), f.code)
    } else if let Some(w) = e.downcast_ref::<whisper::Error>() {
        (format!("[ERROR] {}", describe(w)), 1)
    } else if e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    }) {
        return 0;
    } else {
        (format!("[ERROR] {e:#}"), 1)
    };
    // stdout may be the broken part; what matters now is the error message.
    let _ = io.out.flush();
    let _ = writeln!(io.err, "{text}");
    let _ = io.err.flush();
    code
}

/// Whether the file at `path` exists, as Python's `os.path.exists` answers (broken links and
/// unreadable directories count as missing).
fn exists(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn describes_header_problems_as_whisper_py() {
        let path = PathBuf::from("x.wsp");
        let e = whisper::Error::Corrupt {
            path: path.clone(),
            problem: whisper::Corruption::UnknownAggregation { code: 9 },
        };
        assert_eq!(describe(&e), "Unable to read header (x.wsp)");
        let e = whisper::Error::Corrupt {
            path,
            problem: whisper::Corruption::ArchiveListTruncated { count: 3, len: 40 },
        };
        assert_eq!(describe(&e), "Unable to read archive2 metadata (x.wsp)");
    }

    #[test]
    fn broken_pipe_exits_zero_quietly() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io::new(&mut out, &mut err, 0.0);
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(report(&mut io, &e), 0);
        assert!(err.is_empty());
    }

    #[test]
    fn failures_print_their_text() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io::new(&mut out, &mut err, 0.0);
        assert_eq!(report(&mut io, &Failure::message("No data in selected timerange", 1)), 1);
        assert_eq!(err, b"No data in selected timerange\n");
    }
}
