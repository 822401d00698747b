//! Access tokens: asymmetric JWTs (RS256 by default, EdDSA when the key is Ed25519), a
//! `kid` on every token, the algorithm pinned per key on verify, and several keys loaded
//! at once so keys rotate without logging anybody out.

use std::{collections::HashMap, sync::OnceLock};

use anyhow::{Context, bail};
use base64::Engine;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, PublicKeyUse},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;

/// The claims of every access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user (or platform operator) id.
    pub sub: Uuid,
    /// The tenant; absent on platform tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Always `access`.
    pub typ: String,
    /// The refresh-token family this token was issued with, so logout can end it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// `platform` on platform operators' tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How the user authenticated (RFC 8176): `["pwd"]`, or `["pwd", "otp"]` after a
    /// second factor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
}

struct VerifyingKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The signing key, every key that verifies, and the JWKS that publishes them.
pub struct JwtKeys {
    /// Derived from the private signing key, never stored: the root of
    /// [`Self::derive_secret`].
    secret_seed: [u8; 32],
    kid: String,
    algorithm: Algorithm,
    signing: EncodingKey,
    verifying: HashMap<String, VerifyingKey>,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    access_ttl_seconds: i64,
}

impl JwtKeys {
    /// Loads `JWT_PRIVATE_KEY_FILE` (signs and verifies) and `JWT_PREVIOUS_KEY_FILES`
    /// (public keys: verify only). Without a key file, production refuses to start;
    /// elsewhere `development_pem` signs — the key every replica shares through the
    /// database (see [`super::dev_key`]) — or, when there is none (tests, tools that
    /// sign nothing), a key of this process alone, with a warning.
    pub fn from_config(config: &Config, development_pem: Option<&str>) -> anyhow::Result<Self> {
        let current = match (&config.auth.jwt_private_key_file, development_pem) {
            (Some(path), _) => std::fs::read_to_string(path)
                .with_context(|| format!("JWT_PRIVATE_KEY_FILE: cannot read {path}"))?,
            (None, _) if config.is_production() => {
                bail!("JWT_PRIVATE_KEY_FILE must be set in production")
            }
            (None, Some(pem)) => pem.to_owned(),
            (None, None) => {
                tracing::warn!(
                    "JWT_PRIVATE_KEY_FILE is not set: using a signing key of this process \
                     alone; its tokens do not survive a restart"
                );
                ephemeral_rsa_pem().to_owned()
            }
        };
        let mut previous = Vec::new();
        for path in &config.auth.jwt_previous_key_files {
            previous.push(
                std::fs::read_to_string(path)
                    .with_context(|| format!("JWT_PREVIOUS_KEY_FILES: cannot read {path}"))?,
            );
        }
        Self::from_pems(
            &current,
            &previous,
            &config.auth.jwt_issuer,
            &config.auth.jwt_audience,
            config.auth.access_token_ttl_seconds,
        )
    }

