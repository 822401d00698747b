//! Tenant schema names: derived only from a tenant id, never from request input.

use std::fmt;

use uuid::Uuid;

/// The PostgreSQL schema that holds one tenant's tables: `t_<uuid as 32 hex chars>`.
///
/// The only constructor takes a [`Uuid`], so the name is always 34 characters of
/// `[a-z0-9_]`; it is still quoted as an identifier wherever it reaches SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSchema {
    name: String,
}

impl TenantSchema {
    pub fn for_tenant(tenant_id: Uuid) -> Self {
        Self {
            name: format!("t_{}", tenant_id.simple()),
        }
    }

    /// The bare name, for use as a bind parameter (`set_config`, catalog lookups).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as a quoted SQL identifier, for SQL text.
    pub fn quoted(&self) -> String {
        // The name cannot contain a double quote, but quoting is the rule for every
        // identifier that reaches SQL text.
        super::quote_ident(&self.name)
    }
}

impl fmt::Display for TenantSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_t_and_32_hex_chars() {
        let id = Uuid::parse_str("0192f0c4-6d2a-7c3e-9f10-aabbccddeeff").expect("valid uuid");
        let schema = TenantSchema::for_tenant(id);
        assert_eq!(schema.name(), "t_0192f0c46d2a7c3e9f10aabbccddeeff");
        assert_eq!(schema.quoted(), "\"t_0192f0c46d2a7c3e9f10aabbccddeeff\"");
    }
}
