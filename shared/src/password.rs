//! The password policy: which passwords a rotation may generate.
//!
//! The settings and their meaning follow the AWS rotation templates, which pass them to Secrets
//! Manager's `GetRandomPassword`; we generate locally with the operating system's CSPRNG so a
//! rotation needs no extra API call or permission. A policy is checked once, when it is built,
//! so that a deployment that can never produce a password fails at start-up, not mid-rotation.

use rand::distr::{Distribution, Uniform};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use rand::Rng;
use secrecy::SecretString;
use zeroize::Zeroize;

use crate::config::{ConfigError, Environment};

/// The characters the PostgreSQL template excludes by default.
pub const POSTGRES_EXCLUDED_CHARACTERS: &str = ":/@\"'\\";
/// The characters the MySQL and MariaDB templates exclude by default.
pub const MYSQL_EXCLUDED_CHARACTERS: &str = "/@\"'\\";

/// `GetRandomPassword`'s limits on `PasswordLength`.
pub const MIN_PASSWORD_LENGTH: usize = 1;
pub const MAX_PASSWORD_LENGTH: usize = 4096;

const DEFAULT_PASSWORD_LENGTH: usize = 32;

const LOWERCASE: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPERCASE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// The 32 printable ASCII punctuation characters, as `GetRandomPassword` uses them; no space.
const PUNCTUATION: &[u8] = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The settings of a password policy, as the AWS templates read them from the environment.
///
/// This is plain data and may describe a policy that cannot produce a password; turn it into a
/// [`PasswordPolicy`] to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRules {
    /// `PASSWORD_LENGTH`.
    pub length: usize,
    /// `EXCLUDE_CHARACTERS`; empty excludes nothing.
    pub exclude_characters: String,
    /// `EXCLUDE_NUMBERS`.
    pub exclude_numbers: bool,
    /// `EXCLUDE_PUNCTUATION`.
    pub exclude_punctuation: bool,
    /// `EXCLUDE_UPPERCASE`.
    pub exclude_uppercase: bool,
    /// `EXCLUDE_LOWERCASE`.
    pub exclude_lowercase: bool,
    /// `REQUIRE_EACH_INCLUDED_TYPE`.
    pub require_each_included_type: bool,
}

impl PasswordRules {
    /// The templates' defaults, with the engine's default excluded characters.
    pub fn aws_defaults(default_excluded: &str) -> Self {
        PasswordRules {
            length: DEFAULT_PASSWORD_LENGTH,
            exclude_characters: default_excluded.to_owned(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            require_each_included_type: true,
        }
    }

    /// Reads the settings without checking that they make sense together.
    pub fn from_environment(
        env: &Environment,
        default_excluded: &str,
    ) -> Result<Self, ConfigError> {
        let defaults = PasswordRules::aws_defaults(default_excluded);
        Ok(PasswordRules {
            length: env.integer("PASSWORD_LENGTH", defaults.length)?,
            exclude_characters: env
                .get("EXCLUDE_CHARACTERS")
                .unwrap_or(defaults.exclude_characters),
            exclude_numbers: env.aws_flag("EXCLUDE_NUMBERS", defaults.exclude_numbers),
            exclude_punctuation: env.aws_flag("EXCLUDE_PUNCTUATION", defaults.exclude_punctuation),
            exclude_uppercase: env.aws_flag("EXCLUDE_UPPERCASE", defaults.exclude_uppercase),
            exclude_lowercase: env.aws_flag("EXCLUDE_LOWERCASE", defaults.exclude_lowercase),
            require_each_included_type: env.aws_flag(
                "REQUIRE_EACH_INCLUDED_TYPE",
                defaults.require_each_included_type,
            ),
        })
    }

    /// Checks that these settings can always produce a password.
    pub fn validate(&self) -> Result<(), ConfigError> {
        CharacterSets::for_rules(self).map(|_| ())
    }
}

/// A password policy that is known to produce a password on every call to
/// [`generate`](PasswordPolicy::generate).
///
/// The only ways to get one check the rules first, so generation has no failure mode of its
/// own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    rules: PasswordRules,
    sets: CharacterSets,
}

