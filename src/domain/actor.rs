//! Who acted: a user, an API key or a platform operator.

use uuid::Uuid;

/// What kind of caller acted, for audit entries and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    ApiKey(Uuid),
    Platform(Uuid),
}

impl Actor {
    pub fn kind(self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::Platform(_) => "platform",
        }
    }

    pub fn id(self) -> Uuid {
        match self {
            Actor::User(id) | Actor::ApiKey(id) | Actor::Platform(id) => id,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}
