//! A tenant's scaling policy: the bounds and tuning the decision function works with,
//! validated against the tenant's plan.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{error::FieldError, services::tenants::Plan};

/// Defaults of the SPEC: tolerance 0.1, scale-up cooldown 60 s, stabilization 300 s.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
pub const DEFAULT_SCALE_UP_COOLDOWN_S: i32 = 60;
pub const DEFAULT_SCALE_DOWN_STABILIZATION_S: i32 = 300;
/// Requests/s one capacity unit serves unless the tenant says otherwise (onboarding).
pub const DEFAULT_TARGET_RPS_PER_UNIT: f64 = 50.0;

/// Longest cooldown or stabilization window accepted: a day.
const MAX_WINDOW_S: i32 = 86_400;
/// Largest target accepted; beyond it a unit would never be needed.
const MAX_TARGET_RPS_PER_UNIT: f64 = 1_000_000.0;

/// A validated policy. Construct it with [`PolicyInput::validate`] (or [`Policy::for_plan`]);
/// the decision function relies on `min ≤ max`, a positive target and `0 ≤ tolerance < 1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Policy {
    /// Lowest capacity (units); at least the plan's minimum.
    pub min_capacity: i32,
    /// Highest capacity (units); at most the plan's maximum.
    pub max_capacity: i32,
    /// Requests per second one unit is meant to serve.
    pub target_rps_per_unit: f64,
    /// No change while the load per unit is within this fraction of the target.
    pub tolerance: f64,
    /// Seconds after a scale-up during which no further scale-up happens.
    pub scale_up_cooldown_s: i32,
    /// Seconds of recommendations a scale-down looks back on: capacity goes down only to
    /// the highest of them.
    pub scale_down_stabilization_s: i32,
}

impl Policy {
    /// The policy a new tenant starts with: the plan's bounds and the SPEC's defaults.
    pub fn for_plan(plan: Plan) -> Self {
        let (min_capacity, max_capacity) = plan.capacity_bounds();
        Self {
            min_capacity,
            max_capacity,
            target_rps_per_unit: DEFAULT_TARGET_RPS_PER_UNIT,
            tolerance: DEFAULT_TOLERANCE,
            scale_up_cooldown_s: DEFAULT_SCALE_UP_COOLDOWN_S,
            scale_down_stabilization_s: DEFAULT_SCALE_DOWN_STABILIZATION_S,
        }
    }

    /// This policy with its bounds clamped into what `plan` allows: a tenant moved to a
    /// smaller plan is held to it before anybody edits the policy. (Clamping both ends
    /// keeps `min ≤ max`.)
    pub fn within_plan(mut self, plan: Plan) -> Self {
        let (lo, hi) = plan.capacity_bounds();
        self.min_capacity = self.min_capacity.clamp(lo, hi);
        self.max_capacity = self.max_capacity.clamp(lo, hi).max(self.min_capacity);
        self
    }
}

/// A policy as a client sends it (`PUT /api/v1/scaling/policy`, or `simulate`).
/// Bounds and target are required; the rest take the SPEC's defaults.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PolicyInput {
    /// Within the plan's bounds: free 1–2, standard 1–10, premium 2–50.
    #[schema(minimum = 1, maximum = 50)]
    pub min_capacity: i32,
    /// Within the plan's bounds, and at least `min_capacity`.
    #[schema(minimum = 1, maximum = 50)]
    pub max_capacity: i32,
    /// More than 0, at most 1,000,000.
    #[schema(exclusive_minimum = 0, maximum = 1_000_000)]
    pub target_rps_per_unit: f64,
    /// 0 to 0.99; default 0.1.
    #[schema(minimum = 0, maximum = 0.99)]
    pub tolerance: Option<f64>,
    /// 0 to 86400; default 60.
    #[schema(minimum = 0, maximum = 86400)]
    pub scale_up_cooldown_s: Option<i32>,
    /// 0 to 86400; default 300.
    #[schema(minimum = 0, maximum = 86400)]
    pub scale_down_stabilization_s: Option<i32>,
}

