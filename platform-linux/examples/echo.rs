//! The echo receiver of the spec: registers notification "echo" as app
//! "echo" and answers every "echo" with an "echo-reply" to its sender
//! (`to` = the received `from`), with the same parameter.
//!
//! ```text
//! cargo run --example echo            # prints "echo: ready" on stderr
//! nfy listen --as me echo-reply &
//! nfy send --from me echo echo '{"n":1}'
//! ```
//!
//! The server address comes from the environment (`NFY_SOCKET`,
//! `NFY_PORT`), as for every client. Runs until interrupted.

use std::process::ExitCode;

use nfy_linux::client::{Client, Delivery};

fn main() -> ExitCode {
    let client = match Client::connect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = client.set_app_id("echo") {
        eprintln!("echo: {e}");
        return ExitCode::FAILURE;
    }
    let replier = client.clone();
    let registration = client.register("echo", 0, move |d: &Delivery<'_>| {
        if let Err(e) = replier.notify_raw(d.from, "echo-reply", d.parameter) {
            eprintln!("echo: cannot answer {}: {e}", d.from);
        }
    });
    let _registration = match registration {
        Ok(r) => r,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The registration is in force once the server has processed it.
    if let Err(e) = client.sync() {
        eprintln!("echo: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("echo: ready");
    loop {
        std::thread::park();
    }
}
