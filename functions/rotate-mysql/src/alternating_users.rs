//! setSecret for the alternating-users strategy (AWS's multi-user MySQL and MariaDB templates,
//! improved).
//!
//! `AWSCURRENT` alternates between `name` and `name_clone`; each rotation sets the password of
//! the account that is not current, so the credentials behind `AWSPREVIOUS` keep working until
//! the next rotation.
//!
//! 1. The pending user must be current's alternate, on current's host.
//! 2. Log in as current first: whoever can write the pending version must also hold working
//!    credentials (protection against a confused deputy). That session also tells the current
//!    account's host part (`CURRENT_USER()`): `'app'@'10.0.%'` has a clone `'app_clone'@'10.0.%'`,
//!    never `'app_clone'@'%'`.
//! 3. Read the master secret (`masterarn`, RDS-managed master secrets included); its host must be
//!    the user's, or, on RDS, the user's host a read replica or reader of it. The master logs in
//!    to the user's database, with its own `ssl` setting.
//! 4. As master, [`synchronise`] makes the clone account equal to the current one:
//!    - a missing clone is created with a throw-away password and the current account's
//!      `REQUIRE` TLS settings; an existing one (an earlier rotation's, or one the operator made)
//!      is used as it is, and gets the current account's `REQUIRE` settings;
//!    - every line of `SHOW GRANTS` of the current account the clone lacks is replayed verbatim
//!      for the clone (object text, wildcard database names, `WITH GRANT OPTION`, role grants
//!      `WITH ADMIN OPTION`, MariaDB's `SET DEFAULT ROLE`), and every line the clone has that
//!      the current account does not is revoked, so the two accounts hold the same grants; MySQL
//!      8's default roles (not in `SHOW GRANTS`) are copied from `mysql.default_roles`;
//!    - the line that carries the current account's password hash (MariaDB's `GRANT USAGE ON *.*
//!      TO … IDENTIFIED BY PASSWORD '*…'`) is never replayed: only its `WITH GRANT OPTION`
//!      counts;
//!    - the statements travel in batches of many statements per round trip;
//!    - the pending password is set last, in its own statement: until then the pending
//!      credentials do not log in.
//!
//! A retry, after a failure anywhere or after success, redoes the whole comparison (nothing to
//! do when the accounts are equal) and sets the password again. The pending credentials are
//! never tried first (the AWS templates' check): that would cost a login every rotation and
//! save work only on a retry.
//!
//! MySQL and MariaDB have no transactional DDL: a failure leaves part of the work done, and the
//! retry computes the difference again from what the server then holds.

use std::collections::BTreeSet;
use std::time::Duration;

use rotation::database::login::{self, NameLimit};
use rotation::database::{batches, DatabaseSecret, BATCH_BYTES};
use rotation::master::MasterSecrets;
use rotation::password::{PasswordPolicy, PasswordRules, MYSQL_EXCLUDED_CHARACTERS};
use rotation::{RotationError, SecretVersions, TargetError};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, Row};

use crate::connection::{Connector, LoginError};
use crate::sql::{self, quote_string, Flavor, ServerInfo};
use crate::target::database_secret;

/// `name` ↔ `name_clone`, within `limit` characters.
pub fn alternate_username(current: &str, limit: usize) -> Result<String, TargetError> {
    login::alternate_username(current, NameLimit::Characters(limit))
}

