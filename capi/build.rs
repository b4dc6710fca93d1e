//! Gives `libvfiipc.so` its SONAME, so programs record `libvfiipc.so` as
//! what they need however they were linked (CMake links by full path).

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvfiipc.so");
}
