//! A note as fetched from jitd: its dedupe id, kind and JSON body, and the fields routing and
//! the plain-text renderings need.

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Note {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub body: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub routes: Vec<String>,
    pub privilege: String,
    pub rule: String,
    json: Value,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Note {
    pub fn new(seq: i64, id: String, kind: String, body: String) -> Self {
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let s = |k: &str| json[k].as_str().unwrap_or("").to_string();
        Self {
            seq,
            users: strings(&json["to"]["users"]),
            groups: strings(&json["to"]["groups"]),
            routes: strings(&json["routes"]),
            privilege: s("privilege"),
            rule: s("rule"),
            id,
            kind,
            body,
            json,
        }
    }

    pub fn field(&self, k: &str) -> &str {
        self.json[k].as_str().unwrap_or("")
    }

    pub fn subject(&self) -> String {
        let sev = if self.field("severity") == "critical" {
            "[CRITICAL] "
        } else {
            ""
        };
        format!(
            "{sev}jitd {}: {} {} on {}",
            self.kind,
            self.field("user"),
            self.privilege,
            self.field("host")
        )
    }

    /// The message for people: every fact on its own line, the command last.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for k in [
            "kind",
            "host",
            "user",
            "privilege",
            "rule",
            "reason",
            "ticket",
            "request",
            "grant",
            "request_expires",
            "access_expires",
            "by",
            "why",
            "at",
        ] {
            let v = self.field(k);
            if !v.is_empty() {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        let cmd = self.field("command");
        if !cmd.is_empty() {
            out.push_str(&format!("\n  {cmd}\n"));
        }
        out
    }

    /// For readers off the host (mail): the signable blob and what to do with it, or "".
    /// The terminal sink leaves it out: on the host, `jitctl approve` is the way.
    pub fn blob_text(&self) -> String {
        let blob = self.field("blob");
        if blob.is_empty() {
            return String::new();
        }
        format!("\n{}\n\n{}\n", crate::chat::SIGN_HINT, blob.trim_end())
    }
}
