//! API tokens: `pal_<id>_<secret>`, sent as `Authorization: Bearer …`, stored as the SHA-256 of the
//! secret, bound to a role no higher than their creator's, with an expiry. The queries live in
//! `palisade_app::account::ssr` so the Settings page's server functions share them.

use palisade_app::account::ssr::issue_token;
pub use palisade_app::account::ssr::{list_tokens, resolve_token, revoke_token};
pub use palisade_app::account::{NewToken, TokenInfo};
use palisade_app::auth::{Principal, Role};
use palisade_app::db::{now_ms, Db};
use palisade_app::AppError;

/// Create a token for `creator`'s user. Returns its description and the secret (shown once).
pub async fn issue(
    db: &Db,
    creator: &Principal,
    name: &str,
    role: Role,
    expires_ms: i64,
) -> Result<(TokenInfo, String), AppError> {
    let created = issue_token(db, creator, name, role, expires_ms, now_ms()).await?;
    Ok((created.token, created.secret))
}
