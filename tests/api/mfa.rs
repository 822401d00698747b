//! TOTP multi-factor authentication, driven by a real authenticator implementation (the
//! `totp-rs` crate, which scans the `otpauth://` URI the service hands out).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use base64::Engine;
use serde_json::{Value, json};
use tenantry::http::{access::Access, router};
use totp_rs::Totp;

use crate::helpers::{Auth, Onboarded, PASSWORD, TestApp};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Waits until at least 10 s remain in the current 30-second step, so that "this step",
/// "the previous step" and "the next step" mean the same to the test and the service.
async fn settle_in_step() {
    let into = now() % 30;
    if into > 20 {
        tokio::time::sleep(Duration::from_secs(31 - into)).await;
    }
}

/// The authenticator's code `steps` steps away from now.
fn code(authenticator: &Totp, steps: i64) -> String {
    let at = now().saturating_add_signed(steps * 30);
    authenticator.generate(at).to_string()
}

/// A 6-digit code that is none of the codes within two steps of now.
fn wrong_code(authenticator: &Totp) -> String {
    let near: Vec<String> = (-2..=2).map(|s| code(authenticator, s)).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .expect("a wrong code")
}

/// Enrols the caller and scans the URI into an authenticator (not yet confirmed).
async fn enroll(app: &TestApp, auth: &Auth) -> Totp {
    let res = app
        .call(Method::POST, "/api/v1/auth/mfa/totp/enroll", auth, None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    let uri = body["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let authenticator = Totp::from_url(uri).expect("a real authenticator reads the URI");
    assert_eq!(
        authenticator.secret().to_base32(),
        body["secret"].as_str().expect("secret"),
        "the URI and the secret agree"
    );
    authenticator
}

/// Enrols and confirms with the current code; returns the authenticator and the
/// recovery codes.
async fn turn_on(app: &TestApp, auth: &Auth) -> (Totp, Vec<String>) {
    let authenticator = enroll(app, auth).await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/mfa/totp/confirm",
            auth,
            Some(json!({"code": code(&authenticator, 0)})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let codes: Vec<String> = res.json()["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (authenticator, codes)
}

/// The first step of a login that needs MFA: its `mfa_token`.
async fn login_first_step(app: &TestApp, tenant: &Onboarded) -> String {
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"tenant": tenant.slug, "email": tenant.admin_email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the code"
    );
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

async fn verify(app: &TestApp, mfa_token: &str, proof: Value) -> crate::helpers::TestResponse {
    let mut body = json!({"mfa_token": mfa_token});
    for (k, v) in proof.as_object().expect("object") {
        body[k] = v.clone();
    }
    app.post_json("/api/v1/auth/mfa/verify", &body).await
}

/// The `amr` claim of an access token.
fn amr(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice::<Value>(&bytes).expect("claims")["amr"].clone()
}

#[tokio::test]
async fn enrolment_and_login_with_a_real_authenticator_carry_otp_in_amr() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    assert_eq!(amr(&acme.access_token), json!(["pwd"]));
    settle_in_step().await;
    let authenticator = enroll(&app, &acme.admin()).await;
    // A wrong code does not confirm.
    app.call(
        Method::POST,
        "/api/v1/auth/mfa/totp/confirm",
        &acme.admin(),
        Some(json!({"code": wrong_code(&authenticator)})),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/mfa/totp/confirm",
            &acme.admin(),
            Some(json!({"code": code(&authenticator, 0)})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    // Enrolling again while on: remove first.
    app.call(
        Method::POST,
        "/api/v1/auth/mfa/totp/enroll",
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(409, "CONFLICT");

    let mfa_token = login_first_step(&app, &acme).await;
    // The code that confirmed was spent: the same step is refused (replay).
    verify(&app, &mfa_token, json!({"code": code(&authenticator, 0)}))
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    // One step of drift ahead is accepted, with the same mfa_token.
    let res = verify(&app, &mfa_token, json!({"code": code(&authenticator, 1)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let tokens = res.json();
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().expect("token");
    assert_eq!(amr(access), json!(["pwd", "otp"]));
    // The mfa_token is spent once used.
    verify(&app, &mfa_token, json!({"code": code(&authenticator, 1)}))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    // A refresh keeps the second factor.
    let res = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        amr(res.json()["access_token"].as_str().expect("token")),
        json!(["pwd", "otp"])
    );
    // The mfa_token is no access token.
    app.call(
        Method::GET,
        "/api/v1/auth/me",
        &Auth::Bearer(mfa_token.clone()),
        None,
    )
    .await
    .assert_problem(401, "UNAUTHENTICATED");

    let audit = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=mfa.enrolled",
            &Auth::Bearer(access.to_owned()),
            None,
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert_eq!(audit.json()["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn a_code_is_accepted_once_with_one_step_of_drift_either_way() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    settle_in_step().await;
    let authenticator = enroll(&app, &acme.admin()).await;
    // A code of the previous step confirms (drift behind).
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/mfa/totp/confirm",
            &acme.admin(),
            Some(json!({"code": code(&authenticator, -1)})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());

    let mfa_token = login_first_step(&app, &acme).await;
    for refused in [-1, -2, 2] {
        verify(
            &app,
            &mfa_token,
            json!({"code": code(&authenticator, refused)}),
        )
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    }
    let res = verify(&app, &mfa_token, json!({"code": code(&authenticator, 0)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    // Replay of that code in another login: refused; an earlier step too.
    let mfa_token = login_first_step(&app, &acme).await;
    verify(&app, &mfa_token, json!({"code": code(&authenticator, 0)}))
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    let res = verify(&app, &mfa_token, json!({"code": code(&authenticator, 1)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn wrong_codes_leave_the_mfa_token_usable_and_five_lock_the_user_out() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    settle_in_step().await;
    let (authenticator, recovery) = turn_on(&app, &acme.admin()).await;
    let wrong = wrong_code(&authenticator);

    let mfa_token = login_first_step(&app, &acme).await;
    for _ in 0..2 {
        verify(&app, &mfa_token, json!({"code": wrong}))
            .await
            .assert_problem(401, "INVALID_CREDENTIALS");
    }
    let res = verify(&app, &mfa_token, json!({"code": code(&authenticator, 1)})).await;
    assert_eq!(
        res.status,
        200,
        "the mfa_token survived wrong codes: {}",
        res.text()
    );

    let mfa_token = login_first_step(&app, &acme).await;
    for _ in 0..3 {
        verify(
            &app,
            &mfa_token,
            json!({"recovery_code": "aaaaa-bbbbb-ccccc-ddddd"}),
        )
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    }
    // Five wrong codes in 15 minutes: even a right one is refused now.
    let res = verify(&app, &mfa_token, json!({"recovery_code": recovery[0]})).await;
    res.assert_problem(429, "RATE_LIMITED");
    assert!(res.header("retry-after").is_some());
    // Removing MFA with a code is under the same budget.
    app.call(
        Method::DELETE,
        "/api/v1/auth/mfa",
        &acme.admin(),
        Some(json!({"code": recovery[0]})),
    )
    .await
    .assert_problem(429, "RATE_LIMITED");
    // Neither or both of code and recovery_code: 422.
    verify(&app, &mfa_token, json!({}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    let failures = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=auth.mfa_failed",
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(failures.json()["items"].as_array().expect("items").len(), 5);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_can_remove_mfa() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    settle_in_step().await;
    let (_authenticator, recovery) = turn_on(&app, &acme.admin()).await;

    let mfa_token = login_first_step(&app, &acme).await;
    let res = verify(&app, &mfa_token, json!({"recovery_code": recovery[0]})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        amr(res.json()["access_token"].as_str().expect("token")),
        json!(["pwd", "otp"])
    );
    let mfa_token = login_first_step(&app, &acme).await;
    verify(&app, &mfa_token, json!({"recovery_code": recovery[0]}))
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    // Case and dashes do not matter.
    let typed = recovery[1].to_uppercase().replace('-', "");
    let res = verify(&app, &mfa_token, json!({"recovery_code": typed})).await;
    assert_eq!(res.status, 200, "{}", res.text());

    // Removal needs a valid code; a used recovery code is not one.
    app.call(
        Method::DELETE,
        "/api/v1/auth/mfa",
        &acme.admin(),
        Some(json!({"code": recovery[0]})),
    )
    .await
    .assert_problem(401, "INVALID_CREDENTIALS");
    let res = app
        .call(
            Method::DELETE,
            "/api/v1/auth/mfa",
            &acme.admin(),
            Some(json!({"code": recovery[2]})),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    // Password alone again.
    app.login("acme", &acme.admin_email, PASSWORD).await;
    app.call(
        Method::DELETE,
        "/api/v1/auth/mfa",
        &acme.admin(),
        Some(json!({"code": recovery[3]})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    let removed = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=mfa.removed",
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(removed.json()["items"].as_array().expect("items").len(), 1);
}

/// The routes a token without a second factor may still call when the tenant requires
/// MFA (SPEC: `/auth/me`, `/auth/logout` and enrolment).
const BEFORE_MFA: &[(&str, &str)] = &[
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/mfa/totp/enroll"),
    ("POST", "/api/v1/auth/mfa/totp/confirm"),
];

#[tokio::test]
async fn require_mfa_refuses_every_other_route_to_a_token_without_otp() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{}", acme.id),
            &acme.admin(),
            Some(json!({"settings": {"security": {"require_mfa": true}}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());

    let (_, table) = router::api(&app.state);
    for route in &table {
        let exempt = BEFORE_MFA.contains(&(route.method, route.path));
        assert_eq!(
            route.access == Access::BeforeMfa,
            exempt,
            "{} {} has access {:?}",
            route.method,
            route.path,
            route.access
        );
        if route.access.is_public() || exempt {
            continue;
        }
        let path = route
            .path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{permission}", "users:read");
        let res = app
            .call(
                route.method.parse().expect("method"),
                &path,
                &acme.admin(),
                None,
            )
            .await;
        let problem = res.assert_problem(403, "MFA_REQUIRED");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("enrol"))
        );
    }
    // Who am I still answers; API keys are machines and are not concerned.
    let me = app
        .call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
        .await;
    assert_eq!(me.status, 200);
    let users = app.call(Method::GET, "/api/v1/users", &key, None).await;
    assert_eq!(users.status, 200, "{}", users.text());

    // Enrol with the password-only token, log in with the code: everything opens.
    settle_in_step().await;
    let (authenticator, _) = turn_on(&app, &acme.admin()).await;
    let mfa_token = login_first_step(&app, &acme).await;
    let res = verify(&app, &mfa_token, json!({"code": code(&authenticator, 1)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let strong = Auth::Bearer(res.json()["access_token"].as_str().expect("t").to_owned());
    let users = app.call(Method::GET, "/api/v1/users", &strong, None).await;
    assert_eq!(users.status, 200, "{}", users.text());
    // Logout works without the second factor.
    let res = app
        .call(Method::POST, "/api/v1/auth/logout", &acme.admin(), None)
        .await;
    assert_eq!(res.status, 204);
}

#[tokio::test]
async fn a_manager_cannot_reset_an_admins_mfa_but_an_admin_can() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, manager) = app
        .user_with_roles(&acme, "manager@acme.example.com", &["manager"])
        .await;
    let (developer_id, developer) = app
        .user_with_roles(&acme, "dev@acme.example.com", &["developer"])
        .await;
    settle_in_step().await;
    turn_on(&app, &acme.admin()).await;
    turn_on(&app, &developer).await;

    let reset = |id: uuid::Uuid| format!("/api/v1/users/{id}/mfa");
    app.call(Method::DELETE, &reset(acme.admin_id), &manager, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    // The admin still needs the second factor.
    login_first_step(&app, &acme).await;
    // A developer lacks users:update altogether.
    app.call(Method::DELETE, &reset(acme.admin_id), &developer, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    let res = app
        .call(Method::DELETE, &reset(developer_id), &manager, None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    app.login("acme", "dev@acme.example.com", PASSWORD).await;
    let res = app
        .call(Method::DELETE, &reset(acme.admin_id), &acme.admin(), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    app.login("acme", &acme.admin_email, PASSWORD).await;

    // Another tenant's user is not found.
    let globex = app.onboard("globex").await;
    app.call(Method::DELETE, &reset(globex.admin_id), &acme.admin(), None)
        .await
        .assert_problem(404, "NOT_FOUND");
    let resets = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=mfa.reset",
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(resets.json()["items"].as_array().expect("items").len(), 2);
}

#[tokio::test]
async fn api_keys_and_operators_have_no_mfa() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "admin"}))
        .await;
    app.call(Method::POST, "/api/v1/auth/mfa/totp/enroll", &key, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    let operator = app.platform_token().await;
    app.call(
        Method::POST,
        "/api/v1/auth/mfa/totp/enroll",
        &operator,
        None,
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::POST,
        "/api/v1/auth/mfa/totp/confirm",
        &acme.admin(),
        Some(json!({"code": "123456"})),
    )
    .await
    .assert_problem(409, "CONFLICT");
}
