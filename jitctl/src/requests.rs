//! Requests that wait for approval: listing them (yours, or those you may decide), the
//! decisions, and waiting for one on the `RequestChanged` signal with a countdown of the
//! request's time, where Ctrl-C stops waiting and leaves the request pending.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use clap::Subcommand;
use futures_core::Stream;
use jitd::client::{
    ManagerProxy, RequestInfo, RequestOutcome, RequestScope, RequestState, ReviewInfo,
};

use crate::Failure;
use crate::output::{Out, local_time, now_ms, relative};

/// The commands of requests that wait for people, flattened into jitctl's own.
#[derive(Subcommand)]
pub enum ApprovalCommand {
    /// Requests waiting for approval: yours, those you may decide (--pending), or all.
    Requests {
        /// Requests you may approve or deny now, with what they ask and the requester's
        /// recent grants.
        #[arg(long, conflicts_with = "all")]
        pending: bool,
        /// Every request (admins).
        #[arg(long)]
        all: bool,
        /// Print the blob of pending request ID, for an approver elsewhere to sign with
        /// `jitctl approve --sign`.
        #[arg(long, value_name = "ID", conflicts_with_all = ["pending", "all"])]
        blob: Option<String>,
    },
    /// Approve a pending request (approvers of its rule; never your own). With --sign, on
    /// any machine: sign a request blob with your SSH key and print a token.
    Approve {
        /// The request id; with --sign, the blob itself, a file holding it, or - (stdin).
        id: String,
        /// Sign a request blob with your SSH key (no jitd needed here); prints a token.
        #[arg(long)]
        sign: bool,
        /// The key to sign with (default: ~/.ssh/id_ed25519_sk, id_ed25519, ...); a .pub
        /// signs through ssh-agent.
        #[arg(long, value_name = "FILE", requires = "sign")]
        key: Option<std::path::PathBuf>,
        /// Sign a denial instead.
        #[arg(long, requires = "sign")]
        deny: bool,
        /// Do not ask before signing (the request is still shown).
        #[arg(long, requires = "sign")]
        yes: bool,
        #[arg(long, default_value = "")]
        comment: String,
        /// Grant less than was asked: 30m, 1h (never more).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        shorten_to: Option<u64>,
    },
    /// Deny a pending request, saying why.
    Deny {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Ask for more time on one of your live grants (approved like the original).
    Extend {
        grant: String,
        /// How much longer: 30m, 1h.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: u64,
        /// Why you need more time (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// When the rule needs approval, wait for the decision.
        #[arg(long)]
        wait: bool,
    },
    /// Review a break-glass grant afterwards (approvers of its rule).
    Review {
        grant: String,
        /// What it was: drill, emergency or misuse.
        #[arg(long, value_parser = ["drill", "emergency", "misuse"])]
        outcome: String,
        #[arg(long)]
        comment: String,
    },
    /// Hand a signed token (from `jitctl approve --sign`) to jitd: the token itself, a file
    /// holding it, or - (stdin).
    Submit { token: String },
    /// Prove it is you with your SSH key for your next request (rules with mfa = "ssh-sk"):
    /// signs jitd's challenge, hands the proof in and prints it. With --proof, hands in a
    /// proof made before (each counts once).
    Mfa {
        /// The key (default: ~/.ssh/id_ed25519_sk, id_ed25519, ...).
        #[arg(long, value_name = "FILE", conflicts_with = "proof")]
        key: Option<std::path::PathBuf>,
        /// A proof printed earlier: a file, or - (stdin).
        #[arg(long, value_name = "FILE")]
        proof: Option<String>,
    },
    /// Withdraw one of your pending requests.
    Cancel { id: String },
    /// Wait for the decision on a pending request (exit 0 when granted).
    Wait { id: String },
}

fn parse_duration(text: &str) -> Result<u64, String> {
    jitd::duration::parse(text).map_err(|e| e.to_string())
}

pub async fn run(
    jitd: &ManagerProxy<'_>,
    command: ApprovalCommand,
    out: &Out,
) -> Result<(), Failure> {
    match command {
        ApprovalCommand::Requests { blob: Some(id), .. } => {
            print!("{}", jitd.request_blob(&id).await?);
        }
        ApprovalCommand::Requests { pending, all, .. } => {
            list(jitd, pending, all, out).await?;
        }
        ApprovalCommand::Mfa { key, proof } => match proof {
            Some(p) => {
                jitd.prove_mfa(&crate::sign::read_token(&p)?).await?;
                println!("proof accepted: your next request (within 2 minutes) uses it");
            }
            None => {
                let key = match key {
                    Some(k) => k,
                    None => crate::sign::default_key()?,
                };
                print!("{}", crate::sign::prove(jitd, &key).await?);
            }
        },
        ApprovalCommand::Submit { token } => {
            let q = jitd.submit_token(&crate::sign::read_token(&token)?).await?;
            decided(&q, out);
        }
        ApprovalCommand::Approve {
            id,
            comment,
            shorten_to,
            ..
        } => {
            let q = jitd.approve(&id, &comment, shorten_to.unwrap_or(0)).await?;
            decided(&q, out);
        }
        ApprovalCommand::Deny { id, comment } => {
            let q = jitd.deny(&id, &comment).await?;
            decided(&q, out);
        }
        ApprovalCommand::Cancel { id } => {
            let q = jitd.cancel(&id).await?;
            decided(&q, out);
        }
        ApprovalCommand::Extend {
            grant,
            duration,
            reason,
            wait,
        } => {
            let outcome = {
                // Answers polkit when the rule wants a proof of presence (reauth = true).
                let _agent = crate::agent::start();
                jitd.extend(&grant, duration, &reason).await?
            };
            if outcome.status == jitd::terms::RequestStatus::Pending {
                return pending(jitd, &outcome, wait, out).await;
            }
            if out.json {
                out.json_value(&outcome);
            } else {
                println!("{}", outcome.message);
            }
        }
        ApprovalCommand::Review {
            grant,
            outcome,
            comment,
        } => {
            let r = jitd.review(&grant, &outcome, &comment).await?;
            reviewed(&r, out);
        }
        ApprovalCommand::Wait { id } => {
            return wait(jitd, &id, out).await;
        }
    }
    Ok(())
}

/// `jitctl elevate` answered "pending": say what to do, and wait when asked to.
pub async fn pending(
    jitd: &ManagerProxy<'_>,
    o: &RequestOutcome,
    wait_too: bool,
    out: &Out,
) -> Result<(), Failure> {
    if !wait_too {
        if out.json {
            out.json_value(o);
        } else {
            println!("{}", o.message);
        }
        return Err(Failure::Pending);
    }
    if !out.json {
        println!("{}", o.message);
        // For an approver elsewhere: the blob to paste to them (when this host takes tokens).
        if let Ok(blob) = jitd.request_blob(&o.request_id).await {
            println!(
                "An approver without access to this host can sign this with \
                 `jitctl approve --sign -`; paste the token here (or hand it in with \
                 `jitctl submit -`):\n{blob}"
            );
        }
    }
    wait(jitd, &o.request_id, out).await
}

/// What woke the wait.
enum Woke {
    Changed,
    Tick,
    Interrupted,
    /// The bus connection closed: jitd or the bus went away.
    Lost,
}

/// Waits until request `id` is decided; exit 0 when granted.
pub async fn wait(jitd: &ManagerProxy<'_>, id: &str, out: &Out) -> Result<(), Failure> {
    // Listening first, then reading the state: no change can fall between the two.
    let changes = jitd
        .receive_request_changed()
        .await
        .map_err(|e| Failure::from(jitd::client::Error::ZBus(e)))?;
    let mut changes = pin!(changes);
    let runtime = zruntime::SharedRuntime::current()
        .map_err(|e| Failure::Other(format!("cannot wait: {e}")))?;
    let mut ctrl_c =
        zruntime::signal::Signals::new(&runtime, [zruntime::signal::Signal::Interrupt])
            .map_err(|e| Failure::Other(format!("cannot catch Ctrl-C: {e}")))?;
    let live = std::io::stderr().is_terminal() && !out.json;
    let mut paste = crate::sign::Paste::default();
    loop {
        // A signed token pasted while waiting is handed in at once; a refused one is said and
        // the wait goes on.
        if let Some(token) = paste.poll() {
            match jitd.submit_token(&token).await {
                Ok(_) => {}
                Err(e) => eprintln!("\r\x1b[Kjitctl: the pasted token was refused: {e}"),
            }
        }
        let q = find(jitd, id).await?;
        if q.state != RequestState::Pending {
            if live {
                eprint!("\r\x1b[K");
            }
            return finished(&q, out);
        }
        if live {
            eprint!(
                "\r\x1b[Kwaiting for approval of {} ({} of {} so far): expires {}",
                q.id,
                q.approvals,
                q.approvals_needed,
                relative(now_ms(), q.expires_ms)
            );
            let _ = std::io::stderr().flush();
        }
        let woke = {
            let mut tick = pin!(runtime.sleep(Duration::from_secs(1)));
            let mut interrupted = pin!(ctrl_c.recv());
            std::future::poll_fn(|cx| {
                if let Poll::Ready(item) = changes.as_mut().poll_next(cx) {
                    return Poll::Ready(match item {
                        Some(_) => Woke::Changed,
                        None => Woke::Lost,
                    });
                }
                if interrupted.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Interrupted);
                }
                if tick.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Tick);
                }
                Poll::Pending
            })
            .await
        };
        match woke {
            // A signal may be for another request; reading the state again costs one call.
            Woke::Changed | Woke::Tick => {}
            Woke::Interrupted => {
                if live {
                    eprintln!();
                }
                if out.json {
                    out.json_value(&q);
                } else {
                    println!(
                        "Stopped waiting; request {id} is still pending. Wait again with `jitctl wait {id}`, withdraw it with `jitctl cancel {id}`"
                    );
                }
                return Err(Failure::Pending);
            }
            Woke::Lost => {
                return Err(Failure::Unreachable(format!(
                    "lost jitd while waiting; request {id} stays pending: `jitctl wait {id}` when it is back"
                )));
            }
        }
    }
}

