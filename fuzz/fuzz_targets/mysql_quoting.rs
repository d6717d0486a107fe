//! MySQL and MariaDB quoting: any bytes, as text, quoted as an identifier and as a literal for
//! each `sql_mode`.
//!
//! What must hold (functions/rotate-mysql/src/sql/quoting.rs): the quoted token is exactly one
//! token whatever the text. With backslash escapes, only `\`, `'`, `"`, NUL, newline, carriage
//! return and Ctrl-Z are escaped (so no raw NUL or line break reaches the statement) and `%`
//! and `_` never are; with `NO_BACKSLASH_ESCAPES`, only `'` is doubled. Either way the server's
//! reading in that mode (the reference reader in `sql/lexer.rs`) gives back exactly the text,
//! and a text with none of those characters is quoted the same in both modes. An identifier is
//! backquoted with its backquotes doubled. (`tests/single_user.rs` checks the same against the
//! real server.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_quoting::lexer::{read_identifier, read_string};
use mysql_quoting::{quote_identifier, quote_string};
use rotation_fuzz::quotes_are_doubled;

/// What `mysql_real_escape_string` escapes, and with which letter.
const ESCAPED: [(char, char); 7] = [
    ('\\', '\\'),
    ('\'', '\''),
    ('"', '"'),
    ('\0', '0'),
    ('\n', 'n'),
    ('\r', 'r'),
    ('\u{1a}', 'Z'),
];

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 becomes U+FFFD, so every input is used; the quoting takes `&str`.
    let text = String::from_utf8_lossy(data);
    literal_with_backslash_escapes_reads_back(&text);
    literal_with_no_backslash_escapes_reads_back(&text);
    if !text
        .chars()
        .any(|c| ESCAPED.iter().any(|&(special, _)| c == special))
    {
        assert_eq!(quote_string(&text, false), quote_string(&text, true));
    }
    identifier_reads_back(&text);
});

fn inside(quoted: &str, quote: char) -> &str {
    quoted
        .strip_prefix(quote)
        .and_then(|rest| rest.strip_suffix(quote))
        .unwrap_or_else(|| panic!("{quoted:?} is not enclosed in {quote}"))
}

fn literal_with_backslash_escapes_reads_back(text: &str) {
    let quoted = quote_string(text, false);
    let mut characters = inside(&quoted, '\'').chars();
    let mut unescaped = String::new();
    while let Some(character) = characters.next() {
        assert!(
            !ESCAPED
                .iter()
                .any(|&(special, _)| character == special && special != '\\'),
            "{character:?} stands unescaped in {quoted:?}"
        );
        if character == '\\' {
            let letter = characters.next();
            let special = ESCAPED
                .iter()
                .find(|&&(_, escape)| Some(escape) == letter)
                .unwrap_or_else(|| panic!("\\{letter:?} is not an escape we write, in {quoted:?}"));
            unescaped.push(special.0);
        } else {
            unescaped.push(character);
        }
    }
    assert_eq!(unescaped, text, "only the escapes are added");
    assert_eq!(
        read_string(&quoted, false).as_deref(),
        Ok(text),
        "{quoted:?}"
    );
}

fn literal_with_no_backslash_escapes_reads_back(text: &str) {
    let quoted = quote_string(text, true);
    let inner = inside(&quoted, '\'');
    assert!(quotes_are_doubled(inner, '\''), "{quoted:?}");
    assert_eq!(inner.replace("''", "'"), text, "only quotes are added");
    assert_eq!(
        read_string(&quoted, true).as_deref(),
        Ok(text),
        "{quoted:?}"
    );
}

fn identifier_reads_back(name: &str) {
    let quoted = quote_identifier(name);
    let inner = inside(&quoted, '`');
    assert!(quotes_are_doubled(inner, '`'), "{quoted:?}");
    assert_eq!(inner.replace("``", "`"), name, "only backquotes are added");
    match read_identifier(&quoted) {
        Ok(read) => assert_eq!(read, name, "{quoted:?}"),
        // An empty name is refused by the server, and by `check_name` before quoting.
        Err(reason) => assert!(name.is_empty(), "{reason}"),
    }
}
