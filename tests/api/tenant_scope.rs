//! The tenant scope reaches one tenant's rows and leaves nothing on pooled connections.

use std::{collections::HashMap, time::Duration};

use futures::future::try_join_all;
use serde_json::json;
use tenantry::db::{TenantSchema, TenantScope, migrate};
use uuid::Uuid;

use crate::helpers::{TestApp, eventually};

async fn insert_resource(scope: &TenantScope, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(scope.sql("insert into {schema}.resources (id, name, data) values ($1, $2, $3)"))
        .bind(id)
        .bind(name)
        .bind(json!({"tenant": scope.tenant_id()}))
        .execute(scope.db())
        .await
        .expect("insert resource");
    id
}

async fn resource_names(scope: &TenantScope) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(scope.sql("select name from {schema}.resources order by id"))
        .fetch_all(scope.db())
        .await
}

/// Many tenants, many concurrent reads and writes, two connections: every read sees its
/// own tenant's rows and nothing else.
#[tokio::test]
async fn concurrent_tenants_through_a_pool_of_two_never_see_each_other() {
    let app = TestApp::builder()
        .with_config(|c| c.database.max_connections = 2)
        .build()
        .await;
    let mut tenants = Vec::new();
    for i in 0..12 {
        tenants.push(app.create_tenant(&format!("tenant-{i}")).await);
    }
    let scopes: Vec<TenantScope> = tenants.iter().map(|id| app.scope(*id)).collect();

    // 480 operations interleaved across tenants: each writes a row named after its
    // tenant, then reads the whole table of its scope.
    let operations = (0..480).map(|i| {
        let scope = scopes[i % scopes.len()].clone();
        async move {
            let tag = scope.tenant_id().to_string();
            insert_resource(&scope, &format!("{tag}/{i}")).await;
            let names = resource_names(&scope).await?;
            let foreign: Vec<_> = names.iter().filter(|n| !n.starts_with(&tag)).collect();
            assert!(
                foreign.is_empty(),
                "tenant {tag} saw rows of others: {foreign:?}"
            );
            Ok::<_, sqlx::Error>((scope.tenant_id(), names.len()))
        }
    });
    try_join_all(operations)
        .await
        .expect("all operations succeed");

    let mut counts = HashMap::new();
    for scope in &scopes {
        counts.insert(
            scope.tenant_id(),
            resource_names(scope).await.expect("read").len(),
        );
    }
    assert!(counts.values().all(|&n| n == 40), "{counts:?}");
    // The pool really was two connections shared by all of them.
    assert!(app.db().size() <= 2);
}

#[tokio::test]
async fn a_pooled_connection_carries_no_tenant_search_path() {
    let app = TestApp::builder()
        .with_config(|c| c.database.max_connections = 1)
        .build()
        .await;
    let default_path: String = sqlx::query_scalar("show search_path")
        .fetch_one(app.db())
        .await
        .expect("show");

    // Provisioning sets a transaction-local search_path; scoped work sets none.
    let tenant = app.create_tenant("acme").await;
    let scope = app.scope(tenant);
    insert_resource(&scope, "one").await;
    let mut tx = scope.begin().await.expect("begin");
    sqlx::query(tx.sql("update {schema}.resources set version = version + 1"))
        .execute(tx.conn())
        .await
        .expect("update");
    tx.commit().await.expect("commit");
    // A failed provisioning transaction rolls back its search_path too.
    let mut tx = app.db().begin().await.expect("begin");
    migrate::apply_tenant(&mut tx, tenant)
        .await
        .expect("idempotent");
    drop(tx);

    // The one connection of the pool, next borrower's view:
    let mut conn = app.db().acquire().await.expect("acquire");
    let path: String = sqlx::query_scalar("show search_path")
        .fetch_one(&mut *conn)
        .await
        .expect("show");
    assert_eq!(path, default_path);
    assert!(!path.contains("t_"), "{path}");
    // And an unqualified tenant table is simply not there for it.
    let unscoped = sqlx::query("select * from resources")
        .execute(&mut *conn)
        .await;
    assert!(
        unscoped.is_err(),
        "unscoped SQL must not find tenant tables"
    );
}

#[tokio::test]
async fn the_same_statement_reads_different_rows_per_tenant() {
    let app = TestApp::new().await;
    let a = app.scope(app.create_tenant("alpha").await);
    let b = app.scope(app.create_tenant("bravo").await);
    let id_a = insert_resource(&a, "alpha-row").await;
    insert_resource(&b, "bravo-row").await;

    let find = "select name from {schema}.resources where id = $1";
    let in_a: Option<String> = sqlx::query_scalar(a.sql(find))
        .bind(id_a)
        .fetch_optional(a.db())
        .await
        .expect("query");
    let in_b: Option<String> = sqlx::query_scalar(b.sql(find))
        .bind(id_a)
        .fetch_optional(b.db())
        .await
        .expect("query");
    assert_eq!(in_a.as_deref(), Some("alpha-row"));
    assert_eq!(in_b, None, "another tenant's id is not found");
}

