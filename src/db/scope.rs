//! The tenant scope: the one way code reaches a tenant's tables.
//!
//! Statements are written once as templates naming the tenant schema `{schema}`
//! (`select id from {schema}.resources where id = $1`); the scope fills in its own
//! quoted schema name. Nothing is set on the connection, so a pooled connection carries
//! nothing from one tenant to the next borrower.
//!
//! Why schema-qualified SQL rather than a transaction-local `search_path`: it needs no
//! extra round trips (`scripts/bench-tenant-scope.sh` measures both; the figures are in
//! `docs/tenant-isolation.md`). An unqualified table name finds no tenant table at all,
//! because no connection's `search_path` ever names a tenant schema, so forgetting
//! `{schema}` fails loudly instead of reading another tenant's rows.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool, Postgres, SqlSafeStr, SqlStr, Transaction, pool::PoolConnection};
use uuid::Uuid;

use super::{pools::LaneUse, schema::TenantSchema};

/// Placeholder for the tenant schema in statement templates.
const SCHEMA_PLACEHOLDER: &str = "{schema}";

// The scopes the pools hand out; written here because this file imports `pools` (for
// `LaneUse`), not the other way round.
impl super::TenantPools {
    /// The tenant's schema, on the pool [`Self::for_tenant`] chooses.
    pub fn scope(&self, tenant_id: Uuid) -> TenantScope {
        let (pool, lane) = self.for_tenant(tenant_id);
        TenantScope::on_lane(pool, lane, tenant_id)
    }

    /// A new tenant's schema, on the provisioning pool.
    pub fn provisioning_scope(&self, tenant_id: Uuid) -> TenantScope {
        TenantScope::new(self.provisioning().clone(), tenant_id)
    }
}

/// A handle that reaches exactly one tenant's schema.
#[derive(Debug, Clone)]
pub struct TenantScope {
    pool: PgPool,
    tenant_id: Uuid,
    schema: TenantSchema,
    /// The lane this scope counts against while it lives (see [`super::pools`]).
    _lane: Option<Arc<LaneUse>>,
}

impl TenantScope {
    /// Scopes `pool` to `tenant_id`. Callers are the tenant context (for requests) and the
    /// job worker (for jobs); both got the id from an authenticated source.
    pub fn new(pool: PgPool, tenant_id: Uuid) -> Self {
        Self {
            pool,
            tenant_id,
            schema: TenantSchema::for_tenant(tenant_id),
            _lane: None,
        }
    }

    /// Scopes the pool [`super::TenantPools::for_tenant`] chose, counting against its lane
    /// until the last clone of the scope is dropped.
    pub fn on_lane(pool: PgPool, lane: Option<LaneUse>, tenant_id: Uuid) -> Self {
        Self {
            _lane: lane.map(Arc::new),
            ..Self::new(pool, tenant_id)
        }
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    pub fn schema(&self) -> &TenantSchema {
        &self.schema
    }

    /// This tenant's statement for `template`. Templates are `'static`, so request
    /// data can never become SQL text: it travels only as bind parameters.
    pub fn sql(&self, template: &'static str) -> TenantSql {
        render(&self.schema, template)
    }

    /// A statement assembled from static parts (a shared select list and a filter).
    pub fn sql_parts(&self, parts: &[&'static str]) -> TenantSql {
        render_parts(&self.schema, parts)
    }

    /// The executor for statements built with [`Self::sql`].
    pub fn db(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a transaction for several statements of this tenant.
    pub async fn begin(&self) -> sqlx::Result<TenantTx> {
        Ok(TenantTx {
            tx: self.pool.begin().await?,
            tenant_id: self.tenant_id,
            schema: self.schema.clone(),
        })
    }

    /// A connection of this tenant's pool, for a query written once over
    /// [`TenantConn`] that runs outside a transaction.
    pub async fn acquire(&self) -> sqlx::Result<ScopedConn> {
        Ok(ScopedConn {
            conn: self.pool.acquire().await?,
            schema: self.schema.clone(),
        })
    }
}

/// Where a tenant statement runs: a [`TenantTx`], or a [`ScopedConn`] outside a
/// transaction. A query written over it is one function for both; both give the same
/// concrete `&mut PgConnection`, so the query's future is the same type whichever the
/// caller holds (no executor generics for a handler's future to trip over).
pub trait TenantConn: Send {
    fn sql_parts(&self, parts: &[&'static str]) -> TenantSql;
    fn conn(&mut self) -> &mut PgConnection;
}

/// A pooled connection scoped to one tenant's schema (see [`TenantScope::acquire`]).
#[derive(Debug)]
pub struct ScopedConn {
    conn: PoolConnection<Postgres>,
    schema: TenantSchema,
}

impl TenantConn for ScopedConn {
    fn sql_parts(&self, parts: &[&'static str]) -> TenantSql {
        render_parts(&self.schema, parts)
    }

    fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl TenantConn for TenantTx {
    fn sql_parts(&self, parts: &[&'static str]) -> TenantSql {
        TenantTx::sql_parts(self, parts)
    }

    fn conn(&mut self) -> &mut PgConnection {
        TenantTx::conn(self)
    }
}

/// A transaction over one tenant's schema; statements come from [`TenantTx::sql`].
#[derive(Debug)]
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant_id: Uuid,
    schema: TenantSchema,
}

impl TenantTx {
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    pub fn sql(&self, template: &'static str) -> TenantSql {
        render(&self.schema, template)
    }

    pub fn sql_parts(&self, parts: &[&'static str]) -> TenantSql {
        render_parts(&self.schema, parts)
    }

    /// The connection to run this transaction's statements on.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }
}

/// A statement rendered for one tenant schema.
#[derive(Debug)]
pub struct TenantSql(String);

impl TenantSql {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SqlSafeStr for TenantSql {
    fn into_sql_str(self) -> SqlStr {
        // Safe: a 'static template plus a schema name built from a UUID and quoted.
        sqlx::AssertSqlSafe(self.0).into_sql_str()
    }
}

fn render(schema: &TenantSchema, template: &'static str) -> TenantSql {
    debug_assert!(
        template.contains(SCHEMA_PLACEHOLDER),
        "tenant statement without {SCHEMA_PLACEHOLDER}: {template}"
    );
    TenantSql(template.replace(SCHEMA_PLACEHOLDER, &schema.quoted()))
}

fn render_parts(schema: &TenantSchema, parts: &[&'static str]) -> TenantSql {
    TenantSql(parts.concat().replace(SCHEMA_PLACEHOLDER, &schema.quoted()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_qualified_with_the_quoted_schema() {
        let id = Uuid::now_v7();
        let schema = TenantSchema::for_tenant(id);
        let sql = render(&schema, "select id from {schema}.resources where id = $1");
        assert_eq!(
            sql.as_str(),
            format!(
                "select id from \"t_{}\".resources where id = $1",
                id.simple()
            )
        );
    }
}