pub async fn apply(
    connector: &Connector,
    masters: &MasterSecrets,
    versions: &SecretVersions<'_>,
) -> Result<(), RotationError> {
    let arn = versions.secret_arn();
    let pending = database_secret(versions.pending().await?, "AWSPENDING version")?;
    let current = database_secret(versions.current().await?, "AWSCURRENT version")?;
    login::check_pending_is_alternate(&pending, &current)?;

    // Log in as current first, and learn the account it logs in as.
    let mut connection = connector.connect(&current).await.map_err(|error| {
        unable_to_log_in(format!("using current credentials for secret {arn}"), error)
    })?;
    let account = sql::current_account(&mut connection).await;
    close(connection).await;
    let (user, host) = account?;
    if user != current.username {
        return Err(TargetError::invalid_secret(format!(
            "the current credentials of secret {arn} log in as account {user}@{host}, not as \
             user {}",
            current.username
        ))
        .into());
    }
    let model = Account { user, host };

    let master_arn = current.master_arn.clone().ok_or_else(|| {
        TargetError::invalid_secret(format!(
            "AWSCURRENT version of secret {arn}: masterarn key is missing from secret JSON"
        ))
    })?;
    let mut master = masters.resolve(&master_arn).await?;
    // The master works in the user's database (AWS PR #122).
    master.dbname = current.dbname.clone();
    masters.check_host(&current, &master).await?;
    let mut connection = connector.connect(&master).await.map_err(|error| {
        unable_to_log_in(
            format!("using credentials in master secret {master_arn}"),
            error,
        )
    })?;
    let outcome = as_master(&mut connection, &model, &pending).await;
    close(connection).await;
    let replay = outcome?;
    tracing::info!(
        "setSecret: {} {} like {}: {} grant statements in {} round trips.",
        if replay.created { "created" } else { "updated" },
        replay.clone,
        replay.model,
        replay.statements,
        replay.round_trips,
    );
    tracing::info!(
        "setSecret: Successfully set password for {} in MySQL DB for secret arn {arn}.",
        pending.username
    );
    Ok(())
}

async fn as_master(
    connection: &mut MySqlConnection,
    model: &Account,
    pending: &DatabaseSecret,
) -> Result<Replay, TargetError> {
    let info = sql::server_info(connection).await?;
    tracing::info!(
        "setSecret: the master makes {} equal to {} on {info}",
        pending.username,
        model.user
    );
    synchronise(
        connection,
        &info,
        model,
        &pending.username,
        &pending.password,
    )
    .await
}

fn unable_to_log_in(what: String, error: LoginError) -> RotationError {
    let cause = TargetError::from(error);
    TargetError {
        kind: cause.kind,
        message: format!("Unable to log into database {what}: {}", cause.message),
    }
    .into()
}

async fn close(connection: MySqlConnection) {
    // The work is done or failed already; a failure to say goodbye changes nothing.
    let _ = tokio::time::timeout(Duration::from_secs(2), connection.close()).await;
}

/// A MySQL account: user name and host part, as the server stores them (unquoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub host: String,
}

impl Account {
    /// `'user'@'host'`, quoted for the session.
    pub fn quoted(&self, info: &ServerInfo) -> String {
        sql::account(&self.user, &self.host, info)
    }
}

/// What [`synchronise`] did.
#[derive(Clone, Debug)]
pub struct Replay {
    /// `'user'@'host'` of the model and of the clone.
    pub model: String,
    pub clone: String,
    /// Whether the clone account was created.
    pub created: bool,
    /// Grant, revoke, REQUIRE and default-role statements sent (the password not counted).
    pub statements: usize,
    /// Round trips to the server, the password's included.
    pub round_trips: usize,
}

