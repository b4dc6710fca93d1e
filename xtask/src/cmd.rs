//! Running external commands: echo them, run them, turn failures into
//! [`Error::Command`].
//!
//! Every command xtask runs is printed first (`$ cargo build ...`, with the
//! environment variables xtask set in front), so a failing step can be
//! re-run by hand with exactly the same line.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::error::{Error, Result};

/// The command line of `cmd` as a shell would take it: the variables xtask
/// set, the program, its arguments (quoted where needed).
pub fn display(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                sh_quote(&value.to_string_lossy())
            ));
        }
    }
    parts.push(sh_quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| sh_quote(&a.to_string_lossy())));
    parts.join(" ")
}

/// Quotes `s` for a POSIX shell: unchanged when it holds only characters
/// that need no quoting, in single quotes otherwise (a `'` becomes `'\''`),
/// and as `$'...'` with `\xNN` escapes when it holds control characters.
pub fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b'=' | b':' | b',' | b'+' | b'@' | b'%'
                )
        });
    if plain {
        s.to_string()
    } else if s.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' | '\'' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn status_text(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    }
}

/// Prints and runs `cmd` with inherited standard streams; fails unless it
/// exits with status 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    eprintln!("$ {shown}");
    let status = cmd.status().map_err(|e| Error::Command {
        cmd: shown.clone(),
        status: format!("could not start: {e}"),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            cmd: shown,
            status: status_text(status),
        })
    }
}

/// Runs `cmd` quietly and returns its standard output; fails unless it
/// exits with status 0 (its standard error is passed through).
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = display(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Command {
            cmd: shown.clone(),
            status: format!("could not start: {e}"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            cmd: shown,
            status: status_text(out.status),
        })
    }
}

/// Runs `cmd` quietly; its standard output when it succeeds, `None` when it
/// cannot start or fails. For probing optional tools.
pub fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Finds an executable named `name` in `PATH` (or `name` itself when it
/// holds a `/` and exists).
pub fn find_in_path(name: impl AsRef<OsStr>) -> Option<PathBuf> {
    let name = name.as_ref();
    if Path::new(name).components().count() > 1 {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `cargo` from `PATH`. Under `cargo xtask` that is rustup's proxy, which
/// keeps the toolchain that runs xtask (rustup passes it down in
/// `RUSTUP_TOOLCHAIN`), and the echoed command lines read exactly as a
/// developer would type them (`cargo test --workspace`).
pub fn cargo() -> Command {
    Command::new("cargo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(sh_quote("opt/nfy/bin"), "opt/nfy/bin");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
        assert_eq!(sh_quote("a\x1fb'c"), r"$'a\x1fb\'c'");
    }

    #[test]
    fn display_shows_env_program_and_args() {
        let mut c = Command::new("cargo");
        c.env("RUSTC_BOOTSTRAP", "1")
            .args(["build", "--target", "x y"]);
        assert_eq!(display(&c), "RUSTC_BOOTSTRAP=1 cargo build --target 'x y'");
    }

    #[test]
    fn failing_command_is_an_error_naming_it() {
        let err = run(&mut Command::new("false")).unwrap_err();
        assert!(
            err.to_string().contains("`false` failed: exit status 1"),
            "{err}"
        );
        assert!(run(&mut Command::new("true")).is_ok());
    }
}
