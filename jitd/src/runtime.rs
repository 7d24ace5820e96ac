//! The daemon at run time: building the core from the host's real parts, the one loop that
//! ends grants by the clock (and notices clock changes, signals and the integrity cadence),
//! and staying on the bus through its restarts. Also the one-shot sweep and purge the systemd
//! timer and the package scripts run.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::{Audit, AuditEvent, Level};
use crate::bus::{Gate, Manager, Notifier, Shared};
use crate::client::{BUS_NAME, OBJECT_PATH};
use crate::config::{Config, SudoChoice};
use crate::daemon::{Core, Parts};
use crate::effects::enforce::SystemEnforcer;
use crate::effects::group::Groups;
use crate::effects::manifest::Manifests;
use crate::effects::recall::Recaller;
use crate::effects::routes::RouteFiles;
use crate::effects::sudoers::shards::Shards;
use crate::effects::sudoers::{self, SudoFlavor, SudoersDir};
use crate::policy::{Policy, SystemAccounts};
use crate::store::StoreError;
use crate::sys::sd_notify;

/// Why the daemon (or a one-shot run) could not do its job. Every one ends the process with
/// status 1 (systemd restarts the daemon); the message says which part failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Bus(String),
    #[error("{0}")]
    Os(String),
}

/// Which sudo is installed decides whether rules may carry `NOTAFTER`.
fn sudo_flavor(cfg: &Config, audit: &Audit) -> SudoFlavor {
    match cfg.sudo {
        SudoChoice::Classic => SudoFlavor::Classic {
            version: "configured".into(),
            notafter: true,
        },
        SudoChoice::SudoRs => SudoFlavor::SudoRs {
            version: "configured".into(),
        },
        SudoChoice::Auto => match sudoers::detect(&cfg.sudo_path) {
            Ok(flavor) => flavor,
            Err(e) => {
                // Without knowing the implementation, leave NOTAFTER out: sudo-rs would reject
                // the whole file, and jitd's own clocks still end the grant.
                audit.log(
                    Level::Warning,
                    &format!("cannot detect sudo ({e}); rules carry no NOTAFTER"),
                );
                SudoFlavor::SudoRs {
                    version: "unknown".into(),
                }
            }
        },
    }
}

fn parts(mut cfg: Config, audit: Arc<Audit>, policy: Policy) -> Parts {
    let flavor = sudo_flavor(&cfg, &audit);
    cfg.ledger_source = cfg
        .ledger_source
        .resolve(matches!(flavor, SudoFlavor::Classic { .. }));
    let grace = Duration::from_millis(cfg.recall_grace_ms);
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::SystemClock::new());
    Parts {
        enforcer: Box::new(SystemEnforcer {
            sudoers: SudoersDir::new(cfg.sudoers_dir.clone(), cfg.visudo.clone()),
            shards: Shards::new(
                SudoersDir::new(cfg.sudoers_dir.clone(), cfg.visudo.clone()),
                cfg.state_dir.join("sudo"),
                Arc::clone(&clock),
            ),
            routes: RouteFiles {
                sudoers: SudoersDir::new(cfg.sudoers_dir.clone(), cfg.visudo.clone()),
                pam_dir: PathBuf::from(PAM_DIR),
            },
            groups: Groups::new(cfg.gpasswd.clone()),
            manifests: Manifests::new(cfg.state_dir.join("memberships")),
        }),
        cfg,
        clock,
        audit,
        accounts: Arc::new(SystemAccounts),
        recaller: Recaller::new(PathBuf::from("/proc"), grace),
        flavor,
        policy,
    }
}

/// The core over the state database, with its live grants loaded; when the database cannot
/// be opened or read, a core in safe mode and the reason.
fn open_core(
    cfg: &Config,
    audit: &Arc<Audit>,
    policy: Policy,
    load: impl FnOnce(&mut Core) -> Result<(), StoreError>,
) -> Result<(Core, Option<StoreError>), RunError> {
    let opened = Core::open(parts(cfg.clone(), audit.clone(), policy)).and_then(|mut engine| {
        load(&mut engine)?;
        Ok(engine)
    });
    match opened {
        Ok(engine) => Ok((engine, None)),
        // Locked by another process for longer than the busy timeout: not broken, only busy.
        // Exiting lets systemd (or the next timer run) try again in a moment, where safe mode
        // would last until the next restart.
        Err(e) if e.is_busy() => Err(RunError::Store(e)),
        Err(e) => {
            let engine =
                Core::open_unusable(parts(cfg.clone(), audit.clone(), Policy::empty()), &e)?;
            Ok((engine, Some(e)))
        }
    }
}

