//! Links the unwinder (libgcc_eh) into the module instead of depending on libgcc_s.so.1.
//!
//! sudo does not load libgcc_s itself, so a module that needs it makes every sudo open, map and
//! relocate one more library: measured at about 0.1 ms on a 4.6 ms `sudo -n true`, over half of
//! what loading pam_jit costs. The unwinder is still needed (the entry points contain a panic
//! with `catch_unwind`), so it is linked in, whole, where only the module uses it. Without a
//! `libgcc_eh.a` from the C compiler the module links libgcc_s as before.

use std::path::PathBuf;
use std::process::Command;

#[allow(clippy::disallowed_methods)] // a build script asks the C compiler where its library is
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        // cc prints the bare name back when it has no such file.
        .filter(|p| p.is_absolute() && p.is_file());
    match found {
        Some(eh) => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,--whole-archive");
            println!("cargo:rustc-cdylib-link-arg={}", eh.display());
            println!("cargo:rustc-cdylib-link-arg=-Wl,--no-whole-archive");
        }
        None => println!(
            "cargo:warning=libgcc_eh.a not found through {cc}: pam_jit links libgcc_s.so.1"
        ),
    }
}