    /// Keys from PEM text: `current` is a private key (signs and verifies); each of
    /// `previous` is a public key that only verifies (a private key is accepted too, for
    /// compatibility, and only its public half is kept).
    pub fn from_pems(
        current: &str,
        previous: &[String],
        issuer: &str,
        audience: &str,
        access_ttl_seconds: i64,
    ) -> anyhow::Result<Self> {
        let (signing, algorithm, jwk) = load_private_pem(current).context("the JWT signing key")?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let mut keys = vec![jwk];
        for pem in previous {
            let jwk = load_public_pem(pem).context("JWT_PREVIOUS_KEY_FILES")?;
            // The same key listed twice (or the current one again) is published once.
            if !keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                keys.push(jwk);
            }
        }
        let mut verifying = HashMap::new();
        for jwk in &keys {
            let algorithm = match jwk.common.key_algorithm {
                Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                _ => Algorithm::RS256,
            };
            verifying.insert(
                jwk.common.key_id.clone().unwrap_or_default(),
                VerifyingKey {
                    algorithm,
                    key: DecodingKey::from_jwk(jwk).context("unusable JWT key")?,
                },
            );
        }
        Ok(Self {
            secret_seed: Sha256::digest(format!("tenantry secret seed\n{current}")).into(),
            kid,
            algorithm,
            signing,
            verifying,
            jwks: JwkSet { keys },
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl_seconds,
        })
    }

    /// A secret for `purpose` (say, keyed hashes of idempotent requests), derived from the
    /// signing key so that every replica has the same one and no further secret needs
    /// configuring. It changes when the signing key does.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.secret_seed);
        let tag = aws_lc_rs::hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn access_ttl_seconds(&self) -> i64 {
        self.access_ttl_seconds
    }

    /// Claims for a new access token, valid from now.
    pub fn claims(&self, sub: Uuid, tid: Option<Uuid>, roles: Vec<String>) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub,
            tid,
            roles,
            jti: Uuid::now_v7(),
            iat: now,
            exp: now + self.access_ttl_seconds,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ: "access".to_owned(),
            sid: None,
            scope: None,
            amr: Vec::new(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).context("failed to sign a token")
    }

    /// Verifies signature (with the algorithm of the key named by `kid`, whatever the
    /// header claims), expiry, issuer, audience and type.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenError::Invalid)?;
        if header.alg != key.algorithm {
            return Err(TokenError::Invalid);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = 5;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        if data.claims.typ != "access" {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

/// A PEM private key (RSA, PKCS#1 or PKCS#8; or Ed25519) → signing key, algorithm, JWK.
fn load_private_pem(pem: &str) -> anyhow::Result<(EncodingKey, Algorithm, Jwk)> {
    let (key, algorithm) = match EncodingKey::from_rsa_pem(pem.as_bytes()) {
        Ok(key) => (key, Algorithm::RS256),
        Err(_) => (
            EncodingKey::from_ed_pem(pem.as_bytes())
                .context("the JWT key is neither an RSA nor an Ed25519 private key in PEM")?,
            Algorithm::EdDSA,
        ),
    };
    let jwk = Jwk::from_encoding_key(&key, algorithm).context("unusable JWT key")?;
    Ok((key, algorithm, published(jwk)?))
}

/// A PEM public key (RSA `PUBLIC KEY` or `RSA PUBLIC KEY`; Ed25519 `PUBLIC KEY`) → its
/// JWK, which verifies only. A private key is accepted for compatibility with earlier
/// configurations; only its public half is kept.
fn load_public_pem(pem: &str) -> anyhow::Result<Jwk> {
    if pem.contains("PRIVATE KEY-----") {
        tracing::warn!(
            "JWT_PREVIOUS_KEY_FILES holds a private key: only its public half is used; \
             list the public key instead so the private one can be destroyed"
        );
        return Ok(load_private_pem(pem)?.2);
    }
    let (key, algorithm) = match DecodingKey::from_rsa_pem(pem.as_bytes()) {
        Ok(key) => (key, Algorithm::RS256),
        Err(_) => (
            DecodingKey::from_ed_pem(pem.as_bytes())
                .context("the JWT key is neither an RSA nor an Ed25519 public key in PEM")?,
            Algorithm::EdDSA,
        ),
    };
    let jwk = Jwk::from_decoding_key(&key, Some(algorithm)).context("unusable JWT key")?;
    published(jwk)
}

/// `jwk` with the key id and use every replica derives alike from the public key.
fn published(mut jwk: Jwk) -> anyhow::Result<Jwk> {
    let public = serde_json::to_vec(&jwk.algorithm)?;
    let digest = Sha256::digest(&public);
    jwk.common.key_id =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12]));
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

/// One RSA key per process for development and tests, generated on first use.
fn ephemeral_rsa_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(generate_rsa_pem)
}

