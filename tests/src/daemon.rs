//! A jitd daemon of the sandbox's own (config, policy, log, clock offset), and the sandbox's
//! system bus, for the suites to start, restart, kill and purge.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use super::*;

/// A jitd instance with its own state and policy in the sandbox.
pub struct Daemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    child: Option<Child>,
    bin: PathBuf,
    /// Extra environment for the next start (e.g. `JITD_FAILPOINT`).
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Writes `policy` and a config under `<sandbox>/<name>`, starts jitd and waits until it
    /// owns its bus name.
    pub fn start(sb: &Sandbox, name: &str, policy: &str) -> Daemon {
        Daemon::start_with(sb, name, policy, "")
    }

    /// Like [`Daemon::start`], with `config` (TOML lines) added to the daemon's configuration.
    pub fn start_with(sb: &Sandbox, name: &str, policy: &str, config: &str) -> Daemon {
        let mut d = Daemon::prepare(sb, name, policy, config);
        d.spawn();
        d
    }

    /// Like [`Daemon::start`], over a copy of an existing state database `db` (as left by an
    /// earlier version: an upgrade).
    pub fn start_over(sb: &Sandbox, name: &str, policy: &str, db: &Path) -> Daemon {
        let mut d = Daemon::prepare(sb, name, policy, "");
        std::fs::copy(db, d.state_db())
            .unwrap_or_else(|e| panic!("copy {} into the state dir: {e}", db.display()));
        d.spawn();
        d
    }

    /// Ids of the sudo grants this daemon's records say are on the system (its
    /// `<state_dir>/sudo/<privilege>.jsonl`), each privilege's file rendered from them.
    pub fn sudo_grants_on_system(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.dir.join("state/sudo"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .flat_map(|t| {
                        // A journal: a line per grant put on the system, one per grant taken off.
                        let mut on = std::collections::BTreeSet::new();
                        for v in t
                            .lines()
                            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        {
                            if let Some(id) = v["take"].as_str() {
                                on.remove(id);
                            } else if let Some(id) = v["grant"].as_str() {
                                on.insert(id.to_string());
                            }
                        }
                        on
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn prepare(sb: &Sandbox, name: &str, policy: &str, extra: &str) -> Daemon {
        let dir = sb.dir.join(name);
        std::fs::create_dir_all(dir.join("policy.d")).unwrap();
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("policy.toml"), policy).unwrap();
        let config = dir.join("jitd.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\npolicy_file = {:?}\npolicy_dir = {:?}\nhostname = \"sandbox\"\n\
                 integrity_check_secs = 1\n{extra}\n",
                dir.join("state"),
                dir.join("policy.toml"),
                dir.join("policy.d"),
            ),
        )
        .unwrap();
        Daemon {
            dir,
            config,
            child: None,
            bin: sb.bin.clone(),
            env: Vec::new(),
        }
    }

    fn spawn_process(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("jitd.log"))
            .unwrap();
        let child = Command::new(self.bin.join("jitd"))
            .arg("--config")
            .arg(&self.config)
            .env(
                "JITD_TEST_WALL_OFFSET_FILE",
                self.dir.join("wall-offset-ms"),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start jitd");
        self.child = Some(child);
    }

    fn spawn(&mut self) {
        self.spawn_process();
        wait_for(Duration::from_secs(10), "jitd to own its bus name", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("jitd exited at start ({status}):\n{}", self.log());
            }
            bus_name_owned()
        });
    }

    /// Sets an environment variable for the next (re)start; `None` removes it.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_string(), value.to_string()));
        }
    }

    /// Moves this daemon's wall clock (debug builds read the offset on every clock reading).
    pub fn set_wall_offset_ms(&self, ms: i64) {
        std::fs::write(self.dir.join("wall-offset-ms"), ms.to_string()).unwrap();
    }

    /// Whether the daemon process has exited (e.g. at a failpoint).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The daemon's output (its audit lines go there when there is no syslog socket).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("jitd.log")).unwrap_or_default()
    }

    /// The state of grant `id` (`active`, `expired`, `revoked`, ...), as root lists it.
    pub fn state_of(&self, id: &str) -> String {
        let o = run(Command::new("jitctl").args(["--json", "list", "--all", "--ended"]));
        let list: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}\n{}", stdout(&o), stderr(&o), self.log()));
        list["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .map(|g| g["state"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("grant {id} not listed: {list}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_for(
            Duration::from_secs(5),
            "the bus name to be released",
            || !bus_name_owned(),
        );
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Stops the daemon and starts it again with its configuration as it is now, without
    /// waiting on the system bus: for a daemon on a bus of its own (`bus_address`), whose
    /// caller waits for it there.
    pub fn restart_elsewhere(&mut self) {
        self.stop();
        self.spawn_process();
    }

    /// Kills the daemon if it runs (it may have exited at a failpoint) and starts it again.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Runs `jitd <subcommand>` with this daemon's config (sweep, purge), on the daemon's
    /// clock ([`Daemon::set_wall_offset_ms`]).
    pub fn oneshot(&self, sub: &str) -> Output {
        run(Command::new(self.bin.join("jitd"))
            .arg("--config")
            .arg(&self.config)
            .env(
                "JITD_TEST_WALL_OFFSET_FILE",
                self.dir.join("wall-offset-ms"),
            )
            .arg(sub))
    }

    /// Adds `line` (TOML) to the configuration; it takes effect at the next (re)start.
    pub fn add_config(&self, line: &str) {
        let cfg = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, format!("{cfg}{line}\n")).unwrap();
    }

    /// Sets `key = value` (TOML text) in this daemon's jitd.toml; it takes effect at the next
    /// (re)start.
    pub fn set_config(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(str::to_string)
            .collect();
        lines.push(format!("{key} = {value}"));
        std::fs::write(&self.config, lines.join("\n") + "\n").unwrap();
    }

    /// Stops the daemon, puts an empty state directory on a tmpfs of `size` (a disk that fills
    /// up for real) and starts it again; returns the directory.
    pub fn restart_on_tmpfs(&mut self, size: &str) -> PathBuf {
        self.stop();
        let state = self.dir.join("state");
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let o = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}")])
            .arg("tmpfs")
            .arg(&state));
        assert!(o.status.success(), "{}", stderr(&o));
        self.restart();
        state
    }

    pub fn set_policy(&self, policy: &str) {
        std::fs::write(self.dir.join("policy.toml"), policy).unwrap();
    }

    pub fn state_db(&self) -> PathBuf {
        self.dir.join("state/jitd.db")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Leave nothing for the next test: every grant of this instance off the system.
        let _ = self.oneshot("purge");
    }
}

