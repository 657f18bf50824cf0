//! How this snapguard was started, for the commands it prints.
//!
//! A printed next step is run at 3 a.m. by someone copying it: it must
//! run as printed. So it repeats the global flags the operator gave
//! (`--config`, `--store`, `--database-url`); without them `snapguard
//! --config deploy/prod.yml deploy` would print a `snapguard recover` that
//! finds no config. The one thing never repeated is a password: a
//! `--database-url` is printed without it, and [`Invocation::note`] says
//! where to give it.

use std::path::Path;

use crate::db::{ConnInfo, names_a_password};

/// The global flags a printed command repeats.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// ` --config … --store …`, shell-quoted, each with its leading space.
    flags: String,
    /// A password was given in `--database-url` and left out.
    password_left_out: bool,
}

impl Invocation {
    /// From the flags as given: the config path as typed, the store URL
    /// as typed, the database URL as resolved but without its password.
    pub fn new(
        config: Option<&Path>,
        store: Option<&str>,
        database_url: Option<(&str, &ConnInfo)>,
    ) -> Self {
        let mut flags = String::new();
        if let Some(path) = config {
            flags.push_str(" --config ");
            flags.push_str(&quote(&path.to_string_lossy()));
        }
        if let Some(url) = store {
            flags.push_str(" --store ");
            flags.push_str(&quote(url));
        }
        let mut password_left_out = false;
        if let Some((given, resolved)) = database_url {
            flags.push_str(" --database-url ");
            flags.push_str(&quote(&resolved.public_url()));
            password_left_out = names_a_password(given);
        }
        Invocation {
            flags,
            password_left_out,
        }
    }

    /// `snapguard <global flags> <rest>`: `rest` is the command and its own
    /// arguments, already quoted where needed.
    pub fn command(&self, rest: &str) -> String {
        format!("snapguard{} {rest}", self.flags)
    }

    /// What the printed commands need that they cannot carry, if anything.
    pub fn note(&self) -> Option<&'static str> {
        self.password_left_out.then_some(
            "the password given in --database-url is not printed: set PGPASSWORD (or use ~/.pgpass) before running these",
        )
    }
}

/// `s` as one POSIX shell word: unchanged when it holds only characters
/// no shell treats specially, else single-quoted.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_flags_a_command_is_plain() {
        let i = Invocation::default();
        assert_eq!(i.command("recover"), "snapguard recover");
        assert_eq!(i.note(), None);
    }

    #[test]
    fn the_flags_given_are_repeated_quoted_and_the_password_left_out() {
        let given = "postgres://app:Sekr3t@db.example:5433/shop?sslmode=require";
        let url = ConnInfo::parse_with_env(given, &|_| None).unwrap();
        let i = Invocation::new(
            Some(Path::new("deploy/prod env.yml")),
            Some("s3://bucket/prod"),
            Some((given, &url)),
        );
        let cmd = i.command("recover --accept-current");
        assert_eq!(
            cmd,
            "snapguard --config 'deploy/prod env.yml' --store s3://bucket/prod --database-url 'postgresql://app@db.example:5433/shop?sslmode=require' recover --accept-current"
        );
        assert!(!cmd.contains("Sekr3t"));
        assert!(i.note().unwrap().contains("PGPASSWORD"));
    }

    #[test]
    fn quoting_survives_a_quote() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a/b.yml"), "a/b.yml");
    }
}
