//! For the ARM bare-metal firmware: puts `memory.x` where `cortex-m-rt`'s
//! linker script finds it and links the binary with that script. Host
//! builds (the portable modules and their tests) need neither.

use std::env;
use std::error::Error;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    let bare_arm =
        env::var("CARGO_CFG_TARGET_ARCH")? == "arm" && env::var("CARGO_CFG_TARGET_OS")? == "none";
    if bare_arm {
        let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
        fs::copy("memory.x", out.join("memory.x"))?;
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
    Ok(())
}
