//! Files on both storage backends: fs (the default) and S3 (the moto stand-in, one bucket
//! per test).

use std::time::Duration;

use axum::{
    body::Body,
    http::{Method, Request, header},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp, TestResponse, bucket_keys};

const BOUNDARY: &str = "tenantry-test-boundary";

fn multipart(field: &str, filename: &str, content_type: &str, contents: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(contents);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn with_auth(builder: axum::http::request::Builder, auth: &Auth) -> axum::http::request::Builder {
    match auth {
        Auth::None => builder,
        Auth::Bearer(t) => builder.header(header::AUTHORIZATION, format!("Bearer {t}")),
        Auth::ApiKey(k) => builder.header("x-api-key", k),
    }
}

async fn upload_field(
    app: &TestApp,
    auth: &Auth,
    field: &str,
    name: &str,
    contents: &[u8],
) -> TestResponse {
    post_multipart(app, auth, multipart(field, name, "text/plain", contents)).await
}

/// `POST /api/v1/files` with a multipart `body` delimited by [`BOUNDARY`].
async fn post_multipart(app: &TestApp, auth: &Auth, body: Vec<u8>) -> TestResponse {
    let request = with_auth(Request::post("/api/v1/files"), auth)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .expect("request");
    app.request(request).await
}

async fn upload(app: &TestApp, auth: &Auth, name: &str, contents: &[u8]) -> TestResponse {
    upload_field(app, auth, "file", name, contents).await
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn id_of(res: &TestResponse) -> Uuid {
    res.json()["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

/// The download link of a file (the `Location` of the 302).
async fn link(app: &TestApp, auth: &Auth, id: Uuid, query: &str) -> String {
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/files/{id}/download{query}"),
            auth,
            None,
        )
        .await;
    assert_eq!(res.status, 302, "{}", res.text());
    res.header("location").expect("a Location").to_owned()
}

/// Whether the backend still holds an object of `tenant`.
async fn objects(app: &TestApp, tenant: Uuid) -> usize {
    let prefix = format!("tenants/{tenant}/");
    match app.bucket() {
        Some(bucket) => bucket_keys(bucket, &prefix).await.len(),
        None => files_under(&app.storage_dir().join(&prefix)),
    }
}

/// The files under `dir`, at any depth (uploads in flight sit in `uploads/`).
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => files_under(&e.path()),
                    Ok(_) => 1,
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn round_trip(app: TestApp) {
    let t = app.onboard("acme").await;
    let contents: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let res = upload(&app, &t.admin(), "quarterly report é.bin", &contents).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let file = res.json();
    let id = id_of(&res);
    assert_eq!(file["name"], "quarterly report é.bin");
    assert_eq!(file["content_type"], "text/plain");
    assert_eq!(file["size"], contents.len());
    assert_eq!(file["checksum_sha256"], sha256(&contents));
    assert_eq!(file["status"], "available");
    assert!(file["created_at"].is_string());

    let got = app
        .call(
            Method::GET,
            &format!("/api/v1/files/{id}"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(got.json()["checksum_sha256"], sha256(&contents));
    let listed = app
        .call(Method::GET, "/api/v1/files", &t.admin(), None)
        .await;
    assert_eq!(listed.json()["items"][0]["id"], id.to_string());

    let url = link(&app, &t.admin(), id, "").await;
    let downloaded = app.fetch(Method::GET, &url, Vec::new()).await;
    assert_eq!(downloaded.status, 200, "{}", downloaded.text());
    assert_eq!(&downloaded.body[..], &contents[..], "identical bytes");
    let disposition = downloaded
        .header("content-disposition")
        .expect("disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"quarterly report _.bin\""),
        "{disposition}"
    );
    assert!(disposition.contains("filename*=UTF-8''quarterly%20report%20%C3%A9.bin"));
    assert_eq!(objects(&app, t.id).await, 1);

    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/files/{id}"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    for path in [
        format!("/api/v1/files/{id}"),
        format!("/api/v1/files/{id}/download"),
    ] {
        app.call(Method::GET, &path, &t.admin(), None)
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    assert_eq!(objects(&app, t.id).await, 0, "the object is gone too");
    let audit = app
        .call(Method::GET, "/api/v1/audit-logs", &t.admin(), None)
        .await
        .json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"file.uploaded") && actions.contains(&"file.deleted"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn upload_metadata_download_and_delete_on_fs() {
    round_trip(TestApp::new().await).await;
}

#[tokio::test]
async fn upload_metadata_download_and_delete_on_s3() {
    round_trip(TestApp::builder().with_s3().build().await).await;
}

#[tokio::test]
async fn a_multipart_upload_larger_than_a_part_streams_to_s3() {
    let app = TestApp::builder().with_s3().build().await;
    let t = app.onboard("acme").await;
    // Free plan: 10 MiB; 9 MiB is two parts of a multipart upload.
    let contents: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 239) as u8).collect();
    let res = upload(&app, &t.admin(), "big.bin", &contents).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["checksum_sha256"], sha256(&contents));
    let url = link(&app, &t.admin(), id_of(&res), "").await;
    let downloaded = app.fetch(Method::GET, &url, Vec::new()).await;
    assert_eq!(downloaded.body.len(), contents.len());
    assert!(downloaded.body[..] == contents[..]);
}

#[tokio::test]
async fn parts_other_than_file_are_ignored_whatever_their_names() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    // `multipart` puts a `note` part before the file; one after it, with a name no
    // field could have, changes nothing either.
    let mut body = multipart("file", "a.txt", "text/plain", b"just the file");
    body.truncate(body.len() - "--\r\n".len());
    body.extend_from_slice(
        b"\r\nContent-Disposition: form-data; name=\"odd\x01name\"\r\n\r\nextra\r\n",
    );
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let res = post_multipart(&app, &t.admin(), body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["size"], 13);
    assert_eq!(res.json()["checksum_sha256"], sha256(b"just the file"));
}

async fn presigned(app: TestApp) {
    let t = app.onboard("acme").await;
    let contents = b"id,name\n1,widget\n".to_vec();
    let res = app
        .call(
            Method::POST,
            "/api/v1/files/uploads",
            &t.admin(),
            Some(json!({"name": "items.csv", "content_type": "text/csv", "size": contents.len()})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["file"]["status"], "pending");
    assert_eq!(body["method"], "PUT");
    let id: Uuid = body["file"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let url = body["upload_url"].as_str().expect("url").to_owned();

    // Not downloadable before it is complete; completing before the PUT is refused.
    app.call(
        Method::GET,
        &format!("/api/v1/files/{id}/download"),
        &t.admin(),
        None,
    )
    .await
    .assert_problem(409, "CONFLICT");
    let complete = format!("/api/v1/files/{id}/complete");
    app.call(Method::POST, &complete, &t.admin(), None)
        .await
        .assert_problem(409, "CONFLICT");

    let put = app.fetch(Method::PUT, &url, contents.clone()).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let done = app.call(Method::POST, &complete, &t.admin(), None).await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["status"], "available");
    assert_eq!(done.json()["size"], contents.len());
    assert_eq!(done.json()["checksum_sha256"], sha256(&contents));
    app.call(Method::POST, &complete, &t.admin(), None)
        .await
        .assert_problem(409, "CONFLICT");

    let downloaded = app
        .fetch(
            Method::GET,
            &link(&app, &t.admin(), id, "").await,
            Vec::new(),
        )
        .await;
    assert_eq!(downloaded.status, 200);
    assert_eq!(&downloaded.body[..], &contents[..]);
}

#[tokio::test]
async fn presigned_upload_then_complete_then_download_on_fs() {
    presigned(TestApp::new().await).await;
}

#[tokio::test]
async fn presigned_upload_then_complete_then_download_on_s3() {
    presigned(TestApp::builder().with_s3().build().await).await;
}

/// The service's own upload link stores once: replayed after `complete`, it must not
/// swap the contents whose checksum was recorded.
#[tokio::test]
async fn an_fs_upload_link_is_write_once() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let (id, url) = start_upload(&app, &t, b"first").await;
    assert_eq!(
        app.fetch(Method::PUT, &url, b"first".to_vec()).await.status,
        200
    );
    let done = app
        .call(
            Method::POST,
            &format!("/api/v1/files/{id}/complete"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());

    app.fetch(Method::PUT, &url, b"other".to_vec())
        .await
        .assert_problem(409, "CONFLICT");
    let downloaded = app
        .fetch(
            Method::GET,
            &link(&app, &t.admin(), id, "").await,
            Vec::new(),
        )
        .await;
    assert_eq!(
        &downloaded.body[..],
        b"first",
        "the stored contents are unchanged"
    );
}

#[tokio::test]
async fn an_upload_larger_than_declared_is_refused_at_completion() {
    let app = TestApp::builder().with_s3().build().await;
    let t = app.onboard("acme").await;
    // Declared as three bytes, four uploaded.
    let (id, url) = start_upload(&app, &t, b"abc").await;
    assert_eq!(
        app.fetch(Method::PUT, &url, b"four".to_vec()).await.status,
        200
    );
    app.call(
        Method::POST,
        &format!("/api/v1/files/{id}/complete"),
        &t.admin(),
        None,
    )
    .await
    .assert_problem(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(objects(&app, t.id).await, 0, "refused contents are removed");
}

#[tokio::test]
async fn fs_links_refuse_expiry_and_tampering_with_403() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let res = upload(&app, &t.admin(), "a.txt", b"secret contents").await;
    let id = id_of(&res);
    let url = link(&app, &t.admin(), id, "?expires_in=1").await;
    assert!(
        url.starts_with(&format!("/files/tenants/{}/{id}?", t.id)),
        "{url}"
    );
    assert_eq!(app.fetch(Method::GET, &url, Vec::new()).await.status, 200);

    let tampered_name = url.replace("name=a.txt", "name=b.txt");
    let mut tampered_signature = url.clone();
    let last = tampered_signature.pop().expect("a signature");
    tampered_signature.push(if last == '0' { '1' } else { '0' });
    let other = upload(&app, &t.admin(), "b.txt", b"other").await;
    let other_key = url.replace(&id.to_string(), &id_of(&other).to_string());
    let unsigned = url.split("&signature=").next().expect("url").to_owned();
    for bad in [tampered_name, tampered_signature, other_key, unsigned] {
        app.fetch(Method::GET, &bad, Vec::new())
            .await
            .assert_problem(403, "FORBIDDEN");
    }
    // A download link does not take uploads.
    app.fetch(Method::PUT, &url, b"overwrite".to_vec())
        .await
        .assert_problem(403, "FORBIDDEN");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = app.fetch(Method::GET, &url, Vec::new()).await;
    let problem = expired.assert_problem(403, "FORBIDDEN");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired"))
    );
}

#[tokio::test]
async fn s3_links_expire_after_expires_in() {
    let app = TestApp::builder().with_s3().build().await;
    let t = app.onboard("acme").await;
    let id = id_of(&upload(&app, &t.admin(), "a.txt", b"hello").await);
    for (query, expected) in [
        ("?expires_in=120", "120"),
        ("", "300"),
        ("?expires_in=3600", "3600"),
    ] {
        let url = link(&app, &t.admin(), id, query).await;
        assert!(url.starts_with(&crate::helpers::aws_endpoint()), "{url}");
        assert!(
            url.contains(&format!("X-Amz-Expires={expected}&"))
                || url.ends_with(&format!("X-Amz-Expires={expected}")),
            "{url}"
        );
    }
}

async fn plan_limit(app: TestApp) {
    let t = app.onboard("acme").await;
    let contents = vec![7u8; 10 * 1024 * 1024 + 1];
    upload(&app, &t.admin(), "big.bin", &contents)
        .await
        .assert_problem(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(objects(&app, t.id).await, 0, "nothing is kept");
    let exactly = upload(&app, &t.admin(), "ok.bin", &contents[1..]).await;
    assert_eq!(exactly.status, 201, "{}", exactly.text());
    app.call(
        Method::POST,
        "/api/v1/files/uploads",
        &t.admin(),
        Some(json!({"name": "big.bin", "content_type": "application/octet-stream", "size": contents.len()})),
    )
    .await
    .assert_problem(413, "PAYLOAD_TOO_LARGE");
    let listed = app
        .call(Method::GET, "/api/v1/files", &t.admin(), None)
        .await;
    assert_eq!(listed.json()["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_free_plan_refuses_a_file_over_10_mib_with_413_on_fs() {
    plan_limit(TestApp::new().await).await;
}

#[tokio::test]
async fn the_free_plan_refuses_a_file_over_10_mib_with_413_on_s3() {
    plan_limit(TestApp::builder().with_s3().build().await).await;
}

#[tokio::test]
async fn bad_requests_are_problems() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    upload_field(&app, &t.admin(), "attachment", "a.txt", b"x")
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    let not_multipart = with_auth(Request::post("/api/v1/files"), &t.admin())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .expect("request");
    app.request(not_multipart)
        .await
        .assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    for path in ["/api/v1/files/not-a-uuid", "/api/v1/files/42/download"] {
        app.call(Method::GET, path, &t.admin(), None)
            .await
            .assert_problem(422, "VALIDATION_FAILED");
    }
    let id = id_of(&upload(&app, &t.admin(), "a.txt", b"x").await);
    for query in [
        "?expires_in=0",
        "?expires_in=3601",
        "?expires_in=-5",
        "?expires_in=soon",
    ] {
        let problem = app
            .call(
                Method::GET,
                &format!("/api/v1/files/{id}/download{query}"),
                &t.admin(),
                None,
            )
            .await
            .assert_problem(422, "VALIDATION_FAILED");
        assert_eq!(
            problem["errors"][0]["field"], "expires_in",
            "{query}: {problem}"
        );
    }
    for body in [
        json!({"name": "", "content_type": "text/plain", "size": 1}),
        json!({"name": "a\nb", "content_type": "text/plain", "size": 1}),
        json!({"name": "a", "content_type": "plain", "size": 1}),
        json!({"name": "a", "content_type": "text/plain", "size": -1}),
        json!({"name": "a", "content_type": "text/plain"}),
    ] {
        app.call(
            Method::POST,
            "/api/v1/files/uploads",
            &t.admin(),
            Some(body),
        )
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn another_tenants_files_are_not_found_on_every_route() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    let id = id_of(&upload(&app, &acme.admin(), "a.txt", b"acme's").await);
    let (pending, _) = start_upload(&app, &acme, b"p").await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/files/{id}")),
        (Method::GET, format!("/api/v1/files/{id}/download")),
        (Method::DELETE, format!("/api/v1/files/{id}")),
        (Method::POST, format!("/api/v1/files/{pending}/complete")),
    ] {
        app.call(method.clone(), &path, &globex.admin(), None)
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    let listed = app
        .call(Method::GET, "/api/v1/files", &globex.admin(), None)
        .await;
    assert_eq!(listed.json()["items"], json!([]));
    // Still there for its owner.
    let own = app
        .call(
            Method::GET,
            &format!("/api/v1/files/{id}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(own.status, 200);
}

#[tokio::test]
async fn permissions_are_checked() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let id = id_of(&upload(&app, &t.admin(), "a.txt", b"x").await);
    let (_, viewer) = app
        .user_with_roles(&t, "viewer@acme.example.com", &["viewer"])
        .await;
    upload(&app, &viewer, "b.txt", b"y")
        .await
        .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::POST,
        "/api/v1/files/uploads",
        &viewer,
        Some(json!({"name": "p.txt", "content_type": "text/plain", "size": 1})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::DELETE,
        &format!("/api/v1/files/{id}"),
        &viewer,
        None,
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    // Reading is allowed.
    let url = link(&app, &viewer, id, "").await;
    assert_eq!(app.fetch(Method::GET, &url, Vec::new()).await.body, "x");
}

#[tokio::test]
async fn readiness_is_degraded_when_s3_is_unreachable() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.storage.backend = tenantry::config::StorageBackend::S3;
            c.storage.s3_bucket_name = Some("unreachable".into());
            // Nothing listens on port 1.
            c.aws.endpoint_url = Some("http://127.0.0.1:1".into());
        })
        .build()
        .await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["storage"]["status"], "unavailable");
    assert!(body["checks"]["storage"]["latency_ms"].is_number());
    assert_eq!(body["checks"]["database"]["status"], "ok");

    let healthy = TestApp::new().await.get("/health/ready").await.json();
    assert_eq!(healthy["checks"]["storage"]["status"], "ok", "{healthy}");
}

async fn wait_for_job(app: &TestApp, auth: &Auth, id: &str) -> Value {
    for _ in 0..300 {
        let job = app
            .call(Method::GET, &format!("/api/v1/jobs/{id}"), auth, None)
            .await
            .json();
        if matches!(
            job["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job did not finish");
}

async fn usage_report(app: TestApp) {
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    sqlx::query(
        "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
         values ($1, 'api_requests', '2026-01-01T10:00:00Z', 7)",
    )
    .bind(t.id)
    .execute(app.db())
    .await
    .expect("usage");
    let res = app
        .call(
            Method::POST,
            "/api/v1/jobs",
            &t.admin(),
            Some(json!({"type": "usage_report", "payload": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}})),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let job = wait_for_job(&app, &t.admin(), res.json()["id"].as_str().expect("id")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let file_id: Uuid = job["result"]["file_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("file id");
    let file = app
        .call(
            Method::GET,
            &format!("/api/v1/files/{file_id}"),
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(file["content_type"], "text/csv");
    let csv = app
        .fetch(
            Method::GET,
            &link(&app, &t.admin(), file_id, "").await,
            Vec::new(),
        )
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.text(),
        "bucket_start,metric,value\n2026-01-01T10:00:00+00:00,api_requests,7\n"
    );
}

#[tokio::test]
async fn a_usage_report_is_a_downloadable_csv_file_on_fs() {
    usage_report(TestApp::new().await).await;
}

#[tokio::test]
async fn a_usage_report_is_a_downloadable_csv_file_on_s3() {
    usage_report(TestApp::builder().with_s3().build().await).await;
}

async fn purge(app: TestApp) {
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    upload(&app, &acme.admin(), "a.txt", b"a").await;
    upload(&app, &acme.admin(), "b.txt", b"b").await;
    upload(&app, &globex.admin(), "c.txt", b"c").await;
    assert_eq!(objects(&app, acme.id).await, 2);
    let platform = app.platform_token().await;
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{}", acme.id),
            &platform,
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    crate::tenant_purge::wait_for_purge(&app, acme.id).await;
    assert_eq!(
        objects(&app, acme.id).await,
        0,
        "the tenant's objects are gone"
    );
    assert_eq!(
        objects(&app, globex.id).await,
        1,
        "other tenants keep theirs"
    );
}

#[tokio::test]
async fn the_purge_removes_the_tenants_objects_on_fs() {
    purge(TestApp::new().await).await;
}

#[tokio::test]
async fn the_purge_removes_the_tenants_objects_on_s3() {
    purge(TestApp::builder().with_s3().build().await).await;
}

async fn start_upload(app: &TestApp, t: &Onboarded, contents: &[u8]) -> (Uuid, String) {
    let res = app
        .call(
            Method::POST,
            "/api/v1/files/uploads",
            &t.admin(),
            Some(json!({"name": "p.txt", "content_type": "text/plain", "size": contents.len()})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["file"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let url = res.json()["upload_url"].as_str().expect("url").to_owned();
    (id, url)
}

async fn cleanup(app: TestApp) {
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let (expired, url) = start_upload(&app, &t, b"left behind").await;
    assert_eq!(
        app.fetch(Method::PUT, &url, b"left behind".to_vec())
            .await
            .status,
        200
    );
    let (fresh, _) = start_upload(&app, &t, b"still uploading").await;
    let completed = id_of(&upload(&app, &t.admin(), "kept.txt", b"kept").await);
    // The first upload's URL expired long ago.
    let scope = app.scope(t.id);
    sqlx::query(
        scope
            .sql("update {schema}.files set created_at = now() - interval '2 hours' where id = $1"),
    )
    .bind(expired)
    .execute(app.db())
    .await
    .expect("backdate");
    sqlx::query(
        scope
            .sql("update {schema}.files set created_at = now() - interval '2 hours' where id = $1"),
    )
    .bind(completed)
    .execute(app.db())
    .await
    .expect("backdate");
    // What a presigned link wrote after its file was completed sits at an upload key,
    // served by nothing: swept once the link has expired (the UUIDv7 file id dates it).
    let old_id = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (chrono::Utc::now().timestamp() - 7200) as u64,
        0,
    ));
    let (stale, live) = (
        tenantry::storage::upload_key(t.id, old_id),
        tenantry::storage::upload_key(t.id, Uuid::now_v7()),
    );
    for key in [&stale, &live] {
        app.state
            .storage
            .put_bytes(key, "text/plain", bytes::Bytes::from_static(b"replayed"))
            .await
            .expect("an upload key written");
    }
    let job = tenantry::services::jobs::NewJob {
        job_type: tenantry::jobs::JobType::FilesCleanup,
        payload: json!({}),
        max_attempts: 1,
    };
    // The platform's own job (no creator), as the files clean-up schedules it.
    let mut tx = scope.begin().await.expect("begin");
    let row = tenantry::services::jobs::insert(&mut tx, &job, None)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    let lane = tenantry::jobs::Lane::of_row(None, row.job_type.as_str());
    tenantry::services::jobs::enqueue(
        &app.state.jobs,
        tenantry::jobs::JobMessage::row(t.id, row.id, lane),
    )
    .await;
    let done = wait_for_job(&app, &t.admin(), &row.id.to_string()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    app.call(
        Method::GET,
        &format!("/api/v1/files/{expired}"),
        &t.admin(),
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    for kept in [fresh, completed] {
        let res = app
            .call(
                Method::GET,
                &format!("/api/v1/files/{kept}"),
                &t.admin(),
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{kept} is kept");
    }
    assert_eq!(
        app.state.storage.size(&stale).await.expect("size"),
        None,
        "swept"
    );
    assert!(
        app.state.storage.size(&live).await.expect("size").is_some(),
        "kept while its link lives"
    );
    app.state.storage.delete(&live).await.expect("delete");
    assert_eq!(
        objects(&app, t.id).await,
        1,
        "only the completed file's object is left"
    );
    // Each presigned upload scheduled a cleanup for when its URL has expired.
    let scheduled: i64 = sqlx::query_scalar(scope.sql(
        "select count(*) from {schema}.jobs where type = 'files.cleanup' and enqueued_at > now() + interval '25 minutes'",
    ))
    .fetch_one(app.db())
    .await
    .expect("count");
    assert_eq!(scheduled, 2);
}

#[tokio::test]
async fn files_cleanup_removes_expired_pending_uploads_on_fs() {
    cleanup(TestApp::new().await).await;
}

#[tokio::test]
async fn files_cleanup_removes_expired_pending_uploads_on_s3() {
    cleanup(TestApp::builder().with_s3().build().await).await;
}

/// A presigned upload link replayed after `complete` writes to nowhere that is served:
/// the download, the recorded size and checksum and the metered storage stay those of
/// the completed contents.
async fn replayed_link(app: TestApp) {
    let t = app.onboard("acme").await;
    let (id, url) = start_upload(&app, &t, b"hello").await;
    assert_eq!(
        app.fetch(Method::PUT, &url, b"hello".to_vec()).await.status,
        200
    );
    let complete = format!("/api/v1/files/{id}/complete");
    let done = app.call(Method::POST, &complete, &t.admin(), None).await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["size"], 5);

    let big = vec![b'x'; 200 * 1024];
    let again = app.fetch(Method::PUT, &url, big).await;
    if app.bucket().is_some() {
        // S3 takes the PUT (a presigned URL cannot be revoked), at the upload key.
        assert_eq!(again.status, 200, "{}", again.text());
    } else {
        again.assert_problem(409, "CONFLICT");
    }
    let downloaded = app
        .fetch(
            Method::GET,
            &link(&app, &t.admin(), id, "").await,
            Vec::new(),
        )
        .await;
    assert_eq!(
        &downloaded.body[..],
        b"hello",
        "the served contents are unchanged"
    );
    let file = app
        .call(
            Method::GET,
            &format!("/api/v1/files/{id}"),
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(file["size"], 5);
    assert_eq!(file["checksum_sha256"], sha256(b"hello"));
    app.call(Method::POST, &complete, &t.admin(), None)
        .await
        .assert_problem(409, "CONFLICT");
    app.state.meter.flush(app.db()).await.expect("flush");
    let metered: Option<i64> = sqlx::query_scalar(
        "select sum(value)::bigint from platform.usage_rollups
         where tenant_id = $1 and metric = 'storage_bytes'",
    )
    .bind(t.id)
    .fetch_one(app.db())
    .await
    .expect("metered");
    assert_eq!(metered, Some(5), "storage_bytes is what is stored");
}

#[tokio::test]
async fn a_replayed_upload_link_after_complete_changes_nothing_served_on_fs() {
    replayed_link(TestApp::new().await).await;
}

#[tokio::test]
async fn a_replayed_upload_link_after_complete_changes_nothing_served_on_s3() {
    replayed_link(TestApp::builder().with_s3().build().await).await;
}

#[tokio::test]
async fn two_concurrent_puts_to_one_fs_upload_link_one_wins_one_409() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let (id, url) = start_upload(&app, &t, &[b'a'; 256 * 1024]).await;
    let (first, second) = tokio::join!(
        app.fetch(Method::PUT, &url, vec![b'a'; 256 * 1024]),
        app.fetch(Method::PUT, &url, vec![b'b'; 256 * 1024]),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", first.text(), second.text());
    let winner = if first.status == 200 { b'a' } else { b'b' };
    let done = app
        .call(
            Method::POST,
            &format!("/api/v1/files/{id}/complete"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        done.json()["checksum_sha256"],
        sha256(&[winner; 256 * 1024])
    );
    assert_eq!(objects(&app, t.id).await, 1, "no temporary file is left");
}

/// Sets the bytes the tenant already stores, as one available file of that size.
async fn already_stored(app: &TestApp, tenant: Uuid, bytes: i64) {
    let scope = app.scope(tenant);
    sqlx::query(scope.sql(
        "insert into {schema}.files (id, object_key, name, content_type, size, checksum_sha256, status)
         values ('00000000-0000-7000-8000-000000000001', 'tenants/x/y', 'big.bin',
                 'application/octet-stream', $1, '', 'available')
         on conflict (id) do update set size = excluded.size",
    ))
    .bind(bytes)
    .execute(app.db())
    .await
    .expect("a large file");
}

async fn storage_quota(app: TestApp) {
    const GIB: i64 = 1024 * 1024 * 1024;
    let t = app.onboard("acme").await;
    // The free plan stores 1 GiB; all but 10 bytes are taken.
    already_stored(&app, t.id, GIB - 10).await;
    let problem = upload(&app, &t.admin(), "a.txt", &[b'x'; 11])
        .await
        .assert_problem(413, "STORAGE_QUOTA_EXCEEDED");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("1073741824"),
        "{problem}"
    );
    app.call(
        Method::POST,
        "/api/v1/files/uploads",
        &t.admin(),
        Some(json!({"name": "p.txt", "content_type": "text/plain", "size": 11})),
    )
    .await
    .assert_problem(413, "STORAGE_QUOTA_EXCEEDED");
    // What fits is stored, up to the last byte.
    let res = upload(&app, &t.admin(), "a.txt", &[b'x'; 4]).await;
    assert_eq!(res.status, 201, "{}", res.text());
    // A presigned upload reserves its declared size; `complete` checks the real size
    // against what is left meanwhile.
    let (id, url) = start_upload(&app, &t, &[b'y'; 6]).await;
    upload(&app, &t.admin(), "b.txt", b"z")
        .await
        .assert_problem(413, "STORAGE_QUOTA_EXCEEDED");
    assert_eq!(
        app.fetch(Method::PUT, &url, vec![b'y'; 6]).await.status,
        200
    );
    already_stored(&app, t.id, GIB - 8).await;
    app.call(
        Method::POST,
        &format!("/api/v1/files/{id}/complete"),
        &t.admin(),
        None,
    )
    .await
    .assert_problem(413, "STORAGE_QUOTA_EXCEEDED");
    let file = app
        .call(
            Method::GET,
            &format!("/api/v1/files/{id}"),
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(file["status"], "pending", "{file}");
    assert_eq!(objects(&app, t.id).await, 1, "only a.txt is stored");
}

#[tokio::test]
async fn an_upload_past_the_storage_quota_is_413_on_fs() {
    storage_quota(TestApp::new().await).await;
}

#[tokio::test]
async fn an_upload_past_the_storage_quota_is_413_on_s3() {
    storage_quota(TestApp::builder().with_s3().build().await).await;
}
