//! PostgreSQL's built-in functions and whether each is volatile, for
//! judging a column default without a database: a volatile default is
//! computed for every existing row (a rewrite), a stable or immutable one
//! once. The table is PostgreSQL 18's catalogue (`builtin_functions.txt`
//! says how it was made); a function it does not list is an extension's
//! or the application's, and its volatility is unknown unless the run
//! created it.

use std::sync::OnceLock;

/// `v name` or `- name` per line, sorted by name (bytewise).
const TABLE: &str = include_str!("builtin_functions.txt");

/// Volatile functions of the extensions migrations most often call in a
/// default (`uuid-ossp`, `pgcrypto`), known without a database.
const EXTENSIONS_VOLATILE: &[&str] = &[
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "gen_random_bytes",
    "gen_salt",
];

/// What is known of a function's volatility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    /// Some overload is volatile.
    Volatile,
    /// Stable or immutable.
    Fixed,
    /// Not a built-in function.
    Unknown,
}

fn table() -> &'static [(&'static str, bool)] {
    static PARSED: OnceLock<Vec<(&'static str, bool)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .map(|(mark, name)| (name, mark == "v"))
            .collect()
    })
}

/// The volatility of the function `name` (as the parser gives it:
/// unquoted names in lower case) without a database.
pub fn volatility(name: &str) -> Volatility {
    if EXTENSIONS_VOLATILE.contains(&name) {
        return Volatility::Volatile;
    }
    match table().binary_search_by(|(n, _)| n.cmp(&name)) {
        Ok(i) if table()[i].1 => Volatility::Volatile,
        Ok(_) => Volatility::Fixed,
        Err(_) => Volatility::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_says_what_the_catalogue_says() {
        let names: Vec<&str> = table().iter().map(|(n, _)| *n).collect();
        assert!(names.len() > 2500, "{}", names.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        for volatile in [
            "random",
            "gen_random_uuid",
            "clock_timestamp",
            "nextval",
            "uuidv7",
        ] {
            assert_eq!(volatility(volatile), Volatility::Volatile, "{volatile}");
        }
        for fixed in [
            "now",
            "lower",
            "jsonb_build_object",
            "statement_timestamp",
            "md5",
        ] {
            assert_eq!(volatility(fixed), Volatility::Fixed, "{fixed}");
        }
        assert_eq!(volatility("uuid_generate_v4"), Volatility::Volatile);
        assert_eq!(volatility("next_order_number"), Volatility::Unknown);
    }
}
