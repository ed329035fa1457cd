//! Password hashing and checking: the one home of the argon2id settings, used by sign-in,
//! password changes and `palisade-admin user add`.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;

/// Fewest characters a new password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters a password may have: hashing is deliberately slow, so the input is bounded.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("hashing password: {0}")]
pub struct HashError(String);

/// The argon2id hash (PHC string) of `password`, with the library's recommended parameters
/// and a random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Compared against when the account has no password, so a wrong name costs as much time
/// as a wrong password and does not reveal which accounts exist.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash(&uuid::Uuid::new_v4().to_string()).unwrap_or_default());

/// Whether `password` matches `stored`; always false without a stored hash, after the same
/// work. Runs on a blocking thread, since argon2 is slow on purpose.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let has_hash = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), stored.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    ok && has_hash
}

/// [`hash`] on a blocking thread, for request handlers.
pub async fn hash_blocking(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| HashError(e.to_string()))?
}
