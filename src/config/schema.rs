//! `snapguard config schema`: a JSON Schema of `snapguard.yml` (draft-07, the
//! version YAML language servers read), so editors complete and check keys.
//! The scalar keys come from the key table (`keys.rs`), with the values
//! each takes and the relations between them; the two list sections
//! (`checks`, `maintenance`) are described here beside their readers'
//! shapes. Any text value may be a `${VAR}` reference, resolved when the
//! file is read. The schema is as strict as the loader: a test feeds every
//! key a valid and an invalid value and checks both agree.

use serde_json::{Map, Value, json};

use super::keys::{KEYS, Kind, RELATIONS};
use crate::codec::Compression;

/// The schema, as JSON.
pub fn schema() -> Value {
    let mut root = object();
    for key in KEYS {
        let (section, leaf) = key
            .name
            .rsplit_once('.')
            .expect("every key is in a section");
        let properties = section_mut(&mut root, section)["properties"]
            .as_object_mut()
            .expect("an object node");
        let mut value = nullable(value_of(key.kind));
        if let Some(default) = key.default {
            value["default"] = typed_default(key.kind, default);
        }
        properties.insert(leaf.to_owned(), value);
    }
    for relation in RELATIONS {
        let (section, leaf) = relation.key.rsplit_once('.').expect("in a section");
        let (needs_section, needed) = relation.needs.rsplit_once('.').expect("in a section");
        assert_eq!(section, needs_section, "a relation within one section");
        let wanted = match relation.value {
            Some(value) => or_reference(json!({ "const": value })),
            None => json!({ "not": { "enum": [null, ""] } }),
        };
        constrain(
            section_mut(&mut root, section),
            json!({
                "if": { "required": [leaf], "properties": { leaf: { "not": { "enum": [null, ""] } } } },
                "then": { "required": [needed], "properties": { needed: wanted } }
            }),
        );
    }
    constrain(section_mut(&mut root, "snapshot"), compression_levels());
    for condition in provider_sections() {
        constrain(section_mut(&mut root, "snapshot"), condition);
    }
    let properties = root["properties"].as_object_mut().expect("the root");
    properties.insert("checks".into(), nullable(checks()));
    properties.insert("maintenance".into(), nullable(maintenance()));
    properties.insert("notify".into(), nullable(notify()));
    let mut schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "snapguard.yml",
        "description": "snapguard's configuration: the database, the snapshot store, migrations, checks, maintenance switches and the release.",
        "definitions": {
            "reference": {
                "description": "an environment variable, resolved when the file is read: ${VAR} or ${VAR:-default}",
                "type": "string",
                "pattern": "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:?-[^}]*)?\\}"
            },
            "duration": {
                "anyOf": [
                    { "type": "string", "pattern": "^[0-9]+ ?(ms|s|m|h)$" },
                    { "$ref": "#/definitions/reference" }
                ]
            }
        }
    });
    let schema_map = schema.as_object_mut().expect("an object");
    for (k, v) in root.as_object().expect("an object") {
        schema_map.insert(k.clone(), v.clone());
    }
    schema
}

/// The node of `section` (`store`, `release.health`), made on first use;
/// a section left empty in the file (`store:` with every key commented
/// out) is null, which the loader takes as absent.
fn section_mut<'a>(root: &'a mut Value, section: &str) -> &'a mut Value {
    let mut node = root;
    for part in section.split('.') {
        let properties = node["properties"].as_object_mut().expect("an object node");
        node = properties.entry(part).or_insert_with(|| nullable(object()));
    }
    node
}

/// Adds a condition to an object node.
fn constrain(node: &mut Value, condition: Value) {
    let all = node
        .as_object_mut()
        .expect("an object node")
        .entry("allOf")
        .or_insert_with(|| json!([]));
    all.as_array_mut().expect("a list").push(condition);
}

