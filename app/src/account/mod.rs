//! Users, API tokens and sessions as the Settings page and `/api/v1` show them, and (server only)
//! the queries behind them. The session store itself lives in the server crate; the rows it writes
//! are read here. It sits above `auth` (who is asking, and what they may do) and `audit` (every
//! token and session change is audited in its own transaction).

pub mod people;
pub mod settings;

use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// An API token as listed: never its secret, which is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The user the token acts as.
    pub user_id: String,
    pub user_name: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// A freshly created token: its description and the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct NewToken {
    pub token: TokenInfo,
    /// `pal_<id>_<secret>`: send as `Authorization: Bearer …`.
    pub secret: String,
}

/// A signed-in browser session as listed. `id` is the stored hash, not the cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct SessionInfo {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    /// The session this list was requested from.
    pub current: bool,
}

/// What a request to create a token asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct TokenRequest {
    pub name: String,
    pub role: Role,
    /// Days until the token stops working (1 to 366).
    pub expires_in_days: i64,
}

/// The longest a token may live.
pub const MAX_TOKEN_DAYS: i64 = 366;

/// How the request's own session is identified, put in the request's extensions by the server's
/// authentication middleware: the stored hash of the session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSession(pub String);

/// The configured session timeouts, in the request's extensions (set by the server), so session
/// lists leave out sessions that have timed out but are not yet swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use sqlx::any::AnyRow;
    use sqlx::{Any, Row};

    use super::{NewToken, SessionInfo, SessionLimits, TokenInfo, TokenRequest, MAX_TOKEN_DAYS};
    use crate::audit::ssr::Event;
    use crate::auth::{Principal, Role, TokenRef, Via};
    use crate::db::{new_id, Db};
    use crate::error::{AppError, ServerResult};

    use crate::time::DAY_MS;

    /// `bytes` random bytes from the system generator, as lowercase hex.
    pub fn random_hex(bytes: usize) -> ServerResult<String> {
        use ring::rand::SecureRandom;
        let mut buffer = vec![0u8; bytes];
        ring::rand::SystemRandom::new()
            .fill(&mut buffer)
            .map_err(|_| AppError::internal("generating a secret", "no entropy source"))?;
        Ok(hex(&buffer))
    }

    /// SHA-256 of `text`, as lowercase hex.
    pub fn sha256_hex(text: &str) -> String {
        hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Equality whose time depends only on the lengths, not on where the inputs differ.
    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }

    // ---- users ----

    /// A person as stored.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct User {
        pub id: String,
        pub display_name: String,
        pub email: String,
        pub role: Role,
        /// An admin turned the account off.
        pub disabled: bool,
        /// When the person last signed in with none of the mapped groups (0: not so).
        pub groups_lost_ms: i64,
    }

    impl User {
        /// May this person's sessions and tokens act? Not when an admin disabled them, nor after
        /// a sign-in showed they left every group that gives a role.
        pub fn may_act(&self) -> bool {
            !self.disabled && self.groups_lost_ms == 0
        }
    }

    /// Create or refresh the user `(issuer, subject)` at sign-in: name, e-mail and role come from
    /// the provider every time. Returns the stable user id.
    pub async fn upsert_user<'e, E>(
        executor: E,
        issuer: &str,
        subject: &str,
        display_name: &str,
        email: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<String, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = Any> + Copy,
    {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE issuer = $1 AND subject = $2")
                .bind(issuer)
                .bind(subject)
                .fetch_optional(executor)
                .await?;
        match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE users SET display_name = $1, email = $2, role = $3, last_login_ms = $4, \
                     groups_lost_ms = 0 WHERE id = $5",
                )
                .bind(display_name)
                .bind(email)
                .bind(role.as_str())
                .bind(now_ms)
                .bind(&id)
                .execute(executor)
                .await?;
                Ok(id)
            }
            None => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO users (id, issuer, subject, display_name, email, role, created_ms, \
                     last_login_ms, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0)",
                )
                .bind(&id)
                .bind(issuer)
                .bind(subject)
                .bind(display_name)
                .bind(email)
                .bind(role.as_str())
                .bind(now_ms)
                .execute(executor)
                .await?;
                Ok(id)
            }
        }
    }

    /// A person signed in through `issuer` with none of the mapped groups: from now until a
    /// sign-in with one, their sessions and API tokens do nothing. Returns the user's id, if
    /// they were known (a stranger is not stored).
    pub async fn lose_groups(
        db: &Db,
        issuer: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE users SET groups_lost_ms = $1 WHERE issuer = $2 AND subject = $3 RETURNING id",
        )
        .bind(now_ms)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(db.pool())
        .await
    }

    pub async fn find_user(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
        let row =
            sqlx::query("SELECT id, display_name, email, role, disabled, groups_lost_ms FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(db.pool())
                .await?;
        row.map(|row| {
            let role: String = row.try_get("role")?;
            Ok(User {
                id: row.try_get("id")?,
                display_name: row.try_get("display_name")?,
                email: row.try_get("email")?,
                role: Role::decode(&role)?,
                disabled: row.try_get::<i64, _>("disabled")? != 0,
                groups_lost_ms: row.try_get("groups_lost_ms")?,
            })
        })
        .transpose()
    }

    // ---- API tokens ----

    const TOKEN_COLUMNS: &str = "t.id, t.name, t.role, t.user_id, u.display_name AS user_name, \
         t.created_ms, t.expires_ms, t.last_used_ms, t.revoked_ms";

    fn token_from_row(row: &AnyRow) -> Result<TokenInfo, sqlx::Error> {
        let role: String = row.try_get("role")?;
        Ok(TokenInfo {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: Role::decode(&role)?,
            user_id: row.try_get("user_id")?,
            user_name: row.try_get("user_name")?,
            created_ms: row.try_get("created_ms")?,
            expires_ms: row.try_get("expires_ms")?,
            last_used_ms: row.try_get("last_used_ms")?,
            revoked_ms: row.try_get("revoked_ms")?,
        })
    }

    /// Check a request to create a token and turn its lifetime into an expiry time.
    pub fn validate_request(
        creator: &Principal,
        request: &TokenRequest,
        now_ms: i64,
    ) -> Result<i64, AppError> {
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::Invalid(
                "name: give the token a name of 1 to 100 characters".into(),
            ));
        }
        if !(1..=MAX_TOKEN_DAYS).contains(&request.expires_in_days) {
            return Err(AppError::Invalid(format!(
                "expires_in_days: must be between 1 and {MAX_TOKEN_DAYS}"
            )));
        }
        if request.role > creator.role {
            return Err(AppError::Forbidden(format!(
                "a token cannot have a higher role than yours ({})",
                creator.role
            )));
        }
        Ok(now_ms + request.expires_in_days * DAY_MS)
    }

    /// Create a token acting as `creator`'s user with `role` (at most the creator's own), valid until
    /// `expires_ms`. Returns its description and the secret, which is not stored and cannot be
    /// shown again. Audited in the same transaction.
    pub async fn issue_token(
        db: &Db,
        creator: &Principal,
        name: &str,
        role: Role,
        expires_ms: i64,
        now_ms: i64,
    ) -> ServerResult<NewToken> {
        if role > creator.role {
            return Err(AppError::Forbidden(format!(
                "a token cannot have a higher role than yours ({})",
                creator.role
            ))
            .into());
        }
        // A token cannot extend its own life by making another.
        if let Some(token) = &creator.token {
            if expires_ms > token.expires_ms {
                return Err(AppError::Forbidden(format!(
                    "a token cannot outlive the token that creates it (that one expires at {})",
                    crate::time::format_time(token.expires_ms)
                ))
                .into());
            }
        }
        let id = random_hex(16)?;
        let secret = random_hex(32)?;
        let mut tx = db.begin().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, role, secret_hash, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&creator.user_id)
        .bind(name.trim())
        .bind(role.as_str())
        .bind(sha256_hex(&secret))
        .bind(now_ms)
        .bind(expires_ms)
        .execute(&mut *tx)
        .await?;
        Event::new("token.create", "token", &id)
            .detail(serde_json::json!({
                "name": name.trim(),
                "role": role,
                "expires_ms": expires_ms,
                // Tokens made by a token, so a leaked one's offspring can be found.
                "created_with_token": creator.token.as_ref().map(|t| t.id.as_str()),
            }))
            .record(&mut *tx, creator, now_ms)
            .await?;
        tx.commit().await?;
        Ok(NewToken {
            token: TokenInfo {
                id: id.clone(),
                name: name.trim().to_owned(),
                role,
                user_id: creator.user_id.clone(),
                user_name: creator.display_name.clone(),
                created_ms: now_ms,
                expires_ms,
                last_used_ms: None,
                revoked_ms: None,
            },
            secret: format!("pal_{id}_{secret}"),
        })
    }

    /// The caller's own tokens, or everyone's when `all` (admins only; checked by the caller).
    pub async fn list_tokens(db: &Db, who: &Principal, all: bool) -> ServerResult<Vec<TokenInfo>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE ($1 = 1 OR t.user_id = $2) ORDER BY t.created_ms DESC, t.id"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(all))
            .bind(&who.user_id)
            .fetch_all(db.pool())
            .await?;
        Ok(rows.iter().map(token_from_row).collect::<Result<_, _>>()?)
    }

    /// Revoke a token: one's own, or anyone's for admins. Audited.
    pub async fn revoke_token(db: &Db, who: &Principal, id: &str, now_ms: i64) -> ServerResult<()> {
        revoke_owned(db, who, id, now_ms, Revocable::Token).await
    }

    /// What [`revoke_owned`] ends: a row that belongs to one user and has a `revoked_ms`.
    #[derive(Clone, Copy)]
    enum Revocable {
        Token,
        Session,
    }

    impl Revocable {
        /// The table, the noun in errors and audit entries, and the audited action.
        fn names(self) -> (&'static str, &'static str, &'static str) {
            match self {
                Revocable::Token => ("api_tokens", "token", "token.revoke"),
                Revocable::Session => ("sessions", "session", "session.revoke"),
            }
        }
    }

    /// Revoke a token or session: the caller's own, or anyone's for admins (another user's is
    /// reported as not found to everyone else). Audited in the same transaction.
    async fn revoke_owned(
        db: &Db,
        who: &Principal,
        id: &str,
        now_ms: i64,
        what: Revocable,
    ) -> ServerResult<()> {
        let (table, noun, action) = what.names();
        let mut tx = db.begin().await?;
        // A session's user may be empty (NULL): then only an admin may end it.
        let owner: Option<Option<String>> =
            sqlx::query_scalar(&format!("SELECT user_id FROM {table} WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match owner.flatten() {
            Some(owner) if owner == who.user_id || who.has(Role::Admin) => {}
            _ => return Err(AppError::NotFound(format!("{noun} {id}")).into()),
        }
        sqlx::query(&format!(
            "UPDATE {table} SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL"
        ))
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Event::new(action, noun, id)
            .record(&mut *tx, who, now_ms)
            .await?;
        Ok(tx.commit().await?)
    }

    /// The principal a Bearer token stands for, if the token is well formed, known, unexpired,
    /// unrevoked and its user is enabled. Its role is the token's, capped by the user's current
    /// role. The secret is compared in constant time.
    pub async fn resolve_token(
        db: &Db,
        bearer: &str,
        from: &str,
        now_ms: i64,
    ) -> ServerResult<Option<Principal>> {
        let Some((id, secret)) = bearer
            .strip_prefix("pal_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT t.secret_hash, t.role, t.expires_ms, t.revoked_ms, t.last_used_ms, \
             u.id AS user_id, u.display_name, u.role AS user_role, \
             u.disabled + CASE WHEN u.groups_lost_ms = 0 THEN 0 ELSE 1 END AS disabled \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let read = |row: &AnyRow| -> Result<_, sqlx::Error> {
            Ok((
                row.try_get::<String, _>("secret_hash")?,
                row.try_get::<String, _>("role")?,
                row.try_get::<i64, _>("expires_ms")?,
                row.try_get::<Option<i64>, _>("revoked_ms")?,
                row.try_get::<Option<i64>, _>("last_used_ms")?,
                row.try_get::<String, _>("user_id")?,
                row.try_get::<String, _>("display_name")?,
                row.try_get::<String, _>("user_role")?,
                row.try_get::<i64, _>("disabled")?,
            ))
        };
        let (hash, role, expires_ms, revoked_ms, last_used_ms, user_id, name, user_role, disabled) =
            read(&row)?;
        let matches = constant_time_eq(sha256_hex(secret).as_bytes(), hash.as_bytes());
        if !matches || revoked_ms.is_some() || expires_ms <= now_ms || disabled != 0 {
            return Ok(None);
        }
        let (role, user_role) = (Role::decode(&role)?, Role::decode(&user_role)?);
        // Recording every use would write on every request; once a minute is enough to show it.
        if last_used_ms.is_none_or(|used| now_ms - used > 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(id)
                .execute(db.pool())
                .await?;
        }
        Ok(Some(Principal {
            user_id,
            display_name: name,
            role: role.min(user_role),
            via: Via::Token,
            from: from.to_owned(),
            token: Some(TokenRef {
                id: id.to_owned(),
                expires_ms,
            }),
        }))
    }

    // ---- sessions ----

    /// Signed-in sessions that are still live: the caller's own, or everyone's when `all`.
    /// `idle_ms` and `absolute_ms` are the configured timeouts, so expired sessions are not listed.
    pub async fn list_sessions(
        db: &Db,
        who: &Principal,
        all: bool,
        current: Option<&str>,
        limits: SessionLimits,
        now_ms: i64,
    ) -> ServerResult<Vec<SessionInfo>> {
        let SessionLimits {
            idle_ms,
            absolute_ms,
        } = limits;
        let rows = sqlx::query(
            "SELECT s.id, s.user_id, u.display_name, s.created_ms, s.last_seen_ms, s.expires_ms \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.revoked_ms IS NULL AND s.expires_ms > $1 AND s.last_seen_ms > $2 \
             AND s.created_ms > $3 AND ($4 = 1 OR s.user_id = $5) \
             ORDER BY s.last_seen_ms DESC, s.id",
        )
        .bind(now_ms)
        .bind(now_ms - idle_ms)
        .bind(now_ms - absolute_ms)
        .bind(i64::from(all))
        .bind(&who.user_id)
        .fetch_all(db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(SessionInfo {
                    current: current == Some(id.as_str()),
                    id,
                    user_id: row.try_get("user_id")?,
                    user_name: row.try_get("display_name")?,
                    created_ms: row.try_get("created_ms")?,
                    last_seen_ms: row.try_get("last_seen_ms")?,
                    expires_ms: row.try_get("expires_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// End a session: one's own, or anyone's for admins. Its cookie stops working at once. Audited.
    pub async fn revoke_session(
        db: &Db,
        who: &Principal,
        id: &str,
        now_ms: i64,
    ) -> ServerResult<()> {
        revoke_owned(db, who, id, now_ms, Revocable::Session).await
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn hashes_and_comparisons() {
            assert_eq!(
                sha256_hex("abc"),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            );
            assert!(constant_time_eq(b"same", b"same"));
            assert!(!constant_time_eq(b"same", b"sane"));
            assert!(!constant_time_eq(b"same", b"sam"));
            let a = random_hex(32).unwrap();
            assert_eq!(a.len(), 64);
            assert_ne!(a, random_hex(32).unwrap());
        }

        #[test]
        fn token_requests_are_bounded() {
            let author = Principal::new("u", "Ada", Role::Author);
            let ok = TokenRequest {
                name: "ci".into(),
                role: Role::Author,
                expires_in_days: 30,
            };
            assert_eq!(validate_request(&author, &ok, 0), Ok(30 * DAY_MS));
            let higher = TokenRequest {
                role: Role::Approver,
                ..ok.clone()
            };
            assert!(matches!(
                validate_request(&author, &higher, 0),
                Err(AppError::Forbidden(_))
            ));
            for days in [0, MAX_TOKEN_DAYS + 1] {
                let bad = TokenRequest {
                    expires_in_days: days,
                    ..ok.clone()
                };
                assert!(matches!(
                    validate_request(&author, &bad, 0),
                    Err(AppError::Invalid(_))
                ));
            }
            let unnamed = TokenRequest {
                name: "  ".into(),
                ..ok
            };
            assert!(matches!(
                validate_request(&author, &unnamed, 0),
                Err(AppError::Invalid(_))
            ));
        }
    }
}