/// The sweep and purge. Neither needs the database to end access: with the database unusable
/// the sweep ends what the markers on the system say is past its deadline, and purge removes
/// everything carrying jitd's marker; then the run fails, so the broken database is seen.
pub fn one_shot(cfg: Config, audit: Arc<Audit>, purge: bool) -> Result<(), RunError> {
    let (mut engine, unusable) = open_core(&cfg, &audit, Policy::empty(), Core::load_live)?;
    if let Some(e) = &unusable {
        eprintln!("jitd: {e}; working from the markers on the system");
    }
    if purge {
        let n = engine.purge();
        // Exiting kills the recaller's threads: finish recall (the SIGKILL stage, the setgid
        // files) first.
        engine.settle();
        println!("jitd purge: removed {n} live grant(s) and every jitd drop-in and membership");
    } else {
        let before = engine.list(None, false).map(|l| l.len()).unwrap_or(0);
        engine.tick();
        let after = engine.list(None, false).map(|l| l.len()).unwrap_or(0);
        engine.settle();
        // What the database does not know (unreadable rows, a lost or broken database) ends
        // at the deadline its marker carries.
        let by_marker = engine.sweep_markers(true);
        let removed = before.saturating_sub(after) + by_marker;
        engine.record(AuditEvent::SweepDone {
            removed: removed as u64,
            live: after as u64,
        });
        println!("jitd sweep: removed {removed} expired grant(s), {after} still live");
    }
    match unusable {
        Some(e) => Err(RunError::Store(e)),
        None => Ok(()),
    }
}

