//! A reference reader of quoted tokens, written from PostgreSQL's documentation of its lexical
//! structure ("String Constants", "String Constants with C-Style Escapes", "Identifiers and
//! Key Words"), not from our quoting: the tests and the fuzz targets quote a text, read it back
//! here as the server would, and expect the same text.
//!
//! It reads the escapes the server knows (all but UTF-16 surrogate pairs in `\u` escapes), not
//! only those our quoting writes, so a quoting mistake shows as a different text rather than
//! as an unknown escape. Like the whole crate, it depends on nothing but `std`.

use std::iter::Peekable;
use std::str::Chars;

/// Reads one double-quoted identifier (`"a""b"` is `a"b`). The token must be exactly one
/// identifier: a quote that ends it early leaves text after it, which is an error here.
pub fn read_identifier(token: &str) -> Result<String, String> {
    let inner = inside_quotes(token, '"')?;
    let mut name = String::new();
    let mut characters = inner.chars();
    while let Some(character) = characters.next() {
        if character == '"' && characters.next() != Some('"') {
            return Err(format!("a lone \" ends the identifier early in {token:?}"));
        }
        name.push(character);
    }
    if name.is_empty() {
        return Err("a zero-length delimited identifier is an error".to_owned());
    }
    Ok(name)
}

/// Reads one string constant: `'…'` or an escape string `E'…'`. A standard string reads its
/// backslashes as escapes too when `standard_conforming_strings` is off, as the server does.
pub fn read_literal(token: &str, standard_conforming_strings: bool) -> Result<String, String> {
    let (escapes, quoted) = match token.strip_prefix(['E', 'e']) {
        Some(rest) => (true, rest),
        None => (!standard_conforming_strings, token),
    };
    let inner = inside_quotes(quoted, '\'')?;
    // Octal and hexadecimal escapes name bytes, so the text is assembled as bytes and must be
    // UTF-8 at the end, as the server (with a UTF-8 encoding) checks.
    let mut bytes = Vec::with_capacity(inner.len());
    let mut characters = inner.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                if characters.next() != Some('\'') {
                    return Err(format!("a lone ' ends the literal early in {token:?}"));
                }
                bytes.push(b'\'');
            }
            '\\' if escapes => {
                let escaped = characters
                    .next()
                    .ok_or_else(|| format!("a backslash escapes the closing quote in {token:?}"))?;
                match escaped {
                    'b' => bytes.push(0x08),
                    'f' => bytes.push(0x0c),
                    'n' => bytes.push(b'\n'),
                    'r' => bytes.push(b'\r'),
                    't' => bytes.push(b'\t'),
                    '0'..='7' => {
                        let first = u32::from(escaped) - u32::from('0');
                        let value = more_digits(&mut characters, 8, first);
                        // `\400` and above wrap to a byte, as the server's scanner does.
                        bytes.push((value & 0xff) as u8);
                    }
                    'x' if characters.peek().is_some_and(char::is_ascii_hexdigit) => {
                        bytes.push(more_digits(&mut characters, 16, 0) as u8);
                    }
                    'u' | 'U' => {
                        let digits = if escaped == 'u' { 4 } else { 8 };
                        let hex: String = characters.by_ref().take(digits).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == digits)
                            .filter(|&code| code != 0)
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("an invalid Unicode escape in {token:?}"))?;
                        let mut buffer = [0; 4];
                        bytes.extend_from_slice(code.encode_utf8(&mut buffer).as_bytes());
                    }
                    // Any other escaped character stands for itself (`\\`, `\'`, `\x` alone).
                    other => push_char(&mut bytes, other),
                }
            }
            other => push_char(&mut bytes, other),
        }
    }
    if bytes.contains(&0) {
        return Err(format!(
            "an escape makes a NUL, which text cannot hold, in {token:?}"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("escapes make invalid UTF-8 in {token:?}"))
}

/// `value` followed by up to two more digits in `radix` taken from `characters` (an octal
/// escape has three digits at most, the first already read; a hexadecimal one two).
fn more_digits(characters: &mut Peekable<Chars<'_>>, radix: u32, mut value: u32) -> u32 {
    for _ in 0..2 {
        match characters.peek().and_then(|c| c.to_digit(radix)) {
            Some(digit) => {
                value = value * radix + digit;
                characters.next();
            }
            None => break,
        }
    }
    value
}

/// The text between the opening and the closing quote. The server reads a statement only up to
/// its first NUL (the protocol sends it as a C string), so a NUL leaves the token unterminated.
fn inside_quotes(token: &str, quote: char) -> Result<&str, String> {
    if let Some(position) = token.find('\0') {
        return Err(format!(
            "the server stops reading at the NUL at byte {position}, inside the token"
        ));
    }
    token
        .strip_prefix(quote)
        .and_then(|rest| rest.strip_suffix(quote))
        .ok_or_else(|| format!("{token:?} is not enclosed in {quote}"))
}

fn push_char(bytes: &mut Vec<u8>, character: char) {
    let mut buffer = [0; 4];
    bytes.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_follows_the_documented_escapes() {
        assert_eq!(read_literal("'it''s'", true), Ok("it's".to_owned()));
        assert_eq!(read_literal(r"'a\b'", true), Ok(r"a\b".to_owned()));
        assert_eq!(read_literal(r"'a\\b'", false), Ok(r"a\b".to_owned()));
        assert_eq!(
            read_literal(r"E'\n\t\101\x41\u0041\U00000041\q\''", true),
            Ok("\n\tAAAAq'".to_owned())
        );
        assert_eq!(read_literal(r"E'\xé'", true), Ok("xé".to_owned()));
        assert!(read_literal("'a'b'", true).is_err(), "a lone quote");
        assert!(
            read_literal(r"E'a\'", true).is_err(),
            "escaped closing quote"
        );
        assert!(read_literal(r"E'\377'", true).is_err(), "not UTF-8");
        assert!(read_literal("'a\0b'", true).is_err(), "NUL");
        assert!(read_literal(r"E'a\0b'", true).is_err(), "an escaped NUL");
    }

    #[test]
    fn the_reader_reads_identifiers_as_the_server_does() {
        assert_eq!(read_identifier("\"a\"\"b\""), Ok("a\"b".to_owned()));
        assert_eq!(read_identifier("\"a\\b\""), Ok("a\\b".to_owned()));
        assert!(read_identifier("\"a\"b\"").is_err(), "a lone quote");
        assert!(read_identifier("\"\"").is_err(), "zero-length");
        assert!(read_identifier("\"a\0\"").is_err(), "NUL");
    }
}