/// Makes `clone_user`, on the model's host part, equal to `model` (grants, `REQUIRE`, default
/// roles), creating it if needed, and sets its password. Works in the master's session `conn`.
pub async fn synchronise(
    conn: &mut MySqlConnection,
    info: &ServerInfo,
    model: &Account,
    clone_user: &str,
    password: &SecretString,
) -> Result<Replay, TargetError> {
    let nbe = info.no_backslash_escapes;
    let clone = Account {
        user: clone_user.to_owned(),
        host: model.host.clone(),
    };
    let (model_sql, clone_sql) = (model.quoted(info), clone.quoted(info));
    let default_roles_table = info.flavor == Flavor::MySql && info.version.major >= 8;
    let mut round_trips = 0;

    // The alternate user on another host would be matched by some logins instead of the clone
    // made here, so testSecret would fail for a reason nobody could see: refuse and say why.
    let elsewhere: Vec<String> = sql::within_timeout(
        &format!("looking for other accounts of {}", clone.user),
        sqlx::query_scalar(
            "SELECT CONVERT(Host USING utf8mb4) FROM mysql.user WHERE User = ? AND Host <> ?",
        )
        .bind(&clone.user)
        .bind(&model.host)
        .fetch_all(&mut *conn),
    )
    .await?;
    round_trips += 1;
    if !elsewhere.is_empty() {
        return Err(TargetError::invalid_secret(format!(
            "the alternate user {} also exists for host(s) {}, which logins could match instead \
             of {clone_sql}; remove those accounts or give them the host part of {model_sql}",
            clone.user,
            elsewhere.join(", ")
        )));
    }

    // One round trip: both accounts' TLS settings, the model's grants (and, on MySQL 8, both
    // accounts' default roles).
    let mut lookup = format!(
        "SELECT 'account', CONVERT(User USING utf8mb4), CONVERT(ssl_type USING utf8mb4), \
         CONVERT(ssl_cipher USING utf8mb4), CONVERT(x509_issuer USING utf8mb4), \
         CONVERT(x509_subject USING utf8mb4) FROM mysql.user WHERE Host = {} AND User IN ({}, {});\n\
         SHOW GRANTS FOR {model_sql}",
        quote_string(&model.host, nbe),
        quote_string(&model.user, nbe),
        quote_string(&clone.user, nbe),
    );
    if default_roles_table {
        lookup.push_str(&format!(
            ";\nSELECT 'default role', 'of', CONVERT(USER USING utf8mb4), CONVERT(DEFAULT_ROLE_USER USING utf8mb4), \
             CONVERT(DEFAULT_ROLE_HOST USING utf8mb4) FROM mysql.default_roles \
             WHERE HOST = {} AND USER IN ({}, {}) ORDER BY 4, 5",
            quote_string(&model.host, nbe),
            quote_string(&model.user, nbe),
            quote_string(&clone.user, nbe),
        ));
    }
    let rows = query_text(
        conn,
        &format!("reading the account, TLS settings and grants of {model_sql}"),
        &lookup,
    )
    .await?;
    round_trips += 1;
    // SHOW GRANTS gives one column, the account lookup six, the default roles five.
    let columns = |n: usize| rows.iter().filter(move |row| row.len() == n);
    let accounts: Vec<&[String]> = columns(6).map(|row| &row[1..]).collect();
    let model_grants: Vec<Vec<String>> = columns(1).cloned().collect();
    let default_roles: Vec<&[String]> = columns(5).map(|row| &row[2..]).collect();

    let tls_of = |user: &str| -> Result<Option<String>, TargetError> {
        accounts
            .iter()
            .find(|row| row.first().is_some_and(|u| u == user))
            .map(|row| {
                let field = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
                require_clause(field(1), field(2), field(3), field(4), nbe)
            })
            .transpose()
    };
    let model_require = tls_of(&model.user)?.ok_or_else(|| {
        TargetError::rejected(format!("account {model_sql} is not in mysql.user"))
    })?;
    let clone_require = tls_of(&clone.user)?;
    let created = clone_require.is_none();

    let model_lines = parse_grants(&model_grants, model, nbe)?;
    let clone_lines = if created {
        let throwaway = PasswordPolicy::new(PasswordRules::aws_defaults(MYSQL_EXCLUDED_CHARACTERS))
            .map_err(|error| TargetError::rejected(error.to_string()))?
            .generate();
        // A password nobody knows: the pending password is set only once the grants are in.
        let create = create_user(info, &clone_sql, &throwaway, &model_require);
        sql::execute(
            conn,
            &format!("creating user {clone_sql}"),
            create.expose_secret(),
        )
        .await?;
        round_trips += 1;
        rotation::crash::after(rotation::crash::points::CLONE_CREATED);
        Vec::new()
    } else {
        let rows = query_text(
            conn,
            &format!("reading the grants of {clone_sql}"),
            &format!("SHOW GRANTS FOR {clone_sql}"),
        )
        .await?;
        round_trips += 1;
        parse_grants(&rows, &clone, nbe)?
    };

    let mut statements = plan(&model_lines, &clone_lines, &clone_sql);
    if clone_require
        .as_ref()
        .is_some_and(|require| *require != model_require)
    {
        statements.push(set_require(info, &clone_sql, &model_require));
    }
    if default_roles_table {
        let roles_of = |user: &str| -> Vec<String> {
            default_roles
                .iter()
                .filter(|row| row.first().is_some_and(|u| u == user))
                .map(|row| {
                    let field = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
                    sql::account(field(1), field(2), info)
                })
                .collect()
        };
        if let Some(statement) =
            mysql_default_roles(&roles_of(&model.user), &roles_of(&clone.user), &clone_sql)
        {
            statements.push(statement);
        }
    }

    let batches = batches(&statements, BATCH_BYTES);
    let count = batches.len();
    for (index, batch) in batches.iter().enumerate() {
        sql::execute(
            conn,
            &format!(
                "replaying the grants of {model_sql} for {clone_sql} (batch {} of {count})",
                index + 1
            ),
            batch,
        )
        .await?;
        round_trips += 1;
    }
    rotation::crash::after(rotation::crash::points::GRANTS_REPLAYED);

    let set = sql::set_password_of(info, &clone_sql, password);
    sql::execute(
        conn,
        &format!("setting the password of {clone_sql}"),
        set.expose_secret(),
    )
    .await?;
    round_trips += 1;
    rotation::crash::after(rotation::crash::points::PASSWORD_SET);

    Ok(Replay {
        model: model_sql,
        clone: clone_sql,
        created,
        statements: statements.len(),
        round_trips,
    })
}

