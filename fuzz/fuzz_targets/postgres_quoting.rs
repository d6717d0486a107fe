//! PostgreSQL quoting: any bytes, as text, quoted as an identifier and as a literal.
//!
//! What must hold (functions/rotate-postgres/src/sql/quoting.rs): the quoted token is exactly
//! one token whatever the text: it opens and closes with its quote, every quote inside is
//! doubled, and in an escape string (`E'…'`, used exactly when the text holds a backslash) every
//! backslash is doubled too; nothing else is added or dropped, NUL included; and the server's
//! reading (the reference reader in `sql/lexer.rs`) gives back exactly the text, with
//! `standard_conforming_strings` on and off. A NUL, which PostgreSQL cannot hold, always leaves
//! the token unterminated for the server, so the statement fails instead of meaning something
//! shorter. (`tests/single_user.rs` checks the same against the real server.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use postgres_quoting::lexer::{read_identifier, read_literal};
use postgres_quoting::{quote_identifier, quote_literal};
use rotation_fuzz::quotes_are_doubled;

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 becomes U+FFFD, so every input is used; the quoting takes `&str`.
    let text = String::from_utf8_lossy(data);
    identifier_reads_back(&text);
    literal_reads_back(&text);
});

fn identifier_reads_back(name: &str) {
    let quoted = quote_identifier(name);
    let inner = quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{quoted:?} is not enclosed in double quotes"));
    assert!(quotes_are_doubled(inner, '"'), "{quoted:?}");
    assert_eq!(inner.replace("\"\"", "\""), name, "only quotes are added");
    match read_identifier(&quoted) {
        Ok(read) => assert_eq!(read, name, "{quoted:?}"),
        // The server refuses these two; `check_name` refuses them before quoting.
        Err(reason) => assert!(name.is_empty() || name.contains('\0'), "{reason}"),
    }
}

fn literal_reads_back(text: &str) {
    let quoted = quote_literal(text);
    let escape = text.contains('\\');
    let body = if escape {
        quoted.strip_prefix('E')
    } else {
        Some(quoted.as_str())
    };
    let inner = body
        .and_then(|body| body.strip_prefix('\''))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{quoted:?}: not a literal of the expected kind"));
    assert!(quotes_are_doubled(inner, '\''), "{quoted:?}");
    let mut unescaped = inner.replace("''", "'");
    if escape {
        assert!(quotes_are_doubled(inner, '\\'), "{quoted:?}");
        unescaped = unescaped.replace("\\\\", "\\");
    }
    assert_eq!(unescaped, text, "only quotes and backslashes are added");
    for standard_conforming_strings in [true, false] {
        match read_literal(&quoted, standard_conforming_strings) {
            Ok(read) => assert_eq!(read, text, "{quoted:?}"),
            Err(reason) => assert!(text.contains('\0'), "{reason}"),
        }
    }
}