/// Stops the sandbox's system bus (the dbus-daemon started by tests/sandbox).
pub fn stop_bus(sb: &Sandbox) {
    let pid: i32 = std::fs::read_to_string(sb.dir.join("bus.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the sandbox's own dbus-daemon, whose pid tests/sandbox recorded.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for(Duration::from_secs(5), "the bus to stop", || {
        std::os::unix::net::UnixStream::connect("/run/dbus/system_bus_socket").is_err()
    });
}

/// Starts the sandbox's system bus again, with the same configuration, and records its pid
/// where tests/sandbox looks for it when cleaning up.
pub fn start_bus(sb: &Sandbox) {
    let _ = std::fs::remove_file("/run/dbus/system_bus_socket");
    let o = run(Command::new("dbus-daemon")
        .arg(format!(
            "--config-file={}",
            sb.dir.join("busconf/system.conf").display()
        ))
        .args(["--fork", "--nopidfile", "--print-pid"]));
    assert!(o.status.success(), "dbus-daemon: {}", stderr(&o));
    std::fs::write(sb.dir.join("bus.pid"), stdout(&o).trim()).unwrap();
    wait_for(Duration::from_secs(5), "the bus socket", || {
        Path::new("/run/dbus/system_bus_socket").exists()
    });
    let o = run(Command::new("chmod").args(["666", "/run/dbus/system_bus_socket"]));
    assert!(o.status.success());
}

/// Whether someone owns org.jitd.Jitd1 on the sandbox's system bus.
pub fn bus_name_owned() -> bool {
    run(Command::new("busctl").args(["--system", "status", jitd::client::BUS_NAME]))
        .status
        .success()
}
