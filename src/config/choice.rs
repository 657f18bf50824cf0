//! Settings that name one of a few values (`snapshot.offsite: after`): each
//! word a setting takes, with the value it stands for, is declared once,
//! on the value's type. The key table ([`super::keys`]) takes its JSON
//! Schema `enum` from it, the resolver its parsing and its error message,
//! and the reports the name they print.

use crate::codec::Compression;

use super::migrations::{Format, NativeHistory, TransactionMode};
use super::{CloneMethodSetting, LocalClone, Offsite, ProviderKind};

/// A value a setting names by a word.
pub trait Choice: Copy + PartialEq + Sized + 'static {
    /// Each word, with the value it stands for, in the order the docs and
    /// the error message list them.
    const CHOICES: &'static [(&'static str, Self)];

    /// The value `word` stands for; the error lists the words there are.
    fn from_word(word: &str) -> Result<Self, String> {
        Self::CHOICES
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                format!(
                    "unknown value `{word}`; expected {}",
                    listed(&words::<Self>())
                )
            })
    }

    /// The word for this value.
    fn word(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, value)| *value == self)
            .map(|(w, _)| *w)
            .expect("every value of a choice has its word")
    }
}

/// The words of a choice, for the key table.
pub(super) fn words<T: Choice>() -> Vec<&'static str> {
    T::CHOICES.iter().map(|(w, _)| *w).collect()
}

/// "`a`, `b` or `c`".
fn listed(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

impl Choice for Compression {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("zstd", Compression::Zstd),
        ("gzip", Compression::Gzip),
        ("none", Compression::None),
    ];
}

impl Choice for LocalClone {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", LocalClone::Auto),
        ("always", LocalClone::Always),
        ("never", LocalClone::Never),
    ];
}

impl Choice for CloneMethodSetting {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", CloneMethodSetting::Auto),
        ("clone", CloneMethodSetting::Clone),
        ("copy", CloneMethodSetting::Copy),
    ];
}

impl Choice for Offsite {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("before-migrate", Offsite::BeforeMigrate),
        ("before-maintenance-off", Offsite::BeforeMaintenanceOff),
        ("after", Offsite::After),
    ];
}

/// `snapshot.provider`.
impl Choice for ProviderKind {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("pg_dump", ProviderKind::PgDump),
        ("pgbackrest", ProviderKind::Pgbackrest),
        ("rds", ProviderKind::Rds),
        ("aurora-clone", ProviderKind::AuroraClone),
    ];
}

/// `migrations.format`; `auto` (found from the folder's files) is `None`.
impl Choice for Option<Format> {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", None),
        ("snapguard", Some(Format::Snapguard)),
        ("golang-migrate", Some(Format::GolangMigrate)),
        ("dbmate", Some(Format::Dbmate)),
        ("sqlx", Some(Format::Sqlx)),
        ("diesel", Some(Format::Diesel)),
        ("flyway", Some(Format::Flyway)),
    ];
}

impl Choice for TransactionMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("per-migration", TransactionMode::PerMigration),
        ("all", TransactionMode::All),
    ];
}

impl Choice for NativeHistory {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("keep", NativeHistory::Keep),
        ("read", NativeHistory::Read),
        ("ignore", NativeHistory::Ignore),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_and_its_value_go_both_ways_and_a_wrong_word_names_the_right_ones() {
        for (word, value) in Offsite::CHOICES {
            assert_eq!(Offsite::from_word(word), Ok(*value));
            assert_eq!(value.word(), *word);
        }
        assert_eq!(Option::<Format>::from_word("auto"), Ok(None));
        assert_eq!(Some(Format::Diesel).word(), "diesel");
        assert_eq!(
            TransactionMode::from_word("sometimes"),
            Err("unknown value `sometimes`; expected `per-migration` or `all`".into())
        );
        assert_eq!(
            Compression::from_word("brotli"),
            Err("unknown value `brotli`; expected `zstd`, `gzip` or `none`".into())
        );
    }
}
