//! No secret reaches a log line: the real binary runs a full flow with planted secrets (the
//! bootstrap secret, an API token, a session cookie, an OIDC client secret) and debug-level JSON
//! logs, and its log output is searched for each of them.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::support::{
    cookie_of, from_page, palisade_bin, request, scratch_dir, sign_out, token_from_page,
};

fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> std::process::Child {
    let mut command = Command::new(palisade_bin());
    command
        .arg("serve")
        .env("PALISADE__HTTP__ADDRESS", "127.0.0.1:0")
        .env(
            "PALISADE__DATABASE__URL",
            format!("sqlite://{}/palisade.db", dir.display()),
        )
        .env("PALISADE__LOG__FORMAT", "json")
        .env("PALISADE__LOG__FILTER", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().expect("start palisade")
}

#[tokio::test]
async fn no_planted_secret_reaches_the_log() {
    let dir = scratch_dir("palisade_secrets");
    let mut child = start(&dir, &[]);
    // stdout: the one-time secret, announced once with the sign-in address.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut addr, mut secret) = (None::<SocketAddr>, None::<String>);
    let mut announced = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        announced.push_str(&line);
        if let Some(url) = line.split("http://").nth(1) {
            addr = url.split('/').next().and_then(|a| a.parse().ok());
        }
        if let Some(found) = line.trim().strip_prefix("pbs_") {
            secret = Some(format!("pbs_{found}"));
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no address in {announced}"));
    let secret = secret.unwrap_or_else(|| panic!("no secret in {announced}"));

    // Sign in, make a token, use it, use bad ones, sign out.
    let origin = format!("http://{addr}");
    let signed_in = request(
        addr,
        "POST",
        "/auth/local",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", &origin),
        ],
        &format!("secret={secret}&next=%2F"),
    )
    .await;
    assert_eq!(signed_in.status, 303);
    let cookie = cookie_of(&signed_in).unwrap();
    let token = token_from_page(
        addr,
        (&cookie, &origin),
        r#"{"name":"planted","role":"author","expires_in_days":1}"#,
    )
    .await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        request(addr, "GET", "/api/v1/me", &[("authorization", &bearer)], "")
            .await
            .status,
        200
    );
    let wrong = format!("Bearer {token}x");
    assert_eq!(
        request(addr, "GET", "/api/v1/me", &[("authorization", &wrong)], "")
            .await
            .status,
        401
    );
    // A cross-site write with the cookie is refused (and logged, without the cookie).
    let cross = from_page(
        addr,
        (&cookie, "https://evil.example"),
        "POST",
        "/api/v1/tokens",
        r#"{"name":"x","role":"viewer","expires_in_days":1}"#,
    )
    .await;
    assert_eq!(cross.status, 403);
    // Reusing the secret fails and is logged.
    let reused = request(
        addr,
        "POST",
        "/auth/local",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("secret={secret}"),
    )
    .await;
    assert_eq!(reused.status, 303);
    let page = request(addr, "GET", "/settings", &[("cookie", &cookie)], "").await;
    assert_eq!(page.status, 200);
    let out = sign_out(addr, &cookie, &origin).await;
    assert_eq!(out.status, 303);

    unsafe_free_kill(&mut child);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(
        log.lines().count() > 10,
        "too little logged to prove anything:\n{log}"
    );
    assert!(log.contains("signed in"), "{log}");
    assert!(log.contains("cross-site request refused"), "{log}");
    let cookie_value = cookie.trim_start_matches("palisade_session=");
    let token_secret = token.rsplit('_').next().unwrap();
    for (name, planted) in [
        ("bootstrap secret", secret.as_str()),
        ("bootstrap secret body", &secret[4..]),
        ("API token", token.as_str()),
        ("API token secret", token_secret),
        ("session cookie", cookie_value),
    ] {
        assert!(!log.contains(planted), "the {name} is in the log");
        assert!(!rest.contains(planted), "the {name} is printed after start");
    }
    assert_eq!(
        announced.matches(&secret).count(),
        1,
        "printed exactly once"
    );

    // An OIDC client secret in the configuration: start-up fails (no provider there), and neither
    // the log nor the error shows the secret.
    let client_secret = "planted-client-secret-5f3a9c";
    let failed = start(
        &dir,
        &[
            ("PALISADE__OIDC__ISSUER_URL", "http://127.0.0.1:9/"),
            ("PALISADE__OIDC__CLIENT_ID", "palisade"),
            ("PALISADE__OIDC__CLIENT_SECRET", client_secret),
            ("PALISADE__HTTP__PUBLIC_URL", "http://127.0.0.1:3000"),
        ],
    )
    .wait_with_output()
    .unwrap();
    assert!(!failed.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(all.contains("oidc.issuer_url"), "{all}");
    assert!(!all.contains(client_secret), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stop the child with SIGTERM through the `kill` command (no unsafe code), then wait.
fn unsafe_free_kill(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