/// Whether the server has `CREATE USER … REQUIRE` and `ALTER USER … REQUIRE` (MySQL 5.7.6,
/// MariaDB 10.2); older servers take `REQUIRE` in `GRANT`.
fn has_alter_user(info: &ServerInfo) -> bool {
    match info.flavor {
        Flavor::MySql => info.version.at_least(5, 7, 6),
        Flavor::MariaDb => info.version.at_least(10, 2, 0),
    }
}

/// `CREATE USER <account> IDENTIFIED BY '<password>'` with the `REQUIRE` settings; returned
/// redacted, as it holds a password.
pub fn create_user(
    info: &ServerInfo,
    account: &str,
    password: &SecretString,
    require: &str,
) -> SecretString {
    let password = quote_string(password.expose_secret(), info.no_backslash_escapes);
    SecretString::from(if has_alter_user(info) {
        format!("CREATE USER {account} IDENTIFIED BY {password} REQUIRE {require}")
    } else {
        format!(
            "CREATE USER {account} IDENTIFIED BY {password};\n{}",
            set_require(info, account, require)
        )
    })
}

/// The statement that gives `account` the `REQUIRE` settings `require`.
pub fn set_require(info: &ServerInfo, account: &str, require: &str) -> String {
    if has_alter_user(info) {
        format!("ALTER USER {account} REQUIRE {require}")
    } else {
        format!("GRANT USAGE ON *.* TO {account} REQUIRE {require}")
    }
}

/// Runs `statements` (separated by `;`) in one round trip; every row as text, with the number
/// of its columns (which tells the statements' results apart).
async fn query_text(
    conn: &mut MySqlConnection,
    context: &str,
    statements: &str,
) -> Result<Vec<Vec<String>>, TargetError> {
    let rows = sql::within_timeout(
        context,
        sqlx::raw_sql(AssertSqlSafe(statements.to_owned())).fetch_all(&mut *conn),
    )
    .await?;
    let mut text = Vec::with_capacity(rows.len());
    for row in rows {
        let mut fields = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let field: Option<String> = row
                .try_get(i)
                .map_err(|error| sql::statement_error(context, error))?;
            fields.push(field.unwrap_or_default());
        }
        text.push(fields);
    }
    Ok(text)
}

/// `REQUIRE …` for an account's `mysql.user` TLS columns.
pub fn require_clause(
    ssl_type: &str,
    cipher: &str,
    issuer: &str,
    subject: &str,
    no_backslash_escapes: bool,
) -> Result<String, TargetError> {
    Ok(match ssl_type.to_ascii_uppercase().as_str() {
        "" | "NONE" => "NONE".to_owned(),
        "ANY" => "SSL".to_owned(),
        "X509" => "X509".to_owned(),
        "SPECIFIED" => {
            let parts: Vec<String> = [("CIPHER", cipher), ("ISSUER", issuer), ("SUBJECT", subject)]
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| {
                    format!("{name} {}", quote_string(value, no_backslash_escapes))
                })
                .collect();
            if parts.is_empty() {
                "SSL".to_owned()
            } else {
                parts.join(" AND ")
            }
        }
        other => {
            return Err(TargetError::rejected(format!(
                "unknown ssl_type {other:?} in mysql.user"
            )))
        }
    })
}

