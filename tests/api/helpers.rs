//! `TestApp`: the real service on its own database and Redis key prefix.
//!
//! Every `TestApp` creates a fresh PostgreSQL database (shared migrations applied) and a
//! unique Redis key prefix, and removes both when dropped, so tests run in parallel and
//! leave nothing behind. The servers come from `DATABASE_URL` and `REDIS_URL`
//! (`scripts/test.sh` sets them, starting throwaway servers when none are reachable).

use std::{sync::Mutex, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use tenantry::{
    App, AppState, Config,
    background::Background,
    db::{TenantScope, migrate},
    services::notifications::outbox::Message,
    subsystem::Subsystem,
};
use tower::ServiceExt;
use uuid::Uuid;

/// The service under test, with its own database and Redis namespace.
pub struct TestApp {
    pub state: AppState,
    router: Router,
    /// What `serve --no-workers` runs beside its requests (see [`TestApp::flush_usage`]).
    background: Mutex<Option<Background>>,
    // Dropped after `state`, so the database outlives the app's pool.
    database: TestDatabase,
    /// The test's S3 bucket ([`TestAppBuilder::with_s3`]), emptied and deleted on drop.
    bucket: Option<TestBucket>,
}

/// The test's own database and Redis namespace, removed on drop even when the test
/// panics half-way through setting up.
struct TestDatabase {
    server_url: String,
    name: String,
    redis_url: String,
    redis_prefix: String,
    /// The test's own `STORAGE_DIR`.
    storage_dir: std::path::PathBuf,
}

/// A change to the test configuration.
type ConfigEdit = Box<dyn FnOnce(&mut Config)>;

/// Options for a [`TestApp`].
#[derive(Default)]
pub struct TestAppBuilder {
    routes: Option<Router<AppState>>,
    configure: Vec<ConfigEdit>,
    sns: bool,
    s3: bool,
}

impl TestAppBuilder {
    /// Serve these routes (inside the real layer stack) instead of the service's own.
    pub fn with_routes(mut self, routes: Router<AppState>) -> Self {
        self.routes = Some(routes);
        self
    }

    /// Rate limits on, as in production.
    pub fn with_rate_limits(self) -> Self {
        self.with_config(|c| c.limits.enabled = true)
    }

    /// Notifications through SNS at the moto stand-in (`AWS_ENDPOINT_URL`), email to a
    /// topic of this test's own.
    pub fn with_sns(mut self) -> Self {
        self.sns = true;
        self
    }

    /// Files in S3 (the moto stand-in at `AWS_ENDPOINT_URL`), in a bucket of this test's
    /// own, created now and deleted with the app.
    pub fn with_s3(mut self) -> Self {
        self.s3 = true;
        self
    }

    /// Adjust the configuration after the test database is set up.
    pub fn with_config(mut self, f: impl FnOnce(&mut Config) + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    pub async fn build(self) -> TestApp {
        let server_url = env_or(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
        let redis_url = env_or("REDIS_URL", "redis://127.0.0.1:6379/0");
        let database = format!("tenantry_test_{}", Uuid::new_v4().simple());
        let database_url = with_database(&server_url, &database);
        let redis_prefix = format!("test:{database}:");
        tenantry::db::ensure_database(&database_url)
            .await
            .expect("create the test database");
        let storage_dir = std::env::temp_dir().join(format!("tenantry-files-{database}"));
        let database = TestDatabase {
            server_url,
            name: database,
            redis_url: redis_url.clone(),
            redis_prefix: redis_prefix.clone(),
            storage_dir: storage_dir.clone(),
        };
        let setup = sqlx::PgPool::connect(&database_url)
            .await
            .expect("connect to the test database");
        migrate::run_shared(&setup)
            .await
            .expect("apply shared migrations");
        setup.close().await;

        let mut config = Config::from_lookup(|name| match name {
            "APP_ENV" => Some("test".into()),
            "DATABASE_URL" => Some(database_url.clone()),
            "DATABASE_MAX_CONNECTIONS" => Some("5".into()),
            "REDIS_URL" => Some(redis_url.clone()),
            "REDIS_KEY_PREFIX" => Some(redis_prefix.clone()),
            "RUST_LOG" => Some(env_or("TEST_LOG", "warn")),
            "CORS_ALLOWED_ORIGINS" => Some("https://app.example.com".into()),
            // Most tests send more than a free plan's 60 requests a minute; the rate
            // limit tests turn limits on with `with_rate_limits`.
            "RATE_LIMIT_ENABLED" => Some("false".into()),
            // Jobs on a test's time scale: quick retries, short leases, a busy reconciler.
            "JOB_RETRY_BASE_MS" => Some("20".into()),
            "JOB_LEASE_MS" => Some("1500".into()),
            "JOB_HEARTBEAT_MS" => Some("100".into()),
            "JOB_RECONCILE_MS" => Some("200".into()),
            "JOB_REQUEUE_AFTER_MS" => Some("1000".into()),
            "STORAGE_DIR" => Some(storage_dir.to_string_lossy().into_owned()),
            _ => None,
        })
        .expect("test configuration is valid");
        if self.sns {
            config.notifications.backend = tenantry::config::NotificationsBackend::Sns;
            config.aws.endpoint_url = Some(aws_endpoint());
            let topic = sns_client()
                .await
                .create_topic()
                .name(format!("tenantry-test-{}", Uuid::new_v4().simple()))
                .send()
                .await
                .expect("create the test's email topic");
            config.notifications.sns_email_topic_arn = topic.topic_arn().map(str::to_owned);
        }
        let bucket = if self.s3 {
            let bucket = TestBucket::create(&database.name).await;
            config.storage.backend = tenantry::config::StorageBackend::S3;
            config.storage.s3_bucket_name = Some(bucket.name.clone());
            config.aws.endpoint_url = Some(bucket.endpoint.clone());
            Some(bucket)
        } else {
            None
        };
        for f in self.configure {
            f(&mut config);
        }
        // The test process never returns through `main`: its log writer lives as long.
        std::mem::forget(tenantry::telemetry::init_tracing(&config));

        let app = App::new(config).await.expect("build the app");
        let state = AppState::new(app);
        // What `serve --no-workers` runs beside its requests; workers are started by
        // `start_worker`.
        let background = Mutex::new(Some(Background::start(&state, Subsystem::API)));
        let router = match self.routes {
            Some(routes) => tenantry::http::with_layers(routes, state.clone()),
            None => tenantry::http::app(state.clone()),
        };
        TestApp {
            state,
            router,
            background,
            database,
            bucket,
        }
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::builder().build().await
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// An app whose webhook endpoints may target loopback (the tests' receivers).
    pub async fn with_private_webhook_targets() -> Self {
        Self::builder()
            .with_config(|c| c.webhooks.allow_private_targets = true)
            .build()
            .await
    }

    /// A second replica: its own process state (pools, caches) over the same database
    /// and Redis namespace, listening for the others' invalidations.
    pub async fn replica(&self) -> TestReplica {
        let app = App::new(self.state.config.clone())
            .await
            .expect("build the replica");
        let state = AppState::new(app);
        // As `serve` does: logouts made before this replica started are known before it
        // answers anybody.
        state
            .invalidations
            .load_deny_list()
            .await
            .expect("load the deny-list");
        let listener = Background::start(&state, &[Subsystem::Invalidations]);
        let background = Background::start(&state, &[Subsystem::RateLimitOverrides]);
        let router = tenantry::http::app(state.clone());
        // Let the subscription settle before the test publishes anything.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        TestReplica {
            router,
            listener,
            _background: background,
            state,
        }
    }

    /// Starts job workers, the reconciler and a usage flusher in this process, as
    /// `tenantry serve` and `tenantry worker` do; they stop when the returned handle is
    /// dropped or stopped.
    pub fn start_worker(&self) -> TestWorker {
        TestWorker(Some(Background::start(
            &self.state,
            &[
                Subsystem::Metering,
                Subsystem::JobWorkers,
                Subsystem::Reconciler,
            ],
        )))
    }

    /// Writes the usage this process recorded, the way a shutdown does: this app's
    /// background work is stopped (its flushers write the last counts) and started anew.
    pub async fn flush_usage(&self) {
        let stopped = self.background.lock().expect("lock").take();
        if let Some(background) = stopped {
            background.shutdown().await;
        }
        *self.background.lock().expect("lock") =
            Some(Background::start(&self.state, Subsystem::API));
    }

    pub fn db(&self) -> &PgPool {
        &self.state.db
    }

    /// The message with `template` that the `log` backend recorded for `to`, waiting
    /// (up to 10 s) for a worker to deliver it.
    pub async fn wait_for_message(&self, to: &str, template: &str) -> Message {
        let outbox = self
            .state
            .notifier
            .outbox()
            .expect("the log notification backend");
        for _ in 0..500 {
            if let Some(message) = outbox
                .sent_to(to)
                .into_iter()
                .rev()
                .find(|m| m.template == template)
            {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {template} message was delivered to {to}");
    }

    /// The test's S3 bucket name, when it has one.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_ref().map(|b| b.name.as_str())
    }

    /// The test's `STORAGE_DIR`.
    pub fn storage_dir(&self) -> &std::path::Path {
        &self.database.storage_dir
    }

    /// Follows a link the service handed out: a path goes through this service (the fs
    /// backend's signed links), an absolute URL to its server (S3 presigned URLs).
    pub async fn fetch(&self, method: Method, url: &str, body: Vec<u8>) -> TestResponse {
        if url.starts_with('/') {
            let request = Request::builder()
                .method(method)
                .uri(url)
                .body(Body::from(body))
                .expect("valid request");
            return self.request(request).await;
        }
        http1(method, url, body).await
    }

    /// The URL of this test's database.
    pub fn database_url(&self) -> String {
        with_database(&self.database.server_url, &self.database.name)
    }

    /// `n` active tenant rows `bulk-1`… without schemas: what counts tenants (the
    /// connection layout, the background rounds) sees them; no request reaches them.
    pub async fn add_tenant_rows(&self, n: i32) {
        sqlx::query(
            "insert into platform.tenants (id, name, slug, status)
             select gen_random_uuid(), 'Bulk ' || i, 'bulk-' || i, 'active'
             from generate_series(1, $1) i",
        )
        .bind(n)
        .execute(self.db())
        .await
        .expect("tenant rows");
    }

    /// A tenant row and its migrated schema, as onboarding leaves them.
    pub async fn create_tenant(&self, slug: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "insert into platform.tenants (id, name, slug, status) values ($1, $2, $3, 'active')",
        )
        .bind(id)
        .bind(format!("Tenant {slug}"))
        .bind(slug)
        .execute(self.db())
        .await
        .expect("insert tenant");
        let mut tx = self.db().begin().await.expect("begin");
        migrate::apply_tenant(&mut tx, id)
            .await
            .expect("migrate tenant schema");
        tx.commit().await.expect("commit");
        id
    }

    pub fn scope(&self, tenant_id: Uuid) -> TenantScope {
        TenantScope::new(self.db().clone(), tenant_id)
    }

    /// Sends a request through the whole stack.
    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        read(response).await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(
            Request::get(uri)
                .body(Body::empty())
                .expect("valid request"),
        )
        .await
    }

    /// A request with a raw body and content type.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        self.request(builder.body(body.into()).expect("valid request"))
            .await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> TestResponse {
        self.send(
            Method::POST,
            uri,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }
}

/// Credentials for a request.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    ApiKey(String),
}

/// A tenant onboarded through the API, with its admin's credentials.
#[derive(Debug, Clone)]
pub struct Onboarded {
    pub id: Uuid,
    pub slug: String,
    pub admin_id: Uuid,
    pub admin_email: String,
    pub admin_password: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Onboarded {
    pub fn admin(&self) -> Auth {
        Auth::Bearer(self.access_token.clone())
    }
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    /// A request with credentials and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        builder = match auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
            Auth::ApiKey(key) => builder.header("x-api-key", key),
        };
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.request(builder.body(body).expect("valid request"))
            .await
    }

    /// Onboards a tenant through `POST /api/v1/tenants`.
    pub async fn onboard(&self, slug: &str) -> Onboarded {
        let email = format!("admin@{slug}.example.com");
        let res = self
            .post_json(
                "/api/v1/tenants",
                &serde_json::json!({
                    "name": format!("Tenant {slug}"),
                    "slug": slug,
                    "admin": {"email": email, "password": PASSWORD},
                }),
            )
            .await;
        assert_eq!(res.status, 201, "onboarding {slug}: {}", res.text());
        let body = res.json();
        Onboarded {
            id: body["tenant"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("tenant id"),
            slug: slug.to_owned(),
            admin_id: body["admin_user"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("user id"),
            admin_email: email,
            admin_password: PASSWORD.to_owned(),
            access_token: body["tokens"]["access_token"]
                .as_str()
                .expect("token")
                .to_owned(),
            refresh_token: body["tokens"]["refresh_token"]
                .as_str()
                .expect("token")
                .to_owned(),
        }
    }

    /// Creates a user with `roles` in the tenant (as its admin) and logs them in.
    pub async fn user_with_roles(
        &self,
        tenant: &Onboarded,
        email: &str,
        roles: &[&str],
    ) -> (Uuid, Auth) {
        let res = self
            .call(
                Method::POST,
                "/api/v1/users",
                &tenant.admin(),
                Some(serde_json::json!({"email": email, "password": PASSWORD, "roles": roles})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        (id, self.login(&tenant.slug, email, PASSWORD).await)
    }

    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> Auth {
        let res = self
            .post_json(
                "/api/v1/auth/login",
                &serde_json::json!({"tenant": tenant, "email": email, "password": password}),
            )
            .await;
        assert_eq!(res.status, 200, "login: {}", res.text());
        Auth::Bearer(
            res.json()["access_token"]
                .as_str()
                .expect("token")
                .to_owned(),
        )
    }

    /// Creates an API key in the tenant (as its admin); returns (id, key).
    pub async fn api_key(&self, tenant: &Onboarded, body: Value) -> (Uuid, Auth) {
        let res = self
            .call(
                Method::POST,
                "/api/v1/api-keys",
                &tenant.admin(),
                Some(body),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let json = res.json();
        let id = json["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        (
            id,
            Auth::ApiKey(json["key"].as_str().expect("key").to_owned()),
        )
    }

    /// A platform operator's token.
    pub async fn platform_token(&self) -> Auth {
        let email = tenantry::services::users::Email::parse("email", "ops@platform.example.com")
            .expect("email");
        let password =
            tenantry::auth::password::Password::parse(PASSWORD.to_owned()).expect("password");
        tenantry::services::identity::upsert_platform_admin(self.db(), &email, password)
            .await
            .expect("platform admin");
        let res = self
            .post_json(
                "/api/v1/admin/login",
                &serde_json::json!({"email": "ops@platform.example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        Auth::Bearer(
            res.json()["access_token"]
                .as_str()
                .expect("token")
                .to_owned(),
        )
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let database = self.name.clone();
        let redis_url = self.redis_url.clone();
        let prefix = self.redis_prefix.clone();
        // Drop runs inside the test's runtime; clean up on a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                drop_database(&server_url, &database).await;
                delete_redis_keys(&redis_url, &prefix).await;
            });
        });
        let _ = cleanup.join();
        let _ = std::fs::remove_dir_all(&self.storage_dir);
    }
}

/// The S3/SNS stand-in's URL (`scripts/services.sh` starts moto there).
pub fn aws_endpoint() -> String {
    env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:54566")
}

/// The SDK configuration the app would use against the stand-in (credentials from the
/// environment, as the app's).
async fn stand_in_config() -> aws_config::SdkConfig {
    let mut config = Config::from_lookup(|_| None).expect("default configuration");
    config.aws.endpoint_url = Some(aws_endpoint());
    tenantry::aws::sdk_config(&config).await
}

/// An S3 client for the stand-in.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let shared = stand_in_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    )
}

/// A test's own bucket, emptied and deleted on drop.
pub struct TestBucket {
    pub name: String,
    pub endpoint: String,
}

impl TestBucket {
    async fn create(database: &str) -> Self {
        // Bucket names: 3 to 63 lowercase letters, digits and dashes.
        let name = format!("t-{}", &database.trim_start_matches("tenantry_test_")[..32]);
        s3_client()
            .await
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect(
                "create the test bucket (is the S3 stand-in running? scripts/test.sh starts it)",
            );
        Self {
            name,
            endpoint: aws_endpoint(),
        }
    }
}

/// The keys in a bucket under `prefix`.
pub async fn bucket_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3_client()
        .await
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list the bucket");
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                let client = s3_client().await;
                for key in bucket_keys(&name, "").await {
                    let _ = client.delete_object().bucket(&name).key(key).send().await;
                }
                let _ = client.delete_bucket().bucket(&name).send().await;
            });
        });
        let _ = cleanup.join();
    }
}