/// Each provider's section: `snapshot.provider: pgbackrest` needs its
/// section's `stanza`, `stop` and `start`, `rds` `snapshot.rds.instance`,
/// `aurora-clone` `snapshot.rds.cluster`; a section's key set needs a
/// provider that reads it.
fn provider_sections() -> Vec<Value> {
    let set = json!({ "not": { "enum": [null, ""] } });
    // (provider, its section, the keys it needs there)
    let needs: [(&str, &str, &[&str]); 3] = [
        ("pgbackrest", "pgbackrest", &["stanza", "stop", "start"]),
        ("rds", "rds", &["instance"]),
        ("aurora-clone", "rds", &["cluster"]),
    ];
    // (section, keys, the providers that read them)
    let read_by: [(&str, &[&str], &[&str]); 4] = [
        (
            "pgbackrest",
            &[
                "stanza", "config", "user", "exec", "stop", "start", "verify",
            ],
            &["pgbackrest"],
        ),
        ("rds", &["instance"], &["rds"]),
        ("rds", &["cluster"], &["aurora-clone"]),
        (
            "rds",
            &["region", "endpoint", "wait"],
            &["rds", "aurora-clone"],
        ),
    ];
    let mut conditions = Vec::new();
    for (provider, section, required) in needs {
        let needed: serde_json::Map<String, Value> = required
            .iter()
            .map(|k| ((*k).to_owned(), set.clone()))
            .collect();
        conditions.push(json!({
            "if": { "required": ["provider"], "properties": { "provider": { "const": provider } } },
            "then": {
                "required": [section],
                "properties": { section: {
                    "type": "object",
                    "required": required,
                    "properties": needed
                } }
            }
        }));
    }
    for (section, keys, providers) in read_by {
        let any_set: Vec<Value> = keys
            .iter()
            .map(|k| json!({ "required": [k], "properties": { *k: set } }))
            .collect();
        conditions.push(json!({
            "if": {
                "required": [section],
                "properties": { section: {
                    "type": "object",
                    "anyOf": any_set
                } }
            },
            "then": {
                "required": ["provider"],
                "properties": { "provider": { "enum": providers } }
            }
        }));
    }
    conditions
}

/// `snapshot.compression_level`'s range for each `snapshot.compression`
/// (zstd when unset).
fn compression_levels() -> Value {
    let level = |c: Compression| {
        let range = c.valid_levels();
        let bounds = (
            u64::from(range.start().unsigned_abs()),
            u64::from(range.end().unsigned_abs()),
        );
        json!({ "properties": { "compression_level": nullable(whole_number_between(bounds.0, bounds.1)) } })
    };
    let named = |word: &str| json!({ "required": ["compression"], "properties": { "compression": { "const": word } } });
    json!({
        "allOf": [
            { "if": named("gzip"), "then": level(Compression::Gzip) },
            { "if": named("none"), "then": level(Compression::None) },
            {
                "if": { "anyOf": [
                    { "not": { "required": ["compression"] } },
                    { "properties": { "compression": { "enum": ["zstd", null] } } }
                ] },
                "then": level(Compression::Zstd)
            }
        ]
    })
}

/// An object that takes only the properties listed.
fn object() -> Value {
    json!({ "type": "object", "additionalProperties": false, "properties": {} })
}

/// `value`, or nothing (`key:` with no value, which the loader reads as
/// the key left out). Null is added inside `value` where it can be, so an
/// editor's complaint about a wrong value still names what is expected.
fn nullable(mut value: Value) -> Value {
    let node = value.as_object_mut().expect("a schema object");
    if let Some(Value::Array(any)) = node.get_mut("anyOf") {
        any.push(json!({ "type": "null" }));
    } else if let Some(kind) = node.get_mut("type") {
        let mut kinds = match kind.take() {
            Value::Array(kinds) => kinds,
            one => vec![one],
        };
        kinds.push(json!("null"));
        *kind = Value::Array(kinds);
    } else {
        return json!({ "anyOf": [value, { "type": "null" }] });
    }
    value
}

/// `value` or a `${VAR}` reference.
fn or_reference(value: Value) -> Value {
    json!({ "anyOf": [value, { "$ref": "#/definitions/reference" }] })
}

/// A whole number from `min` to `max`, as a number or as text.
fn whole_number_between(min: u64, max: u64) -> Value {
    json!({
        "anyOf": [
            { "type": "integer", "minimum": min, "maximum": max },
            { "type": "string", "pattern": format!("^0*({})$", digits_between(min, max)) },
            { "$ref": "#/definitions/reference" }
        ]
    })
}

/// A whole number of at least `min`, as a number or as text.
fn whole_number_from(min: u32) -> Value {
    let pattern = if min == 0 {
        "^[0-9]+$".to_owned()
    } else {
        format!(
            "^0*({}|[1-9][0-9]{{{},}})$",
            digits_between(u64::from(min), 10u64.pow(digits(u64::from(min))) - 1),
            digits(u64::from(min))
        )
    };
    json!({
        "anyOf": [
            { "type": "integer", "minimum": min },
            { "type": "string", "pattern": pattern },
            { "$ref": "#/definitions/reference" }
        ]
    })
}