impl PasswordPolicy {
    /// Reads and checks the policy from the environment; `default_excluded` is the engine's
    /// default for `EXCLUDE_CHARACTERS`, e.g. [`POSTGRES_EXCLUDED_CHARACTERS`].
    pub fn from_environment(
        env: &Environment,
        default_excluded: &str,
    ) -> Result<Self, ConfigError> {
        PasswordPolicy::new(PasswordRules::from_environment(env, default_excluded)?)
    }

    /// Checks `rules` and keeps the character sets they allow.
    pub fn new(rules: PasswordRules) -> Result<Self, ConfigError> {
        let sets = CharacterSets::for_rules(&rules)?;
        Ok(PasswordPolicy { rules, sets })
    }

    /// The settings this policy was built from.
    pub fn rules(&self) -> &PasswordRules {
        &self.rules
    }

    /// Checks the policy again; a `PasswordPolicy` is always valid, so this always succeeds. It
    /// exists so start-up code can check a policy without caring how it was obtained.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.rules.validate()
    }

    /// A new password drawn from the operating system's CSPRNG.
    ///
    /// When `REQUIRE_EACH_INCLUDED_TYPE` is on, one character of each required class is drawn
    /// from that class and the rest from the whole alphabet, then the whole password is
    /// shuffled, so the required characters sit at random positions rather than at the end.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide randomness. There is no safe fallback: a
    /// password from a weaker source would be worse than a failed rotation, which Secrets
    /// Manager retries. On Linux, `getrandom` only fails this way before the kernel's pool is
    /// first seeded, which never happens in a running Lambda environment.
    pub fn generate(&self) -> SecretString {
        self.generate_with(&mut UnwrapErr(SysRng))
    }

    fn generate_with<R: Rng + ?Sized>(&self, rng: &mut R) -> SecretString {
        let length = self.rules.length;
        let mut characters = Vec::with_capacity(length);
        for class in &self.sets.required {
            characters.push(pick(class, rng));
        }
        while characters.len() < length {
            characters.push(pick(&self.sets.alphabet, rng));
        }
        shuffle(&mut characters, rng);

        // Exact capacity, so turning the String into a SecretString does not reallocate and
        // leave an unzeroed copy behind.
        let mut password = String::with_capacity(length);
        password.extend(characters.iter().map(|&byte| char::from(byte)));
        characters.zeroize();
        SecretString::from(password)
    }
}

/// The characters a valid policy draws from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CharacterSets {
    /// Every allowed character; never empty.
    alphabet: Vec<u8>,
    /// For each class that must appear, its allowed characters; none is empty, and there are
    /// never more classes than the password length.
    required: Vec<Vec<u8>>,
}

impl CharacterSets {
    /// The character sets `rules` allow, or the reason they cannot always produce a password.
    ///
    /// A class whose every character is listed in `EXCLUDE_CHARACTERS` is treated as excluded
    /// rather than as an error, even when `REQUIRE_EACH_INCLUDED_TYPE` is on: the operator has
    /// said those characters must never appear, and that wins over "use every class", as it
    /// does in `GetRandomPassword`. Only when nothing at all is left is it an error.
    fn for_rules(rules: &PasswordRules) -> Result<Self, ConfigError> {
        if !(MIN_PASSWORD_LENGTH..=MAX_PASSWORD_LENGTH).contains(&rules.length) {
            return Err(ConfigError::new(
                "PASSWORD_LENGTH",
                format!(
                    "must be between {MIN_PASSWORD_LENGTH} and {MAX_PASSWORD_LENGTH}, found {}",
                    rules.length
                ),
            ));
        }

        let classes = [
            (rules.exclude_lowercase, LOWERCASE),
            (rules.exclude_uppercase, UPPERCASE),
            (rules.exclude_numbers, DIGITS),
            (rules.exclude_punctuation, PUNCTUATION),
        ];
        if classes.iter().all(|&(excluded, _)| excluded) {
            return Err(ConfigError::new(
                "EXCLUDE_LOWERCASE, EXCLUDE_UPPERCASE, EXCLUDE_NUMBERS, EXCLUDE_PUNCTUATION",
                "every character class is excluded, so no password can be generated",
            ));
        }

        let allowed_classes: Vec<Vec<u8>> = classes
            .iter()
            .filter(|&&(excluded, _)| !excluded)
            .map(|&(_, class)| {
                class
                    .iter()
                    .copied()
                    .filter(|&byte| !rules.exclude_characters.contains(char::from(byte)))
                    .collect::<Vec<u8>>()
            })
            .filter(|allowed| !allowed.is_empty())
            .collect();

        if allowed_classes.is_empty() {
            return Err(ConfigError::new(
                "EXCLUDE_CHARACTERS",
                "excludes every character of the classes that are not excluded, so no \
                 password can be generated",
            ));
        }

        let alphabet = allowed_classes.concat();
        let required = if rules.require_each_included_type {
            allowed_classes
        } else {
            Vec::new()
        };
        if required.len() > rules.length {
            return Err(ConfigError::new(
                "PASSWORD_LENGTH",
                format!(
                    "{} is too short to hold one character of each of the {} character classes \
                     that REQUIRE_EACH_INCLUDED_TYPE requires",
                    rules.length,
                    required.len()
                ),
            ));
        }
        Ok(CharacterSets { alphabet, required })
    }
}

