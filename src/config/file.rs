//! Reading `snapguard.yml`: the list sections (`checks`, `maintenance`, `notify`)
//! through their own types, and every other value as a tree walked against
//! [`keys::KEYS`], so that a key is declared in one place and an unknown
//! one is refused with its line and column.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::keys;
use super::{ConfigError, Origin, Setting, Settings, checks, maintenance};

/// A value of the file outside the list sections.
enum Node {
    /// `key:` with nothing after it: as if the key were absent.
    Null,
    /// A string, number or boolean, read as text.
    Scalar(String),
    /// A section.
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or a map of keys")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value::<Spanned<Node>>()?));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

/// The whole file: the list sections typed, the rest as a tree.
#[derive(Default)]
struct FileConfig {
    checks: Option<checks::FileChecks>,
    maintenance: Option<Vec<Spanned<maintenance::SwitchEntry>>>,
    notify: Option<Vec<maintenance::FileWebhook>>,
    rest: Vec<(Spanned<String>, Spanned<Node>)>,
}

impl<'de> Deserialize<'de> for FileConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = FileConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of sections")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileConfig, A::Error> {
                let mut file = FileConfig::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "checks" => file.checks = map.next_value()?,
                        "maintenance" => file.maintenance = map.next_value()?,
                        "notify" => file.notify = map.next_value()?,
                        _ => file.rest.push((key, map.next_value()?)),
                    }
                }
                Ok(file)
            }
        }
        d.deserialize_map(FileVisitor)
    }
}

/// The file's sections made of lists (checks, maintenance switches), which
/// have no environment-variable form.
#[derive(Default)]
pub(super) struct FileSections {
    pub checks: Option<checks::FileChecks>,
    pub maintenance: Option<Vec<Spanned<maintenance::SwitchEntry>>>,
    pub notify: Option<Vec<maintenance::FileWebhook>>,
}

/// The scalar settings of the file, and its list sections.
pub(super) fn file_settings(
    path: &Path,
    text: &str,
) -> Result<(Settings, FileSections), ConfigError> {
    let parsed: FileConfig = if is_blank_yaml(text) {
        FileConfig::default()
    } else {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let loc = e.location();
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line: loc.map_or(0, |l| l.line()),
                column: loc.map_or(0, |l| l.column()),
                message: syntax_message(&e),
            }
        })?
    };
    let mut settings = Settings::new();
    walk(path, "", parsed.rest, &mut settings)?;
    Ok((
        settings,
        FileSections {
            checks: parsed.checks,
            maintenance: parsed.maintenance,
            notify: parsed.notify,
        },
    ))
}

/// Adds every key under `section` to `settings`; refuses a name that is
/// neither a key nor a section, and a section written as a value or the
/// other way round.
fn walk(
    path: &Path,
    section: &str,
    entries: Vec<(Spanned<String>, Spanned<Node>)>,
    settings: &mut Settings,
) -> Result<(), ConfigError> {
    let at = |span: &serde_saphyr::Location, message: String| ConfigError::Syntax {
        path: path.to_path_buf(),
        line: span.line(),
        column: span.column(),
        message,
    };
    for (name, node) in entries {
        let full = match section {
            "" => name.value.clone(),
            s => format!("{s}.{}", name.value),
        };
        match (node.value, keys::find(&full), keys::is_section(&full)) {
            (Node::Null, Some(_), _) | (Node::Null, _, true) => {}
            (Node::Scalar(value), Some(key), _) => {
                let origin = Origin::File {
                    path: path.to_path_buf(),
                    line: node.referenced.line(),
                    column: node.referenced.column(),
                };
                settings.insert(
                    key.name,
                    Setting {
                        value,
                        origin,
                        interpolate: true,
                    },
                );
            }
            (Node::Map(children), _, true) => walk(path, &full, children, settings)?,
            (Node::Map(_), Some(_), _) => {
                return Err(at(
                    &node.referenced,
                    format!("`{full}` takes a string, number or boolean, not a map"),
                ));
            }
            (Node::Scalar(_), _, true) => {
                return Err(at(
                    &node.referenced,
                    format!(
                        "`{full}` is a section: expected a map of {}",
                        keys::children(&full).join(", ")
                    ),
                ));
            }
            _ => {
                return Err(at(
                    &name.referenced,
                    format!(
                        "unknown field `{}`, expected one of {}",
                        name.value,
                        keys::children(section).join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// True for a file with nothing but comments and blank lines, which the YAML
/// parser would otherwise reject as an empty document.
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// The parser's message without its own location suffix, which the caller
/// prints in `file:line:column` form instead.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