/// The size units the loader reads, with their bytes (`values::parse_size`).
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// A size from `min` to `max` bytes: a number of bytes, or text with a
/// unit whose number of units falls in the range.
fn size_between(min: u64, max: u64) -> Value {
    let mut forms = Vec::new();
    for (unit, bytes) in SIZE_UNITS {
        let low = min.div_ceil(*bytes);
        let high = max / bytes;
        if low > high {
            continue;
        }
        let unit = if *unit == "B" { "(B)?" } else { unit };
        forms.push(format!("0*({}) ?{unit}", digits_between(low, high)));
    }
    json!({
        "anyOf": [
            { "type": "integer", "minimum": min, "maximum": max },
            { "type": "string", "pattern": format!("^({})$", forms.join("|")) },
            { "$ref": "#/definitions/reference" }
        ]
    })
}

fn digits(n: u64) -> u32 {
    n.checked_ilog10().unwrap_or(0) + 1
}

/// A regular expression (alternatives, no anchors) matching the decimal
/// numbers from `low` to `high` written without leading zeros.
fn digits_between(low: u64, high: u64) -> String {
    let mut out = Vec::new();
    let mut from = low;
    while from <= high {
        // Numbers of one length at a time: 5..=9, then 10..=99, …
        let top = 10u64.saturating_pow(digits(from)) - 1;
        let to = top.min(high);
        same_length(&from.to_string(), &to.to_string(), &mut out);
        if to == u64::MAX {
            break;
        }
        from = to + 1;
    }
    out.join("|")
}

/// Appends alternatives matching `low..=high`, both of one length.
fn same_length(low: &str, high: &str, out: &mut Vec<String>) {
    let (l0, h0) = (low.as_bytes()[0], high.as_bytes()[0]);
    let rest = low.len() - 1;
    if rest == 0 {
        out.push(if l0 == h0 {
            (l0 as char).to_string()
        } else {
            format!("[{}-{}]", l0 as char, h0 as char)
        });
        return;
    }
    let prefixed = |first: u8, low: &str, high: &str, out: &mut Vec<String>| {
        let mut inner = Vec::new();
        same_length(low, high, &mut inner);
        out.extend(inner.into_iter().map(|p| format!("{}{p}", first as char)));
    };
    if l0 == h0 {
        prefixed(l0, &low[1..], &high[1..], out);
        return;
    }
    let (zeros, nines) = ("0".repeat(rest), "9".repeat(rest));
    let mut first_full = l0;
    if low[1..] != zeros {
        prefixed(l0, &low[1..], &nines, out);
        first_full = l0 + 1;
    }
    let mut last_full = h0;
    let upper = high[1..] != nines;
    if upper {
        last_full = h0 - 1;
    }
    if first_full <= last_full {
        let first = if first_full == last_full {
            (first_full as char).to_string()
        } else {
            format!("[{}-{}]", first_full as char, last_full as char)
        };
        out.push(format!("{first}[0-9]{{{rest}}}"));
    }
    if upper {
        prefixed(h0, &zeros, &high[1..], out);
    }
}

/// A key's default as an editor would write it: `false`, `20`, `"60s"`.
fn typed_default(kind: Kind, default: &str) -> Value {
    match kind {
        Kind::Bool => json!(default == "true"),
        Kind::Count(_) => json!(
            default
                .parse::<u64>()
                .expect("a count's default is a number")
        ),
        _ => json!(default),
    }
}

fn value_of(kind: Kind) -> Value {
    match kind {
        // The loader reads any scalar as text.
        Kind::Text => json!({ "type": ["string", "number", "boolean"] }),
        Kind::Bool => or_reference(json!({ "enum": [true, false, "true", "false"] })),
        Kind::Count(min) => whole_number_from(min),
        Kind::Duration => json!({ "$ref": "#/definitions/duration" }),
        Kind::Size => json!({
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+ ?(B|KiB|MiB|GiB|KB|MB|GB)?$" },
                { "$ref": "#/definitions/reference" }
            ]
        }),
        Kind::SizeBetween(min, max) => size_between(min, max),
        Kind::OneOf(words) => or_reference(json!({ "enum": words() })),
        Kind::Level => or_reference(json!({ "enum": ["off", "warn", "error", false] })),
    }
}