/// One character of `set`, uniformly. `set` is never empty.
fn pick<R: Rng + ?Sized>(set: &[u8], rng: &mut R) -> u8 {
    set[index_up_to(set.len().saturating_sub(1), rng)]
}

/// Durstenfeld's Fisher–Yates shuffle: every permutation equally likely.
fn shuffle<R: Rng + ?Sized>(items: &mut [u8], rng: &mut R) {
    for last in (1..items.len()).rev() {
        items.swap(last, index_up_to(last, rng));
    }
}

/// A uniformly distributed index in `0..=max`.
///
/// `Uniform::sample` rejects the draws that would make some results likelier than others
/// (Lemire's method), so there is no modulo bias; `random_range` is allowed a tiny bias by
/// default, and `rand`'s own shuffle uses it.
fn index_up_to<R: Rng + ?Sized>(max: usize, rng: &mut R) -> usize {
    match Uniform::new_inclusive(0, max) {
        Ok(distribution) => distribution.sample(rng),
        // Only an empty range is refused, and 0..=max is never empty.
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::BTreeSet;

    const DRAWS: usize = 500;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().copied())
    }

    fn policy(pairs: &[(&str, &str)]) -> PasswordPolicy {
        PasswordPolicy::from_environment(&env(pairs), POSTGRES_EXCLUDED_CHARACTERS)
            .expect("the test policy is valid")
    }

    fn rejection(pairs: &[(&str, &str)]) -> ConfigError {
        PasswordPolicy::from_environment(&env(pairs), POSTGRES_EXCLUDED_CHARACTERS)
            .expect_err("the test policy is impossible")
    }

    fn passwords(policy: &PasswordPolicy) -> impl Iterator<Item = String> + '_ {
        (0..DRAWS).map(|_| policy.generate().expose_secret().to_owned())
    }

    #[test]
    fn an_empty_environment_gives_the_aws_defaults() {
        let policy = policy(&[]);
        assert_eq!(
            policy.rules(),
            &PasswordRules {
                length: 32,
                exclude_characters: POSTGRES_EXCLUDED_CHARACTERS.to_owned(),
                exclude_numbers: false,
                exclude_punctuation: false,
                exclude_uppercase: false,
                exclude_lowercase: false,
                require_each_included_type: true,
            }
        );
    }

    #[test]
    fn the_engine_default_exclusions_are_the_templates_ones() {
        assert_eq!(POSTGRES_EXCLUDED_CHARACTERS, ":/@\"'\\");
        assert_eq!(MYSQL_EXCLUDED_CHARACTERS, "/@\"'\\");
        let mysql = PasswordPolicy::from_environment(&env(&[]), MYSQL_EXCLUDED_CHARACTERS)
            .expect("the defaults are valid");
        assert_eq!(mysql.rules().exclude_characters, MYSQL_EXCLUDED_CHARACTERS);
    }

    #[test]
    fn every_variable_is_read_from_the_environment() {
        let policy = policy(&[
            ("PASSWORD_LENGTH", "20"),
            ("EXCLUDE_CHARACTERS", "abc"),
            ("EXCLUDE_NUMBERS", "true"),
            ("EXCLUDE_PUNCTUATION", "yes"),
            ("EXCLUDE_UPPERCASE", "1"),
            ("EXCLUDE_LOWERCASE", "no"),
            ("REQUIRE_EACH_INCLUDED_TYPE", "False"),
        ]);
        assert_eq!(
            policy.rules(),
            &PasswordRules {
                length: 20,
                exclude_characters: "abc".to_owned(),
                exclude_numbers: true,
                exclude_punctuation: true,
                exclude_uppercase: true,
                exclude_lowercase: false,
                require_each_included_type: false,
            }
        );
    }

    #[test]
    fn the_exclusion_flags_follow_the_aws_boolean_rule() {
        let cases = [
            ("TRUE", true),
            ("Yes", true),
            ("1", true),
            ("y", true),
            ("no", false),
            ("0", false),
            ("", false),
            ("garbage", false),
        ];
        for (value, expected) in cases {
            for name in [
                "EXCLUDE_NUMBERS",
                "EXCLUDE_PUNCTUATION",
                "EXCLUDE_UPPERCASE",
                "EXCLUDE_LOWERCASE",
            ] {
                let rules = PasswordRules::from_environment(&env(&[(name, value)]), "")
                    .expect("flags never fail to parse");
                let read = match name {
                    "EXCLUDE_NUMBERS" => rules.exclude_numbers,
                    "EXCLUDE_PUNCTUATION" => rules.exclude_punctuation,
                    "EXCLUDE_UPPERCASE" => rules.exclude_uppercase,
                    _ => rules.exclude_lowercase,
                };
                assert_eq!(read, expected, "{name}={value:?}");
            }
        }
    }

    #[test]
    fn require_each_included_type_is_turned_off_by_anything_but_a_true_value() {
        for (value, expected) in [
            ("TRUE", true),
            ("Yes", true),
            ("1", true),
            ("y", true),
            ("False", false),
            ("no", false),
            ("0", false),
            ("", false),
            ("garbage", false),
        ] {
            let rules =
                PasswordRules::from_environment(&env(&[("REQUIRE_EACH_INCLUDED_TYPE", value)]), "")
                    .expect("flags never fail to parse");
            assert_eq!(rules.require_each_included_type, expected, "{value:?}");
        }
    }

    #[test]
    fn a_password_length_that_is_not_a_whole_number_is_rejected() {
        for value in ["abc", "-1", "", "12.5"] {
            let error = rejection(&[("PASSWORD_LENGTH", value)]);
            assert_eq!(error.variable, "PASSWORD_LENGTH");
            assert!(error.to_string().contains(&format!("{value:?}")), "{error}");
        }
    }

    #[test]
    fn a_password_length_outside_1_to_4096_is_rejected() {
        for value in ["0", "4097", "100000"] {
            let error = rejection(&[("PASSWORD_LENGTH", value)]);
            assert_eq!(error.variable, "PASSWORD_LENGTH");
            assert!(
                error.problem.contains("between 1 and 4096"),
                "{}",
                error.problem
            );
            assert!(error.problem.contains(value), "{}", error.problem);
        }
    }

    #[test]
    fn the_extreme_lengths_are_accepted() {
        // One character cannot hold four required classes, so the requirement is off here.
        for length in ["1", "4096"] {
            let policy = policy(&[
                ("PASSWORD_LENGTH", length),
                ("REQUIRE_EACH_INCLUDED_TYPE", "false"),
            ]);
            let expected: usize = length.parse().expect("a literal number");
            assert_eq!(policy.generate().expose_secret().len(), expected);
        }
    }

    #[test]
    fn an_empty_exclude_characters_excludes_nothing() {
        let policy = policy(&[("EXCLUDE_CHARACTERS", "")]);
        assert_eq!(policy.rules().exclude_characters, "");
        let seen: BTreeSet<char> = passwords(&policy)
            .flat_map(|p| p.chars().collect::<Vec<_>>())
            .collect();
        // 500 passwords of 32 characters make missing any of the 94 characters vanishingly
        // unlikely (about 94 * (93/94)^16000).
        assert_eq!(seen.len(), 94, "{seen:?}");
        for excluded in POSTGRES_EXCLUDED_CHARACTERS.chars() {
            assert!(seen.contains(&excluded), "{excluded:?} never appeared");
        }
    }

    #[test]
    fn a_generated_password_has_the_configured_length() {
        for length in [4usize, 5, 32, 100, 4096] {
            let policy = policy(&[("PASSWORD_LENGTH", &length.to_string())]);
            for password in passwords(&policy).take(20) {
                assert_eq!(password.chars().count(), length);
            }
        }
    }

    #[test]
    fn excluded_characters_never_appear() {
        let excluded = "aeiouAEIOU13579!#%&";
        let policy = policy(&[("EXCLUDE_CHARACTERS", excluded)]);
        for password in passwords(&policy) {
            assert!(
                !password.chars().any(|c| excluded.contains(c)),
                "{password}"
            );
        }
    }

    #[test]
    fn a_postgres_default_policy_never_emits_its_excluded_characters() {
        let policy = policy(&[]);
        for password in passwords(&policy) {
            assert!(
                !password.chars().any(|c| ":/@\"'\\".contains(c)),
                "{password}"
            );
        }
    }

    #[test]
    fn only_printable_ascii_without_space_is_generated() {
        let policy = policy(&[("EXCLUDE_CHARACTERS", "")]);
        for password in passwords(&policy) {
            assert!(password.chars().all(|c| c.is_ascii_graphic()), "{password}");
        }
    }

    #[test]
    fn every_included_class_appears_in_every_password() {
        // Length 4 with four classes leaves no room for chance: each class must be placed.
        for length in ["4", "5", "32"] {
            let policy = policy(&[("PASSWORD_LENGTH", length)]);
            for password in passwords(&policy) {
                assert!(
                    password.chars().any(|c| c.is_ascii_lowercase()),
                    "{password}"
                );
                assert!(
                    password.chars().any(|c| c.is_ascii_uppercase()),
                    "{password}"
                );
                assert!(password.chars().any(|c| c.is_ascii_digit()), "{password}");
                assert!(
                    password.chars().any(|c| c.is_ascii_punctuation()),
                    "{password}"
                );
            }
        }
    }

    #[test]
    fn a_required_class_with_one_allowed_character_still_appears() {
        let policy = policy(&[
            ("EXCLUDE_CHARACTERS", "012345689"),
            ("PASSWORD_LENGTH", "8"),
        ]);
        for password in passwords(&policy) {
            assert!(password.contains('7'), "{password}");
        }
    }

    #[test]
    fn excluded_classes_never_appear() {
        let policy = policy(&[
            ("EXCLUDE_NUMBERS", "true"),
            ("EXCLUDE_PUNCTUATION", "true"),
            ("EXCLUDE_UPPERCASE", "true"),
        ]);
        for password in passwords(&policy) {
            assert!(
                password.chars().all(|c| c.is_ascii_lowercase()),
                "{password}"
            );
        }
    }

    #[test]
    fn required_characters_land_at_random_positions() {
        // With length 4 and four required classes, every password is one character of each
        // class; a generator that appended them in a fixed order would always put the digit in
        // the same place. Each position is hit with probability 1/4, so missing one in 500
        // draws has probability about 4 * (3/4)^500.
        let policy = policy(&[("PASSWORD_LENGTH", "4")]);
        let positions: BTreeSet<usize> = passwords(&policy)
            .filter_map(|password| password.find(|c: char| c.is_ascii_digit()))
            .collect();
        assert_eq!(positions, BTreeSet::from([0, 1, 2, 3]));
    }

    #[test]
    fn the_last_characters_of_a_long_password_are_not_always_of_the_same_class() {
        fn class(c: char) -> u8 {
            match c {
                'a'..='z' => 0,
                'A'..='Z' => 1,
                '0'..='9' => 2,
                _ => 3,
            }
        }
        let policy = policy(&[]);
        let mut seen = vec![BTreeSet::new(); 4];
        for password in passwords(&policy) {
            let tail: Vec<char> = password.chars().rev().take(4).collect();
            for (position, &c) in tail.iter().enumerate() {
                seen[position].insert(class(c));
            }
        }
        for (position, classes) in seen.iter().enumerate() {
            assert!(classes.len() > 1, "position -{position} always {classes:?}");
        }
    }

    #[test]
    fn without_the_requirement_a_class_may_be_missing() {
        // Two-character passwords over 94 characters lack a digit most of the time.
        let policy = policy(&[
            ("PASSWORD_LENGTH", "2"),
            ("REQUIRE_EACH_INCLUDED_TYPE", "false"),
            ("EXCLUDE_CHARACTERS", ""),
        ]);
        assert!(passwords(&policy).any(|p| !p.chars().any(|c| c.is_ascii_digit())));
    }

    #[test]
    fn excluding_every_class_is_rejected() {
        let error = rejection(&[
            ("EXCLUDE_NUMBERS", "true"),
            ("EXCLUDE_PUNCTUATION", "true"),
            ("EXCLUDE_UPPERCASE", "true"),
            ("EXCLUDE_LOWERCASE", "true"),
        ]);
        assert!(error.variable.contains("EXCLUDE_NUMBERS"), "{error}");
        assert!(
            error.problem.contains("every character class is excluded"),
            "{error}"
        );
    }

    #[test]
    fn excluding_every_remaining_character_is_rejected() {
        let error = rejection(&[
            ("EXCLUDE_NUMBERS", "true"),
            ("EXCLUDE_PUNCTUATION", "true"),
            ("EXCLUDE_LOWERCASE", "true"),
            ("EXCLUDE_CHARACTERS", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        ]);
        assert_eq!(error.variable, "EXCLUDE_CHARACTERS");
        assert!(
            error.problem.contains("no password can be generated"),
            "{error}"
        );
    }

    #[test]
    fn a_class_whose_characters_are_all_excluded_is_no_longer_required() {
        let policy = policy(&[
            ("EXCLUDE_CHARACTERS", "0123456789"),
            ("PASSWORD_LENGTH", "3"),
        ]);
        for password in passwords(&policy) {
            assert!(!password.chars().any(|c| c.is_ascii_digit()), "{password}");
            assert!(
                password.chars().any(|c| c.is_ascii_lowercase()),
                "{password}"
            );
            assert!(
                password.chars().any(|c| c.is_ascii_uppercase()),
                "{password}"
            );
            assert!(
                password.chars().any(|c| c.is_ascii_punctuation()),
                "{password}"
            );
        }
    }

    #[test]
    fn a_length_shorter_than_the_required_classes_is_rejected() {
        let error = rejection(&[("PASSWORD_LENGTH", "3")]);
        assert_eq!(error.variable, "PASSWORD_LENGTH");
        assert!(
            error.problem.contains("REQUIRE_EACH_INCLUDED_TYPE"),
            "{error}"
        );
        assert!(error.problem.contains("4 character classes"), "{error}");

        // Without the requirement, the same length is fine.
        policy(&[
            ("PASSWORD_LENGTH", "3"),
            ("REQUIRE_EACH_INCLUDED_TYPE", "no"),
        ]);
    }

    #[test]
    fn rules_can_be_validated_before_building_a_policy() {
        let mut rules = PasswordRules::aws_defaults(MYSQL_EXCLUDED_CHARACTERS);
        assert_eq!(rules.validate(), Ok(()));
        rules.length = 0;
        assert_eq!(
            rules.validate().map_err(|error| error.variable),
            Err("PASSWORD_LENGTH".to_owned())
        );
        assert!(PasswordPolicy::new(rules).is_err());
    }

    #[test]
    fn a_built_policy_is_valid() {
        assert_eq!(policy(&[]).validate(), Ok(()));
    }

    #[test]
    fn the_debug_of_a_password_does_not_show_it() {
        let password = policy(&[]).generate();
        assert!(!format!("{password:?}").contains(password.expose_secret()));
    }
}
