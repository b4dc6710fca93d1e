//! # libvfiipc: nfy for C and C++ applications
//!
//! This crate builds `libvfiipc.so` and `libvfiipc.a`, the library that
//! terminal applications written in C++ against the vendor's `libvfiipc`
//! link (`-lvfiipc -pthread -lrt`). It is the client library of
//! `nfy-linux` — the same process-wide client as the ADK-style Rust
//! functions ([`nfy_linux::client::adk`]) — behind a C ABI:
//!
//! | layer | where | what |
//! |---|---|---|
//! | C ABI | `include/nfy/nfy.h`, [`api`] | app ID, notify with the parameter as JSON text, register/unregister with `void *data`, unicast-error and observer callbacks, the in-process server, the original result codes |
//! | C++ API | `include/ipc/notify.h`, `include/ipc/jsobject.h` | the original's headers, same names, signatures, defaults and namespace `vfiipc`, inline over the C ABI, with our `JSObject` |
//!
//! Everything the original promises holds because the Rust client does it:
//! callbacks run on the library's threads, concurrently across
//! registrations; an unregister returns after the callback finished, and
//! may be called from inside that callback; a unicast for a registration
//! just removed goes back to the server; the connection is re-made after a
//! server restart; receivers acknowledge unicasts.
//!
//! # Decision: the C++ layer is header-only
//!
//! The C++ API is inline code in the headers, compiled by the
//! application's own compiler over the C ABI; the library exports C
//! symbols only. So the library needs no C++ compiler (nor the ARM one),
//! has no `libstdc++` dependency and no C++ ABI of its own: an application
//! built with another `-std`, another `_GLIBCXX_USE_CXX11_ABI` or
//! `-fno-exceptions` gets the C++ code compiled its own way. (Compiling
//! the C++ into the library would also not export it: a Rust `cdylib`
//! exports only the Rust crate's own symbols.) The cost is that each
//! application carries its own copy of `JSObject`'s parser and printer
//! (a few kilobytes).
//!
//! # FFI rules kept by every entry point ([`api`])
//!
//! - No panic crosses the boundary: each entry point runs under
//!   `catch_unwind`; a panic is logged and returns `NFY_ERR_SERVER`.
//! - A null pointer where the header gives it no meaning, or a string
//!   that is not UTF-8, returns an error code: `NFY_ERR_APP_ID` for
//!   identifiers (the original's code for identifiers; the Rust client maps
//!   invalid identifiers to it too), `NFY_ERR_SERVER` for the parameter
//!   (nothing was sent, as for a parameter that is not JSON).
//! - The library installs `nfy-linux`'s stderr logger on first use
//!   (`NFY_LOGMASK`, `RUST_LOG`; program name `libvfiipc`), unless the
//!   process already has a `log` logger.
//!
//! **Decision** (optional pointer arguments): a null `from` (notify) or
//! `to` (register, unregister) is the empty string, that is, the app ID, as
//! the C++ defaults; a null `param_json` is JSON `null` (what an empty
//! `JSObject` sends); a null `config_file` is the default locations, as the
//! original documents. Every other null pointer is an error.
//!
//! **Decision** (strings given to callbacks): owned by the library,
//! NUL-terminated, valid until the callback returns. They cannot contain
//! NUL: identifiers exclude it, and the parameter is JSON text validated
//! by the server (a NUL inside a JSON string is escaped as `\u0000`).

// Every unsafe block says why it is sound.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod api;
mod args;
mod callback;
mod guard;
