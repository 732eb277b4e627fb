//! The first sign-in without single sign-on: a one-time secret, made at start, printed once on
//! stdout (never through the log), stored only as its SHA-256, and good for one sign-in as the
//! local admin. There is no default password.

use palisade_app::account::ssr::{random_hex, sha256_hex};
use palisade_app::db::{new_id, Db};
use palisade_app::AppError;

/// The issuer and subject of the local admin in `users`.
pub const LOCAL_ISSUER: &str = "local";
pub const LOCAL_SUBJECT: &str = "admin";

/// A bootstrap secret, printed once. Its `Debug` hides it, so it cannot reach a log by accident.
pub struct BootstrapSecret(String);

impl BootstrapSecret {
    /// The secret itself: only for printing to the operator (and for tests).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BootstrapSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BootstrapSecret(***)")
    }
}

/// Make a new secret, replacing any unused one from an earlier start.
pub async fn create(db: &Db, now_ms: i64) -> Result<BootstrapSecret, AppError> {
    let secret = format!("pbs_{}", random_hex(24)?);
    let mut tx = db
        .begin()
        .await
        .map_err(|e| AppError::internal("creating the bootstrap secret", e))?;
    sqlx::query("DELETE FROM bootstrap_secrets WHERE used_ms IS NULL")
        .execute(&mut *tx)
        .await
        .map_err(|e| AppError::internal("creating the bootstrap secret", e))?;
    sqlx::query("INSERT INTO bootstrap_secrets (id, secret_hash, created_ms) VALUES ($1, $2, $3)")
        .bind(new_id())
        .bind(sha256_hex(&secret))
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| AppError::internal("creating the bootstrap secret", e))?;
    tx.commit()
        .await
        .map_err(|e| AppError::internal("creating the bootstrap secret", e))?;
    Ok(BootstrapSecret(secret))
}

/// Whether anyone can already administer Palisade: an enabled user with the admin role. Then no
/// secret is made at start (one printed at every restart would hand the installation to anyone
/// who reads the output); an operator on the host can still ask for one with
/// `palisade bootstrap-secret`.
pub async fn admin_exists(db: &Db) -> Result<bool, AppError> {
    let admins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
            .fetch_one(db.pool())
            .await
            .map_err(|e| AppError::internal("looking for an admin", e))?;
    Ok(admins > 0)
}

/// Takes back any unused secret, once an admin exists.
pub async fn withdraw(db: &Db) -> Result<(), AppError> {
    sqlx::query("DELETE FROM bootstrap_secrets WHERE used_ms IS NULL")
        .execute(db.pool())
        .await
        .map_err(|e| AppError::internal("withdrawing the bootstrap secret", e))?;
    Ok(())
}

/// Use the secret: true exactly once for the right secret. The lookup is by hash, so the time it
/// takes says nothing about the secret.
pub async fn redeem(db: &Db, secret: &str, now_ms: i64) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE bootstrap_secrets SET used_ms = $1 WHERE secret_hash = $2 AND used_ms IS NULL",
    )
    .bind(now_ms)
    .bind(sha256_hex(secret.trim()))
    .execute(db.pool())
    .await
    .map_err(|e| AppError::internal("checking the bootstrap secret", e))?;
    Ok(done.rows_affected() == 1)
}

/// What the operator sees on stdout at start.
pub fn announcement(secret: &BootstrapSecret, sign_in_url: &str) -> String {
    format!(
        "\nPalisade: sign in as the local admin at {sign_in_url} with this one-time secret:\n\n    {}\n\nIt works once and is replaced at the next start. Configure single sign-on (oidc.*) for everyone else.\n",
        secret.reveal()
    )
}
