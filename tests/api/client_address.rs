//! The client address in audit entries: the socket peer, or behind a proxy listed in
//! `TRUSTED_PROXIES` the right-most `X-Forwarded-For` hop that is not a trusted proxy.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Method, Request, header},
};
use serde_json::json;

use crate::helpers::{Onboarded, TestApp};

/// Renames the tenant from `peer`, with `forwarded` as `X-Forwarded-For`, and returns the
/// `ip` of the audit entry that records it.
async fn ip_recorded(app: &TestApp, acme: &Onboarded, peer: &str, forwarded: &str) -> String {
    let peer: SocketAddr = peer.parse().expect("socket address");
    let res = app
        .request(
            Request::builder()
                .method(Method::PATCH)
                .uri(format!("/api/v1/tenants/{}", acme.id))
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", acme.access_token),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-forwarded-for", forwarded)
                .extension(ConnectInfo(peer))
                .body(Body::from(json!({"name": "Renamed"}).to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let logs = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=tenant.updated&limit=1",
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(logs.status, 200, "{}", logs.text());
    logs.json()["items"][0]["ip"]
        .as_str()
        .expect("an ip")
        .to_owned()
}

#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::builder()
        .with_config(|c| c.http.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")])
        .build()
        .await;
    let acme = app.onboard("acme").await;
    assert_eq!(
        ip_recorded(&app, &acme, "203.0.113.9:50000", "6.6.6.6").await,
        "203.0.113.9",
        "a client cannot choose its address"
    );
}

#[tokio::test]
async fn through_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.http.trusted_proxies = vec![
                "10.0.0.0/8".parse().expect("cidr"),
                "fd00::/8".parse().expect("cidr"),
            ]
        })
        .build()
        .await;
    let acme = app.onboard("acme").await;
    // The client sent a spoofed hop; the edge proxy appended the real client, an inner
    // proxy appended the edge proxy.
    assert_eq!(
        ip_recorded(
            &app,
            &acme,
            "10.0.0.2:443",
            "6.6.6.6, 198.51.100.7, 10.1.1.1"
        )
        .await,
        "198.51.100.7"
    );
    assert_eq!(
        ip_recorded(&app, &acme, "[fd00::2]:443", "2001:db8::7").await,
        "2001:db8::7"
    );
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_never_believed() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    assert_eq!(
        ip_recorded(&app, &acme, "10.0.0.2:443", "198.51.100.7").await,
        "10.0.0.2"
    );
}
