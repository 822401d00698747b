//! Role-based access control: the system roles every tenant gets and the owner model.
//! The permission catalog and grants are values of the domain floor
//! ([`crate::domain::permission`]), re-exported here where the policy uses them.

pub mod owner_model;
pub mod roles;

pub use crate::domain::permission::{
    self, Grant, Need, Permission, PermissionSet, UnknownPermission, needs,
};
