//! The storable-JSON rule: a `jsonb` value whose numbers read back as they were sent.

use serde_json::Value;

/// The largest magnitude of a number in stored JSON.
const MAX_STORED_NUMBER: f64 = 1e300;
/// The rule as a field error states it.
pub const STORABLE_NUMBERS: &str = "numbers must be between -1e300 and 1e300";

/// Whether every number in `value` is within ±1e300. PostgreSQL stores a `jsonb` number
/// exactly, as `numeric`, and renders it back in full: a number near the largest 64-bit
/// float would be accepted, stored, and then fail to read back as one — every later read
/// of that row would fail. Such numbers are refused on the way in instead.
pub fn storable_numbers(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|f| f.abs() <= MAX_STORED_NUMBER),
        Value::Array(items) => items.iter().all(storable_numbers),
        Value::Object(fields) => fields.values().all(storable_numbers),
        _ => true,
    }
}
