//! Palisade terminates TLS itself when `http.tls_cert_file` and `http.tls_key_file` are set, so
//! apiservers can post their audit events (and their ingest token) straight to it. The
//! certificate is read again when either file changes (checked at most once a second, on new
//! connections), so a renewed certificate is served without a restart; a file that does not read
//! keeps the previous certificate and says so in the log.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::ring::{default_provider, sign::any_supported_type};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// How often the files are looked at for a change.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificate chain and key in `cert` and `key` (PEM), or what is wrong with them.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("{}: {err}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", cert.display()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|err| format!("{}: {err}", key.display()))?;
    let signing = any_supported_type(&private)
        .map_err(|err| format!("{}: not a usable private key: {err}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|err| {
        format!(
            "{} does not belong to {}: {err}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The served certificate, read again when its files change.
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<State>,
}

struct State {
    current: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Reloading {
    /// Read the files now; an error names the file and what is wrong.
    pub fn new(cert: &Path, key: &Path) -> Result<Reloading, String> {
        let current = load(cert, key)?;
        Ok(Reloading {
            cert: cert.to_owned(),
            key: key.to_owned(),
            state: Mutex::new(State {
                current,
                stamps: (modified(cert), modified(key)),
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate to serve now: the files are read again if they changed since last read.
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().ok()?;
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let stamps = (modified(&self.cert), modified(&self.key));
            if stamps != state.stamps {
                match load(&self.cert, &self.key) {
                    Ok(fresh) => {
                        state.current = fresh;
                        state.stamps = stamps;
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    }
                    // Half-written during a renewal, perhaps: keep serving the old one and look
                    // again on the next check.
                    Err(err) => tracing::warn!(error = %err, "TLS certificate not reloaded"),
                }
            }
        }
        Some(Arc::clone(&state.current))
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// The TLS acceptor for `http.tls_cert_file` / `http.tls_key_file`: TLS 1.2 and 1.3 with ring,
/// HTTP/1.1.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let resolver = Reloading::new(cert, key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_are_named() {
        let dir = std::env::temp_dir().join(format!("palisade-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("tls.crt");
        let key = dir.join("tls.key");
        let err = load(&cert, &key).unwrap_err();
        assert!(err.contains("tls.crt"), "{err}");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let err = load(&cert, &key).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
