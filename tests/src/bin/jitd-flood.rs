//! A local user's flood of the bus API, as the security review ran it: `CONNECTIONS`
//! connections, each sending `Manager.Request` with an invalid privilege name in batches of
//! `PIPELINE` calls without waiting for the answers, until `STOP_FILE` exists. Run as the
//! unprivileged attacker (`runuser -u mallory -- jitd-flood 32 100 /tmp/stop`). With a fourth
//! argument `mix` the calls rotate through what else a user can throw: a valid name the policy
//! refuses them, `ListAll` (an admin method: a polkit question), `Revoke` of someone else's
//! (or no) grant, and `Explain`. Prints the number of calls sent.

#![allow(clippy::disallowed_methods)] // a load generator: its own threads, sleeps and clock

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (connections, pipeline, stop, mix) = match args.as_slice() {
        [_, c, p, s] => (c, p, s, false),
        [_, c, p, s, m] if m == "mix" => (c, p, s, true),
        _ => {
            eprintln!("usage: jitd-flood CONNECTIONS PIPELINE STOP_FILE [mix]");
            std::process::exit(2);
        }
    };
    let connections: usize = connections.parse().expect("CONNECTIONS");
    let pipeline: usize = pipeline.parse().expect("PIPELINE");
    let stop = PathBuf::from(stop);
    let sent = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                zbus::block_on(async move {
                    let Ok(conn) = zbus::connection::Builder::system().build().await else {
                        return;
                    };
                    let mut n = 0usize;
                    while !stop.exists() {
                        for _ in 0..pipeline {
                            n += 1;
                            let Ok(msg) = call(if mix { n % 5 } else { 0 }) else {
                                return;
                            };
                            if conn.send(&msg).await.is_err() {
                                return;
                            }
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        // Let the answers drain so the bus keeps the connection.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    println!("{}", sent.load(Ordering::Relaxed));
}

/// The `kind`th call of the rotation.
fn call(kind: usize) -> zbus::Result<zbus::Message> {
    let m = |method| {
        zbus::Message::method_call("/org/jitd/Jitd1", method)
            .destination("org.jitd.Jitd1")
            .interface("org.jitd.Jitd1.Manager")
    };
    match kind {
        1 => m("Request").build(&("gated-id", 600u64, "flood", "")),
        2 => m("ListAll").build(&(true,)),
        3 => m("Revoke").build(&("g0123456789ab", "flood", true)),
        4 => m("Explain").build(&("gated-id",)),
        _ => m("Request").build(&("NOT-A-NAME", 0u64, "", "")),
    }
}
