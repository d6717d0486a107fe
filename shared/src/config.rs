//! Reading a rotation function's settings from its environment.
//!
//! Configuration is parsed once, at start-up, so a bad setting fails the first invocation with a
//! message naming the variable instead of surfacing halfway through a rotation. The values read
//! here are deployment settings, never secrets, so errors may quote them.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// A source of environment variables: the process environment, or a fixed set in tests.
///
/// Tests use a fixed set because the process environment is shared by every test thread, and
/// changing it while another thread reads it is undefined behaviour on some platforms.
#[derive(Clone, Debug)]
pub struct Environment {
    /// `None` reads the process environment at each lookup.
    fixed: Option<HashMap<String, String>>,
}

impl Environment {
    /// The process environment, read at each lookup.
    pub fn process() -> Self {
        Environment { fixed: None }
    }

    /// A fixed set of variables; nothing else is set.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Environment {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(name, value)| (name.into(), value.into()))
                    .collect(),
            ),
        }
    }

    /// The value of a variable: `None` when unset, `Some("")` when set but empty.
    ///
    /// A value that is not valid Unicode is read lossily rather than treated as unset, so that a
    /// mistyped setting is reported as invalid instead of silently replaced by the default.
    pub fn get(&self, name: &str) -> Option<String> {
        match &self.fixed {
            Some(variables) => variables.get(name).cloned(),
            None => std::env::var_os(name).map(|value| value.to_string_lossy().into_owned()),
        }
    }

    /// The AWS templates' boolean rule: true iff the lower-cased value is `true`, `1`, `y` or
    /// `yes`; an unset variable gives `default`.
    ///
    /// As in the templates, any other value, including an empty one, is false even when the
    /// default is true: `REQUIRE_EACH_INCLUDED_TYPE=""` turns the requirement off.
    pub fn aws_flag(&self, name: &str, default: bool) -> bool {
        self.get(name).map_or(default, |value| aws_flag(&value))
    }

    /// An integer, or `default` when the variable is unset.
    ///
    /// Surrounding whitespace is ignored because Python's `int()`, which the AWS templates use,
    /// ignores it too; a deployment that worked with the templates keeps working. Anything else
    /// that does not parse, including an empty value, is an error naming the variable and value.
    pub fn integer<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        value.trim().parse().map_err(|error: T::Err| {
            ConfigError::new(
                name,
                format!("expected an integer, found {value:?} ({error})"),
            )
        })
    }
}

/// The AWS templates' boolean rule for a value that is set: true iff its lower-cased form is
/// `true`, `1`, `y` or `yes`. No trimming, as in the templates.
pub fn aws_flag(value: &str) -> bool {
    matches!(value.to_lowercase().as_str(), "true" | "1" | "y" | "yes")
}

/// A setting that cannot be used, named so the operator knows which variable to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}: {problem}")]
pub struct ConfigError {
    /// The variable (or variables, comma-separated) at fault.
    pub variable: String,
    /// What is wrong with it, in words an operator can act on.
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.into(),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_variable_is_none_and_an_empty_one_is_an_empty_string() {
        let env = Environment::from_pairs([("EMPTY", "")]);
        assert_eq!(env.get("UNSET"), None);
        assert_eq!(env.get("EMPTY"), Some(String::new()));
    }

    #[test]
    fn the_process_environment_reads_variables_that_are_set() {
        // PATH is set for every test run; reading it does not change the shared environment.
        let path = std::env::var("PATH").ok();
        assert_eq!(Environment::process().get("PATH"), path);
    }

    #[test]
    fn the_flag_rule_accepts_exactly_true_1_y_and_yes_in_any_case() {
        for value in ["true", "TRUE", "True", "1", "y", "Y", "yes", "Yes", "YES"] {
            assert!(aws_flag(value), "{value:?} should be true");
        }
        for value in [
            "false", "False", "0", "no", "n", "", "garbage", " true", "yes ", "2", "on",
        ] {
            assert!(!aws_flag(value), "{value:?} should be false");
        }
    }

    #[test]
    fn an_unset_flag_takes_its_default() {
        let env = Environment::from_pairs::<[(&str, &str); 0], _, _>([]);
        assert!(env.aws_flag("FLAG", true));
        assert!(!env.aws_flag("FLAG", false));
    }

    #[test]
    fn a_set_flag_ignores_its_default() {
        let env = Environment::from_pairs([("ON", "Yes"), ("OFF", "no"), ("EMPTY", "")]);
        assert!(env.aws_flag("ON", false));
        assert!(!env.aws_flag("OFF", true));
        assert!(!env.aws_flag("EMPTY", true));
    }

    #[test]
    fn an_unset_integer_takes_its_default() {
        let env = Environment::from_pairs::<[(&str, &str); 0], _, _>([]);
        assert_eq!(env.integer("LENGTH", 32usize), Ok(32));
    }

    #[test]
    fn an_integer_is_parsed_ignoring_surrounding_whitespace() {
        let env = Environment::from_pairs([("A", "48"), ("B", " 16\n")]);
        assert_eq!(env.integer("A", 32usize), Ok(48));
        assert_eq!(env.integer("B", 32usize), Ok(16));
    }

    #[test]
    fn an_invalid_integer_is_an_error_naming_the_variable_and_the_value() {
        for value in ["abc", "-1", "", "1.5", "99999999999999999999999"] {
            let env = Environment::from_pairs([("PASSWORD_LENGTH", value)]);
            let error = env
                .integer("PASSWORD_LENGTH", 32usize)
                .expect_err("an invalid integer must be rejected");
            assert_eq!(error.variable, "PASSWORD_LENGTH");
            let message = error.to_string();
            assert!(
                message.starts_with("invalid configuration: PASSWORD_LENGTH: "),
                "{message}"
            );
            assert!(message.contains(&format!("{value:?}")), "{message}");
        }
    }

    #[test]
    fn a_config_error_displays_the_variable_and_the_problem() {
        let error = ConfigError::new("PASSWORD_LENGTH", "must be at least 1");
        assert_eq!(
            error.to_string(),
            "invalid configuration: PASSWORD_LENGTH: must be at least 1"
        );
    }
}
