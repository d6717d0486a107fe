//! String literal and identifier quoting for MySQL and MariaDB: every name and value spliced
//! into SQL text goes through these two functions.

/// Quotes a string literal for the session's `sql_mode`:
///
/// - backslash escapes on (the default): `\`, `'`, `"`, NUL, newline, carriage return and
///   Ctrl-Z are backslash-escaped (as `mysql_real_escape_string` does); everything else,
///   `%` and `_` included, is literal;
/// - `NO_BACKSLASH_ESCAPES`: `'` is doubled and every other character, the backslash included,
///   is literal.
///
/// Either way the server reads back exactly `text`, as long as the mode given is the
/// session's (see `server_info`).
pub fn quote_string(text: &str, no_backslash_escapes: bool) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for character in text.chars() {
        if no_backslash_escapes {
            if character == '\'' {
                quoted.push('\'');
            }
            quoted.push(character);
            continue;
        }
        match character {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '"' => quoted.push_str("\\\""),
            '\0' => quoted.push_str("\\0"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\u{1a}' => quoted.push_str("\\Z"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

/// Quotes an identifier (a database, a table, a role in a grant): always in backticks, with
/// inner backticks doubled. Inside backticks every other character is literal whatever the
/// `sql_mode` (backslashes, quotes, `%`, `;`, spaces, Unicode). MySQL identifiers cannot hold
/// NUL; see `check_name`.
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
