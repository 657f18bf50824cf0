//! The checksums the native tools record, computed as their sources do, so
//! that a row snapguard writes is one the tool accepts and a file changed
//! after the tool applied it is drift.

use sha2::{Digest, Sha384};

use super::Format;

/// The file's checksum as `format`'s tool records it, as text: sqlx's
/// SHA-384 of the whole file in lowercase hex, Flyway's CRC-32 as a signed
/// decimal. `None` for the tools that keep none.
pub fn checksum(format: Format, file_text: &str) -> Option<String> {
    match format {
        Format::Sqlx => Some(hex::encode(Sha384::digest(file_text.as_bytes()))),
        Format::Flyway => Some(flyway(file_text).to_string()),
        Format::Snapguard | Format::GolangMigrate | Format::Dbmate | Format::Diesel => None,
    }
}

/// Flyway's checksum: CRC-32 over the file's lines without their
/// terminators (`\n`, `\r\n` or `\r`, as Java's `readLine` splits them) and
/// without a byte-order mark, read as a signed 32-bit integer. Line endings
/// and blank lines therefore do not change it.
fn flyway(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = crc32fast::Hasher::new();
    for line in text.split(['\n', '\r']) {
        crc.update(line.as_bytes());
    }
    // Java's `(int) crc32.getValue()`: the same 32 bits, signed.
    crc.finalize() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyway_ignores_line_endings_and_a_byte_order_mark() {
        let unix = "CREATE TABLE person (\n  id int\n);\n";
        let windows = "CREATE TABLE person (\r\n  id int\r\n);\r\n";
        let old_mac = "\u{feff}CREATE TABLE person (\r  id int\r);";
        assert_eq!(flyway(unix), flyway(windows));
        assert_eq!(flyway(unix), flyway(old_mac));
        // The lines concatenated, nothing else.
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"CREATE TABLE person (  id int);");
        assert_eq!(flyway(unix), crc.finalize() as i32);
    }

    #[test]
    fn flyway_checksums_are_signed_like_javas_int() {
        // CRC-32 of "a" is 0xe8b7be43, above i32::MAX: Java stores it negative.
        assert_eq!(flyway("a"), 0xe8b7_be43_u32 as i32);
        assert!(flyway("a") < 0);
    }

    #[test]
    fn sqlx_hashes_the_whole_file() {
        let with_directive = "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n";
        let sum = checksum(Format::Sqlx, with_directive).unwrap();
        assert_eq!(sum.len(), 96);
        assert_ne!(
            sum,
            checksum(Format::Sqlx, "CREATE INDEX CONCURRENTLY i ON t (a);\n").unwrap()
        );
        assert_eq!(checksum(Format::Dbmate, with_directive), None);
    }
}
