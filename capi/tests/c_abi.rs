//! The C ABI from plain C (`tests/c/capi_test.c`, gcc, no C++), linked to
//! the shared and to the static library, against a real `notifysvc`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{build, Link, Program, Server};

const C_FLAGS: &[&str] = &["-std=c99", "-Wpedantic", "-D_POSIX_C_SOURCE=200809L"];

fn run(link: Link) {
    let server = Server::start();
    let exe = build("c/capi_test.c", C_FLAGS, link);
    let mut app = Program::start(&exe, &[], &server.env());
    assert!(app.success().contains("c abi ok"));
    // A null `invoke` and an `invoke` that reported a failure are logged.
    let log = app.stderr.text();
    assert!(log.contains("`invoke` is a null pointer"), "{log}");
    assert!(log.contains("failed (code 7"), "{log}");
}

#[test]
fn a_c_program_linked_to_the_shared_library() {
    run(Link::Shared);
}

#[test]
fn a_c_program_linked_to_the_static_library() {
    run(Link::Static);
}
