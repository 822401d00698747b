//! Rules about text that several domains share.
//!
//! Names (tenant, user, role, template, API key, resource), descriptions and email
//! subjects are single lines of printable text: they end up in mail headers, log lines
//! and other people's screens, where a CR/LF or an escape sequence is an injection.

use crate::error::FieldError;

/// What a client is told when a value holds a control character.
pub const NO_CONTROL_MESSAGE: &str =
    "must not contain control characters (U+0000 to U+001F, U+007F to U+009F)";

/// The rule as a JSON Schema (ECMA-262) pattern, for the OpenAPI document.
pub const NO_CONTROL_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// [`NO_CONTROL_PATTERN`] that also needs one character other than white space: a
/// required name.
pub const NO_CONTROL_NOT_BLANK_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// Whether `value` holds a control character: Unicode's `Cc` category, which is exactly
/// U+0000–U+001F and U+007F–U+009F ([`char::is_control`]).
pub fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// `value` without control characters, or a 422 field error naming `field`.
pub fn no_control(field: &str, value: &str) -> Result<(), FieldError> {
    if has_control(value) {
        Err(FieldError::new(field, NO_CONTROL_MESSAGE))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c0_del_and_c1_are_control_characters_and_nothing_else() {
        for bad in [
            "a\rb", "a\nb", "\t", "\0", "x\u{1f}", "\u{7f}", "\u{85}", "\u{9f}",
        ] {
            assert!(has_control(bad), "{bad:?}");
        }
        for good in [
            "Acme Ltd.",
            "Zoë & Co",
            "",
            "\u{a0}",
            "\u{2028}",
            "İstanbul",
        ] {
            assert!(!has_control(good), "{good:?}");
        }
    }

    #[test]
    fn the_pattern_states_the_same_range() {
        assert!(NO_CONTROL_PATTERN.contains(r"\u0000-\u001F\u007F-\u009F"));
    }
}