/// Handlers never build a tenant scope or touch `search_path` themselves: the scope
/// comes from the authenticated tenant context (or a service acting for a tenant it
/// looked up), so a handler cannot reach a tenant it was not given.
#[test]
fn no_handler_builds_a_tenant_scope() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/http") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut files,
    );
    assert!(files.len() > 10, "found the handlers");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for forbidden in ["TenantScope::new", "set_config", "search_path"] {
            assert!(
                !text.contains(forbidden),
                "{} contains {forbidden}",
                file.display()
            );
        }
    }
}

/// With tenant-affine pools, tenants are spread over the pools, and each is served
/// (over HTTP, end to end) with its own rows only.
#[tokio::test]
async fn tenants_hashed_onto_several_pools_are_each_served_their_own_rows() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.database.max_connections = 4;
            c.database.tenant_pools = tenantry::db::PoolSetting::Fixed(2);
        })
        .build()
        .await;
    assert_eq!(app.state.tenant_db.lanes(), 2);
    // Tenant ids are random, so onboard until both pools hold some (four tenants at
    // least; twenty-four all on one pool would happen once in eight million runs).
    let mut pools_used = std::collections::HashSet::new();
    let mut tenants = Vec::new();
    for i in 0..24 {
        if tenants.len() >= 4 && pools_used.len() == 2 {
            break;
        }
        let tenant = app.onboard(&format!("pooled-{i}")).await;
        let (_, lane) = app.state.tenant_db.for_tenant(tenant.id);
        pools_used.insert(lane.expect("one of two lanes").lane());
        let created = app
            .call(
                axum::http::Method::POST,
                "/api/v1/resources",
                &tenant.admin(),
                Some(json!({"name": format!("of pooled-{i}")})),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        tenants.push(tenant);
    }
    assert_eq!(pools_used.len(), 2, "tenants land on both pools");
    for (i, tenant) in tenants.iter().enumerate() {
        let page = app
            .call(
                axum::http::Method::GET,
                "/api/v1/resources",
                &tenant.admin(),
                None,
            )
            .await;
        assert_eq!(page.status, 200);
        let names: Vec<String> = page.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["name"].as_str().expect("name").to_owned())
            .collect();
        assert_eq!(names, [format!("of pooled-{i}")]);
    }
}

