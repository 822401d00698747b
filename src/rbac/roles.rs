//! The system roles seeded in every tenant; they cannot be edited or deleted.

use super::{Grant, Permission};

/// A role every tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemRole {
    pub name: &'static str,
    pub description: &'static str,
}

pub const ADMIN: SystemRole = SystemRole {
    name: "admin",
    description: "Everything",
};
pub const MANAGER: SystemRole = SystemRole {
    name: "manager",
    description: "Everything but deleting the tenant and managing roles",
};
pub const DEVELOPER: SystemRole = SystemRole {
    name: "developer",
    description: "Reads (but the audit log), resources, jobs and files",
};
pub const VIEWER: SystemRole = SystemRole {
    name: "viewer",
    description: "Reads, but the audit log and API keys",
};

pub const SYSTEM_ROLES: [SystemRole; 4] = [ADMIN, MANAGER, DEVELOPER, VIEWER];

impl SystemRole {
    /// The grants stored for this role, as the SPEC defines them.
    pub fn grants(self) -> Vec<Grant> {
        use Permission::*;
        let reads = Permission::ALL
            .iter()
            .copied()
            .filter(|p| p.action() == "read" && *p != AuditRead);
        match self.name {
            "admin" => vec![Grant::All],
            "manager" => Permission::ALL
                .iter()
                .copied()
                .filter(|p| !matches!(p, TenantDelete | RolesManage))
                .map(Grant::One)
                .collect(),
            "developer" => reads
                .filter(|p| p.resource() != "resources")
                .map(Grant::One)
                .chain([
                    Grant::Resource("resources"),
                    Grant::One(JobsCreate),
                    Grant::One(JobsCancel),
                    Grant::One(FilesUpload),
                    Grant::One(FilesDelete),
                ])
                .collect(),
            _ => reads
                .filter(|p| *p != ApiKeysRead)
                .map(Grant::One)
                .collect(),
        }
    }

    pub fn is_system(name: &str) -> bool {
        SYSTEM_ROLES.iter().any(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::PermissionSet;
    use Permission::*;

    fn allowed(role: SystemRole) -> PermissionSet {
        PermissionSet::new(role.grants())
    }

    #[test]
    fn admin_holds_everything() {
        assert_eq!(allowed(ADMIN).expanded(), Permission::ALL);
    }

    #[test]
    fn manager_lacks_only_tenant_delete_and_roles_manage() {
        let manager = allowed(MANAGER);
        let missing: Vec<_> = Permission::ALL
            .iter()
            .filter(|p| !manager.allows(**p))
            .collect();
        assert_eq!(missing, [&TenantDelete, &RolesManage]);
    }

    #[test]
    fn developer_reads_and_builds() {
        let dev = allowed(DEVELOPER);
        for p in [
            ResourcesCreate,
            ResourcesDelete,
            JobsCreate,
            JobsCancel,
            FilesUpload,
            FilesDelete,
            ApiKeysRead,
            UsersRead,
        ] {
            assert!(dev.allows(p), "{p}");
        }
        for p in [
            AuditRead,
            UsersCreate,
            RolesAssign,
            ApiKeysManage,
            TenantUpdate,
            NotificationsSend,
        ] {
            assert!(!dev.allows(p), "{p}");
        }
    }

    #[test]
    fn viewer_only_reads() {
        let viewer = allowed(VIEWER);
        for p in Permission::ALL {
            let expected = p.action() == "read" && !matches!(p, AuditRead | ApiKeysRead);
            assert_eq!(viewer.allows(*p), expected, "{p}");
        }
    }
}
