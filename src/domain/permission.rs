//! Permissions: `resource:action` strings from a fixed catalog, and grants that may use
//! the wildcards `*` and `resource:*`.

use std::{collections::BTreeSet, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

macro_rules! catalog {
    ($($variant:ident => $name:literal,)*) => {
        /// One permission of the catalog.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($variant,)*
        }

        impl Permission {
            /// Every permission, in catalog order.
            pub const ALL: &[Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }
        }

        /// One type per permission of the catalog, so that a proof of holding it can name
        /// it in its type (`Granted<needs::UsersCreate>`, `crate::auth::granted`).
        pub mod needs {
            $(
                #[doc = concat!("`", $name, "` as a type.")]
                #[derive(Debug, Clone, Copy)]
                pub struct $variant;

                impl super::Need for $variant {
                    const PERMISSION: super::Permission = super::Permission::$variant;
                }
            )*
        }
    };
}

/// A permission as a type: the markers of [`needs`] implement it.
pub trait Need: Send + Sync + 'static {
    const PERMISSION: Permission;
}

catalog! {
    TenantRead => "tenant:read",
    TenantUpdate => "tenant:update",
    TenantDelete => "tenant:delete",
    UsersRead => "users:read",
    UsersCreate => "users:create",
    UsersUpdate => "users:update",
    UsersDelete => "users:delete",
    RolesRead => "roles:read",
    RolesManage => "roles:manage",
    RolesAssign => "roles:assign",
    ApiKeysRead => "api_keys:read",
    ApiKeysManage => "api_keys:manage",
    ResourcesRead => "resources:read",
    ResourcesCreate => "resources:create",
    ResourcesUpdate => "resources:update",
    ResourcesDelete => "resources:delete",
    JobsRead => "jobs:read",
    JobsCreate => "jobs:create",
    JobsCancel => "jobs:cancel",
    FilesRead => "files:read",
    FilesUpload => "files:upload",
    FilesDelete => "files:delete",
    NotificationsRead => "notifications:read",
    NotificationsSend => "notifications:send",
    NotificationsManageTemplates => "notifications:manage_templates",
    UsageRead => "usage:read",
    ScalingRead => "scaling:read",
    ScalingManage => "scaling:manage",
    AuditRead => "audit:read",
    WebhooksRead => "webhooks:read",
    WebhooksManage => "webhooks:manage",
}

impl Permission {
    pub fn resource(self) -> &'static str {
        self.as_str().split_once(':').map_or("", |(r, _)| r)
    }

    pub fn action(self) -> &'static str {
        self.as_str().split_once(':').map_or("", |(_, a)| a)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// A permission string that is not in the catalog (nor a valid wildcard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

/// What a role or an API key grants: one permission, a whole resource, or everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Grant {
    /// `*`
    All,
    /// `resource:*`
    Resource(&'static str),
    One(Permission),
}

impl Grant {
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Grant::All => true,
            Grant::Resource(resource) => permission.resource() == *resource,
            Grant::One(p) => *p == permission,
        }
    }

    /// The catalog permissions this grant covers.
    pub fn expand(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::ALL.iter().copied().filter(|p| self.allows(*p))
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::All => f.write_str("*"),
            Grant::Resource(resource) => write!(f, "{resource}:*"),
            Grant::One(p) => f.write_str(p.as_str()),
        }
    }
}

impl FromStr for Grant {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(Grant::All);
        }
        if let Some(resource) = s.strip_suffix(":*") {
            return Permission::ALL
                .iter()
                .map(|p| p.resource())
                .find(|r| *r == resource)
                .map(Grant::Resource)
                .ok_or_else(|| UnknownPermission(s.to_owned()));
        }
        s.parse().map(Grant::One)
    }
}

impl TryFrom<String> for Grant {
    type Error = UnknownPermission;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Grant> for String {
    fn from(g: Grant) -> Self {
        g.to_string()
    }
}

/// Everything a principal may do: the union of its grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    grants: BTreeSet<Grant>,
}

impl PermissionSet {
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Self {
        Self {
            grants: grants.into_iter().collect(),
        }
    }

    /// Parses stored grant strings, skipping any that a newer catalog no longer knows.
    pub fn from_stored<S: AsRef<str>>(grants: impl IntoIterator<Item = S>) -> Self {
        Self::new(grants.into_iter().filter_map(|g| g.as_ref().parse().ok()))
    }

    pub fn allows(&self, permission: Permission) -> bool {
        self.grants.iter().any(|g| g.allows(permission))
    }

    /// Whether this set holds everything `grant` would give: nobody grants more than
    /// they hold.
    pub fn covers(&self, grant: &Grant) -> bool {
        grant.expand().all(|p| self.allows(p))
    }

    pub fn covers_all(&self, other: &PermissionSet) -> bool {
        other.grants.iter().all(|g| self.covers(g))
    }

    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter()
    }

    /// The catalog permissions this set allows, for display.
    pub fn expanded(&self) -> Vec<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.allows(*p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(grants: &[&str]) -> PermissionSet {
        PermissionSet::new(grants.iter().map(|g| g.parse::<Grant>().expect("valid")))
    }

    #[test]
    fn every_catalog_name_round_trips() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
            assert_eq!(p.to_string().parse::<Grant>(), Ok(Grant::One(*p)));
        }
        assert_eq!(Permission::ALL.len(), 31);
    }

    #[test]
    fn wildcards_match_their_resource_or_everything() {
        let users = set(&["users:*"]);
        assert!(users.allows(Permission::UsersDelete));
        assert!(!users.allows(Permission::RolesRead));
        assert!(set(&["*"]).allows(Permission::AuditRead));
        assert!(set(&["files:read"]).allows(Permission::FilesRead));
        assert!(!set(&["files:read"]).allows(Permission::FilesUpload));
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert!("users:fly".parse::<Grant>().is_err());
        assert!("planets:*".parse::<Grant>().is_err());
        assert!("".parse::<Grant>().is_err());
        assert!("users".parse::<Grant>().is_err());
    }

    #[test]
    fn covering_needs_every_permission_of_the_grant() {
        let holder = set(&["users:read", "users:create"]);
        assert!(holder.covers(&"users:read".parse().expect("valid")));
        assert!(!holder.covers(&"users:*".parse().expect("valid")));
        assert!(!holder.covers(&Grant::All));
        assert!(set(&["*"]).covers(&Grant::All));
        let all_users = set(&["users:read", "users:create", "users:update", "users:delete"]);
        assert!(all_users.covers(&"users:*".parse().expect("valid")));
    }

    proptest! {
        /// A set covers another exactly when it allows every permission the other allows.
        #[test]
        fn covers_all_is_inclusion_of_allowed_permissions(
            a in proptest::collection::vec(0..Permission::ALL.len(), 0..10),
            b in proptest::collection::vec(0..Permission::ALL.len(), 0..10),
            a_wild in proptest::option::of(0..Permission::ALL.len()),
        ) {
            let mut holder = PermissionSet::new(a.iter().map(|i| Grant::One(Permission::ALL[*i])));
            if let Some(i) = a_wild {
                holder.grants.insert(Grant::Resource(Permission::ALL[i].resource()));
            }
            let wanted = PermissionSet::new(b.iter().map(|i| Grant::One(Permission::ALL[*i])));
            let inclusion = wanted.expanded().iter().all(|p| holder.allows(*p));
            prop_assert_eq!(holder.covers_all(&wanted), inclusion);
        }
    }
}
