//! Reading `SHOW GRANTS` lines as the server wrote them: each line's grantee, privileges,
//! object and options, with quoted names read by the same reader as the quoting's tests
//! ([`crate::sql::lexer`]).

use rotation::TargetError;

use crate::account::Account;
use crate::plan::{Grant, GrantKind};
use crate::sql::lexer;

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

/// A quoted name's or string's value, read as the server reads it. The lexer found the token's
/// closing quote, so the reader accepts it; its raw text stands in should it not.
fn unquote(text: &str, token: &Token, no_backslash_escapes: bool) -> String {
    let raw = &text[token.start..token.end];
    let read = match token.kind {
        TokenKind::Quoted('`') => lexer::read_identifier(raw),
        TokenKind::Quoted(_) => lexer::read_string(raw, no_backslash_escapes),
        TokenKind::Word | TokenKind::Symbol(_) => return raw.to_owned(),
    };
    read.unwrap_or_else(|_| raw.to_owned())
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
        Account::new(user, host)
    }

    fn parse(line: &str, user: &str, host: &str) -> Option<Grant> {
        parse_grant_line(line, &account(user, host), false)
            .unwrap_or_else(|problem| panic!("{line}: {problem}"))
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
}
