//! `cargo xtask`: the project's build, check and packaging commands.

fn main() {
    eprintln!("xtask: no command yet");
}
