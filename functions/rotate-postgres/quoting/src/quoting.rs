//! Identifier and literal quoting for PostgreSQL: every name and value spliced into SQL text
//! goes through these two functions.

/// Quotes an identifier (a role, a database) as PostgreSQL's `quote_ident` would, except that
/// it always quotes: `app` becomes `"app"`, `a"b` becomes `"a""b"`. Inside double quotes every
/// character but `"` is literal (backslashes, `'`, `%`, `;`, spaces, any Unicode), and case is
/// kept.
///
/// A name must not contain a NUL character (PostgreSQL names cannot); `set_password` refuses
/// one before quoting. Names longer than 63 bytes are truncated by the server, as for any
/// identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal exactly as PostgreSQL's `quote_literal` does: `'` is doubled, and
/// when the text holds a backslash the literal becomes an escape string (`E'…'`) with every
/// backslash doubled. The result means the same text whatever `standard_conforming_strings`
/// is, and the client encoding is always UTF-8 (sqlx sets it), so no multi-byte trick applies.
pub fn quote_literal(text: &str) -> String {
    let escape = text.contains('\\');
    let mut quoted = String::with_capacity(text.len() + 3);
    if escape {
        quoted.push('E');
    }
    quoted.push('\'');
    for character in text.chars() {
        if character == '\'' || (escape && character == '\\') {
            quoted.push(character);
        }
        quoted.push(character);
    }
    quoted.push('\'');
    quoted
}
