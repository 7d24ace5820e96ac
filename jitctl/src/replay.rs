//! `jitctl replay GRANT [N]`: the commands of a `record = "io"` grant whose output sudo kept,
//! and sudo's own `sudoreplay` to play one back. jitd records nothing itself: sudo writes the
//! I/O logs (`log_output`, `iolog_dir`) and the ledger notes where. Listing needs the grant's
//! story (its holder or an admin, as `jitctl show`); playing needs root, because the logs are
//! root's alone (they hold whatever the commands printed).

use std::path::PathBuf;

use jitd::client::ManagerProxy;
use serde_json::{Value, json};

use crate::Failure;
use crate::history::{argv, parse, text};
use crate::output::Out;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The grant whose commands' output was recorded.
    pub grant: String,
    /// Play this session (its number in the list) with sudoreplay; without it, the list.
    pub session: Option<usize>,
    /// sudoreplay's speed factor (2 plays twice as fast).
    #[arg(long)]
    pub speed: Option<f64>,
    /// The sudoreplay that plays it back.
    #[arg(long, default_value = "/usr/bin/sudoreplay", hide = true)]
    pub sudoreplay: PathBuf,
}

pub async fn run(jitd: &ManagerProxy<'_>, a: &ReplayArgs, out: &Out) -> Result<(), Failure> {
    let story = parse(&jitd.show_grant(&a.grant).await?)?;
    let sessions: Vec<Value> = story["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["iolog"].as_str().is_some_and(|s| !s.is_empty()))
        .cloned()
        .collect();
    let Some(n) = a.session else {
        if out.json {
            println!("{}", json!({ "grant": a.grant, "sessions": sessions }));
            return Ok(());
        }
        if sessions.is_empty() {
            out.message(&format!(
                "grant {} has no recorded output (its privilege does not have record = \"io\", \
                 or nothing ran)",
                a.grant
            ));
            return Ok(());
        }
        println!("Recorded sessions of grant {}:", a.grant);
        for (i, c) in sessions.iter().enumerate() {
            let exit = if c["exit"].is_null() {
                "exit unknown".to_string()
            } else {
                format!("exit {}", text(&c["exit"]))
            };
            println!(
                "  {:>3}  {}  {}  [{exit}]  {}",
                i + 1,
                text(&c["time"]),
                argv(&c["argv"]),
                text(&c["iolog"])
            );
        }
        println!("Play one: sudo jitctl replay {} N", a.grant);
        return Ok(());
    };
    let Some(c) = n.checked_sub(1).and_then(|i| sessions.get(i)) else {
        return Err(Failure::Usage(format!(
            "grant {} has {} recorded session(s); there is no session {n}",
            a.grant,
            sessions.len()
        )));
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(Failure::Other(format!(
            "sudo's I/O logs are root's alone: run sudo jitctl replay {} {n}",
            a.grant
        )));
    }
    play(a, text(&c["iolog"]))
}

/// Hands the terminal to sudoreplay for the session at `iolog`.
#[allow(clippy::disallowed_methods)] // jitctl is a client at the edge: sudoreplay takes over its terminal
fn play(a: &ReplayArgs, iolog: String) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(&a.sudoreplay);
    if let Some(speed) = a.speed {
        cmd.arg("-s").arg(speed.to_string());
    }
    cmd.arg("--").arg(iolog);
    // exec returns only when sudoreplay could not start.
    let e = cmd.exec();
    Err(Failure::Other(format!(
        "{} cannot run: {e}",
        a.sudoreplay.display()
    )))
}
