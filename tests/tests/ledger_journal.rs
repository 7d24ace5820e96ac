//! The command ledger read from the journal (`ledger_source = "journal"`, what sudo-rs gets:
//! it has no JSON event log): real classic sudo with its JSON log off sends its own syslog line
//! to a real systemd-journald started in the sandbox, and jitd reads it with the real
//! journalctl. The sandbox has no /dev/log (the host has no syslog socket), so each sudo runs
//! in a child mount namespace whose /dev (an overlay) has /dev/log pointing at journald's
//! socket, as systemd sets it up on a booted host. sudo-rs itself is not packaged for Debian
//! 12: its lines are covered by the parser's fixtures (jitd/src/ledger/journal.rs). Run by
//! `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

mod ledger_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use jitd_tests::*;
use ledger_common::*;

const SOCKET: &str = "/run/systemd/journal/socket";

/// A real systemd-journald on the sandbox's private /run (volatile storage), stopped and its
/// sockets removed when dropped.
struct Journald(Child);

impl Journald {
    /// Starts journald; `fresh`: with no journal files from before.
    fn start(fresh: bool) -> Self {
        if fresh {
            let _ = std::fs::remove_dir_all("/run/log/journal");
        }
        std::fs::create_dir_all("/run/systemd/journal").unwrap();
        let child = Command::new("/lib/systemd/systemd-journald")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        wait_for(Duration::from_secs(5), "journald's sockets", || {
            Path::new(SOCKET).exists() && Path::new("/run/systemd/journal/dev-log").exists()
        });
        Self(child)
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all("/run/systemd/journal");
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `sudo -n CMD` as `user`, with /dev/log reaching journald (see the module note).
fn sudo_logged(sb: &Sandbox, user: &str, cmd: &str) -> Output {
    let dev: PathBuf = sb.dir.join(format!("dev-overlay-{}", std::process::id()));
    let (upper, work) = (dev.join("upper"), dev.join("work"));
    let _ = std::fs::remove_dir_all(&dev);
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/dev,upperdir={},workdir={} /dev && \
         ln -s /run/systemd/journal/dev-log /dev/log && \
         exec su {user} -s /bin/sh -c 'sudo -n {cmd}'",
        upper.display(),
        work.display()
    );
    run(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
    ]))
}

fn journal_config() -> &'static str {
    "calls_per_sec = 1000.0\ncalls_burst = 1000\nledger_source = \"journal\"\n"
}

/// Waits until the grant's story holds `n` commands (the journal has no exits to wait for).
fn wait_n(user: &str, id: &str, n: usize) -> Vec<serde_json::Value> {
    let mut last = Vec::new();
    wait_for(
        Duration::from_secs(10),
        "the commands from the journal",
        || {
            last = commands(&story(user, id));
            last.len() >= n
        },
    );
    last
}

/// sudo's own syslog line, through journald, lands under the grant with "exit unknown"; the
/// drop-in turns on no JSON log; a line tagged sudo by another program is refused; a restart
/// mid-grant neither loses nor repeats a line; journald gone is an audited gap, not a crash.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn sudo_lines_in_the_journal_land_under_the_grant_with_exit_unknown() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    let mut journald = Journald::start(true);
    let mut d = Daemon::start_with(&sb, "ledger-journal", POLICY, journal_config());
    let a = elevate("alice", "whoami");
    // The grant's rule and the per-user settings (jitd_users, when anything is set).
    let dropin = std::fs::read_dir("/etc/sudoers.d")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("jitd"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(dropin.contains(" ALL=(#0)"), "{dropin}");
    assert!(!dropin.contains("log_format=json"), "{dropin}");

    let o = sudo_logged(&sb, "alice", "/usr/bin/id -u");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let cs = wait_n("alice", &a, 1);
    assert_eq!(argv_of(&cs[0]), "/usr/bin/id -u", "{cs:?}");
    assert_eq!(cs[0]["runas"], "root");
    assert!(cs[0]["exit"].is_null(), "{cs:?}");
    let text = stdout(&jitctl("alice", &["show", &a]));
    assert!(
        text.contains("/usr/bin/id -u") && text.contains("exit unknown"),
        "{text}"
    );

    // A line that claims to be sudo's about someone else, from alice's logger: on record as
    // such, never a command.
    let o = as_user(
        "alice",
        &[
            "logger",
            "-u",
            "/run/systemd/journal/dev-log",
            "-t",
            "sudo",
            "bob : PWD=/ ; USER=root ; COMMAND=/usr/bin/forged",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(Duration::from_secs(10), "the forged line reported", || {
        d.log().contains("event=ledger.problem") && d.log().contains("not sent by")
    });

    // Killed mid-grant; a command while it is down is read after the restart, once.
    d.kill9();
    assert!(sudo_logged(&sb, "alice", "/usr/bin/false").status.code() == Some(1));
    d.restart();
    assert!(sudo_logged(&sb, "alice", "/usr/bin/id -u").status.success());
    let cs = wait_n("alice", &a, 3);
    std::thread::sleep(Duration::from_millis(1500));
    let cs_later = commands(&story("alice", &a));
    assert_eq!(
        cs_later.iter().map(argv_of).collect::<Vec<_>>(),
        ["/usr/bin/id -u", "/usr/bin/false", "/usr/bin/id -u"],
        "{cs:?}"
    );

    // Bob has no grant: his sudo use is not jitd's story (he has no sudo at all here, and
    // the line sudo logs for a refusal under -n never reaches syslog).
    let _ = sudo_logged(&sb, "bob", "/usr/bin/id -u");

    // journald stops: the gap is on record, jitd keeps answering, and reads on once it is back.
    journald.stop();
    wait_for(Duration::from_secs(10), "the gap on record", || {
        d.log().contains("journald is not running")
    });
    assert!(jitctl("alice", &["list"]).status.success());
    let _journald = Journald::start(false);
    assert!(sudo_logged(&sb, "alice", "/usr/bin/id -u").status.success());
    wait_n("alice", &a, 4);
}