/// The caller's request `id`, as jitd lists it now.
async fn find(jitd: &ManagerProxy<'_>, id: &str) -> Result<RequestInfo, Failure> {
    jitd.list_requests(RequestScope::Mine)
        .await?
        .into_iter()
        .find(|q| q.id == id)
        .ok_or_else(|| {
            Failure::from(jitd::client::Error::NotFound(format!(
                "no request {id} of yours; `jitctl requests` lists them"
            )))
        })
}

/// How a decided request ends the wait.
fn finished(q: &RequestInfo, out: &Out) -> Result<(), Failure> {
    decided(q, out);
    match q.state {
        RequestState::Approved => Ok(()),
        RequestState::Pending => Err(Failure::Pending),
        _ => Err(Failure::NotGranted),
    }
}

/// A request after a decision (approve, deny, cancel, or the end of a wait).
pub fn decided(q: &RequestInfo, out: &Out) {
    if out.json {
        return out.json_value(q);
    }
    let now = now_ms();
    match q.state {
        RequestState::Pending => println!(
            "Request {} of {} is pending: {} of {} approvals so far; it expires {}",
            q.id,
            q.user,
            q.approvals,
            q.approvals_needed,
            relative(now, q.expires_ms)
        ),
        RequestState::Approved if q.extends.is_empty() => println!(
            "Request {} {}: grant {} for {} is live; {} may use it now",
            q.id, q.note, q.grant_id, q.privilege, q.user
        ),
        RequestState::Approved => println!(
            "Request {} {}: grant {} is extended",
            q.id, q.note, q.grant_id
        ),
        state => println!(
            "Request {} of {} for {} is {state}: {}",
            q.id, q.user, q.privilege, q.note
        ),
    }
}