/// A new RSA-2048 private key in PEM (PKCS#8).
pub fn generate_rsa_pem() -> String {
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("RSA key generation works");
    let der = pair.as_der().expect("an RSA key encodes as PKCS#8");
    pem_encode("PRIVATE KEY", der.as_ref())
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::from_pems(ephemeral_rsa_pem(), &[], "tenantry", "tenantry", 900).expect("keys")
    }

    #[test]
    fn signed_tokens_verify_with_kid_and_rs256() {
        let keys = keys();
        let claims = keys.claims(Uuid::now_v7(), Some(Uuid::now_v7()), vec!["admin".into()]);
        let token = keys.sign(&claims).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(keys.kid.as_str()));
        let verified = keys.verify(&token).expect("verifies");
        assert_eq!(verified.sub, claims.sub);
        assert_eq!(verified.roles, ["admin"]);
    }

    #[test]
    fn expired_and_foreign_audience_tokens_are_refused() {
        let keys = keys();
        let mut claims = keys.claims(Uuid::now_v7(), None, vec![]);
        claims.exp = chrono::Utc::now().timestamp() - 60;
        assert_eq!(
            keys.verify(&keys.sign(&claims).expect("sign")).err(),
            Some(TokenError::Expired)
        );

        let mut claims = keys.claims(Uuid::now_v7(), None, vec![]);
        claims.aud = "someone-else".into();
        assert_eq!(
            keys.verify(&keys.sign(&claims).expect("sign")).err(),
            Some(TokenError::Invalid)
        );

        let mut claims = keys.claims(Uuid::now_v7(), None, vec![]);
        claims.typ = "refresh".into();
        assert_eq!(
            keys.verify(&keys.sign(&claims).expect("sign")).err(),
            Some(TokenError::Invalid)
        );
    }

    #[test]
    fn tokens_of_the_previous_key_verify_after_rotation() {
        let old_pem = generate_rsa_pem();
        let old = JwtKeys::from_pems(&old_pem, &[], "tenantry", "tenantry", 900).expect("old");
        let token = old
            .sign(&old.claims(Uuid::now_v7(), None, vec![]))
            .expect("sign");

        let new_pem = generate_rsa_pem();
        let rotated =
            JwtKeys::from_pems(&new_pem, &[old_pem], "tenantry", "tenantry", 900).expect("new");
        assert!(rotated.verify(&token).is_ok(), "old tokens keep working");
        assert_ne!(rotated.kid, old.kid);
        assert_eq!(rotated.jwks().keys.len(), 2, "both keys are published");

        let without_old =
            JwtKeys::from_pems(&new_pem, &[], "tenantry", "tenantry", 900).expect("k");
        assert_eq!(without_old.verify(&token).err(), Some(TokenError::Invalid));
    }

    /// The public halves of an RSA key: SubjectPublicKeyInfo (`PUBLIC KEY`) and PKCS#1
    /// (`RSA PUBLIC KEY`).
    fn rsa_public_pems(private_pem: &str) -> (String, String) {
        use aws_lc_rs::{encoding::AsDer, signature::KeyPair};
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                private_pem
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .expect("base64");
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).expect("pkcs8");
        let spki = pair.public_key().as_der().expect("spki");
        (
            pem_encode("PUBLIC KEY", spki.as_ref()),
            pem_encode("RSA PUBLIC KEY", pair.public_key().as_ref()),
        )
    }

    #[test]
    fn previous_public_keys_verify_old_tokens_and_are_published_but_never_sign() {
        let old_pem = generate_rsa_pem();
        let old = JwtKeys::from_pems(&old_pem, &[], "tenantry", "tenantry", 900).expect("old");
        let token = old
            .sign(&old.claims(Uuid::now_v7(), None, vec![]))
            .expect("sign");
        let (spki, pkcs1) = rsa_public_pems(&old_pem);
        for public in [spki, pkcs1] {
            let rotated = JwtKeys::from_pems(
                &generate_rsa_pem(),
                std::slice::from_ref(&public),
                "tenantry",
                "tenantry",
                900,
            )
            .expect("a public previous key loads");
            assert!(rotated.verify(&token).is_ok(), "{public}");
            let kids: Vec<_> = rotated
                .jwks()
                .keys
                .iter()
                .filter_map(|k| k.common.key_id.clone())
                .collect();
            assert_eq!(kids.len(), 2);
            assert!(kids.contains(&old.kid), "same kid as the private key had");
            assert_ne!(rotated.kid, old.kid, "the new key signs");
            // A public key cannot be the signing key.
            assert!(JwtKeys::from_pems(&public, &[], "tenantry", "tenantry", 900).is_err());
        }
    }

    #[test]
    fn an_ed25519_public_key_verifies_as_a_previous_key() {
        use aws_lc_rs::{encoding::AsDer, signature::KeyPair};
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().expect("ed25519");
        let private_pem = pem_encode("PRIVATE KEY", pair.to_pkcs8v1().expect("pkcs8").as_ref());
        let public_pem = pem_encode(
            "PUBLIC KEY",
            pair.public_key().as_der().expect("spki").as_ref(),
        );
        let old = JwtKeys::from_pems(&private_pem, &[], "tenantry", "tenantry", 900).expect("old");
        let token = old
            .sign(&old.claims(Uuid::now_v7(), None, vec![]))
            .expect("sign");
        let rotated = JwtKeys::from_pems(
            &generate_rsa_pem(),
            &[public_pem],
            "tenantry",
            "tenantry",
            900,
        )
        .expect("loads");
        assert!(rotated.verify(&token).is_ok());
        let jwks = serde_json::to_value(rotated.jwks()).expect("json");
        assert_eq!(jwks["keys"][1]["crv"], "Ed25519");
        assert_eq!(jwks["keys"][1]["kid"], old.kid);
    }

    #[test]
    fn garbage_in_previous_keys_is_refused_naming_the_variable() {
        let err = JwtKeys::from_pems(
            ephemeral_rsa_pem(),
            &["not a key".to_owned()],
            "tenantry",
            "tenantry",
            900,
        )
        .err()
        .expect("refused");
        assert!(
            format!("{err:#}").contains("JWT_PREVIOUS_KEY_FILES"),
            "{err:#}"
        );
    }

    #[test]
    fn derived_secrets_follow_the_signing_key_and_the_purpose() {
        let a = keys();
        let b = keys();
        assert_eq!(
            a.derive_secret("x"),
            b.derive_secret("x"),
            "same key, same secret"
        );
        assert_ne!(a.derive_secret("x"), a.derive_secret("y"));
        let other = JwtKeys::from_pems(&generate_rsa_pem(), &[], "tenantry", "tenantry", 900)
            .expect("other");
        assert_ne!(a.derive_secret("x"), other.derive_secret("x"));
    }

    #[test]
    fn ed25519_keys_sign_eddsa_tokens() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
        let keys = JwtKeys::from_pems(pem, &[], "tenantry", "tenantry", 900).expect("ed25519");
        let token = keys
            .sign(&keys.claims(Uuid::now_v7(), None, vec![]))
            .expect("sign");
        assert_eq!(
            jsonwebtoken::decode_header(&token).expect("header").alg,
            Algorithm::EdDSA
        );
        assert!(keys.verify(&token).is_ok());
        assert_eq!(
            serde_json::to_value(keys.jwks()).expect("json")["keys"][0]["crv"],
            "Ed25519"
        );
    }

    #[test]
    fn production_refuses_to_start_without_a_key_file() {
        let config = Config::from_lookup(|name| match name {
            "APP_ENV" => Some("production".into()),
            "MFA_ENCRYPTION_KEY" => Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
            _ => None,
        })
        .expect("config");
        let err = JwtKeys::from_config(&config, None).err().expect("refused");
        assert!(err.to_string().contains("JWT_PRIVATE_KEY_FILE"), "{err}");

        let config = Config::from_lookup(|name| match name {
            "JWT_PRIVATE_KEY_FILE" => Some("/nonexistent/key.pem".into()),
            _ => None,
        })
        .expect("config");
        let err = JwtKeys::from_config(&config, None).err().expect("refused");
        assert!(
            format!("{err:#}").contains("JWT_PRIVATE_KEY_FILE"),
            "{err:#}"
        );
    }

    #[test]
    fn the_jwks_publishes_the_signing_key() {
        let keys = keys();
        let jwks = serde_json::to_value(keys.jwks()).expect("json");
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert_eq!(jwks["keys"][0]["kid"], keys.kid);
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert!(jwks["keys"][0]["n"].is_string());
        assert!(jwks["keys"][0].get("d").is_none(), "no private parts");
    }
}