async fn drop_database(server_url: &str, database: &str) {
    let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&with_database(server_url, "postgres"))
        .await
    else {
        return;
    };
    let sql = format!("drop database if exists \"{database}\" with (force)");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
    pool.close().await;
}

async fn delete_redis_keys(redis_url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// Another replica of a [`TestApp`]'s service.
pub struct TestReplica {
    router: Router,
    listener: Background,
    _background: Background,
    pub state: AppState,
}

impl TestReplica {
    /// Stops hearing the other replicas' invalidations, as when a message is lost.
    pub fn stop_listening(&self) {
        self.listener.stop();
    }

    pub async fn call(&self, method: Method, uri: &str, auth: &Auth) -> TestResponse {
        let builder = Request::builder().method(method).uri(uri);
        let builder = match auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
            Auth::ApiKey(key) => builder.header("x-api-key", key),
        };
        let request = builder.body(Body::empty()).expect("valid request");
        read(
            self.router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible"),
        )
        .await
    }
}

/// Job workers started by [`TestApp::start_worker`].
pub struct TestWorker(Option<Background>);

impl TestWorker {
    /// Stops taking jobs, waits for the running ones to finish and writes their usage,
    /// as SIGTERM does.
    pub async fn stop(mut self) {
        let background = self.0.take().expect("running");
        tokio::time::timeout(Duration::from_secs(20), background.shutdown())
            .await
            .expect("the worker stops");
    }
}

