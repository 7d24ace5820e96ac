//! jitd at scale (issue #20), against the real daemon, bus and sudo inside the sandbox: prints a
//! Markdown table and a JSON document; never fails on speed. `BENCH_ONLY=scale bench/run` (release
//! build), `BENCH_QUICK=1` for tiny sizes (CI, against the debug build).
//!
//! 1. `sudo -n true` by a user jitd gives nothing to, with 10,000 live sudo grants vs 10,
//!    interleaved (sudo reads a copy of each state through /etc/sudo.conf's `sudoers_file=`).
//! 2. 1,000 users holding 10 sudo grants and 1 group grant each: RSS, `CheckAccess` (gate
//!    socket and bus), restart until serving, the integrity check's cost, the cost of a grant
//!    (bus, `jitctl`) and the throughput of making them, each against a host with 10 live grants.
//! 3. 1,000 and 10,000 sudo grants ending in the same second: lateness of each removal, and the
//!    gate's answers around the deadlines. 4. 500 group grants ending in the same second.
//! 5. elevate → sudo usable vs a plain `sudo -n` under a static rule, paired, interleaved.
//! 6. peers: the naive pam_exec + sqlite3 gate, polkit's `pkcheck`, a drop-in written by hand.
//!
//! Run as `jitd-bench-scale grant|cycle ...` it is one of its own bus clients (bench_scale_load).

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes, threads and waits

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jitd_tests::bench_scale::*;
use jitd_tests::bench_scale_load::*;
use jitd_tests::bench_scale_pair::{paired_checks, small_host};
use jitd_tests::bench_scale_peers::{elevate_arms, peers};
use jitd_tests::*;

/// sudo privileges `s0`..`s9` (the mass grants), `e0`..`e9` (the expiring ones), the group ones,
/// and the bench user's own.
fn policy() -> String {
    let mut p = String::new();
    let mut scale = Vec::new();
    for prefix in ['s', 'e'] {
        for i in 0..10 {
            p.push_str(&format!(
                "[privilege.{prefix}{i}]\nkind = \"sudo\"\ncommands = [\"/usr/bin/true {prefix}{i}\"]\n\n"
            ));
            scale.push(format!("\"{prefix}{i}\""));
        }
    }
    p.push_str("[privilege.g0]\nkind = \"group\"\ngroup = \"jitdscg\"\n\n");
    p.push_str("[privilege.gx]\nkind = \"group\"\ngroup = \"jitdscgx\"\n\n");
    p.push_str(
        "[privilege.x]\nkind = \"sudo\"\ncommands = [\"/usr/bin/true x\"]\n\n\
         [privilege.elev]\nkind = \"sudo\"\ncommands = [\"/usr/bin/id\"]\n\n\
         [privilege.bench]\nkind = \"sudo\"\ncommands = [\"/usr/bin/true\"]\n\n",
    );
    p.push_str(&format!(
        "[[rule]]\nname = \"scale\"\ngroups = [\"jitdscale\"]\nprivileges = [{}, \"g0\", \"gx\"]\n\
         max_duration = \"1d\"\nreason_required = false\n\n\
         [[rule]]\nname = \"bench\"\ngroups = [\"jitdbench\"]\nprivileges = [\"x\", \"elev\", \"bench\"]\n\
         max_duration = \"1d\"\nreason_required = false\n",
        scale.join(", ")
    ));
    p
}

/// The bench's own loops call as fast as they can: the per-uid limits are lifted (as in
/// jitd-bench), and the integrity check (every second in the harness) is set to once an hour
/// except where its cost is measured.
/// The per-uid limits lifted.
const LIMITS: &str = "calls_per_sec = 1000000.0\ncalls_burst = 1000000\ncalls_in_flight = 1000\n";

fn start(sb: &Sandbox, name: &str) -> Daemon {
    let mut d = Daemon::start_with(sb, name, &policy(), LIMITS);
    d.set_config("integrity_check_secs", "3600");
    d.restart();
    d
}

