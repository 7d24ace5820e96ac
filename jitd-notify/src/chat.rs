//! Chat payloads: a Slack incoming webhook (Block Kit) and a Microsoft Teams Workflows webhook
//! (an Adaptive Card in a message attachment). Both carry the note's facts and the exact
//! `jitctl` line the reader runs and, for a pending request with signed approvals on, the
//! blob an approver off the host signs with `jitctl approve --sign`; neither can approve by
//! itself (approval stays on the host, or with the signed token sent back).

use serde_json::{Value, json};

use crate::note::Note;

/// What an approver off the host does with the blob.
pub const SIGN_HINT: &str = "Not on the host? Save the block below as request.txt and run \
    `jitctl approve --sign --key ~/.ssh/id_ed25519 request.txt`; send the token back to the \
    requester (`jitctl submit`).";

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
    let blob = n.field("blob");
    if !blob.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": SIGN_HINT}}));
        // A code block keeps the blob's lines as they are (its base64 survives rewrapping
        // anyway); it is under 1 KB, well inside a section's 3000 characters.
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```\n{}\n```", blob.trim_end())}}));
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
    let blob = n.field("blob");
    if !blob.is_empty() {
        body.push(json!({"type": "TextBlock", "text": SIGN_HINT, "wrap": true}));
        body.push(json!({"type": "TextBlock", "text": blob.trim_end(), "fontType": "Monospace", "wrap": true}));
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
