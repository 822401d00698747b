//! Typed access to the variables, each error naming its variable: what every section
//! reads its values with.

use std::{fmt::Display, str::FromStr};

use super::ConfigError;

/// A variable lookup (the environment, or a map in tests).
pub(super) struct Vars<'a, F>(pub(super) &'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    /// The variable's value; an empty value counts as unset.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A comma-separated list; empty items are dropped.
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A comma-separated list of values that each parse.
    pub(super) fn parse_list<T>(&self, name: &'static str) -> Result<Vec<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.list(name)
            .iter()
            .map(|raw| {
                raw.parse().map_err(|e: T::Err| ConfigError {
                    name,
                    reason: format!("cannot use {raw:?}: {e}"),
                })
            })
            .collect()
    }

    /// A value that parses, or `None` when unset.
    pub(super) fn parse_optional<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim().parse().map_err(|e: T::Err| ConfigError {
                    name,
                    reason: format!("cannot use {raw:?}: {e}"),
                })
            })
            .transpose()
    }

    pub(super) fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A value that parses, or `None` when unset.
    pub(super) fn optional<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim().parse().map_err(|e: T::Err| ConfigError {
                    name,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    pub(super) fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError {
                name,
                reason: format!("cannot use {raw:?}: {e}"),
            }),
        }
    }
}