fn privs(prefix: char, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if client_main(&args) {
        return;
    }
    let sb = sandbox();
    let sizes = Sizes::from_env();
    let machine = machine(&sizes);
    let mut r = Report::default();
    r.start();
    // The clients run as other users: the binary must be where they can reach it.
    let exe = sb.bin.join("jitd-bench-scale");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let users = make_users(sizes.users);
    for g in ["jitdbench", "jitdscg", "jitdscgx"] {
        ensure_group(g);
    }
    let bench = user("benchuser");
    if !groups_of("benchuser").iter().any(|g| g == "jitdbench") {
        add_to_group("benchuser", "jitdbench");
    }
    let idle = user("scidle");
    let _static = Replaced::new(
        "/etc/sudoers.d/bench-scale-static",
        "scidle ALL=(root) NOPASSWD: /usr/bin/true\nbenchuser ALL=(root) NOPASSWD: /usr/bin/echo\n",
        0o440,
    );
    // BENCH_SCALE_PARTS=host (figures 1, 2, 5, 6) or =expiry (3, 4): one part on its own;
    // =elevate: figure 5 and its floor alone, on a host with 10 live grants.
    let parts = std::env::var("BENCH_SCALE_PARTS").unwrap_or_default();
    let part = |p: &str| parts.is_empty() || parts.split(',').any(|x| x == p);
    // Without the host part the expiry sets are made at a rate guessed, not measured.
    let mut rate = if sizes.quick { 20.0 } else { 40.0 };
    r.phase("set-up");
    if parts.split(',').any(|p| p == "elevate") {
        let _d = start(&sb, "scale");
        elevate_arms(&mut r, &bench, sizes.runs);
        r.phase("elevate");
    }
    if part("host") {
        rate = host_part(&mut r, &sb, &exe, &users, &bench, &idle, &sizes);
    }
    if ["expiry", "3a", "3b", "4"].iter().any(|p| part(p)) {
        expiry_part(&mut r, &sb, &exe, &users, rate, &sizes);
    }
    r.note(format!("load average at the end: {}", loadavg()));
    let md = r.markdown(&machine);
    println!("\n{md}");
    println!(
        "\n```json\n{}\n```",
        serde_json::to_string_pretty(&r.json(&machine)).unwrap()
    );
    if let Ok(path) = std::env::var("BENCH_SCALE_JSON") {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&r.json(&machine)).unwrap(),
        )
        .unwrap();
    }
}

/// Figures 1, 2, 5 and 6: a host with 10 live grants, then with the mass; returns the rate the
/// mass was made at (grants/s).
fn host_part(
    r: &mut Report,
    sb: &Sandbox,
    exe: &Path,
    users: &[User],
    bench: &User,
    idle: &User,
    sizes: &Sizes,
) -> f64 {
    let sprivs = privs('s', sizes.sudo_per_user);
    let mut d = start(sb, "scale");

    // ---- A host with 10 live grants (one user holding s0..s9): the baselines.
    let b = populate(exe, &users[..1], &sprivs, 0, 7200, 1);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let snap_small = snapshot_sudoers(&sb.dir.join("sudoers-small"));
    let small = host_figures(r, sb, &mut d, exe, bench, sizes, "10 live");
    r.phase("10-live host");
    elevate_arms(r, bench, sizes.runs);
    peers(r, sb, &d, bench, sizes.runs);
    r.phase("elevate and peers");

    // ---- The mass: every other user asks for s0..s9 and g0, four clients at a time.
    let mut mixed = sprivs.clone();
    mixed.push("g0".into());
    let mass = populate(exe, &users[1..], &mixed, 0, 7200, 4);
    let g = populate(exe, &users[..1], &["g0".to_string()], 0, 7200, 1);
    let live = mass.grants.len() + g.grants.len() + sprivs.len();
    let mut errors = mass.errors.clone();
    errors.extend(g.errors);
    if !errors.is_empty() {
        r.note(format!(
            "mass: {} requests failed, e.g. {}",
            errors.len(),
            errors[0]
        ));
    }
    let rate = mass.grants.len() as f64 / mass.secs;
    r.note(format!(
        "mass: {live} live grants ({} sudo, {} group) across {} users; made over the bus at \
         {rate:.0} grants/s (4 client processes, one per user at a time, start-ups included)",
        sizes.users * sizes.sudo_per_user,
        sizes.users,
        sizes.users
    ));
    r.push(Figure::new(
        "2t",
        format!("Manager.Request round trip while building {live} live grants (4 clients)"),
        "ms",
        mass.latencies,
    ));
    r.phase("mass grants");
    let snap_large = snapshot_sudoers(&sb.dir.join("sudoers-large"));
    let large = host_figures(r, sb, &mut d, exe, bench, sizes, &format!("{live} live"));
    let per_sec = |figs: &[Figure], id: &str| {
        figs.iter()
            .find(|f| f.id == id)
            .map_or(f64::NAN, |f| 1000.0 / f.s.0)
    };
    r.note(format!(
        "2e/2f: one client asking in turn (from the medians): over the bus {:.0} grants/s at 10 \
         live, {:.0} at {live}; one `jitctl elevate` per grant {:.1}/s at 10 live, {:.1} at {live}",
        per_sec(&small, "2e"),
        per_sec(&large, "2e"),
        per_sec(&small, "2f"),
        per_sec(&large, "2f"),
    ));
    for (s, l) in small.iter().zip(&large) {
        r.push(l.clone().vs(s).target(targets(&l.id)));
    }
    paired_gate(r, sb, &users[0], &sprivs, sizes, live);
    r.phase(&format!("{live}-live host"));
    integrity(r, &mut d, users[0].uid, sizes.integrity_window_s, live);
    r.phase("integrity check");
    sudo_idle(r, idle, &snap_small, &snap_large, sizes.runs, live);
    r.phase("sudo at scale");
    drop(d);
    r.phase("purge");
    rate
}