/// On MySQL 8: `ALTER USER <clone> DEFAULT ROLE …` when the clone's default roles (quoted
/// accounts, sorted) differ from the model's.
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
pub fn parse_grants(
    rows: &[Vec<String>],
    account: &Account,
    no_backslash_escapes: bool,
) -> Result<Vec<Grant>, TargetError> {
    let mut grants = Vec::new();
    for row in rows {
        let line = row.first().map(String::as_str).unwrap_or_default();
        if let Some(grant) = parse_grant_line(line, account, no_backslash_escapes)
            .map_err(|problem| TargetError::rejected(format!("SHOW GRANTS: {problem}")))?
        {
            grants.push(grant);
        }
    }
    Ok(grants)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Word,
    /// Quoted with this character: `` ` ``, `'` or `"`.
    Quoted(char),
    Symbol(char),
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

/// Splits a statement into words, quoted names or strings, and single-character symbols, with
/// their byte ranges.
fn lex(text: &str, no_backslash_escapes: bool) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii();
        let kind = if c == '`' || c == '\'' || c == '"' {
            let mut closed = false;
            while let Some((_, d)) = chars.next() {
                if d == '\\' && c != '`' && !no_backslash_escapes {
                    chars.next();
                } else if d == c && chars.next_if(|&(_, e)| e == c).is_none() {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err("a line has an unterminated quoted name or string".to_owned());
            }
            TokenKind::Quoted(c)
        } else if is_word(c) {
            while chars.next_if(|&(_, d)| is_word(d)).is_some() {}
            TokenKind::Word
        } else {
            TokenKind::Symbol(c)
        };
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        tokens.push(Token { kind, start, end });
    }
    Ok(tokens)
}

/// A quoted name's or string's value.
fn unquote(text: &str, token: &Token, no_backslash_escapes: bool) -> String {
    let raw = &text[token.start..token.end];
    let TokenKind::Quoted(quote) = token.kind else {
        return raw.to_owned();
    };
    let inner = &raw[quote.len_utf8()..raw.len() - quote.len_utf8()];
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            chars.next_if_eq(&quote);
            value.push(quote);
        } else if c == '\\' && quote != '`' && !no_backslash_escapes {
            match chars.next() {
                Some('0') => value.push('\0'),
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                Some('b') => value.push('\u{8}'),
                Some('Z') => value.push('\u{1a}'),
                // MySQL keeps the backslash of \% and \_ (LIKE patterns).
                Some(d @ ('%' | '_')) => {
                    value.push('\\');
                    value.push(d);
                }
                Some(d) => value.push(d),
                None => value.push('\\'),
            }
        } else {
            value.push(c);
        }
    }
    value
}

fn is_word(text: &str, token: &Token, word: &str) -> bool {
    token.kind == TokenKind::Word && text[token.start..token.end].eq_ignore_ascii_case(word)
}

/// Parses one `SHOW GRANTS` line of `account`. `Ok(None)`: the line gives nothing worth copying
/// (`GRANT USAGE ON *.* TO …` without grant option, which on MariaDB also carries the account's
/// password hash, its `REQUIRE` and its resource limits).
pub fn parse_grant_line(
    line: &str,
    account: &Account,
    no_backslash_escapes: bool,
) -> Result<Option<Grant>, String> {
    let tokens = lex(line, no_backslash_escapes)?;
    let first = tokens.first().ok_or("an empty line")?;
    let (keyword, statement) = if is_word(line, first, "GRANT") {
        ("TO", "GRANT")
    } else if is_word(line, first, "REVOKE") {
        ("FROM", "REVOKE")
    } else if is_word(line, first, "SET")
        && tokens.get(1).is_some_and(|t| is_word(line, t, "DEFAULT"))
        && tokens.get(2).is_some_and(|t| is_word(line, t, "ROLE"))
    {
        ("FOR", "SET DEFAULT ROLE")
    } else {
        let word = &line[first.start..first.end];
        return Err(format!("a line starting with {word:?} is not a grant"));
    };
    // The grantee follows the first unquoted TO / FROM / FOR: names in the object part are
    // quoted, so a ` TO ` inside them is not a keyword.
    let at = tokens
        .iter()
        .position(|t| is_word(line, t, keyword))
        .ok_or_else(|| format!("a {statement} line without {keyword}"))?;
    let (grantee, rest) = grantee_at(line, &tokens, at + 1, no_backslash_escapes)
        .ok_or_else(|| format!("a {statement} line without an account after {keyword}"))?;
    if grantee.user != account.user || !grantee.host.eq_ignore_ascii_case(&account.host) {
        return Err(format!(
            "a {statement} line for account {}@{}, not for {}@{}",
            grantee.user, grantee.host, account.user, account.host
        ));
    }
    let tail = &tokens[rest..];
    let option = |name: &str| {
        tail.windows(2)
            .any(|pair| is_word(line, &pair[0], name) && is_word(line, &pair[1], "OPTION"))
    };
    let body_start = tokens
        .get(if statement == "SET DEFAULT ROLE" {
            3
        } else {
            1
        })
        .map_or(line.len(), |t| t.start);
    let body_end = tokens[at].start;
    let body = line.get(body_start..body_end).unwrap_or_default().trim();
    let on = tokens[..at].iter().position(|t| is_word(line, t, "ON"));

    let grant = match (statement, on) {
        ("SET DEFAULT ROLE", _) => Grant {
            kind: GrantKind::DefaultRole {
                role: body.to_owned(),
            },
            with_option: false,
        },
        ("GRANT", None) => Grant {
            kind: GrantKind::Roles {
                roles: body.to_owned(),
            },
            with_option: option("ADMIN"),
        },
        (_, None) => return Err("a REVOKE line without ON".to_owned()),
        (_, Some(on)) => {
            let privileges = line[body_start..tokens[on].start].trim().to_owned();
            let object = line[tokens[on].start..body_end].trim().to_owned();
            if statement == "REVOKE" {
                Grant {
                    kind: GrantKind::PartialRevoke { privileges, object },
                    with_option: false,
                }
            } else {
                let with_option = option("GRANT");
                if privileges.eq_ignore_ascii_case("USAGE") && object == "ON *.*" && !with_option {
                    return Ok(None);
                }
                Grant {
                    kind: GrantKind::Privileges { privileges, object },
                    with_option,
                }
            }
        }
    };
    Ok(Some(grant))
}

