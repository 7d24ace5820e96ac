//! The one shape of every `--json` document, so scripts can rely on it and a new command gets
//! it with one call ([`document`] for a result, [`list`] for a list, [`error`] for a failure):
//!
//! - exactly one JSON object on stdout per run, success or failure;
//! - `"schema": 1` at the top (raised only when a field changes meaning or goes away);
//! - lists wrapped in an object: `{"schema":1, "<name>": [...], "truncated": false,
//!   "next_cursor": null}`;
//! - every `*_ms` time (epoch milliseconds) has a sibling without the suffix in RFC 3339 UTC
//!   (`"expires_ms": 1764386400000` → `"expires": "2025-11-29T03:20:00Z"`; 0 → `null`);
//! - what a grant or privilege gives, also structured: `"gives": {"run_as": "root",
//!   "commands": [...]}`, `{"group": "docker"}` or `{"pam_services": ["sudo"]}`;
//! - failures: `{"schema":1, "error": {"code": "NotFound", "exit": 7, "message": "..."}}`.
//!
//! README "JSON output" documents each shape.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Raised only when a field changes meaning or is removed; new fields keep it.
pub const SCHEMA: u32 = 1;

/// `value` (an object, or anything else under `"result"`) as a document.
pub fn document<T: Serialize + ?Sized>(value: &T) -> Value {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut object = match value {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("result".into(), other);
            map
        }
    };
    enrich_object(&mut object);
    let mut out = Map::new();
    out.insert("schema".into(), json!(SCHEMA));
    out.extend(object);
    Value::Object(out)
}

/// A list under `name`, complete (jitd sends whole lists; `truncated` and `next_cursor` are
/// there so a later paged answer needs no new shape).
pub fn list<T: Serialize>(name: &str, items: &[T]) -> Value {
    let mut items = serde_json::to_value(items).unwrap_or(Value::Array(Vec::new()));
    enrich(&mut items);
    json!({
        "schema": SCHEMA,
        name: items,
        "truncated": false,
        "next_cursor": Value::Null,
    })
}

/// A failure: `code` is stable and machine-readable, `exit` is the process's exit code.
pub fn error(code: &str, exit: u8, message: &str) -> Value {
    json!({
        "schema": SCHEMA,
        "error": { "code": code, "exit": exit, "message": message },
    })
}

fn enrich(value: &mut Value) {
    match value {
        Value::Object(map) => enrich_object(map),
        Value::Array(items) => items.iter_mut().for_each(enrich),
        _ => {}
    }
}

fn enrich_object(map: &mut Map<String, Value>) {
    let mut added = Vec::new();
    for (key, value) in map.iter_mut() {
        enrich(value);
        if let Some(base) = key.strip_suffix("_ms")
            && let Some(ms) = value.as_i64()
        {
            let text = (ms > 0).then(|| rfc3339(ms));
            added.push((base.to_string(), json!(text)));
        }
    }
    if let (Some(kind), Some(grants)) = (
        map.get("kind").and_then(Value::as_str),
        map.get("grants").and_then(Value::as_str),
    ) && let Some(gives) = gives(kind, grants)
    {
        added.push(("gives".into(), gives));
    }
    for (key, value) in added {
        map.entry(key).or_insert(value);
    }
}

/// What jitd's description of a privilege says, as fields: "as root: /a x, /b" (sudo),
/// "member of group docker" (group), "pam_jit opens sudo, sudo-i" (gate).
fn gives(kind: &str, grants: &str) -> Option<Value> {
    match kind {
        "sudo" => {
            let (who, commands) = grants.strip_prefix("as ")?.split_once(": ")?;
            let commands: Vec<&str> = commands.split(", ").collect();
            Some(json!({ "run_as": who, "commands": commands }))
        }
        "group" => Some(json!({ "group": grants.strip_prefix("member of group ")? })),
        "gate" => {
            let opens = grants.strip_prefix("pam_jit opens ")?;
            // "the sudoers rule for: A, B; and su, su-l" when the privilege names commands.
            match opens.strip_prefix("the sudoers rule for: ") {
                Some(rest) => {
                    let (commands, services) = rest.split_once("; and ").unwrap_or((rest, ""));
                    let commands: Vec<&str> = commands.split(", ").collect();
                    let services: Vec<&str> =
                        services.split(", ").filter(|s| !s.is_empty()).collect();
                    Some(json!({ "commands": commands, "pam_services": services }))
                }
                None => {
                    let services: Vec<&str> = opens.split(", ").collect();
                    Some(json!({ "pam_services": services }))
                }
            }
        }
        _ => None,
    }
}

/// Epoch milliseconds as RFC 3339 UTC, second precision ("2026-11-29T02:20:21Z").
pub use jitd::clock::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_gives_its_commands_and_its_services() {
        let g = gives(
            "gate",
            "pam_jit opens the sudoers rule for: /usr/sbin/db-maint, /usr/bin/id -G; and su, su-l",
        )
        .unwrap();
        assert_eq!(g["commands"][1], "/usr/bin/id -G");
        assert_eq!(g["pam_services"][1], "su-l");
        let g = gives("gate", "pam_jit opens sudo, sudo-i").unwrap();
        assert_eq!(g["pam_services"][0], "sudo");
        assert!(g.get("commands").is_none());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_386_421_000), "2025-11-29T03:20:21Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn documents_carry_the_schema_times_and_what_is_given() {
        let doc = document(&json!({
            "kind": "sudo",
            "grants": "as root: /usr/bin/systemctl restart nginx, /usr/bin/id",
            "expires_ms": 1_000,
            "ended_ms": 0,
        }));
        assert_eq!(doc["schema"], 1);
        assert_eq!(doc["expires"], "1970-01-01T00:00:01Z");
        assert_eq!(doc["ended"], Value::Null);
        assert_eq!(doc["gives"]["run_as"], "root");
        assert_eq!(doc["gives"]["commands"][1], "/usr/bin/id");
        let l = list(
            "grants",
            &[json!({"kind": "group", "grants": "member of group docker"})],
        );
        assert_eq!(l["grants"][0]["gives"]["group"], "docker");
        assert_eq!(l["truncated"], false);
        assert_eq!(error("NotFound", 7, "no")["error"]["exit"], 7);
    }
}
