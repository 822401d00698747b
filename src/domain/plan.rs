//! A tenant's plan, which sets its limits.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A plan, which sets limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Standard,
    Premium,
}

impl Plan {
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
