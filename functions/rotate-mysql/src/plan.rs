//! The grant model of alternating users: one `SHOW GRANTS` line without its grantee, the
//! statements that give it or take it, and the plan that makes the clone's grants equal to the
//! model's.

use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantKind {
    /// `GRANT <privileges> ON <object> TO <account> [WITH GRANT OPTION]`.
    Privileges { privileges: String, object: String },
    /// `GRANT <roles> TO <account> [WITH ADMIN OPTION]`.
    Roles { roles: String },
    /// MySQL 8 with `partial_revokes`: `REVOKE <privileges> ON <object> FROM <account>`.
    PartialRevoke { privileges: String, object: String },
    /// MariaDB: `SET DEFAULT ROLE <role> FOR <account>`.
    DefaultRole { role: String },
}

/// One `SHOW GRANTS` line without its grantee: the same for two accounts holding the same
/// grant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub kind: GrantKind,
    /// `WITH GRANT OPTION` (privileges) or `WITH ADMIN OPTION` (roles).
    pub with_option: bool,
}

impl Grant {
    /// The statement that gives `account` this grant, the server's own text verbatim.
    pub fn give(&self, account: &str) -> String {
        match &self.kind {
            GrantKind::Privileges { privileges, object } => format!(
                "GRANT {privileges} {object} TO {account}{}",
                if self.with_option {
                    " WITH GRANT OPTION"
                } else {
                    ""
                }
            ),
            GrantKind::Roles { roles } => format!(
                "GRANT {roles} TO {account}{}",
                if self.with_option {
                    " WITH ADMIN OPTION"
                } else {
                    ""
                }
            ),
            GrantKind::PartialRevoke { privileges, object } => {
                format!("REVOKE {privileges} {object} FROM {account}")
            }
            GrantKind::DefaultRole { role } => format!("SET DEFAULT ROLE {role} FOR {account}"),
        }
    }

    /// The statements that take this grant from `account`.
    pub fn take(&self, account: &str) -> Vec<String> {
        match &self.kind {
            GrantKind::Privileges { privileges, object } => {
                let mut statements = Vec::new();
                if !privileges.eq_ignore_ascii_case("USAGE") {
                    statements.push(format!("REVOKE {privileges} {object} FROM {account}"));
                }
                // A proxy grant goes whole with REVOKE PROXY; `ALL PRIVILEGES, GRANT OPTION ON`
                // is not valid syntax, so the grant option goes on its own.
                if self.with_option && !privileges.eq_ignore_ascii_case("PROXY") {
                    statements.push(format!("REVOKE GRANT OPTION {object} FROM {account}"));
                }
                statements
            }
            GrantKind::Roles { roles } => vec![format!("REVOKE {roles} FROM {account}")],
            GrantKind::PartialRevoke { privileges, object } => {
                vec![format!("GRANT {privileges} {object} TO {account}")]
            }
            GrantKind::DefaultRole { .. } => {
                vec![format!("SET DEFAULT ROLE NONE FOR {account}")]
            }
        }
    }
}

/// The statements that make the clone's grants (`clone`, parsed from its `SHOW GRANTS`) equal
/// to the model's: first take what the model lacks, then give what the clone lacks (in the
/// model's order, partial revokes after grants), then the default role.
pub fn plan(model: &[Grant], clone: &[Grant], clone_sql: &str) -> Vec<String> {
    let model_set: BTreeSet<&Grant> = model.iter().collect();
    let clone_set: BTreeSet<&Grant> = clone.iter().collect();
    let is_default = |grant: &&Grant| matches!(grant.kind, GrantKind::DefaultRole { .. });
    let is_revoke = |grant: &&Grant| matches!(grant.kind, GrantKind::PartialRevoke { .. });
    let mut statements = Vec::new();
    for grant in clone
        .iter()
        .filter(|g| !model_set.contains(g) && !is_default(g))
    {
        statements.extend(grant.take(clone_sql));
    }
    let missing: Vec<&Grant> = model.iter().filter(|g| !clone_set.contains(g)).collect();
    for grant in missing.iter().filter(|g| !is_default(g) && !is_revoke(g)) {
        statements.push(grant.give(clone_sql));
    }
    for grant in missing.iter().filter(|g| is_revoke(g)) {
        statements.push(grant.give(clone_sql));
    }
    let model_default = model.iter().find(is_default);
    let clone_default = clone.iter().find(is_default);
    match (model_default, clone_default) {
        (Some(wanted), held) if held != Some(wanted) => statements.push(wanted.give(clone_sql)),
        (None, Some(held)) => statements.extend(held.take(clone_sql)),
        _ => {}
    }
    statements
}