pub async fn list(
    jitd: &ManagerProxy<'_>,
    pending: bool,
    all: bool,
    out: &Out,
) -> Result<(), Failure> {
    let scope = if pending {
        RequestScope::Pending
    } else if all {
        RequestScope::All
    } else {
        RequestScope::Mine
    };
    let list = jitd.list_requests(scope).await?;
    // Approvers also see the break-glass grants waiting for their review.
    let reviews = if pending {
        jitd.list_reviews().await?
    } else {
        Vec::new()
    };
    if out.json {
        if pending {
            out.json_value(&serde_json::json!({ "requests": list, "reviews": reviews }));
        } else {
            out.json_list("requests", &list);
        }
        return Ok(());
    }
    let now = now_ms();
    for r in &reviews {
        review_view(r, now);
    }
    if list.is_empty() && (!pending || reviews.is_empty()) {
        println!(
            "{}",
            if pending {
                "No requests wait for your decision."
            } else {
                "No requests."
            }
        );
        return Ok(());
    }
    for q in &list {
        if pending {
            approver_view(q, now);
        } else {
            println!(
                "{}  {:<9}  {:<12} {} for {}  {}",
                q.id,
                q.state.as_str(),
                q.user,
                q.privilege,
                jitd::duration::format(q.duration_secs),
                match q.state {
                    RequestState::Pending => format!(
                        "{} of {} approvals; expires {}",
                        q.approvals,
                        q.approvals_needed,
                        relative(now, q.expires_ms)
                    ),
                    _ => q.note.clone(),
                }
            );
        }
    }
    Ok(())
}