/// With no setting, the lanes follow the tenant count: one lane for a few tenants, more
/// as they grow; requests are served their own rows before and after the change.
#[tokio::test]
async fn the_automatic_layout_adds_lanes_as_tenants_grow_and_serves_each_its_rows() {
    let app = TestApp::builder()
        .with_config(|c| c.database.max_connections = 4)
        .build()
        .await;
    assert_eq!(
        app.state.config.database.tenant_pools,
        tenantry::db::PoolSetting::Auto
    );
    let first = app.onboard("before").await;
    assert_eq!(app.state.tenant_db.fit(1).expect("fit"), None);
    assert_eq!(app.state.tenant_db.lanes(), 1);
    // Three hundred more tenants (rows only) call for four lanes of one connection.
    app.add_tenant_rows(300).await;
    let tenants = tenantry::db::pools::count_tenants(app.db())
        .await
        .expect("count");
    assert_eq!(app.state.tenant_db.fit(tenants).expect("fit"), Some(4));
    let second = app.onboard("after").await;
    for (tenant, name) in [(&first, "of before"), (&second, "of after")] {
        let created = app
            .call(
                axum::http::Method::POST,
                "/api/v1/resources",
                &tenant.admin(),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let page = app
            .call(
                axum::http::Method::GET,
                "/api/v1/resources",
                &tenant.admin(),
                None,
            )
            .await;
        assert_eq!(page.json()["items"][0]["name"], name);
        assert_eq!(page.json()["items"].as_array().map(Vec::len), Some(1));
    }
}

/// The process lays its lanes out by itself: its layout round (which `serve`, `serve
/// --no-workers` and `worker` all run) counts the tenants, adds lanes when they grow past
/// what one lane serves, shows the number in `tenantry_db_tenant_lanes`, and goes back to
/// one lane when they are deleted.
#[tokio::test]
async fn the_layout_round_follows_the_tenant_count_without_a_call() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.database.max_connections = 4;
            c.database.layout_interval = Duration::from_millis(100);
        })
        .build()
        .await;
    let tenant = app.onboard("steady").await;
    assert_eq!(app.state.tenant_db.lanes(), 1);
    let created = app
        .call(
            axum::http::Method::POST,
            "/api/v1/resources",
            &tenant.admin(),
            Some(json!({ "name": "laid out" })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let lanes_shown = async |app: &TestApp| {
        let text = app.get("/metrics").await.text();
        text.lines()
            .find_map(|l| l.strip_prefix("tenantry_db_tenant_lanes "))
            .map(str::to_owned)
    };
    app.add_tenant_rows(300).await;
    assert!(
        eventually(Duration::from_secs(10), async || app
            .state
            .tenant_db
            .lanes()
            == 4)
        .await,
        "the round did not lay out four lanes for 301 tenants"
    );
    assert!(
        eventually(Duration::from_secs(10), async || lanes_shown(&app)
            .await
            .as_deref()
            == Some("4"))
        .await,
        "the gauge does not show four lanes: {:?}",
        lanes_shown(&app).await
    );
    let page = app
        .call(
            axum::http::Method::GET,
            "/api/v1/resources",
            &tenant.admin(),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.json()["items"],
        json!([created.json()]),
        "the tenant is served its own rows on the new layout"
    );
    sqlx::query("update platform.tenants set status = 'deleted' where slug like 'bulk-%'")
        .execute(app.db())
        .await
        .expect("delete");
    assert!(
        eventually(Duration::from_secs(10), async || app
            .state
            .tenant_db
            .lanes()
            == 1)
        .await,
        "the round did not go back to one lane"
    );
}

/// A busy tenant spills over to idle lanes instead of queueing on its own lane's share
/// of the connections; while every lane is overloaded, it stays on its own; and a lane busy
/// with many tenants' work keeps it.
#[tokio::test]
async fn a_busy_tenant_spills_over_to_idle_lanes() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.database.max_connections = 4;
            c.database.tenant_pools = tenantry::db::PoolSetting::Fixed(2);
        })
        .build()
        .await;
    let t = app.onboard("busy").await;
    let pools = &app.state.tenant_db;
    // Up to twice its lane's two connections, the tenant stays home.
    let held: Vec<_> = (0..4)
        .map(|_| pools.for_tenant(t.id).1.expect("lane"))
        .collect();
    let home = held[0].lane();
    assert!(held.iter().all(|l| l.lane() == home));
    // Then it takes the other lane, up to twice its connections as well.
    let spilled: Vec<_> = (0..4)
        .map(|_| pools.for_tenant(t.id).1.expect("lane"))
        .collect();
    assert!(spilled.iter().all(|l| l.lane() != home));
    // Every lane overloaded: home again.
    assert_eq!(pools.for_tenant(t.id).1.expect("lane").lane(), home);
    drop((held, spilled));
    // A lane made busy by many tenants (ids on the same lane), none of them alone
    // filling it: each stays on its lane.
    let home = pools.for_tenant(t.id).1.expect("lane").lane();
    // (Tenants are hashed onto the two lanes by their id's low bits.)
    let neighbours: Vec<_> = std::iter::repeat_with(uuid::Uuid::now_v7)
        .filter(|id| (id.as_u128() as u64 % 2) as usize == home)
        .take(6)
        .map(|id| pools.for_tenant(id).1.expect("lane"))
        .collect();
    assert!(neighbours.iter().all(|l| l.lane() == home));
    assert_eq!(pools.for_tenant(t.id).1.expect("lane").lane(), home);
    drop(neighbours);
    // And a spilled-over scope is served: a request of the tenant answers.
    let page = app
        .call(
            axum::http::Method::GET,
            "/api/v1/resources",
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
}

/// Onboarding's statements (one-off, for a schema just created) run on the provisioning
/// pool: none of them stays prepared on the connections that serve requests.
#[tokio::test]
async fn onboarding_leaves_nothing_prepared_on_the_request_pools_and_no_provisioning_backend() {
    let app = TestApp::builder()
        .with_config(|c| c.database.max_connections = 2)
        .build()
        .await;
    let tenant = app.onboard("provisioned").await;
    let schema = TenantSchema::for_tenant(tenant.id);

    // Hold every connection of the pool requests use, and look at what each keeps.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(app.db().acquire().await.expect("acquire"));
    }
    for conn in &mut held {
        let prepared: i64 = sqlx::query_scalar(
            "select count(*) from pg_prepared_statements where strpos(statement, $1) > 0",
        )
        .bind(schema.name())
        .fetch_one(&mut **conn)
        .await
        .expect("prepared statements");
        assert_eq!(prepared, 0, "a statement of the new tenant stayed prepared");
    }

    // The provisioning connection that served it is closed soon after (it serves the
    // onboardings of two seconds at most, and is closed after a second idle): no backend
    // keeps the catalog entries of the schemas it created.
    let conn = &mut held[0];
    let closed = eventually(std::time::Duration::from_secs(6), async || {
        let left: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and application_name = 'tenantry-provisioning'",
        )
        .fetch_one(&mut **conn)
        .await
        .expect("backends");
        left == 0
    })
    .await;
    assert!(closed, "a provisioning connection outlived its onboarding");
}
