//! What the notification suites share: the notifier's account and secret, the python
//! receivers from tests/notify, starting `jitd-notify` as its own account, reading what the
//! receivers got.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::*;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Child processes killed when the test ends, however it ends.
pub struct Kids(pub Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("notify")
        .join(name)
}

/// Starts a python server from tests/notify and returns its port.
pub fn serve(kids: &mut Kids, dir: &Path, name: &str, args: &[&Path]) -> u16 {
    // One file per server started: a test may run several of the same script.
    let port_file = dir.join(format!("{name}.{}.port", kids.0.len()));
    let child = Command::new("python3")
        .arg(script(name))
        .args(args)
        .arg(&port_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("python3");
    kids.0.push(child);
    wait_for(Duration::from_secs(5), name, || port_file.exists());
    std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The notifier's account, its secret and its directory (readable by it).
pub fn notifier_setup(sb: &Sandbox, name: &str) -> PathBuf {
    ensure_user("jitd-notify");
    // The bus resolves the account named in its policy when it reads its configuration.
    let o = run(Command::new("busctl").args([
        "--system",
        "call",
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "ReloadConfig",
    ]));
    assert!(o.status.success(), "ReloadConfig: {}", stderr(&o));
    let dir = sb.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("webhook-secret");
    std::fs::write(&secret, SECRET).unwrap();
    run(Command::new("chown").arg("jitd-notify").arg(&secret));
    run(Command::new("chmod").arg("600").arg(&secret));
    dir
}

pub fn start_notifier(sb: &Sandbox, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("notify.log"))
        .unwrap();
    // setpriv execs (runuser would stay as a parent a kill leaves the notifier behind).
    Command::new("setpriv")
        .args([
            "--reuid=jitd-notify",
            "--regid=jitd-notify",
            "--init-groups",
            "--",
        ])
        .arg(sb.bin.join("jitd-notify"))
        .arg("--config")
        .arg(dir.join("notify.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("jitd-notify")
}

pub fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An exec sink that appends each note's JSON as one line to `out`.
pub fn recording_sink(dir: &Path, out: &Path, events: &str) {
    let prog = dir.join("sink");
    std::fs::write(
        &prog,
        format!("#!/bin/sh\ncat >> {out:?}\necho >> {out:?}\n"),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&prog));
    run(Command::new("chmod").arg("777").arg(dir));
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\n[[sink]]\nname = \"prog\"\nkind = \"exec\"\ncommand = [{prog:?}]\n\
             events = {events}\n"
        ),
    )
    .unwrap();
}

/// A break-glass rule: alice may take `glass` at once; `%appr` reviews.
pub const GLASS: &str = r#"
[privilege.glass]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "glass"
users = ["alice"]
privileges = ["glass"]
max_duration = "1h"
default_duration = "30m"
reason_min_chars = 8
breakglass = true
approvers = ["%appr"]
"#;
