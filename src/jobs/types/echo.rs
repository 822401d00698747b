//! `echo`: returns its payload. For trying the machinery: `delay_ms` (≤ 10,000) waits
//! first, `fail_times` makes the first that many attempts fail.

use super::invalid;
use crate::error::FieldError;

/// The longest wait an echo job may ask for.
pub const MAX_DELAY_MS: u64 = 10_000;

/// The most attempts an echo job may ask to fail first.
pub const MAX_FAIL_TIMES: u64 = 100;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub delay_ms: u64,
    pub fail_times: u32,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, FieldError> {
        let number = |name: &str, max: u64| -> Result<u64, FieldError> {
            match payload.get(name) {
                None | Some(serde_json::Value::Null) => Ok(0),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| invalid(name, &format!("must be an integer from 0 to {max}"))),
            }
        };
        Ok(Self {
            delay_ms: number("delay_ms", MAX_DELAY_MS)?,
            fail_times: u32::try_from(number("fail_times", MAX_FAIL_TIMES)?).unwrap_or(100),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delay_and_fail_times_are_bounded() {
        assert_eq!(Params::parse(&json!({})), Ok(Params::default()));
        assert_eq!(
            Params::parse(&json!({"delay_ms": 10, "fail_times": 2})),
            Ok(Params {
                delay_ms: 10,
                fail_times: 2
            })
        );
        assert!(Params::parse(&json!({"delay_ms": 10_001})).is_err());
        assert!(Params::parse(&json!({"delay_ms": -1})).is_err());
        assert!(Params::parse(&json!({"fail_times": "two"})).is_err());
    }
}
