//! The text authentication agent for `reauth = true` rules, the way `systemctl` starts one:
//! `pkttyagent` registered for this process, so when jitd has polkit ask for a proof of
//! presence, the question comes to this terminal and the host's PAM stack decides. Started
//! only when there is a terminal to answer on; stopped when the call is done.

use std::io::{IsTerminal, Read};
use std::process::{Child, Stdio};

/// A running agent; dropping it stops it.
pub struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pkttyagent` for this process and waits until it is registered with polkit; `None`
/// without a terminal or without pkttyagent (a request that needs a proof is then refused by
/// jitd, saying so).
pub fn start() -> Option<Agent> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    // A child process at the CLI's edge: the agent must be a separate program (polkit talks to
    // it on the bus), and it is ours to stop.
    #[allow(clippy::disallowed_methods)]
    let mut child = std::process::Command::new("pkttyagent")
        .args(["--notify-fd", "1", "--process"])
        .arg(std::process::id().to_string())
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    // pkttyagent closes the notify descriptor (its stdout, our pipe) once registered, or exits.
    let mut registered = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut registered);
    }
    Some(Agent(child))
}
