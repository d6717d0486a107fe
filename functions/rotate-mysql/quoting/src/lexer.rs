//! A reference reader of quoted tokens, written from the MySQL and MariaDB manuals ("String
//! Literals" and its table of special character escape sequences, "Schema Object Names"), not
//! from our quoting: the tests and the fuzz targets quote a text, read it back here as the
//! server would in the given `sql_mode`, and expect the same text.
//!
//! It reads every escape the manual lists, not only those our quoting writes, so a quoting
//! mistake shows as a different text. The grant parser reads the server's `SHOW GRANTS` lines
//! with it too: one reader of the server's quoting in the crate.

/// Reads one string literal in single quotes (or, as the server also accepts without
/// `ANSI_QUOTES`, double quotes), with backslash escapes unless `NO_BACKSLASH_ESCAPES` is on. The
/// token must be exactly one literal: a quote that ends it early leaves text after it, which is
/// an error here.
pub fn read_string(token: &str, no_backslash_escapes: bool) -> Result<String, String> {
    let quote = match token.chars().next() {
        Some(quote @ ('\'' | '"')) => quote,
        _ => return Err(format!("{token:?} is not enclosed in ' or \"")),
    };
    let inner = token
        .strip_prefix(quote)
        .and_then(|rest| rest.strip_suffix(quote))
        .ok_or_else(|| format!("{token:?} is not enclosed in {quote}"))?;
    let mut text = String::with_capacity(inner.len());
    let mut characters = inner.chars();
    while let Some(character) = characters.next() {
        match character {
            character if character == quote => {
                if characters.next() != Some(quote) {
                    return Err(format!(
                        "a lone {quote} ends the literal early in {token:?}"
                    ));
                }
                text.push(quote);
            }
            '\\' if !no_backslash_escapes => match characters.next() {
                Some('0') => text.push('\0'),
                Some('b') => text.push('\u{8}'),
                Some('n') => text.push('\n'),
                Some('r') => text.push('\r'),
                Some('t') => text.push('\t'),
                Some('Z') => text.push('\u{1a}'),
                // The manual's exception: `\%` and `\_` keep their backslash (they are meant
                // for LIKE patterns).
                Some(wildcard @ ('%' | '_')) => {
                    text.push('\\');
                    text.push(wildcard);
                }
                // `\\`, `\'`, `\"`, and any other escaped character: the character itself.
                Some(other) => text.push(other),
                None => {
                    return Err(format!(
                        "a backslash escapes the closing quote in {token:?}"
                    ))
                }
            },
            other => text.push(other),
        }
    }
    Ok(text)
}

/// Reads one backquoted identifier (`` `a``b` `` is ``a`b``), whatever the `sql_mode`.
pub fn read_identifier(token: &str) -> Result<String, String> {
    let Some(inner) = token
        .strip_prefix('`')
        .and_then(|rest| rest.strip_suffix('`'))
        .filter(|inner| !inner.is_empty())
    else {
        return Err(format!("{token:?} is not a non-empty backquoted name"));
    };
    let pieces: Vec<&str> = inner.split("``").collect();
    if let Some(piece) = pieces.iter().find(|piece| piece.contains('`')) {
        return Err(format!("a lone ` ends the identifier early in {piece:?}"));
    }
    Ok(pieces.join("`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_follows_the_manual_s_escape_table() {
        assert_eq!(
            read_string(r#"'\0\b\n\r\t\Z\\\'\"\%\_\q'"#, false),
            Ok("\0\u{8}\n\r\t\u{1a}\\'\"\\%\\_q".to_owned())
        );
        assert_eq!(read_string(r"'a\b'", true), Ok(r"a\b".to_owned()));
        assert_eq!(read_string("'it''s'", true), Ok("it's".to_owned()));
        assert_eq!(read_string("'it''s'", false), Ok("it's".to_owned()));
        assert!(read_string("'a'b'", true).is_err(), "a lone quote");
        assert!(
            read_string(r"'a\'", false).is_err(),
            "escaped closing quote"
        );
        assert_eq!(read_string("'nul\0'", true), Ok("nul\0".to_owned()));
        assert_eq!(
            read_string(r#""say ""hi"" \"x\"""#, false),
            Ok(r#"say "hi" "x""#.to_owned())
        );
        assert!(read_string("'mixed\"", false).is_err(), "mismatched quotes");
    }

    #[test]
    fn the_reader_reads_backquoted_identifiers() {
        assert_eq!(read_identifier("`a``b`"), Ok("a`b".to_owned()));
        assert_eq!(read_identifier("```a```"), Ok("`a`".to_owned()));
        assert!(read_identifier("`a`b`").is_err(), "a lone backquote");
        assert!(read_identifier("``").is_err(), "empty");
        assert!(read_identifier("'a'").is_err(), "not backquoted");
    }
}
