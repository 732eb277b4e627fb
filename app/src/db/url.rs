//! Database URLs: which backend they name, and how to print them without their password.

use std::path::PathBuf;

use super::{Backend, DbError};

/// A database URL that names a backend Palisade supports.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// Accept `sqlite:` and `postgres://` / `postgresql://` URLs, and nothing else.
    pub fn parse(raw: &str) -> Result<DatabaseUrl, DbError> {
        let raw = raw.trim();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else if raw.is_empty() {
            return Err(DbError::InvalidUrl("is empty".into()));
        } else {
            return Err(DbError::InvalidUrl(format!(
                "`{}` is not a database URL Palisade supports; use sqlite://PATH or postgres://USER@HOST:PORT/DB",
                redact_url(raw)
            )));
        };
        if backend == Backend::Postgres && host_of(raw).is_empty() {
            return Err(DbError::InvalidUrl(format!(
                "`{}` names no host",
                redact_url(raw)
            )));
        }
        Ok(DatabaseUrl {
            raw: raw.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL handed to the driver: a SQLite file is opened read-write and created if missing,
    /// unless the URL sets its own `mode`.
    pub fn connect_string(&self) -> String {
        if self.backend == Backend::Sqlite && !self.raw.contains("mode=") {
            let separator = if self.raw.contains('?') { '&' } else { '?' };
            format!("{}{separator}mode=rwc", self.raw)
        } else {
            self.raw.clone()
        }
    }

    /// The URL with any password replaced by `***`, safe for logs and error messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.raw)
    }

    /// For a SQLite file URL, the directory the file lives in (to create it on first start).
    pub fn sqlite_parent_dir(&self) -> Option<PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let path = self
            .raw
            .trim_start_matches("sqlite:")
            .trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        PathBuf::from(path)
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(PathBuf::from)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replace the password of `scheme://user:password@host` with `***`.
pub fn redact_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => raw.to_owned(),
        },
        None => raw.to_owned(),
    }
}

fn host_of(raw: &str) -> &str {
    let rest = raw
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    host_port.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_backends() {
        let sqlite = DatabaseUrl::parse("sqlite://data/palisade.db?mode=rwc").unwrap();
        assert_eq!(sqlite.backend(), Backend::Sqlite);
        assert_eq!(sqlite.sqlite_parent_dir(), Some(PathBuf::from("data")));
        let pg = DatabaseUrl::parse("postgresql://palisade@127.0.0.1:5432/palisade").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(pg.sqlite_parent_dir(), None);
        assert_eq!(
            pg.connect_string(),
            "postgresql://palisade@127.0.0.1:5432/palisade"
        );
        let plain = DatabaseUrl::parse("sqlite://data/p.db").unwrap();
        assert_eq!(plain.connect_string(), "sqlite://data/p.db?mode=rwc");
        assert_eq!(
            sqlite.connect_string(),
            "sqlite://data/palisade.db?mode=rwc"
        );
    }

    #[test]
    fn rejects_other_schemes_and_hostless_urls_without_leaking_the_password() {
        let err = DatabaseUrl::parse("mysql://root:s3cret@db/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://root:***@db/x"), "{err}");
        assert!(!err.contains("s3cret"));
        assert!(DatabaseUrl::parse("postgres:///x")
            .unwrap_err()
            .to_string()
            .contains("no host"));
        assert!(DatabaseUrl::parse("")
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:pa:ss@10.0.0.1:5432/db?sslmode=require"),
            "postgres://app:***@10.0.0.1:5432/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app@host/db"),
            "postgres://app@host/db"
        );
        assert_eq!(redact_url("sqlite://data/p.db"), "sqlite://data/p.db");
        assert_eq!(
            format!("{:?}", DatabaseUrl::parse("postgres://u:pw@h/d").unwrap()),
            "postgres://u:***@h/d"
        );
    }
}
