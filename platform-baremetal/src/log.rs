//! Log lines: where the service reports what it skipped or refused.
//!
//! The firmware writes them to a UART of their own (a serial console); the
//! host tests collect them. A line is a [`fmt::Arguments`], formatted only
//! by a sink that keeps it, so a board without a console pays nothing for
//! the text.

use core::fmt;

/// A sink for log lines.
pub trait Log {
    /// One line, without its line end.
    fn line(&mut self, args: fmt::Arguments<'_>);
}

/// Discards every line.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLog;

impl Log for NoLog {
    fn line(&mut self, _: fmt::Arguments<'_>) {}
}

/// Writes each line, ended by `\n`, to an `embedded-io` port. A failed
/// write loses the line and nothing else: a console must never stop the
/// service.
#[derive(Debug)]
pub struct PortLog<W>(pub W);

impl<W: embedded_io::Write> Log for PortLog<W> {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(format_args!("{args}\n"));
    }
}