impl PolicyInput {
    /// Checks every field and the plan's bounds; the errors name the fields. The API
    /// answers them with 422 — bounds outside the plan too, naming
    /// the field (not a 403): the caller may manage scaling, the value is what is wrong,
    /// and the message says which range the plan allows. `prefix` names the object in
    /// the request (`policy.` inside `simulate`).
    pub fn validate(self, plan: Plan, prefix: &str) -> Result<Policy, Vec<FieldError>> {
        let (lo, hi) = plan.capacity_bounds();
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: String| {
            errors.push(FieldError::new(format!("{prefix}{field}"), message));
        };
        let plan_range = format!("must be between {lo} and {hi} on the {plan} plan");
        if !(lo..=hi).contains(&self.min_capacity) {
            fail("min_capacity", plan_range.clone());
        }
        if !(lo..=hi).contains(&self.max_capacity) {
            fail("max_capacity", plan_range);
        } else if self.max_capacity < self.min_capacity {
            fail("max_capacity", "must be at least min_capacity".to_owned());
        }
        if !(self.target_rps_per_unit > 0.0 && self.target_rps_per_unit <= MAX_TARGET_RPS_PER_UNIT)
        {
            fail(
                "target_rps_per_unit",
                format!("must be more than 0 and at most {MAX_TARGET_RPS_PER_UNIT}"),
            );
        }
        let tolerance = self.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if !(0.0..1.0).contains(&tolerance) {
            fail("tolerance", "must be at least 0 and less than 1".to_owned());
        }
        let cooldown = self
            .scale_up_cooldown_s
            .unwrap_or(DEFAULT_SCALE_UP_COOLDOWN_S);
        if !(0..=MAX_WINDOW_S).contains(&cooldown) {
            fail(
                "scale_up_cooldown_s",
                format!("must be between 0 and {MAX_WINDOW_S}"),
            );
        }
        let stabilization = self
            .scale_down_stabilization_s
            .unwrap_or(DEFAULT_SCALE_DOWN_STABILIZATION_S);
        if !(0..=MAX_WINDOW_S).contains(&stabilization) {
            fail(
                "scale_down_stabilization_s",
                format!("must be between 0 and {MAX_WINDOW_S}"),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            min_capacity: self.min_capacity,
            max_capacity: self.max_capacity,
            target_rps_per_unit: self.target_rps_per_unit,
            tolerance,
            scale_up_cooldown_s: cooldown,
            scale_down_stabilization_s: stabilization,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(min: i32, max: i32) -> PolicyInput {
        PolicyInput {
            min_capacity: min,
            max_capacity: max,
            target_rps_per_unit: 50.0,
            tolerance: None,
            scale_up_cooldown_s: None,
            scale_down_stabilization_s: None,
        }
    }

    #[test]
    fn defaults_fill_the_optional_fields() {
        let policy = input(1, 10).validate(Plan::Standard, "").expect("valid");
        assert_eq!(policy.tolerance, 0.1);
        assert_eq!(policy.scale_up_cooldown_s, 60);
        assert_eq!(policy.scale_down_stabilization_s, 300);
    }

    #[test]
    fn bounds_outside_the_plan_are_refused() {
        assert!(input(1, 3).validate(Plan::Free, "").is_err());
        assert!(input(1, 10).validate(Plan::Standard, "").is_ok());
        assert!(input(1, 10).validate(Plan::Premium, "").is_err());
        assert!(input(5, 4).validate(Plan::Premium, "").is_err());
    }

    #[test]
    fn a_smaller_plan_narrows_an_existing_policy() {
        let premium = Policy::for_plan(Plan::Premium);
        let narrowed = premium.within_plan(Plan::Free);
        assert_eq!((narrowed.min_capacity, narrowed.max_capacity), (2, 2));
        let standard = Policy::for_plan(Plan::Standard).within_plan(Plan::Free);
        assert_eq!((standard.min_capacity, standard.max_capacity), (1, 2));
    }
}