/// Figures 3 and 4: grants ending in the same second, each set on a daemon of its own.
fn expiry_part(r: &mut Report, sb: &Sandbox, exe: &Path, users: &[User], rate: f64, sizes: &Sizes) {
    // ---- Grants ending in the same second, each set on a daemon of its own.
    let sets = [
        ("3a", sizes.expire_small, 'e', "< 500 ms (max)", true),
        ("3b", sizes.expire_large, 'e', "< 3000 ms (max)", true),
        ("4", sizes.expire_groups, 'x', "< 2000 ms (max)", false),
    ];
    let parts = std::env::var("BENCH_SCALE_PARTS").unwrap_or_default();
    for (id, n, prefix, target, sudo) in sets {
        // BENCH_SCALE_PARTS=3a,4 ... runs those sets alone.
        let named = parts.split(',').any(|p| p == id);
        if !parts.is_empty() && !parts.split(',').any(|p| p == "expiry") && !named {
            continue;
        }
        let per_user = n.div_ceil(users.len()).max(1);
        let who = &users[..(n / per_user).min(users.len())];
        let (list, what) = if prefix == 'x' {
            (
                vec!["gx".to_string()],
                format!("{} group grants ending in the same second", who.len()),
            )
        } else {
            (
                privs(prefix, per_user),
                format!(
                    "{} sudo grants ending in the same second",
                    who.len() * per_user
                ),
            )
        };
        // How fast this kind of grant is made, on a daemon thrown away after (group grants are
        // several times slower than sudo ones): the common deadline must leave time to make
        // them all, and the mass's own rate is the ceiling (a live set slows the making).
        let calib = start(sb, &format!("calibrate-{id}"));
        let k = who.len().min(if sizes.quick { 5 } else { 40 });
        let b = populate(exe, &who[..k], &list, 0, 3600, 4);
        drop(calib);
        let rate = rate.min(b.grants.len().max(1) as f64 / b.secs);
        let d = start(sb, &format!("expire-{id}"));
        let gone = |uids: &[u32]| {
            if sudo {
                sudo_gone(uids)
            } else {
                group_empty("jitdscgx")
            }
        };
        expire_together(r, &d, exe, who, &list, rate, id, &what, target, sudo, &gone);
        drop(d);
        r.phase(&format!("expiry {id}"));
    }
}

fn targets(id: &str) -> &'static str {
    match id {
        "2a" => "< 24 MB",
        "2b" | "2c" => "p99 ≤ ×1.1",
        "2d" => "< 1000 ms",
        "2e" | "2f" => "p50 ≤ ×1.2",
        _ => "",
    }
}

