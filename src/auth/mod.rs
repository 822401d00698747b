//! Credentials: passwords, access tokens, API keys, and turning them into a principal.

pub mod api_key;
pub mod authenticate;
pub mod cache;
pub mod deny_list;
pub mod dev_key;
pub mod granted;
pub mod invalidation;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod secrets;
pub mod token_cache;
pub mod totp;
