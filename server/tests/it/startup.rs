//! The real binary: bad settings stop start-up with one clear line; a good start serves, creates its
//! SQLite file, and stops cleanly on SIGTERM.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{free_port, palisade_bin, request, scratch_dir, Serving};

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
fn a_rego_heap_ceiling_below_the_servers_own_heap_names_itself() {
    let (_, line) = refused_start(&[("PALISADE__EVALUATION__REGO_HEAP_CEILING_MIB", "8")]);
    assert!(
        line.contains("evaluation.rego_heap_ceiling_mib: must be at least 64"),
        "{line}"
    );
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
    let serving = Serving::start(&dir, &[]);
    assert!(
        dir.join("data/palisade.db").is_file(),
        "the SQLite file is created on first start"
    );

    let ready = request(serving.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200);

    let (exit, rest) = serving.stop().await;
    assert!(exit.success(), "exit {exit:?}: {rest}");
    assert!(rest.contains("palisade stopped"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}
