//! Forged and stale credentials are refused with 401, and no storage is needed to refuse
//! a malformed key.

use axum::http::Method;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};

fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("json")
    };
    (decode(it.next().expect("h")), decode(it.next().expect("p")))
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn me(app: &TestApp, auth: Auth) -> crate::helpers::TestResponse {
    app.call(Method::GET, "/api/v1/auth/me", &auth, None).await
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let token = acme.access_token.clone();
    let (header, claims) = parts(&token);
    let signature = token.rsplit('.').next().expect("sig").to_owned();

    // alg: none, no signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    let forged = format!("{}.{}.", encode(&none), encode(&claims));
    me(&app, Auth::Bearer(forged))
        .await
        .assert_problem(401, "UNAUTHENTICATED");

    // HS256 signed with the public key (the classic algorithm confusion).
    let jwks = app.get("/.well-known/jwks.json").await.json();
    let public = serde_json::to_vec(&jwks["keys"][0]).expect("key bytes");
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = header["kid"].as_str().map(String::from);
    let forged = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .expect("sign");
    me(&app, Auth::Bearer(forged))
        .await
        .assert_problem(401, "UNAUTHENTICATED");

    // Tampered payload with the original signature: more roles, another tenant.
    let mut tampered = claims.clone();
    tampered["roles"] = json!(["admin", "superuser"]);
    tampered["tid"] = json!(uuid::Uuid::now_v7());
    let forged = format!("{}.{}.{signature}", encode(&header), encode(&tampered));
    me(&app, Auth::Bearer(forged))
        .await
        .assert_problem(401, "UNAUTHENTICATED");

    // Unknown kid.
    let mut other_kid = header.clone();
    other_kid["kid"] = json!("someone-elses-key");
    let forged = format!("{}.{}.{signature}", encode(&other_kid), encode(&claims));
    me(&app, Auth::Bearer(forged))
        .await
        .assert_problem(401, "UNAUTHENTICATED");

    // Garbage, and a scheme that is not Bearer.
    me(&app, Auth::Bearer("not.a.jwt".into()))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let res = app
        .request(
            axum::http::Request::get("/api/v1/auth/me")
                .header("authorization", format!("Basic {token}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    res.assert_problem(401, "UNAUTHENTICATED");
    // The real token still works.
    assert_eq!(me(&app, acme.admin()).await.status, 200);
}

#[tokio::test]
async fn wrong_audience_issuer_and_expired_tokens_are_refused() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, claims) = parts(&acme.access_token);
    let sign = |edit: &dyn Fn(&mut tenantry::auth::jwt::Claims)| {
        let mut c: tenantry::auth::jwt::Claims =
            serde_json::from_value(claims.clone()).expect("claims");
        edit(&mut c);
        app.state.jwt.sign(&c).expect("sign")
    };
    let wrong_aud = sign(&|c| c.aud = "another-service".into());
    me(&app, Auth::Bearer(wrong_aud))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let wrong_iss = sign(&|c| c.iss = "evil".into());
    me(&app, Auth::Bearer(wrong_iss))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let not_access = sign(&|c| c.typ = "refresh".into());
    me(&app, Auth::Bearer(not_access))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let expired = sign(&|c| {
        c.iat -= 3600;
        c.exp = chrono::Utc::now().timestamp() - 60;
    });
    me(&app, Auth::Bearer(expired))
        .await
        .assert_problem(401, "TOKEN_EXPIRED");
}

#[tokio::test]
async fn missing_and_malformed_credentials_are_401() {
    let app = TestApp::new().await;
    app.get("/api/v1/auth/me")
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    for key in [
        "",
        "tnt_test_short",
        "sk_live_abcdefghijklmnopqrstuvwxyz0123456789abcdef",
    ] {
        me(&app, Auth::ApiKey(key.into()))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
    }
    // A well-formed key that does not exist.
    let key = tenantry::auth::api_key::generate("test").plaintext;
    me(&app, Auth::ApiKey(key))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_key_with_a_bad_checksum_is_refused_without_a_lookup() {
    // With the database unreachable, a lookup would answer 503/500; a checksum failure
    // answers 401 without trying.
    let app = TestApp::builder()
        .with_config(|c| c.database.url = "postgres://postgres@127.0.0.1:1/none".into())
        .build()
        .await;
    let mut key = tenantry::auth::api_key::generate("test").plaintext;
    let last = key.pop().expect("char");
    key.push(if last == 'a' { 'b' } else { 'a' });
    me(&app, Auth::ApiKey(key))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}
