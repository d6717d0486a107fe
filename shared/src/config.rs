// TEMPORARY STUB: replaced by the real module.
use std::collections::HashMap;
pub struct Environment { vars: HashMap<String, String> }
impl Environment {
    pub fn process() -> Self { Environment { vars: std::env::vars().collect() } }
    pub fn from_pairs<I, K, V>(pairs: I) -> Self where I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String> {
        Environment { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
    pub fn get(&self, name: &str) -> Option<String> { self.vars.get(name).cloned() }
}
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {problem}")]
pub struct ConfigError { pub variable: String, pub problem: String }
