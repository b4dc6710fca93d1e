//! TLS to the broker (rustls with `ring`): mosquitto with a TLS listener
//! that requires a client certificate and a password, certificates made
//! by the test with `openssl`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA, and a certificate it signs for `name` (with `san`).
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=nfy-test-ca",
        ],
    );
    for (name, san) in [
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("A", "subjectAltName=DNS:A"),
        ("B", "subjectAltName=DNS:B"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), format!("{san}\n")).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

#[test]
fn bridges_talk_through_a_tls_broker_with_client_certificates_and_passwords() {
    if !have_mosquitto("bridges_talk_through_a_tls_broker_with_client_certificates_and_passwords") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let st = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(d.join("passwords"))
        .args(["terminal", "s3cret"])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(d.join("pw"), "s3cret\n").unwrap();
    std::fs::write(d.join("bad-pw"), "wrong\n").unwrap();
    let broker = Mosquitto::start_with(
        d,
        &format!(
            "listener {{port}} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n\
             keyfile {d}/server.key\nrequire_certificate true\nallow_anonymous false\n\
             password_file {d}/passwords\n",
            d = d.display()
        ),
    );
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let a = Server::start(d, "srv-a");
    let b = Server::start(d, "srv-b");
    let tls = |name: &str, pw: &str| -> Vec<String> {
        [
            "--ca".to_string(),
            d.join("ca.pem").display().to_string(),
            "--cert".into(),
            d.join(format!("{name}.pem")).display().to_string(),
            "--key".into(),
            d.join(format!("{name}.key")).display().to_string(),
            "--username".into(),
            "terminal".into(),
            "--password-file".into(),
            d.join(pw).display().to_string(),
        ]
        .to_vec()
    };
    let args_a = tls("A", "pw");
    let args_b = tls("B", "pw");
    let va: Vec<&str> = args_a.iter().map(String::as_str).collect();
    let vb: Vec<&str> = args_b.iter().map(String::as_str).collect();
    let bridge_a = Bridge::start(d, "A", &a, &url, "out * *@B *\n", &va);
    let bridge_b = Bridge::start(d, "B", &b, &url, "in *@A * *\nexport ui show\n", &vb);
    bridge_a.wait_connected(1);
    bridge_b.wait_connected(1);
    bridge_a.wait_log("registered ui@B for show", 1);
    let payment = a.client("payment");
    let ui = b.client("ui");
    let (_r, shows) = listen(&ui, None, "show", 0);
    payment
        .notify("ui@B", "show", &json!({"over": "tls"}))
        .unwrap();
    let got = shows.recv_timeout(LONG).unwrap();
    assert_eq!(
        (got.from.as_str(), got.parameter["over"].as_str()),
        ("payment@A", Some("tls"))
    );

    // A wrong password, or no client certificate: never connected.
    let bad = tls("A", "bad-pw");
    let vbad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let c = Server::start(d, "srv-c");
    let bridge_c = Bridge::start(d, "C", &c, &url, "", &vbad);
    let ca = d.join("ca.pem").display().to_string();
    let bridge_d = Bridge::start(
        d,
        "D",
        &c,
        &url,
        "",
        &["--ca", &ca, "--username", "terminal"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !bridge_c.log().contains("connected to the broker"),
        "{}",
        bridge_c.log()
    );
    assert!(
        !bridge_d.log().contains("connected to the broker"),
        "{}",
        bridge_d.log()
    );
}
