//! The development signing key: outside production, with no `JWT_PRIVATE_KEY_FILE`, the
//! first replica to start generates an RSA key and stores it in `platform.secrets`; every
//! replica (`docker compose up --scale api=3`) then signs and verifies with that key, so
//! a token from one is accepted by all, and tokens survive restarts.
//!
//! Production never gets here: it refuses to start without a key file, because a key in
//! the database is readable by whoever reads the database.

use anyhow::Context;
use sqlx::PgPool;

use super::jwt::generate_rsa_pem;

/// The name of the development key's row in `platform.secrets`.
const NAME: &str = "jwt_development_signing_key";

/// The shared development key, created by the first caller. Replicas starting at the
/// same time may each generate one; the insert keeps only the first, and every replica
/// uses what was kept.
pub async fn load_or_create(db: &PgPool) -> anyhow::Result<String> {
    if let Some(pem) = stored(db).await? {
        return Ok(pem);
    }
    let pem = tokio::task::spawn_blocking(generate_rsa_pem)
        .await
        .context("failed to generate the development signing key")?;
    sqlx::query(
        "insert into platform.secrets (name, value) values ($1, $2) on conflict do nothing",
    )
    .bind(NAME)
    .bind(&pem)
    .execute(db)
    .await
    .context("failed to store the development signing key")?;
    let pem = stored(db)
        .await?
        .context("the development signing key vanished after it was stored")?;
    tracing::warn!(
        "JWT_PRIVATE_KEY_FILE is not set: signing with the development key stored in the \
         database (shared by every replica; never do this in production)"
    );
    Ok(pem)
}

async fn stored(db: &PgPool) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("select value from platform.secrets where name = $1")
        .bind(NAME)
        .fetch_optional(db)
        .await
        .context("failed to read the development signing key")
}
