//! The autoscaling decision: a pure, deterministic function of the policy, the current
//! capacity, what was decided before ([`History`]), the time and the measured load.
//!
//! The evaluator and `POST /api/v1/scaling/simulate` both call [`decide`], so a
//! simulation shows exactly what the live engine would do. For one sample:
//!
//! 1. **Recommendation.** `needed = ceil(rps / target_rps_per_unit)`. While
//!    `|rps / (current × target) − 1| ≤ tolerance` the recommendation is `current`
//!    (inside the tolerance band small swings change nothing); otherwise it is `needed`.
//!    Either way it is clamped to `[min, max]`.
//! 2. **Scale up** when the recommendation is above `current`, unless the previous
//!    scale-up was less than `scale_up_cooldown_s` ago (then hold).
//! 3. **Scale down** when it is below `current`: only to the highest recommendation of
//!    the last `scale_down_stabilization_s` seconds (this one included), so one quiet
//!    sample cannot undo capacity a busy one asked for a moment ago.
//! 4. **Bounds** win last: the result is clamped to `[min, max]` even against a cooldown
//!    (a policy whose bounds moved takes effect at the next decision).
//!
//! Every decision carries a sentence saying which rule decided it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::Policy;

/// What a decision does to the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ScaleUp,
    ScaleDown,
    None,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::None => "none",
        }
    }
}

/// One recommendation kept for the stabilization window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Seconds (any fixed origin: the evaluator uses the Unix epoch, `simulate` the
    /// client's `t`).
    pub t: f64,
    pub desired: i32,
}

/// What earlier decisions left behind that later ones depend on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When the capacity last went up (seconds), for the cooldown.
    pub last_scale_up_at: Option<f64>,
    /// The recommendations of the stabilization window that can still be its highest:
    /// times increasing, values strictly decreasing (a sliding-window maximum). A
    /// recommendation followed by a higher or equal one can never be the maximum again,
    /// so it is dropped: the list stays short however often decisions are made.
    pub window: VecDeque<Recommendation>,
}