async fn read(response: axum::response::Response) -> TestResponse {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("read the body")
        .to_bytes();
    TestResponse {
        status,
        headers,
        body,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and code, and returns it.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "error responses are problem+json"
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        assert_eq!(problem["code"], code);
        for field in ["type", "title", "detail"] {
            assert!(
                problem[field].is_string(),
                "problem lacks {field}: {problem}"
            );
        }
        assert_eq!(
            problem["request_id"].as_str(),
            self.header("x-request-id"),
            "the problem quotes the request id"
        );
        problem
    }
}

/// An SNS client for the stand-in, to set up what a test needs (topics, endpoints).
pub async fn sns_client() -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&stand_in_config().await)
}

/// The SNS part of moto's record of everything it received (`/moto-api/data.json`).
///
/// That document reads every model's `status`; an S3 object's status read moves it to
/// `RESTORED` ("immediate" progression), which looks its bucket up and fails the whole
/// document once another test deleted that bucket. So object restores are first set to
/// progress only by hand (they never do here), and the read is tried a few times.
pub async fn moto_sns_data() -> Value {
    let freeze = r#"{"model_name": "s3::keyrestore", "transition": {"progression": "manual", "times": 1000000000}}"#;
    let mut last = String::new();
    for _ in 0..5 {
        let read = match moto_http("POST", "/moto-api/state-manager/set-transition", freeze).await {
            Ok(_) => moto_http("GET", "/moto-api/data.json", "").await,
            Err(e) => Err(e),
        };
        match read {
            Ok(body) => match serde_json::from_str::<Value>(&body) {
                Ok(data) => return data["sns"].clone(),
                Err(_) => last = body,
            },
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "moto's data could not be read: {}",
        last.chars().take(500).collect::<String>()
    );
}

/// A request to the stand-in's own API: the body of a 2xx answer, or what went wrong.
async fn moto_http(method: &str, path: &str, body: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = aws_endpoint();
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("not an HTTP answer")?;
    if head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2") {
        Ok(body.to_owned())
    } else {
        Err(format!("{head}\n{body}"))
    }
}

/// One HTTP/1.1 request over plain TCP (`Connection: close`), for URLs outside the
/// service such as the S3 stand-in's presigned ones.
pub async fn http1(method: Method, url: &str, body: Vec<u8>) -> TestResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let target = if target.is_empty() { "/" } else { target };
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the server");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(&body).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                header::HeaderName::from_bytes(name.trim().as_bytes()),
                header::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if chunked {
        body = dechunk(&body);
    }
    TestResponse {
        status: StatusCode::from_u16(status).expect("status"),
        headers,
        body: Bytes::from(body),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Polls `check` until it holds or `within` passes; whether it held.
pub async fn eventually<F: AsyncFnMut() -> bool>(
    within: std::time::Duration,
    mut check: F,
) -> bool {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}
