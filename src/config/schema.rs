//! `snapguard config schema`: a JSON Schema of `snapguard.yml` (draft-07, the
//! version YAML language servers read), so editors complete and check keys.
//! The scalar keys come from the key table (`keys.rs`), with the values
//! each takes; the two list sections (`checks`, `maintenance`) are described
//! here beside their readers' shapes. Any text value may be a `${VAR}`
//! reference, resolved when the file is read.

use serde_json::{Map, Value, json};

use super::keys::{KEYS, Kind};

/// The schema, as JSON.
pub fn schema() -> Value {
    let mut root = object();
    for key in KEYS {
        let mut node = &mut root;
        let mut parts = key.name.split('.').peekable();
        while let Some(part) = parts.next() {
            let properties = node["properties"].as_object_mut().expect("an object node");
            if parts.peek().is_none() {
                properties.insert(part.to_owned(), value_of(key.kind));
                break;
            }
            node = properties.entry(part).or_insert_with(object);
        }
    }
    let properties = root["properties"].as_object_mut().expect("the root");
    properties.insert("checks".into(), checks());
    properties.insert("maintenance".into(), maintenance());
    properties.insert("notify".into(), notify());
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

/// An object that takes only the properties listed.
fn object() -> Value {
    json!({ "type": "object", "additionalProperties": false, "properties": {} })
}

/// `value` or a `${VAR}` reference.
fn or_reference(value: Value) -> Value {
    json!({ "anyOf": [value, { "$ref": "#/definitions/reference" }] })
}

fn value_of(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({ "type": ["string", "number"] }),
        Kind::Bool => or_reference(json!({ "type": "boolean" })),
        Kind::Count => json!({
            "anyOf": [
                { "type": "integer" },
                { "type": "string", "pattern": "^-?[0-9]+$" },
                { "$ref": "#/definitions/reference" }
            ]
        }),
        Kind::Duration => json!({ "$ref": "#/definitions/duration" }),
        Kind::Size => json!({
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+ ?(B|KiB|MiB|GiB|KB|MB|GB)?$" },
                { "$ref": "#/definitions/reference" }
            ]
        }),
        Kind::OneOf(words) => or_reference(json!({ "enum": words })),
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
            "object"
        );
        assert_eq!(s["additionalProperties"], false);
    }
}