/// Parses every `SHOW GRANTS FOR <account>` line (each a one-field row), leaving out the lines
/// that give nothing (`GRANT USAGE ON *.*` without `WITH GRANT OPTION`).
pub fn mysql_default_roles(model: &[String], clone: &[String], clone_sql: &str) -> Option<String> {
    if model == clone {
        return None;
    }
    let roles = if model.is_empty() {
        "NONE".to_owned()
    } else {
        model.join(", ")
    };
    Some(format!("ALTER USER {clone_sql} DEFAULT ROLE {roles}"))
}

/// What one `SHOW GRANTS` line gives.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Account;
    use crate::parse::parse_grant_line;

    fn account(user: &str, host: &str) -> Account {
        Account::new(user, host)
    }

    #[test]
    fn the_plan_takes_what_the_model_lacks_then_gives_what_the_clone_lacks() {
        let m = account("app", "%");
        let c = account("app_clone", "%");
        let lines = |account: &Account, lines: &[&str]| -> Vec<Grant> {
            let name = format!("`{}`@`{}`", account.user, account.host);
            lines
                .iter()
                .filter_map(|line| {
                    parse_grant_line(&line.replace("ACC", &name), account, false).expect(line)
                })
                .collect()
        };
        let model = lines(
            &m,
            &[
                "GRANT USAGE ON *.* TO ACC IDENTIFIED BY PASSWORD '*1'",
                "GRANT `r1` TO ACC",
                "GRANT SELECT, INSERT ON `d`.* TO ACC",
                "GRANT SELECT ON `app\\_%`.* TO ACC WITH GRANT OPTION",
                "SET DEFAULT ROLE `r1` FOR ACC",
            ],
        );
        let clone = lines(
            &c,
            &[
                "GRANT USAGE ON *.* TO ACC IDENTIFIED BY PASSWORD '*2'",
                "GRANT `r2` TO ACC",
                "GRANT SELECT ON `d`.* TO ACC",
                "GRANT SELECT ON `app\\_%`.* TO ACC WITH GRANT OPTION",
                "GRANT DELETE ON `e`.`t` TO ACC",
            ],
        );
        assert_eq!(
            plan(&model, &clone, "K"),
            [
                "REVOKE `r2` FROM K",
                "REVOKE SELECT ON `d`.* FROM K",
                "REVOKE DELETE ON `e`.`t` FROM K",
                "GRANT `r1` TO K",
                "GRANT SELECT, INSERT ON `d`.* TO K",
                "SET DEFAULT ROLE `r1` FOR K",
            ]
        );
        // Equal accounts: nothing to do.
        let same = lines(
            &c,
            &[
                "GRANT `r1` TO ACC",
                "GRANT SELECT, INSERT ON `d`.* TO ACC",
                "GRANT SELECT ON `app\\_%`.* TO ACC WITH GRANT OPTION",
                "SET DEFAULT ROLE `r1` FOR ACC",
            ],
        );
        assert!(plan(&model, &same, "K").is_empty());
        // A default role the model no longer has is cleared.
        assert_eq!(
            plan(&model[..3], &same, "K"),
            ["SET DEFAULT ROLE NONE FOR K"]
        );
    }

    #[test]
    fn mysql_8_default_roles_follow_the_model() {
        assert_eq!(mysql_default_roles(&[], &[], "K"), None);
        assert_eq!(
            mysql_default_roles(&["'r'@'%'".into()], &[], "K").as_deref(),
            Some("ALTER USER K DEFAULT ROLE 'r'@'%'")
        );
        assert_eq!(
            mysql_default_roles(&[], &["'r'@'%'".into()], "K").as_deref(),
            Some("ALTER USER K DEFAULT ROLE NONE")
        );
    }
}
