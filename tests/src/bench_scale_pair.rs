//! Figures 2b and 2c paired: a second daemon holding 10 live grants, on a bus, a gate socket
//! and a drop-in directory of its own, answers beside the daemon holding the mass, and the
//! checks of the two alternate. Measured minutes apart, the two p99s (tens of microseconds)
//! moved by ±0.3 of a ratio between runs of the same build; side by side they see the same
//! machine at the same moments.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes and times them

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bench_scale::{User, as_uid, socket_check_at};
use crate::{Daemon, Sandbox, run, stderr, wait_for};

/// The second daemon and its bus; both stop when this is dropped.
pub struct SmallHost {
    daemon: Option<Daemon>,
    bus_pid: u32,
    socket: PathBuf,
    address: String,
}

impl Drop for SmallHost {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            // Stopped, not purged: a purge takes the PAM routes off the host, which the daemon
            // holding the mass shares.
            d.stop();
            std::mem::forget(d);
        }
        let _ = run(Command::new("kill").arg(self.bus_pid.to_string()));
    }
}

/// Starts a bus at `<sandbox>/pair/bus.sock` (the sandbox's bus configuration, listening
/// there), and on it a daemon with `policy` (and `config` lines) whose drop-ins go to a
/// directory of its own; then `holder` asks it for each of `privileges`.
pub fn small_host(
    sb: &Sandbox,
    policy: &str,
    config: &str,
    holder: &User,
    privileges: &[String],
) -> SmallHost {
    let dir = sb.dir.join("pair");
    std::fs::create_dir_all(dir.join("sudoers.d")).unwrap();
    let conf = std::fs::read_to_string(sb.dir.join("busconf/system.conf"))
        .unwrap()
        .replace(
            "unix:path=/run/dbus/system_bus_socket",
            &format!("unix:path={}", dir.join("bus.sock").display()),
        );
    std::fs::write(dir.join("bus.conf"), conf).unwrap();
    let o = run(Command::new("dbus-daemon")
        .arg(format!("--config-file={}", dir.join("bus.conf").display()))
        .args(["--fork", "--nopidfile", "--print-pid=1"]));
    assert!(o.status.success(), "second bus: {}", stderr(&o));
    let bus_pid = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    let address = format!("unix:path={}", dir.join("bus.sock").display());
    let socket = dir.join("gate.sock");
    let mut daemon = Daemon::start_with(
        sb,
        "pair",
        policy,
        &format!(
            "bus_address = {address:?}\ngate_socket = {:?}\nsudoers_dir = {:?}\n{config}",
            socket,
            dir.join("sudoers.d"),
        ),
    );
    // As the daemon holding the mass is run: no integrity check while measuring.
    daemon.set_config("integrity_check_secs", "3600");
    daemon.restart_elsewhere();
    let host = SmallHost {
        daemon: Some(daemon),
        bus_pid,
        socket,
        address,
    };
    // `Daemon` waits for the name on the system bus, which the other daemon owns.
    wait_for(
        Duration::from_secs(10),
        "the second daemon on its bus",
        || {
            run(as_uid(&mut Command::new("jitctl"), holder)
                .env("JITD_BUS_ADDRESS", &host.address)
                .arg("status"))
            .status
            .success()
        },
    );
    for p in privileges {
        let o = run(as_uid(&mut Command::new("jitctl"), holder)
            .env("JITD_BUS_ADDRESS", &host.address)
            .args(["elevate", p, "--for", "2h"]));
        assert!(o.status.success(), "second daemon, {p}: {}", stderr(&o));
    }
    host
}

/// `n` rounds of four checks of `uid` for `service`, in an order that rotates each round:
/// the small host's gate socket and the system's (the mass), then the same over each bus on
/// one connection each. Returns [small socket, large socket, small bus, large bus], in ms.
pub fn paired_checks(small: &SmallHost, uid: u32, service: &str, n: usize) -> [Vec<f64>; 4] {
    zbus::block_on(async {
        let conn_small = jitd::client::connect(Some(&small.address)).await.unwrap();
        let conn_large = jitd::client::connect(None).await.unwrap();
        let gate_small = jitd::client::GateProxy::new(&conn_small).await.unwrap();
        let gate_large = jitd::client::GateProxy::new(&conn_large).await.unwrap();
        let large_socket = PathBuf::from(jitd::gate_proto::DEFAULT_SOCKET);
        let mut out: [Vec<f64>; 4] = Default::default();
        for round in 0..n {
            for k in 0..4 {
                let arm = (round + k) % 4;
                let t = Instant::now();
                let allowed = match arm {
                    0 => socket_check_at(&small.socket, uid, service),
                    1 => socket_check_at(&large_socket, uid, service),
                    2 => {
                        gate_small
                            .check_access(uid, service, "", "")
                            .await
                            .unwrap()
                            .allowed
                    }
                    _ => {
                        gate_large
                            .check_access(uid, service, "", "")
                            .await
                            .unwrap()
                            .allowed
                    }
                };
                out[arm].push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(allowed, "arm {arm}: the holder's grant was refused");
            }
        }
        out
    })
}
