//! The domain floor: values the other layers share, importing nothing of ours.

pub mod actor;
pub mod channel;
pub mod email;
pub mod job_type;
pub mod permission;
pub mod plan;
pub mod role_name;
pub mod storable_json;
pub mod template_name;
pub mod tenant;
pub mod tenant_settings;
pub mod tenant_slug;

pub use actor::Actor;
pub use channel::Channel;
pub use email::Email;
pub use job_type::JobType;
pub use permission::{Grant, Permission};
pub use plan::Plan;
pub use role_name::RoleName;
pub use tenant::Tenant;
pub use tenant_slug::TenantSlug;
