//! The real binary: bad settings stop start-up with one clear line; a good start serves, creates its
//! SQLite file, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{palisade_bin, request, scratch_dir};

/// Run `palisade serve` with `settings`, expecting it to refuse to start.
fn refused_start(settings: &[(&str, &str)]) -> (Output, String) {
    let dir = scratch_dir("palisade_refused");
    let output = Command::new(palisade_bin())
        .arg("serve")
        .current_dir(&dir)
        .env(
            "PALISADE__DATABASE__URL",
            format!("sqlite://{}/p.db", dir.display()),
        )
        .envs(settings.iter().copied())
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run palisade");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "start-up should fail: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("palisade: error:"))
        .collect();
    assert_eq!(
        error_lines.len(),
        1,
        "expected exactly one error line in:\n{stderr}"
    );
    (output, error_lines[0].to_owned())
}

#[test]
fn an_unknown_setting_names_itself() {
    let (_, line) = refused_start(&[("PALISADE__HTTP__PORT", "8080")]);
    assert!(line.contains("http.port: unknown setting"), "{line}");
    assert!(line.contains("PALISADE__HTTP__PORT"), "{line}");
}

#[test]
fn an_unknown_key_in_the_config_file_names_itself() {
    let dir = scratch_dir("palisade_config");
    let file = dir.join("palisade.toml");
    std::fs::write(&file, "[database]\nurll = \"sqlite://x.db\"\n").unwrap();
    let (_, line) = refused_start(&[("PALISADE_CONFIG", file.to_str().unwrap())]);
    assert!(line.contains("database.urll: unknown setting"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_database_url_names_the_setting_without_the_password() {
    let (_, line) = refused_start(&[("PALISADE__DATABASE__URL", "mysql://root:topsecret@db/x")]);
    assert!(line.contains("database.url:"), "{line}");
    assert!(!line.contains("topsecret"), "{line}");
}

#[test]
fn an_unreachable_postgres_names_the_setting_without_the_password() {
    let port = free_port();
    let url = format!("postgres://palisade:topsecret@127.0.0.1:{port}/palisade");
    let started = Instant::now();
    let (_, line) = refused_start(&[
        ("PALISADE__DATABASE__URL", url.as_str()),
        ("PALISADE__DATABASE__CONNECT_TIMEOUT_SECS", "2"),
    ]);
    assert!(
        line.contains("database.url: cannot open postgres://palisade:***@127.0.0.1"),
        "{line}"
    );
    assert!(!line.contains("topsecret"), "{line}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up too slowly"
    );
}

#[test]
fn a_port_in_use_names_the_setting() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (_, line) = refused_start(&[("PALISADE__HTTP__ADDRESS", address.as_str())]);
    assert!(
        line.contains(&format!("http.address: cannot listen on {address}")),
        "{line}"
    );
    drop(taken);
}

#[test]
fn help_lists_every_setting() {
    let output = Command::new(palisade_bin()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (key, _) in palisade_server::config::SETTINGS {
        assert!(help.contains(key), "--help does not list {key}");
        assert!(
            help.contains(&palisade_server::config::env_name(key)),
            "--help lacks the variable of {key}"
        );
    }
    assert!(help.contains("serve") && help.contains("migrate"));
}

/// A real start with the defaults (SQLite in ./data), a request, then SIGTERM: a clean exit.
#[tokio::test]
async fn serves_on_defaults_and_stops_on_sigterm() {
    let dir = scratch_dir("palisade_serve");
    let mut child = Command::new(palisade_bin())
        .arg("serve")
        .current_dir(&dir)
        .env("PALISADE__HTTP__ADDRESS", "127.0.0.1:0")
        .env("PALISADE__LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        let event: serde_json::Value =
            serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if event["message"] == "palisade is serving" {
            address = event["address"].as_str().map(str::to_owned);
            break;
        }
        line.clear();
    }
    let address: std::net::SocketAddr = address
        .expect("the server logs its address")
        .parse()
        .unwrap();
    assert!(
        dir.join("data/palisade.db").is_file(),
        "the SQLite file is created on first start"
    );

    let ready = request(address, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("palisade did not stop within 20 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(exit.success(), "exit {exit:?}: {rest}");
    assert!(rest.contains("palisade stopped"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
