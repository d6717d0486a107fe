// TEMPORARY STUB: replaced by the real module.
use secrecy::{ExposeSecret, SecretString};
#[derive(Clone, PartialEq)]
pub struct SecretDocument { fields: serde_json::Map<String, serde_json::Value> }
impl std::fmt::Debug for SecretDocument { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("SecretDocument") } }
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError { #[error("{0} key is missing from secret JSON")] Missing(String), #[error("not json")] NotJson }
impl SecretDocument {
    pub fn parse(s: &str) -> Result<Self, SecretFormatError> { match serde_json::from_str(s) { Ok(serde_json::Value::Object(fields)) => Ok(Self { fields }), _ => Err(SecretFormatError::NotJson) } }
    pub fn to_secret_string(&self) -> SecretString { SecretString::from(serde_json::Value::Object(self.fields.clone()).to_string()) }
    pub fn required_str(&self, field: &str) -> Result<&str, SecretFormatError> { self.fields.get(field).and_then(|v| v.as_str()).ok_or(SecretFormatError::Missing(field.into())) }
    pub fn required_secret(&self, field: &str) -> Result<SecretString, SecretFormatError> { self.required_str(field).map(|s| SecretString::from(s.to_owned())) }
    pub fn set_secret(&mut self, field: &str, value: &SecretString) { self.fields.insert(field.into(), value.expose_secret().into()); }
    pub fn set_str(&mut self, field: &str, value: &str) { self.fields.insert(field.into(), value.into()); }
    pub fn get(&self, field: &str) -> Option<&serde_json::Value> { self.fields.get(field) }
}