/// The figures of one state of the host, in the same order each time (the large host's are
/// compared with the small one's by position).
#[allow(clippy::too_many_arguments)] // one state's measurements, named at the call
fn host_figures(
    r: &mut Report,
    sb: &Sandbox,
    d: &mut Daemon,
    exe: &Path,
    bench: &User,
    sizes: &Sizes,
    label: &str,
) -> Vec<Figure> {
    let mut out = Vec::new();
    out.push(Figure::new(
        "2a",
        format!("daemon RSS (VmRSS), {label}"),
        "MB",
        vec![rss_mb(d.pid())],
    ));
    let restarts: Vec<f64> = (0..sizes.restarts).map(|_| restart_time(sb, d)).collect();
    out.push(Figure::new(
        "2d",
        format!("restart until serving (SIGKILL, start, until CheckAccess answers), {label}"),
        "ms",
        restarts,
    ));
    let n = if sizes.quick { 10 } else { sizes.runs * 5 };
    out.push(Figure::new(
        "2e",
        format!("one grant over the bus (Manager.Request; dropped after), {label}"),
        "ms",
        cycle_bus(exe, bench, n, "x"),
    ));
    out.push(Figure::new(
        "2f",
        format!("one grant by `jitctl elevate` (process start-up included), {label}"),
        "ms",
        cycle_jitctl(bench, sizes.runs, "x"),
    ));
    out.push(Figure::new(
        "2g",
        format!("daemon RSS after the restarts, {label}"),
        "MB",
        vec![rss_mb(d.pid())],
    ));
    if label.starts_with("10 ") {
        for f in &out {
            r.push(f.clone());
        }
    }
    out
}

/// Figures 2b and 2c: the gate of the daemon holding `live` grants against a daemon holding
/// `holder`'s 10 beside it, checks interleaved ([`jitd_tests::bench_scale_pair`]).
fn paired_gate(
    r: &mut Report,
    sb: &Sandbox,
    holder: &User,
    privileges: &[String],
    sizes: &Sizes,
    live: usize,
) {
    let small = small_host(sb, &policy(), LIMITS, holder, privileges);
    let checks = if sizes.quick { 50 } else { sizes.runs * 100 };
    let [small_socket, large_socket, small_bus, large_bus] =
        paired_checks(&small, holder.uid, "jitd-s0", checks);
    let base = r.push(Figure::new(
        "2b",
        "gate socket: connect + Check (pam_jit's path), 10 live (a daemon beside, interleaved)",
        "ms",
        small_socket,
    ));
    r.push(
        Figure::new(
            "2b",
            format!("gate socket: connect + Check (pam_jit's path), {live} live"),
            "ms",
            large_socket,
        )
        .vs(&base)
        .target(targets("2b")),
    );
    let base = r.push(Figure::new(
        "2c",
        "Gate.CheckAccess over the bus (connected), 10 live (a daemon beside, interleaved)",
        "ms",
        small_bus,
    ));
    r.push(
        Figure::new(
            "2c",
            format!("Gate.CheckAccess over the bus (connected), {live} live"),
            "ms",
            large_bus,
        )
        .vs(&base)
        .target(targets("2c")),
    );
}

