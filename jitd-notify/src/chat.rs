//! Chat payloads: a Slack incoming webhook (Block Kit) and a Microsoft Teams Workflows webhook
//! (an Adaptive Card in a message attachment). Both carry the note's facts and the exact
//! `jitctl` line the reader runs; neither can approve by itself (approval stays on the host).

use serde_json::{Value, json};

use crate::note::Note;

/// The facts shown, in order, with their labels.
const FACTS: &[(&str, &str)] = &[
    ("host", "Host"),
    ("user", "User"),
    ("privilege", "Privilege"),
    ("rule", "Rule"),
    ("reason", "Reason"),
    ("ticket", "Ticket"),
    ("request_expires", "Request expires (UTC)"),
    ("access_expires", "Access expires (UTC)"),
    ("by", "Decided by"),
    ("why", "Why"),
];

fn facts(n: &Note) -> Vec<(&'static str, String)> {
    FACTS
        .iter()
        .filter_map(|(k, label)| {
            let v = n.field(k);
            (!v.is_empty()).then(|| (*label, v.to_string()))
        })
        .collect()
}

/// Slack Block Kit: a header, the facts as fields (Slack allows at most 10 per section), the
/// command in a code block; `text` is the fallback shown in notifications.
pub fn slack(n: &Note) -> Value {
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .take(10)
        .map(|(label, v)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{v}")}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": n.subject()}}),
        json!({"type": "section", "fields": fields}),
    ];
    let cmd = n.field("command");
    if !cmd.is_empty() {
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{cmd}```")}}),
        );
    }
    json!({"text": n.subject(), "blocks": blocks})
}

/// Teams Workflows ("When a Teams webhook request is received"): a message whose attachment
/// is an Adaptive Card 1.4 with a FactSet and the command in monospace.
pub fn teams(n: &Note) -> Value {
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|(label, v)| json!({"title": label, "value": v}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": n.subject(), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    let cmd = n.field("command");
    if !cmd.is_empty() {
        body.push(json!({"type": "TextBlock", "text": cmd, "fontType": "Monospace", "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}
