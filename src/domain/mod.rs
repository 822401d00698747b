//! The domain floor: values the other layers share, importing nothing of ours.

pub mod actor;
pub mod channel;
pub mod storable_json;

pub use actor::Actor;
pub use channel::Channel;