/// The account at `tokens[at..]` (`user`, `user@host`, quoted or not) and the index after it.
fn grantee_at(
    line: &str,
    tokens: &[Token],
    at: usize,
    no_backslash_escapes: bool,
) -> Option<(Account, usize)> {
    let name = |token: &Token| matches!(token.kind, TokenKind::Word | TokenKind::Quoted(_));
    let user = tokens.get(at).filter(|t| name(t))?;
    let user = unquote(line, user, no_backslash_escapes);
    match (tokens.get(at + 1), tokens.get(at + 2)) {
        (Some(at_sign), Some(host)) if at_sign.kind == TokenKind::Symbol('@') && name(host) => {
            Some((
                Account {
                    user,
                    host: unquote(line, host, no_backslash_escapes),
                },
                at + 3,
            ))
        }
        // A role on MariaDB has no host part; MySQL gives roles '%'.
        _ => Some((
            Account {
                user,
                host: String::new(),
            },
            at + 1,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &str, host: &str) -> Account {
        Account {
            user: user.to_owned(),
            host: host.to_owned(),
        }
    }

    fn parse(line: &str, user: &str, host: &str) -> Option<Grant> {
        parse_grant_line(line, &account(user, host), false)
            .unwrap_or_else(|problem| panic!("{line}: {problem}"))
    }

    #[test]
    fn a_name_alternates_with_its_clone_within_the_limit() {
        assert_eq!(alternate_username("app", 16).expect("ok"), "app_clone");
        assert_eq!(alternate_username("app_clone", 16).expect("ok"), "app");
        assert_eq!(
            alternate_username("ü'`\\%", 80).expect("ok"),
            "ü'`\\%_clone"
        );
        assert_eq!(
            alternate_username(&"a".repeat(10), 16).expect("16"),
            "aaaaaaaaaa_clone"
        );
        let error = alternate_username(&"a".repeat(11), 16).expect_err("17");
        assert_eq!(
            error.message,
            "Unable to clone user, username length with _clone appended would exceed 16 characters"
        );
        assert_eq!(error.error_type(), "InvalidSecret");
        // Characters, not bytes.
        assert!(alternate_username(&"é".repeat(74), 80).is_ok());
        assert!(alternate_username(&"é".repeat(75), 80).is_err());
        assert!(alternate_username("_clone", 80).is_err());
    }

    #[test]
    fn mariadb_lines_keep_their_text_options_and_wildcards() {
        let grant = parse(
            "GRANT SELECT ON `app\\_%`.* TO `app`@`127.0.0.1` WITH GRANT OPTION",
            "app",
            "127.0.0.1",
        )
        .expect("a grant");
        assert!(grant.with_option);
        assert_eq!(
            grant.give("'app_clone'@'127.0.0.1'"),
            "GRANT SELECT ON `app\\_%`.* TO 'app_clone'@'127.0.0.1' WITH GRANT OPTION"
        );
        assert_eq!(
            grant.take("'c'@'h'"),
            [
                "REVOKE SELECT ON `app\\_%`.* FROM 'c'@'h'",
                "REVOKE GRANT OPTION ON `app\\_%`.* FROM 'c'@'h'"
            ]
        );

        let columns = parse(
            "GRANT SELECT (`a`), INSERT, UPDATE (`b`) ON `app_1`.`t1` TO `app`@`%`",
            "app",
            "%",
        )
        .expect("a grant");
        assert_eq!(
            columns.give("X"),
            "GRANT SELECT (`a`), INSERT, UPDATE (`b`) ON `app_1`.`t1` TO X"
        );
        assert_eq!(
            parse(
                "GRANT EXECUTE ON PROCEDURE `mysql`.`addgeometrycolumn` TO `app`@`%`",
                "app",
                "%"
            )
            .expect("routine")
            .take("X"),
            ["REVOKE EXECUTE ON PROCEDURE `mysql`.`addgeometrycolumn` FROM X"]
        );
        let proxy = parse(
            "GRANT PROXY ON `x`@`%` TO `app`@`%` WITH GRANT OPTION",
            "app",
            "%",
        )
        .expect("proxy");
        assert_eq!(
            proxy.give("X"),
            "GRANT PROXY ON `x`@`%` TO X WITH GRANT OPTION"
        );
        assert_eq!(proxy.take("X"), ["REVOKE PROXY ON `x`@`%` FROM X"]);
    }

    #[test]
    fn roles_and_default_roles_are_kept() {
        let role = parse(
            "GRANT `r ole'2` TO `app`@`127.0.0.1` WITH ADMIN OPTION",
            "app",
            "127.0.0.1",
        )
        .expect("role");
        assert_eq!(role.give("X"), "GRANT `r ole'2` TO X WITH ADMIN OPTION");
        assert_eq!(role.take("X"), ["REVOKE `r ole'2` FROM X"]);
        // MySQL 8 roles have a host part.
        let role = parse("GRANT `r1`@`%`,`r2`@`%` TO `app`@`%`", "app", "%").expect("roles");
        assert_eq!(role.give("X"), "GRANT `r1`@`%`,`r2`@`%` TO X");
        let default = parse(
            "SET DEFAULT ROLE `r1` FOR `app`@`127.0.0.1`",
            "app",
            "127.0.0.1",
        )
        .expect("default role");
        assert_eq!(default.give("X"), "SET DEFAULT ROLE `r1` FOR X");
        assert_eq!(default.take("X"), ["SET DEFAULT ROLE NONE FOR X"]);
    }

    #[test]
    fn the_line_with_the_password_hash_is_never_copied() {
        for line in [
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 10",
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT USAGE ON *.* TO 'app'@'%' IDENTIFIED BY PASSWORD '*AB'",
        ] {
            assert_eq!(parse(line, "app", "%"), None, "{line}");
        }
        // Global privileges keep only their grant option, never the hash, REQUIRE or limits.
        let global = parse(
            "GRANT RELOAD ON *.* TO `b`@`%` IDENTIFIED BY PASSWORD '*B690' REQUIRE ISSUER 'i''x GRANT OPTION' CIPHER 'c' WITH GRANT OPTION MAX_USER_CONNECTIONS 3",
            "b",
            "%",
        )
        .expect("global");
        assert_eq!(
            global.give("X"),
            "GRANT RELOAD ON *.* TO X WITH GRANT OPTION"
        );
        let no_option = parse(
            "GRANT RELOAD ON *.* TO `b`@`%` IDENTIFIED BY PASSWORD '*B690' REQUIRE ISSUER 'WITH GRANT OPTION'",
            "b",
            "%",
        )
        .expect("global");
        assert!(!no_option.with_option);
        // USAGE with grant option is a grant.
        let usage = parse(
            "GRANT USAGE ON *.* TO `b`@`%` IDENTIFIED BY PASSWORD '*B6' WITH GRANT OPTION",
            "b",
            "%",
        )
        .expect("usage with grant option");
        assert_eq!(usage.take("X"), ["REVOKE GRANT OPTION ON *.* FROM X"]);
    }

    #[test]
    fn hostile_names_are_found_after_the_real_to() {
        let user = "we'ird\\%_`ü TO x";
        let line = "GRANT SELECT ON `a TO b`.`TO` TO `we'ird\\%_``ü TO x`@`10.0.%`";
        let grant = parse(line, user, "10.0.%").expect("grant");
        assert_eq!(
            grant.kind,
            GrantKind::Privileges {
                privileges: "SELECT".into(),
                object: "ON `a TO b`.`TO`".into()
            }
        );
        // MySQL 5.7 prints accounts as strings.
        let grant = parse(
            "GRANT SELECT ON `d`.* TO 'it''s'@'10.0.%' WITH GRANT OPTION",
            "it's",
            "10.0.%",
        )
        .expect("grant");
        assert!(grant.with_option);
        let grant = parse_grant_line(
            "GRANT SELECT ON `d`.* TO 'a\\'b'@'%'",
            &account("a'b", "%"),
            false,
        )
        .expect("ok");
        assert!(grant.is_some());
        // With NO_BACKSLASH_ESCAPES a backslash is an ordinary character.
        let grant = parse_grant_line(
            "GRANT SELECT ON `d`.* TO 'a\\'@'%'",
            &account("a\\", "%"),
            true,
        )
        .expect("ok");
        assert!(grant.is_some());
        // Somebody else's line is refused, not rewritten.
        assert!(parse_grant_line(
            "GRANT SELECT ON `d`.* TO `other`@`%`",
            &account("app", "%"),
            false
        )
        .is_err());
        assert!(parse_grant_line(
            "GRANT SELECT ON `d.* TO `app`@`%`",
            &account("app", "%"),
            false
        )
        .is_err());
        assert!(parse_grant_line("DROP TABLE x", &account("app", "%"), false).is_err());
    }

    #[test]
    fn mysql_partial_revokes_are_kept() {
        let revoke =
            parse("REVOKE INSERT ON `mysql`.* FROM `app`@`%`", "app", "%").expect("revoke");
        assert_eq!(revoke.give("X"), "REVOKE INSERT ON `mysql`.* FROM X");
        assert_eq!(revoke.take("X"), ["GRANT INSERT ON `mysql`.* TO X"]);
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
    fn tls_requirements_become_a_require_clause() {
        let r = |t, c, i, s| require_clause(t, c, i, s, false).expect("clause");
        assert_eq!(r("", "", "", ""), "NONE");
        assert_eq!(r("ANY", "", "", ""), "SSL");
        assert_eq!(r("X509", "", "", ""), "X509");
        assert_eq!(
            r("SPECIFIED", "AES", "/CN=it's", ""),
            format!(
                "CIPHER 'AES' AND ISSUER {}",
                quote_string("/CN=it's", false)
            )
        );
        assert!(require_clause("BOGUS", "", "", "", false).is_err());
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

    fn server(flavor: Flavor, major: u32, minor: u32, patch: u32) -> ServerInfo {
        ServerInfo {
            flavor,
            version: crate::sql::Version {
                major,
                minor,
                patch,
            },
            no_backslash_escapes: false,
        }
    }

    #[test]
    fn a_created_user_gets_its_password_and_require_in_the_dialect_of_the_server() {
        let password = SecretString::from("p'w\\".to_owned());
        for info in [
            server(Flavor::MariaDb, 10, 11, 9),
            server(Flavor::MySql, 8, 0, 36),
            server(Flavor::MySql, 9, 1, 0),
        ] {
            assert_eq!(
                create_user(&info, "'a'@'%'", &password, "SSL").expose_secret(),
                format!(
                    "CREATE USER 'a'@'%' IDENTIFIED BY {} REQUIRE SSL",
                    quote_string("p'w\\", false)
                )
            );
            assert_eq!(
                set_require(&info, "'a'@'%'", "X509"),
                "ALTER USER 'a'@'%' REQUIRE X509"
            );
        }
        let old = server(Flavor::MySql, 5, 6, 51);
        assert_eq!(
            create_user(&old, "'a'@'%'", &password, "NONE").expose_secret(),
            format!(
                "CREATE USER 'a'@'%' IDENTIFIED BY {};\nGRANT USAGE ON *.* TO 'a'@'%' REQUIRE NONE",
                quote_string("p'w\\", false)
            )
        );
        // A redacted statement shows nothing.
        let debug = format!("{:?}", create_user(&old, "'a'@'%'", &password, "NONE"));
        assert!(!debug.contains("p'") && !debug.contains("p\\'"), "{debug}");
    }
}
