// TEMPORARY STUB: replaced by the real module.
use crate::config::{ConfigError, Environment};
use secrecy::SecretString;
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy { pub length: usize }
impl PasswordPolicy {
    pub fn from_environment(_env: &Environment, _default_excluded: &str) -> Result<Self, ConfigError> { Ok(PasswordPolicy { length: 32 }) }
    pub fn generate(&self) -> SecretString { SecretString::from("x".repeat(self.length)) }
}
