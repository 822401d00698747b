//! A tenant's plan, which sets its limits.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// A plan, which sets limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Standard,
    Premium,
}

impl Plan {
    /// A plan named in a request, or the field error naming the three (in serde's words,
    /// as an unknown value of a typed field is told; the value cut to 64 characters).
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        raw.parse().map_err(|()| {
            let shown: String = raw.chars().take(64).collect();
            FieldError::new(
                field,
                format!("unknown variant `{shown}`, expected one of `free`, `standard`, `premium`"),
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Standard => "standard",
            Plan::Premium => "premium",
        }
    }

    /// Jobs the tenant runs at once across the cluster: free 2, standard 8, premium 32.
    pub fn job_concurrency(self) -> usize {
        match self {
            Plan::Free => 2,
            Plan::Standard => 8,
            Plan::Premium => 32,
        }
    }

    /// Capacity bounds of the autoscaling policy: free 1–2, standard 1–10, premium 2–50.
    pub fn capacity_bounds(self) -> (i32, i32) {
        match self {
            Plan::Free => (1, 2),
            Plan::Standard => (1, 10),
            Plan::Premium => (2, 50),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "free" => Ok(Plan::Free),
            "standard" => Ok(Plan::Standard),
            "premium" => Ok(Plan::Premium),
            _ => Err(()),
        }
    }
}

/// How a stored plan is read (the column is checked to hold one of the three).
impl TryFrom<String> for Plan {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|()| format!("unknown plan {s:?}"))
    }
}