impl History {
    /// Forgets what fell out of the window, then adds `rec`; returns the window's highest.
    fn push(&mut self, rec: Recommendation, window_s: f64) -> i32 {
        while self.window.front().is_some_and(|r| rec.t - r.t >= window_s) {
            self.window.pop_front();
        }
        while self.window.back().is_some_and(|r| r.desired <= rec.desired) {
            self.window.pop_back();
        }
        self.window.push_back(rec);
        self.window.front().map_or(rec.desired, |r| r.desired)
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Decision {
    /// The sample's time, seconds.
    pub t: f64,
    /// The capacity after this decision.
    pub desired: i32,
    pub action: Action,
    /// What the load alone asks for (within bounds), before cooldown and stabilization.
    pub recommendation: i32,
    /// Which rule decided, in words.
    pub reason: String,
}

/// Decides the capacity for load `rps` at time `t` (seconds), given the capacity now and
/// the history; returns the decision and the history to pass to the next call.
///
/// Total: a negative or non-finite `rps` counts as no load; times that go backwards
/// (clock skew between replicas) only make it more conservative (the cooldown and the
/// window last longer).
pub fn decide(
    policy: &Policy,
    current: i32,
    mut history: History,
    t: f64,
    rps: f64,
) -> (Decision, History) {
    let rps = if rps.is_finite() && rps > 0.0 {
        rps
    } else {
        0.0
    };
    let (min, max) = (policy.min_capacity, policy.max_capacity);
    let target = policy.target_rps_per_unit;
    // One quotient feeds both the band test and `needed`, so the two always agree: below
    // the band `needed ≤ current`, above it `needed > current` (monotone in the load).
    let units = rps / target;
    // `as` saturates: an absurd load asks for i32::MAX units, which the clamp bounds.
    let needed = units.ceil() as i32;
    let in_band = current > 0 && (units / f64::from(current) - 1.0).abs() <= policy.tolerance;
    let recommendation = clamp(if in_band { current } else { needed }, min, max);
    let load = format!(
        "load {rps:.1} rps needs {} at {target} rps/unit",
        units_text(needed)
    );
    let window_s = f64::from(policy.scale_down_stabilization_s);
    let highest = history.push(
        Recommendation {
            t,
            desired: recommendation,
        },
        window_s,
    );

    let (desired, reason) = if recommendation > current {
        let cooldown = f64::from(policy.scale_up_cooldown_s);
        match history.last_scale_up_at {
            Some(up) if t - up < cooldown => (
                current,
                format!(
                    "{load}; scale-up to {recommendation} held: the previous scale-up was {:.0} s ago, cooldown {cooldown:.0} s",
                    t - up
                ),
            ),
            _ => (
                recommendation,
                format!("{load}; scaling up from {current} to {recommendation}"),
            ),
        }
    } else if recommendation < current {
        let to = highest.min(current);
        if to == current {
            (
                current,
                format!(
                    "{load}; holding {current}: {highest} was recommended within the last {window_s:.0} s"
                ),
            )
        } else if to > recommendation {
            (
                to,
                format!(
                    "{load}; scaling down from {current} to {to}, the highest recommendation within the last {window_s:.0} s"
                ),
            )
        } else {
            (to, format!("{load}; scaling down from {current} to {to}"))
        }
    } else if in_band {
        (
            current,
            format!(
                "{load}; holding {current}: {:.0}% of capacity is within the {:.0}% tolerance",
                units / f64::from(current.max(1)) * 100.0,
                policy.tolerance * 100.0
            ),
        )
    } else if needed == current {
        (current, format!("{load}; holding {current}"))
    } else {
        (
            current,
            format!("{load}; holding {current}, the policy bound [{min}, {max}]"),
        )
    };

    let bounded = clamp(desired, min, max);
    let reason = if bounded == desired {
        reason
    } else {
        format!("{reason}; moved to {bounded} to stay within the policy bounds [{min}, {max}]")
    };
    let action = match bounded.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleUp,
        std::cmp::Ordering::Less => Action::ScaleDown,
        std::cmp::Ordering::Equal => Action::None,
    };
    if action == Action::ScaleUp {
        history.last_scale_up_at = Some(t);
    }
    (
        Decision {
            t,
            desired: bounded,
            action,
            recommendation,
            reason,
        },
        history,
    )
}

/// `min ≤ result ≤ max` whatever the inputs (`max` wins a crossed pair).
fn clamp(value: i32, min: i32, max: i32) -> i32 {
    value.max(min).min(max)
}

fn units_text(units: i32) -> String {
    if units == 1 {
        "1 unit".to_owned()
    } else {
        format!("{units} units")
    }
}

/// Requests per second over the 60 s before now, from per-minute rollup buckets:
/// everything counted so far in the current minute (`current`, `seconds_into_minute` of
/// it have passed) plus the previous minute's count (`previous`) weighted by the part of
/// that minute still inside the window. A steady load of r rps gives exactly r at any
/// point of the minute, and a burst shows up at the next evaluation instead of a minute
/// later.
pub fn request_rate(previous: i64, current: i64, seconds_into_minute: f64) -> f64 {
    let elapsed = seconds_into_minute.clamp(0.0, 60.0);
    let previous = previous.max(0) as f64 * (60.0 - elapsed) / 60.0;
    (previous + current.max(0) as f64) / 60.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(min: i32, max: i32) -> Policy {
        Policy {
            min_capacity: min,
            max_capacity: max,
            target_rps_per_unit: 50.0,
            tolerance: 0.1,
            scale_up_cooldown_s: 60,
            scale_down_stabilization_s: 300,
        }
    }

    /// Runs samples `(t, rps)` in order from `current` and a fresh history.
    fn run(policy: &Policy, current: i32, samples: &[(f64, f64)]) -> Vec<Decision> {
        let mut history = History::default();
        let mut current = current;
        samples
            .iter()
            .map(|&(t, rps)| {
                let (decision, next) =
                    decide(policy, current, std::mem::take(&mut history), t, rps);
                history = next;
                current = decision.desired;
                decision
            })
            .collect()
    }

    #[test]
    fn scales_up_to_the_load_divided_by_the_target() {
        let d = &run(&policy(1, 10), 1, &[(0.0, 210.0)])[0];
        assert_eq!((d.desired, d.action), (5, Action::ScaleUp));
        assert!(d.reason.contains("scaling up from 1 to 5"), "{}", d.reason);
    }

    #[test]
    fn holds_inside_the_tolerance_band() {
        // 2 units × 50 = 100 rps; 108 rps is 8% over: no change. 111 is 11% over.
        let d = &run(&policy(1, 10), 2, &[(0.0, 108.0)])[0];
        assert_eq!((d.desired, d.action), (2, Action::None));
        assert!(d.reason.contains("tolerance"), "{}", d.reason);
        let d = &run(&policy(1, 10), 2, &[(0.0, 91.0)])[0];
        assert_eq!(d.desired, 2);
        assert_eq!(run(&policy(1, 10), 2, &[(0.0, 111.0)])[0].desired, 3);
    }

    #[test]
    fn a_second_scale_up_waits_for_the_cooldown() {
        let decisions = run(
            &policy(1, 10),
            1,
            &[(0.0, 100.0), (30.0, 400.0), (59.0, 400.0), (60.0, 400.0)],
        );
        let desired: Vec<_> = decisions.iter().map(|d| d.desired).collect();
        assert_eq!(desired, [2, 2, 2, 8]);
        assert!(
            decisions[1].reason.contains("cooldown 60 s"),
            "{}",
            decisions[1].reason
        );
    }

    #[test]
    fn scales_down_only_to_the_highest_recommendation_of_the_window() {
        let decisions = run(
            &policy(1, 10),
            1,
            &[
                (0.0, 400.0),   // up to 8
                (100.0, 200.0), // needs 4: 8 is in the window
                (200.0, 100.0), // needs 2: 8 still in the window
                (300.0, 100.0), // 8 left the window (300 s old); highest is 4
                (400.0, 100.0), // 4 left; highest is 2
            ],
        );
        let desired: Vec<_> = decisions.iter().map(|d| d.desired).collect();
        assert_eq!(desired, [8, 8, 8, 4, 2]);
        assert!(
            decisions[1].reason.contains("holding 8"),
            "{}",
            decisions[1].reason
        );
        assert_eq!(decisions[3].action, Action::ScaleDown);
        assert!(decisions[3].reason.contains("highest recommendation"));
    }

    #[test]
    fn stays_within_the_bounds() {
        let d = &run(&policy(2, 4), 3, &[(0.0, 10_000.0)])[0];
        assert_eq!(d.desired, 4);
        let d = &run(&policy(2, 4), 3, &[(0.0, 0.0)])[0];
        assert_eq!(d.desired, 2);
        // A capacity outside new bounds moves into them, cooldown or not.
        let d = &run(&policy(5, 10), 1, &[(0.0, 0.0)])[0];
        assert_eq!((d.desired, d.action), (5, Action::ScaleUp));
        let d = &run(&policy(1, 3), 9, &[(0.0, 1_000.0)])[0];
        assert_eq!((d.desired, d.action), (3, Action::ScaleDown));
    }

    #[test]
    fn the_window_list_stays_short() {
        let mut history = History::default();
        for i in 0..10_000 {
            history.push(
                Recommendation {
                    t: f64::from(i),
                    desired: 5,
                },
                300.0,
            );
        }
        assert_eq!(history.window.len(), 1);
    }

    #[test]
    fn rate_of_the_last_minute_from_minute_buckets() {
        // 10 rps steady: 600 last minute, 150 in the 15 s of this one.
        assert!((request_rate(600, 150, 15.0) - 10.0).abs() < 1e-9);
        assert_eq!(request_rate(0, 0, 30.0), 0.0);
        assert!((request_rate(0, 600, 59.0) - 10.0).abs() < 1e-9);
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        (
            1..20i32,
            0..30i32,
            1.0..500.0f64,
            0.0..0.9f64,
            0..200i32,
            0..600i32,
        )
            .prop_map(
                |(min, span, target, tolerance, cooldown, stabilization)| Policy {
                    min_capacity: min,
                    max_capacity: min + span,
                    target_rps_per_unit: target,
                    tolerance,
                    scale_up_cooldown_s: cooldown,
                    scale_down_stabilization_s: stabilization,
                },
            )
    }

    /// Samples with non-decreasing times (gaps 0–120 s) and loads 0–20,000 rps.
    fn arb_samples() -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop::collection::vec((0.0..120.0f64, 0.0..20_000.0f64), 1..60).prop_map(|steps| {
            let mut t = 0.0;
            steps
                .into_iter()
                .map(|(gap, rps)| {
                    t += gap;
                    (t, rps)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn always_within_bounds(policy in arb_policy(), current in 0..100i32, samples in arb_samples()) {
            for d in run(&policy, current, &samples) {
                prop_assert!(d.desired >= policy.min_capacity && d.desired <= policy.max_capacity, "{d:?}");
            }
        }

        #[test]
        fn monotone_in_load(
            policy in arb_policy(),
            current in 0..60i32,
            samples in arb_samples(),
            t_gap in 0.0..120.0f64,
            a in 0.0..20_000.0f64,
            b in 0.0..20_000.0f64,
        ) {
            // Same past, same time: more load never gives less capacity.
            let mut history = History::default();
            let mut current = current;
            let mut t = 0.0;
            for &(st, rps) in &samples {
                let (d, next) = decide(&policy, current, history, st, rps);
                history = next;
                current = d.desired;
                t = st;
            }
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let (d_low, _) = decide(&policy, current, history.clone(), t + t_gap, low);
            let (d_high, _) = decide(&policy, current, history, t + t_gap, high);
            prop_assert!(d_low.desired <= d_high.desired, "{d_low:?} vs {d_high:?}");
        }

        #[test]
        fn never_scales_down_below_a_recommendation_in_the_window(
            policy in arb_policy(),
            current in 1..60i32,
            samples in arb_samples(),
        ) {
            let decisions = run(&policy, current, &samples);
            let window = f64::from(policy.scale_down_stabilization_s);
            for (i, d) in decisions.iter().enumerate() {
                if d.action != Action::ScaleDown {
                    continue;
                }
                for earlier in &decisions[..=i] {
                    if d.t - earlier.t < window || std::ptr::eq(earlier, d) {
                        prop_assert!(d.desired >= earlier.recommendation,
                            "scaled down to {} at {} while {} was recommended at {}", d.desired, d.t, earlier.recommendation, earlier.t);
                    }
                }
            }
        }

        #[test]
        fn never_flaps_on_a_constant_load(
            policy in arb_policy(),
            current in 0..60i32,
            rps in 0.0..20_000.0f64,
            gaps in prop::collection::vec(0.0..120.0f64, 1..60),
        ) {
            let mut t = 0.0;
            let samples: Vec<_> = gaps.into_iter().map(|gap| { t += gap; (t, rps) }).collect();
            let decisions = run(&policy, current, &samples);
            // From a fresh start a constant load moves the capacity at most once, at once.
            for d in &decisions[1..] {
                prop_assert_eq!(d.action, Action::None, "{:?}", d);
            }
        }

        #[test]
        fn never_reverses_direction_on_a_constant_load_whatever_the_past(
            policy in arb_policy(),
            current in 0..60i32,
            past in arb_samples(),
            rps in 0.0..20_000.0f64,
            gaps in prop::collection::vec(0.0..200.0f64, 1..60),
        ) {
            let mut history = History::default();
            let mut current = current;
            let mut t = 0.0;
            for &(st, load) in &past {
                let (d, next) = decide(&policy, current, history, st, load);
                history = next;
                current = d.desired;
                t = st;
            }
            let mut seen = Action::None;
            for gap in gaps {
                t += gap;
                let (d, next) = decide(&policy, current, history, t, rps);
                history = next;
                current = d.desired;
                if d.action != Action::None {
                    prop_assert!(seen == Action::None || seen == d.action, "flapped: {:?} then {:?}", seen, d);
                    seen = d.action;
                }
            }
        }

        #[test]
        fn deterministic(policy in arb_policy(), current in 0..60i32, samples in arb_samples()) {
            prop_assert_eq!(run(&policy, current, &samples), run(&policy, current, &samples));
        }
    }
}
