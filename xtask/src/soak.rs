//! `cargo xtask soak`: the soak test of issue 7 (`nfy-tests`' ignored
//! `tests/soak.rs`, release build), also run for one minute by `ci`.

use std::path::Path;
use std::process::Command;

use crate::cmd;

/// The command running the soak for `minutes` (optionally with a seed and
/// a client count).
pub fn command(root: &Path, minutes: &str, seed: Option<&str>, clients: Option<&str>) -> Command {
    let mut cmd = cmd::cargo();
    cmd.current_dir(root)
        .env("NFY_SOAK_MINUTES", minutes)
        .args(["test", "--release", "-p", "nfy-tests", "--test", "soak"])
        .args(["--", "--ignored", "--nocapture", "--test-threads=1"]);
    if let Some(seed) = seed {
        cmd.env("NFY_SOAK_SEED", seed);
    }
    if let Some(clients) = clients {
        cmd.env("NFY_SOAK_CLIENTS", clients);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_names_the_soak_test_and_passes_its_settings() {
        let c = command(Path::new("/r"), "2", Some("7"), None);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "test",
                "--release",
                "-p",
                "nfy-tests",
                "--test",
                "soak",
                "--",
                "--ignored",
                "--nocapture",
                "--test-threads=1"
            ]
        );
        let envs: Vec<_> = c
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(envs.contains(&("NFY_SOAK_MINUTES".into(), Some("2".into()))));
        assert!(envs.contains(&("NFY_SOAK_SEED".into(), Some("7".into()))));
        assert!(!envs.iter().any(|(k, _)| k == "NFY_SOAK_CLIENTS"));
    }
}