/// What an approver needs to decide one request.
fn approver_view(q: &RequestInfo, now: i64) {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    println!(
        "Request {} on {}: {} (uid {}) asks for {} for {}",
        q.id,
        q.host,
        q.user,
        q.uid,
        q.privilege,
        jitd::duration::format(q.duration_secs)
    );
    if !q.extends.is_empty() {
        println!("  Extends:  grant {}", q.extends);
    }
    println!("  Gives:    {}", q.grants);
    println!("  Reason:   {}", dash(&q.reason));
    println!("  Ticket:   {}", dash(&q.ticket));
    println!(
        "  Rule:     {} ({} of {} approvals so far)",
        q.rule, q.approvals, q.approvals_needed
    );
    for v in &q.votes {
        println!(
            "  Vote:     {} {}s{}{}",
            v.user,
            v.vote,
            if v.counts {
                ""
            } else {
                " (does not count now)"
            },
            if v.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", v.comment)
            }
        );
    }
    println!(
        "  Asked:    {}; expires {} ({})",
        local_time(now, q.requested_ms),
        local_time(now, q.expires_ms),
        relative(now, q.expires_ms)
    );
    if q.history.is_empty() {
        println!("  History:  no earlier grants of {}", q.user);
    }
    for g in &q.history {
        println!(
            "  History:  {} {} {} ({}){}",
            g.id,
            g.privilege,
            local_time(now, g.requested_ms),
            g.state,
            if g.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", g.reason)
            }
        );
    }
    println!(
        "  Decide:   jitctl approve {} [--for SHORTER] [--comment ...] | jitctl deny {} --comment \"...\"",
        q.id, q.id
    );
}

/// A break-glass grant waiting for review, as an approver sees it.
fn review_view(r: &ReviewInfo, now: i64) {
    println!(
        "Break-glass grant {} on {}: {} used {} at {} (rule {})",
        r.grant_id,
        r.host,
        r.user,
        r.privilege,
        local_time(now, r.granted_ms),
        r.rule
    );
    println!("  Reason:   {}", r.reason);
    println!(
        "  Review:   by {} ({}): jitctl review {} --outcome drill|emergency|misuse --comment \"...\"",
        local_time(now, r.review_by_ms),
        relative(now, r.review_by_ms),
        r.grant_id
    );
}

/// After `jitctl review`.
pub fn reviewed(r: &ReviewInfo, out: &Out) {
    if out.json {
        return out.json_value(r);
    }
    println!(
        "Reviewed break-glass grant {} of {}: {} ({})",
        r.grant_id, r.user, r.outcome, r.comment
    );
}

/// `jitctl status` of an approver: the requests and reviews waiting, a line each (nothing in
/// JSON, whose shape is the grants; nothing when jitd cannot say).
pub async fn reviews_waiting(jitd: &ManagerProxy<'_>, out: &Out) {
    if out.json {
        return;
    }
    if let Ok(requests) = jitd.list_requests(RequestScope::Pending).await
        && !requests.is_empty()
    {
        println!(
            "{} request(s) wait for your decision: jitctl requests --pending",
            requests.len()
        );
    }
    if let Ok(reviews) = jitd.list_reviews().await
        && !reviews.is_empty()
    {
        println!(
            "{} break-glass grant(s) wait for your review: jitctl requests --pending",
            reviews.len()
        );
    }
}