/// SIGKILL, then a new jitd on the same configuration, timed from its start until a
/// `Gate.CheckAccess` over the bus is answered (polled every millisecond).
fn restart_time(sb: &Sandbox, d: &mut Daemon) -> f64 {
    d.kill9();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(d.dir.join("jitd.log"))
        .unwrap();
    let ms = zbus::block_on(async {
        let conn = jitd::client::connect(None).await.unwrap();
        let t = Instant::now();
        let mut child = Command::new(sb.bin.join("jitd"))
            .arg("--config")
            .arg(&d.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start jitd");
        let answered = loop {
            let call = conn
                .call_method(
                    Some(jitd::client::BUS_NAME),
                    jitd::client::OBJECT_PATH,
                    Some("org.jitd.Jitd1.Gate"),
                    "CheckAccess",
                    &(0u32, "jitd-s0", "", ""),
                )
                .await;
            if call.is_ok() {
                break Some(t.elapsed().as_secs_f64() * 1000.0);
            }
            if t.elapsed() > Duration::from_secs(120) || child.try_wait().ok().flatten().is_some() {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = child.wait();
        answered
    });
    wait_for(
        Duration::from_secs(5),
        "the bus name to be released",
        || !bus_name_owned(),
    );
    d.restart();
    ms.unwrap_or_else(|| panic!("jitd did not serve after a restart:\n{}", d.log()))
}

/// The periodic integrity check at scale: the daemon's CPU and the latency of the gate socket
/// and of a Manager call (which waits for the core's lock) while it checks every second, against
/// the same with it once an hour.
fn integrity(r: &mut Report, d: &mut Daemon, uid: u32, window_s: u64, live: usize) {
    let mut arms = Vec::new();
    for secs in ["1", "3600"] {
        d.set_config("integrity_check_secs", secs);
        d.restart();
        // Start-up reconcile is done once the bus name is owned; let the first check start.
        std::thread::sleep(Duration::from_millis(1200));
        let cpu0 = cpu_ms(d.pid());
        let t = Instant::now();
        let (socket, manager) = zbus::block_on(async {
            let conn = jitd::client::connect(None).await.unwrap();
            let m = jitd::client::ManagerProxy::new(&conn).await.unwrap();
            let (mut socket, mut manager) = (Vec::new(), Vec::new());
            while t.elapsed() < Duration::from_secs(window_s) {
                let s = Instant::now();
                socket_check(uid, "jitd-s0");
                socket.push(s.elapsed().as_secs_f64() * 1000.0);
                let s = Instant::now();
                let _ = m.list_mine(false).await;
                manager.push(s.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(5));
            }
            (socket, manager)
        });
        let cpu = (cpu_ms(d.pid()) - cpu0) / t.elapsed().as_secs_f64();
        arms.push((socket, manager, cpu));
    }
    let (with, without) = (arms.remove(0), arms.remove(0));
    r.note(format!(
        "2i: with {live} live grants, jitd used {:.0} ms of CPU per second while checking \
         every second, {:.0} ms without: about {:.0} ms per integrity check",
        with.2,
        without.2,
        with.2 - without.2
    ));
    let base_s = Figure::new(
        "2i",
        format!("gate socket check, integrity check once an hour, {live} live"),
        "ms",
        without.0,
    );
    let base_m = Figure::new(
        "2j",
        format!("Manager.ListMine (waits for the core), integrity check once an hour, {live} live"),
        "ms",
        without.1,
    );
    r.push(
        Figure::new(
            "2i",
            format!("gate socket check while the integrity check runs every 1 s, {live} live"),
            "ms",
            with.0,
        )
        .vs(&base_s),
    );
    r.push(Figure::new("2j", format!("Manager.ListMine while the integrity check runs every 1 s (max ≈ one check), {live} live"), "ms", with.1).vs(&base_m));
}

/// Figure 1: `sudo -n true` by a user jitd gives nothing to (a static rule of its own), with
/// sudo reading the configuration as it was with 10 live grants and as it is with the mass,
/// interleaved.
fn sudo_idle(r: &mut Report, idle: &User, small: &Path, large: &Path, runs: usize, live: usize) {
    let confs = [sudo_conf_for(small), sudo_conf_for(large)];
    // sudo must read what sudo.conf names, or both arms would time the live files: with a
    // policy file that does not exist it must refuse.
    let _conf = Replaced::new(
        "/etc/sudo.conf",
        &sudo_conf_for(Path::new("/nonexistent-sudoers")),
        0o644,
    );
    let o = run(as_uid(&mut Command::new("sudo"), idle).args(["-n", "/usr/bin/true"]));
    if o.status.success() {
        r.note("1: sudo ignores sudo.conf's sudoers_file=: the two states cannot be interleaved");
        return;
    }
    let mut samples = [Vec::new(), Vec::new()];
    for i in 0..runs * 4 {
        let arm = i % 2;
        std::fs::write("/etc/sudo.conf", &confs[arm]).unwrap();
        let (o, ms) = timed(as_uid(&mut Command::new("sudo"), idle).args(["-n", "/usr/bin/true"]));
        if !o.status.success() {
            r.note(format!("1: sudo -n true failed: {}", stderr(&o)));
            return;
        }
        samples[arm].push(ms);
    }
    let [s, l] = samples;
    let base = Figure::new(
        "1",
        "`sudo -n true`, user holding nothing, 10 live grants",
        "ms",
        s,
    );
    r.push(base.clone());
    r.push(
        Figure::new(
            "1",
            format!("`sudo -n true`, user holding nothing, {live} live grants (interleaved)"),
            "ms",
            l,
        )
        .vs(&base)
        .target("p50 ≤ ×1.5"),
    );
}
