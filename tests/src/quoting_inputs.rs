//! The texts the quoting round-trip tests send through the real servers: the fuzz targets' seed
//! inputs, and hostile strings generated from a fixed seed, so a failure names a text that the
//! next run generates again.

use std::path::{Path, PathBuf};

/// The fuzz targets whose seeds are quoting inputs (fuzz/corpus/<target>/seed-*).
const QUOTING_TARGETS: [&str; 2] = ["postgres_quoting", "mysql_quoting"];

/// Pieces that mean something to a SQL lexer, an escape syntax, a terminal or a log reader,
/// and characters from every UTF-8 length, which the generated texts are strung from.
const PIECES: [&str; 64] = [
    "'",
    "''",
    "\"",
    "`",
    "\\",
    "\\'",
    "\\\"",
    "\\\\",
    "%",
    "_",
    "\\%",
    "\\_",
    ";",
    "--",
    "#",
    "/*",
    "*/",
    "$$",
    "$a$",
    "E'",
    "N'",
    "U&'",
    "\\0",
    "\\n",
    "\\x41",
    "\\u0041",
    "\\101",
    "\\Z",
    "\n",
    "\r",
    "\t",
    "\u{1a}",
    "\u{1}",
    "\u{1b}[2J",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{202e}",
    "\u{feff}",
    "\u{200b}",
    "\u{fffd}",
    "\u{ffff}",
    "é",
    "ß",
    "İ",
    "✓",
    "角",
    "🔑",
    "\u{10ffff}",
    " ",
    "  ",
    "a",
    "Z",
    "0",
    "SELECT 1",
    "DROP ROLE postgres",
    "@",
    "?",
    "$1",
    ":name",
    "\0",
    "\u{301}",
    "x",
];

/// `hand_picked`, then every seed of the quoting fuzz targets, then `count` generated texts.
pub fn with_seeds_and_generated(hand_picked: &[&str], count: usize) -> Vec<String> {
    let mut texts: Vec<String> = hand_picked.iter().map(|text| (*text).to_owned()).collect();
    texts.extend(fuzz_seeds());
    texts.extend(generated(count));
    texts
}

/// Every seed input of the quoting fuzz targets, read as the targets read it (invalid UTF-8 as
/// U+FFFD). A missing or empty seed directory fails: the test would otherwise check less than
/// it says.
pub fn fuzz_seeds() -> Vec<String> {
    let corpus = repository().join("fuzz").join("corpus");
    let mut seeds = Vec::new();
    for target in QUOTING_TARGETS {
        let directory = corpus.join(target);
        let entries = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("reading {}: {error}", directory.display()));
        let mut paths: Vec<PathBuf> = entries
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|error| panic!("listing {}: {error}", directory.display()));
        paths.retain(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("seed-"))
        });
        assert!(
            !paths.is_empty(),
            "no seed-* inputs in {}",
            directory.display()
        );
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            seeds.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    seeds
}

/// `count` texts of up to 24 pieces each, then four long ones (1 KB, 8 KB, 64 KB, 1 MB of
/// pieces), all from a fixed seed.
pub fn generated(count: usize) -> Vec<String> {
    let mut random = SplitMix64(0x5eed_f00d_7e57);
    let mut text_of = |pieces: usize| {
        (0..pieces)
            .map(|_| PIECES[random.below(PIECES.len())])
            .collect::<String>()
    };
    let mut texts: Vec<String> = (0..count).map(|index| text_of(index % 25)).collect();
    for bytes in [1 << 10, 8 << 10, 64 << 10, 1 << 20] {
        let mut long = String::new();
        while long.len() < bytes {
            long.push_str(&text_of(16));
        }
        texts.push(long);
    }
    texts
}

/// Consecutive groups of at most `most` texts and about `bytes` bytes (a longer text makes a
/// group of its own), so that one statement checks many texts without growing too large.
pub fn batches(texts: &[String], most: usize, bytes: usize) -> Vec<&[String]> {
    let mut groups = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (index, text) in texts.iter().enumerate() {
        if index > start && (index - start == most || size + text.len() > bytes) {
            groups.push(&texts[start..index]);
            (start, size) = (index, 0);
        }
        size += text.len();
    }
    if start < texts.len() {
        groups.push(&texts[start..]);
    }
    groups
}

/// `SELECT 1 AS <quoted name>, …`, one column per name, to see what name the server reads from
/// each quoted identifier.
pub fn select_aliases(names: &[&String], quote: impl Fn(&str) -> String) -> String {
    let columns: Vec<String> = names
        .iter()
        .map(|name| format!("1 AS {}", quote(name)))
        .collect();
    format!("SELECT {}", columns.join(", "))
}

/// Checks the column names the server reported for [`select_aliases`]: each is `expected` of
/// its name, and a mismatch shows the name as quoted.
pub fn assert_aliases(
    reported: &[&str],
    names: &[&String],
    expected: impl Fn(&str) -> String,
    quote: impl Fn(&str) -> String,
) {
    assert_eq!(reported.len(), names.len(), "one column per name");
    for (column, name) in reported.iter().zip(names) {
        assert_eq!(*column, expected(name), "{}", quote(name));
    }
}

/// The repository's root: this crate lives in `tests/`.
fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new(".."))
}

/// A small, well-known generator (SplitMix64): the same seed gives the same texts everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^= mixed >> 31;
        (mixed % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_texts_are_the_same_on_every_run_and_hold_every_piece() {
        let first = generated(500);
        assert_eq!(first, generated(500));
        assert_eq!(first.len(), 504);
        for piece in PIECES {
            assert!(first.iter().any(|text| text.contains(piece)), "{piece:?}");
        }
        assert!(first.last().is_some_and(|text| text.len() >= 1 << 20));
    }

    #[test]
    fn every_seed_of_the_quoting_fuzz_targets_is_read() {
        let seeds = fuzz_seeds();
        assert!(seeds.len() >= 10, "{} seeds", seeds.len());
        assert!(seeds.iter().any(|seed| seed.contains('\0')));
    }

    #[test]
    fn batches_keep_every_text_once_and_in_order() {
        let texts: Vec<String> = ["a", "bb", "ccc", "dddddddddd", "e"]
            .map(str::to_owned)
            .to_vec();
        let groups = batches(&texts, 2, 5);
        assert_eq!(groups.concat(), texts);
        assert_eq!(
            groups.iter().map(|group| group.len()).collect::<Vec<_>>(),
            [2, 1, 1, 1]
        );
    }
}
