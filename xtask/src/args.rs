//! The command line: `--name value`, `--name=value`, flags, and everything
//! after `--` kept apart.
//!
//! Hand-written rather than `lexopt` or `clap`: xtask's commands take a
//! handful of options each, and these five methods (with their tests) are
//! smaller than the loop each command would need around `lexopt`; the
//! per-command help, the real work, is in [`crate::help`] either way.

use crate::error::{Error, Result};

/// A small command-line parser: `--name value`, `--name=value`, flags, and
/// everything after `--` kept apart.
pub struct Args {
    args: Vec<String>,
    trailing: Vec<String>,
}

impl Args {
    /// The arguments after the program name.
    pub fn new(mut args: Vec<String>) -> Self {
        let trailing = match args.iter().position(|a| a == "--") {
            Some(i) => {
                let t = args.split_off(i);
                t.into_iter().skip(1).collect()
            }
            None => Vec::new(),
        };
        Args { args, trailing }
    }

    /// Takes the first argument when it is not an option.
    pub fn command(&mut self) -> Option<String> {
        let first = self.args.first()?;
        if first.starts_with("--") {
            return None;
        }
        Some(self.args.remove(0))
    }

    /// Takes `--name`; true when it was there.
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|a| a != name);
        self.args.len() != before
    }

    /// Takes every `--name VALUE` / `--name=VALUE`.
    pub fn values(&mut self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.args.len() {
            let a = &self.args[i];
            if a == name {
                if i + 1 >= self.args.len() {
                    return Err(Error::Usage(format!("{name} needs a value")));
                }
                out.push(self.args.remove(i + 1));
                self.args.remove(i);
            } else if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                out.push(v.to_string());
                self.args.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(out)
    }

    /// Takes `--name VALUE` given at most once.
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let mut v = self.values(name)?;
        if v.len() > 1 {
            return Err(Error::Usage(format!("{name} given twice")));
        }
        Ok(v.pop())
    }

    /// The arguments after `--`.
    pub fn trailing(&mut self) -> Vec<String> {
        std::mem::take(&mut self.trailing)
    }

    /// Fails when arguments are left that no option took.
    pub fn finish(&self) -> Result<()> {
        match self.args.first() {
            None if self.trailing.is_empty() => Ok(()),
            None => Err(Error::Usage(format!(
                "unexpected arguments after --: {}",
                self.trailing.join(" ")
            ))),
            Some(a) => Err(Error::Usage(format!("unexpected argument `{a}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::new(s.split_whitespace().map(str::to_string).collect())
    }

    #[test]
    fn options_values_flags_and_trailing_arguments() {
        let mut a = args("cross --target=x --test -- --test-threads 1");
        assert_eq!(a.command().as_deref(), Some("cross"));
        assert_eq!(a.value("--target").unwrap().as_deref(), Some("x"));
        assert!(a.flag("--test"));
        assert!(!a.flag("--release"));
        assert_eq!(a.trailing(), ["--test-threads", "1"]);
        a.finish().unwrap();

        let mut a = args("ci --skip cross --skip=nostd");
        a.command();
        assert_eq!(a.values("--skip").unwrap(), ["cross", "nostd"]);
        a.finish().unwrap();
    }

    #[test]
    fn command_line_mistakes_are_usage_errors() {
        let mut a = args("dist --out");
        a.command();
        assert!(matches!(a.value("--out"), Err(Error::Usage(_))));
        let mut a = args("dist --build a --build b");
        a.command();
        assert!(matches!(a.value("--build"), Err(Error::Usage(_))));
        let mut a = args("nostd --bogus");
        a.command();
        assert!(matches!(a.finish(), Err(Error::Usage(_))));
    }
}