pub fn serve(cfg: Config, audit: Arc<Audit>) -> Result<(), RunError> {
    crate::sys::heap::limit_arenas();
    if let Err(e) = crate::sys::drop_capabilities() {
        audit.log(Level::Warning, &format!("could not drop capabilities: {e}"));
    }
    // A broken policy does not stop the daemon: revocation of existing grants must not depend
    // on the policy being valid. It starts with nothing allowed, and says so in the audit.
    let (policy, rejected) = match Core::load_policy(&cfg, &SystemAccounts) {
        Ok(policy) => (policy, None),
        Err(errors) => (
            Policy::empty(),
            Some(crate::daemon::diagnostics_text(&errors)),
        ),
    };
    let bus_address = cfg.bus_address.clone();
    let check_every_secs = cfg.integrity_check_secs;
    let gate_socket = cfg.gate_socket.clone();
    let limits = crate::bus::Limits::new(cfg.calls_per_sec, cfg.calls_burst, cfg.calls_in_flight);
    // A database that cannot be opened or read does not stop the daemon either: it starts in
    // safe mode, serving no new grants and ending grants by the markers on the system, rather
    // than exiting for systemd to restart in a loop.
    let (mut engine, unusable) = open_core(&cfg, &audit, policy, Core::reconcile)?;
    if let Some(errors) = rejected {
        engine.record(AuditEvent::PolicyRejected {
            errors,
            action: "starting with an empty policy: every request is denied".into(),
        });
    }
    if let Some(e) = &unusable {
        engine.start_safe_mode(e);
    }
    engine.route_policy();
    // Loading every live grant left its working copies' memory free but held.
    crate::sys::heap::give_back_free();
    let proc = crate::effects::procs::ProcFs {
        root: PathBuf::from("/proc"),
    };
    if let Some(why) = crate::effects::procs::ProcView::blind(&proc) {
        audit.log(Level::Warning, &format!("recall is blind: {why}"));
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker = wake.clone();
    engine.set_recall_waker(Arc::new(move || waker.notify_one()));
    // Request changes go out as bus signals from the runtime's own task: the core only queues
    // them, and never waits on the bus under its lock.
    let (signals, signal_queue) = tokio::sync::mpsc::unbounded_channel();
    engine.set_request_signal(Arc::new(move |id, state| {
        let _ = signals.send((id.to_string(), state));
    }));

    let shared = Shared {
        gate: engine.gate(),
        clock: engine.clock(),
        engine: Arc::new(Mutex::new(engine)),
        wake,
        limits,
    };
    // pam_jit's path: up before the bus, on threads of its own. Without it every gated sudo
    // is refused (pam_jit fails closed), so say so loudly, but keep revoking.
    if let Err(e) = crate::gate_socket::serve(&gate_socket, shared.clone()) {
        audit.log(Level::Warning, &format!("{e}; pam_jit cannot reach jitd"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Os(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(
        shared,
        bus_address,
        check_every_secs,
        audit,
        signal_queue,
    ))
}

/// The connection jitd serves on now (replaced when the bus comes back).
type OnBus = Arc<Mutex<Option<zbus::Connection>>>;

/// Sends each queued request change as `RequestChanged` on the connection of the moment; a
/// change while the bus is away is lost, and whoever waits reads the state when it is back.
async fn emit_request_signals(
    mut queue: tokio::sync::mpsc::UnboundedReceiver<(String, crate::terms::RequestState)>,
    on_bus: OnBus,
) {
    while let Some((id, state)) = queue.recv().await {
        let conn = on_bus.lock().ok().and_then(|c| c.clone());
        if let Some(conn) = conn {
            let _ = conn
                .emit_signal(
                    None::<&str>,
                    OBJECT_PATH,
                    crate::client::MANAGER_INTERFACE,
                    "RequestChanged",
                    &(id.as_str(), state),
                )
                .await;
        }
    }
}

async fn run(
    shared: Shared,
    bus_address: Option<String>,
    check_every_secs: u64,
    audit: Arc<Audit>,
    signal_queue: tokio::sync::mpsc::UnboundedReceiver<(String, crate::terms::RequestState)>,
) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Before anyone can ask for a grant: the ledger's first look at the journal starts here.
    let started_ms = shared.clock.now().wall_ms;
    let conn = serve_on_bus(&shared, bus_address.as_deref())
        .await
        .map_err(RunError::Bus)?;
    let current: OnBus = Arc::new(Mutex::new(Some(conn.clone())));
    let signals = tokio::spawn(emit_request_signals(signal_queue, current.clone()));
    // Revocation below runs by the clock whether or not the bus is there; the bus is only how
    // requests arrive. If it goes away (restarted, crashed), this task serves again once it is
    // back, without ever holding up the expiry loop.
    let on_bus = tokio::spawn(stay_on_bus(
        conn,
        shared.clone(),
        bus_address.clone(),
        audit.clone(),
        current,
    ));
    // The command ledger reads sudo's logs on threads of its own; it never holds the expiry
    // loop for more than one batch.
    let ledger = tokio::spawn(crate::ledger::tail(shared.clone(), started_ms));
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| RunError::Os(format!("no hangup signal: {e}")))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| RunError::Os(format!("no terminate signal: {e}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| RunError::Os(format!("no interrupt signal: {e}")))?;
    let mut clock_watch = match crate::sys::clockwatch::ClockWatch::new() {
        Ok(watch) => Some(watch),
        Err(e) => {
            audit.log(
                Level::Warning,
                &format!("no clock-change notification ({e}); checking every second"),
            );
            None
        }
    };
    sd_notify("READY=1");
    audit.log(Level::Info, &format!("serving {BUS_NAME}"));
    let check_every = Duration::from_secs(check_every_secs.max(1));
    let mut last_check = std::time::Instant::now();
    loop {
        let next = {
            let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
            let next = engine.tick();
            if engine.in_safe_mode() {
                // Nothing is tracked: the markers on the system are all there is to go by.
                engine.sweep_markers(false);
            } else if last_check.elapsed() >= check_every {
                engine.check_integrity();
                last_check = std::time::Instant::now();
            }
            next
        };

        // Never sleep more than a second: a wall-clock jump or a resume from suspend is then
        // noticed within a second even with no deadline near.
        let longest = crate::bus::LONGEST_SLEEP_MS;
        let sleep_ms = next.unwrap_or(longest).clamp(0, longest) as u64;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
            () = shared.wake.notified() => {}
            changed = clock_changed(&mut clock_watch) => {
                if let Err(e) = changed {
                    audit.log(Level::Warning, &format!("clock-change notification failed: {e}"));
                    clock_watch = None;
                } else {
                    shared.engine.lock().unwrap_or_else(|p| p.into_inner()).record(AuditEvent::ClockChanged {});
                }
            }
            _ = hangup.recv() => {
                let outcome = shared.engine.lock().unwrap_or_else(|p| p.into_inner()).reload_policy();
                if let Err(e) = outcome {
                    audit.log(Level::Warning, &e.to_string());
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    sd_notify("STOPPING=1");
    // Stop taking calls, then wait for the one in flight (it holds the engine lock) to finish.
    on_bus.abort();
    let _ = on_bus.await;
    signals.abort();
    ledger.abort();
    let _ = ledger.await;
    // Recall in flight (a grant that just ended) is finished, SIGKILL stage and setgid files
    // included, before the process exits and takes the recaller's threads with it.
    shared
        .engine
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .settle();
    audit.log(
        Level::Info,
        "stopped; live grants stay until their deadline",
    );
    Ok(())
}

/// How often the daemon tries the bus again after losing it.
/// Where the PAM services jitd routes privileges' commands to are written.
const PAM_DIR: &str = "/etc/pam.d";

const BUS_RETRY_EVERY: Duration = Duration::from_secs(2);

/// Connects to the bus, serves both interfaces and takes the name, within 5 s.
async fn serve_on_bus(
    shared: &Shared,
    bus_address: Option<&str>,
) -> Result<zbus::Connection, String> {
    let builder = match bus_address {
        Some(address) => zbus::connection::Builder::address(address),
        None => zbus::connection::Builder::system(),
    };
    // Bounds every call the daemon makes (the bus daemon, polkit): a stuck peer costs one
    // refused request, never a wedged interface. The name is not given up to a later
    // claimant (the bus policy lets only root own it; this keeps a second root jitd out too).
    let build = builder
        .method_timeout(Duration::from_secs(5))
        .serve_at(OBJECT_PATH, Manager(shared.clone()))
        .serve_at(OBJECT_PATH, Gate(shared.clone()))
        .serve_at(OBJECT_PATH, Notifier(shared.clone()))
        .name(BUS_NAME)
        .allow_name_replacements(false)
        .build();
    match tokio::time::timeout(Duration::from_secs(5), build).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot serve {BUS_NAME} on the bus: {e}")),
        Err(_) => Err(format!(
            "cannot serve {BUS_NAME} on the bus: no answer in 5 s"
        )),
    }
}

/// Waits for the connection to close (the bus stopped, restarted or dropped jitd), then
/// serves again as soon as the bus is back, logging the loss, the first failed attempt and the
/// return. Owns the connection: aborting the task closes it.
async fn stay_on_bus(
    mut conn: zbus::Connection,
    shared: Shared,
    bus_address: Option<String>,
    audit: Arc<Audit>,
    current: OnBus,
) {
    loop {
        conn.closed().await;
        audit.log(
            Level::Warning,
            "lost the bus; revoking by the clock, reconnecting",
        );
        let mut first_failure = true;
        conn = loop {
            tokio::time::sleep(BUS_RETRY_EVERY).await;
            match serve_on_bus(&shared, bus_address.as_deref()).await {
                Ok(conn) => break conn,
                Err(e) if first_failure => {
                    audit.log(Level::Warning, &format!("{e}; retrying every 2 s"));
                    first_failure = false;
                }
                Err(_) => {}
            }
        };
        if let Ok(mut c) = current.lock() {
            *c = Some(conn.clone());
        }
        audit.log(Level::Info, &format!("serving {BUS_NAME} again"));
    }
}

/// Waits for a wall-clock change, or forever when there is no watch.
async fn clock_changed(
    watch: &mut Option<crate::sys::clockwatch::ClockWatch>,
) -> std::io::Result<()> {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}
