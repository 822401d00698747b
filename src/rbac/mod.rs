//! Role-based access control: the permission catalog, the system roles every tenant
//! gets, and the check every route goes through.

pub mod owner_model;
pub mod permission;
pub mod roles;

pub use permission::{Grant, Need, Permission, PermissionSet, UnknownPermission, needs};