/// `checks:` (see `checks.rs`).
fn checks() -> Value {
    let sql = json!({ "type": "string" });
    let check = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "expect"],
        "properties": {
            "name": { "type": "string" },
            "sql": sql,
            "sql_file": { "type": "string" },
            "expect": {
                "description": "empty, true, { rows: N } or { value: V }",
                "anyOf": [
                    { "enum": ["empty", "true", true] },
                    { "type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1,
                      "properties": { "rows": { "type": "integer", "minimum": 0 }, "value": {} } }
                ]
            },
            "timeout": { "$ref": "#/definitions/duration" }
        }
    });
    let compare = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": { "type": "string" },
            "before": sql,
            "before_file": { "type": "string" },
            "after": sql,
            "after_file": { "type": "string" },
            "order": { "enum": ["exact", "any"] },
            "timeout": { "$ref": "#/definitions/duration" }
        }
    });
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "before": { "type": "array", "items": check },
            "after": { "type": "array", "items": check },
            "compare": { "type": "array", "items": compare },
            "timeout": { "$ref": "#/definitions/duration" },
            "skip_builtin": { "type": "array", "items": { "type": "string" } }
        }
    })
}

/// `notify:` (see `maintenance.rs`, `resolve_notify`): webhooks told every
/// deploy's outcome.
fn notify() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": {
                "url": { "type": "string" },
                "headers": { "type": "object", "additionalProperties": { "type": "string" } },
                "timeout": { "$ref": "#/definitions/duration" }
            }
        }
    })
}

/// `maintenance:` (see `maintenance.rs`): a list of switches, each exactly
/// one of `command`, `http`, `file`, `postgres_fence`.
fn maintenance() -> Value {
    let text = json!({ "type": "string" });
    let call = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["url"],
        "properties": {
            "method": text,
            "url": text,
            "headers": { "type": "object", "additionalProperties": text },
            "body": text,
            "status": { "type": ["integer", "string"] }
        }
    });
    let switches: Map<String, Value> = [
        (
            "command",
            json!({ "type": "object", "additionalProperties": false, "required": ["on", "off"],
                    "properties": { "on": text, "off": text, "timeout": { "$ref": "#/definitions/duration" } } }),
        ),
        (
            "http",
            json!({ "type": "object", "additionalProperties": false, "required": ["on", "off"],
                    "properties": { "on": call, "off": call, "timeout": { "$ref": "#/definitions/duration" },
                                    "retries": { "type": ["integer", "string"] } } }),
        ),
        (
            "file",
            json!({ "type": "object", "additionalProperties": false, "required": ["path"],
                    "properties": { "path": text, "content": text } }),
        ),
        (
            "postgres_fence",
            json!({ "type": "object", "additionalProperties": false, "required": ["roles"],
                    "properties": { "roles": { "type": "array", "items": text },
                                    "wait": { "$ref": "#/definitions/duration" } } }),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 1,
            "properties": switches
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_in_the_schema_where_its_name_says() {
        let s = schema();
        for key in KEYS {
            let mut node = &s;
            for part in key.name.split('.') {
                node = &node["properties"][part];
            }
            assert!(!node.is_null(), "{} is missing", key.name);
        }
        assert_eq!(
            s["properties"]["snapshot"]["properties"]["retention"]["type"],
            json!(["object", "null"])
        );
        assert_eq!(s["additionalProperties"], false);
    }

    /// Every number in and around each range, against the pattern.
    #[test]
    fn number_patterns_match_exactly_their_range() {
        for (low, high) in [
            (0, 0),
            (1, 9),
            (1, 19),
            (5, 5120),
            (7, 123),
            (10, 99),
            (95, 1005),
            (5242880, 5368709),
            (1, 1),
        ] {
            let pattern =
                regex_lite::Regex::new(&format!("^({})$", digits_between(low, high))).unwrap();
            let from = low.saturating_sub(50);
            for n in from..=(high + 50).min(from + 20_000) {
                assert_eq!(
                    pattern.is_match(&n.to_string()),
                    (low..=high).contains(&n),
                    "{n} in {low}..={high}: {pattern}"
                );
            }
            assert!(pattern.is_match(&high.to_string()));
            assert!(!pattern.is_match(&(high + 1).to_string()));
        }
    }
}
