//! Writes the policy's routes to the system: one sudoers file that sends each privilege's
//! commands to its own PAM service (`Defaults!ALIAS pam_service=jitd-NAME`), and one PAM file
//! per service, `/etc/pam.d/jitd-NAME`, that is sudo's own stack (`@include sudo`): the same
//! authentication and the same pam_jit line, which gates every `jitd-*` service and so learns
//! which privilege the command belongs to.
//!
//! Order matters because PAM falls back to `/etc/pam.d/other` for a service without a file:
//! the PAM files are written before the sudoers file names them, and removed only after it no
//! longer does.

#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::GrantError;
use super::sudoers::{
    DropInStatus, SudoersDir, carries, create_exclusive, file_status, remove_if_ours_temp, sync_dir,
};
use crate::policy::routes::{Route, SERVICE_PREFIX};

/// The sudoers file, in the drop-in directory. Not `jitd-*`: those names are grants'.
pub const SUDOERS_NAME: &str = "jitd_routes";
const SUDOERS_MARKER: &str = "# jitd routes: managed by jitd, do not edit";
const PAM_MARKER_PREFIX: &str = "# jitd route ";

/// The sudoers text for `routes`; `None` when there is nothing to route.
pub fn render_sudoers(routes: &[Route]) -> Option<String> {
    if routes.is_empty() {
        return None;
    }
    let mut text = format!(
        "{SUDOERS_MARKER}\n# sudo runs each privilege's commands under a PAM service of its own, so \
         pam_jit opens them\n# only for a live grant of that privilege.\n"
    );
    for r in routes {
        let commands: Vec<String> = r.commands.iter().map(|c| c.to_sudoers()).collect();
        let names: Vec<&str> = r.privileges.iter().map(|p| p.as_str()).collect();
        text.push_str(&format!(
            "# {}: {}\nCmnd_Alias {} = {}\nDefaults!{} pam_service={}, pam_login_service={}\n",
            r.service,
            names.join(", "),
            r.alias,
            commands.join(", "),
            r.alias,
            r.service,
            r.service
        ));
    }
    Some(text)
}

fn pam_marker(service: &str) -> String {
    format!("{PAM_MARKER_PREFIX}{service}: managed by jitd, do not edit")
}

/// The PAM file of one route.
pub fn render_pam(r: &Route) -> String {
    let names: Vec<&str> = r.privileges.iter().map(|p| p.as_str()).collect();
    format!(
        "{}\n# sudo runs the commands of {} under this service (see /etc/sudoers.d/{SUDOERS_NAME}),\n\
         # so pam_jit can tell which privilege is in use. Everything else is sudo's own stack.\n\
         @include sudo\n",
        pam_marker(&r.service),
        names.join(", ")
    )
}

/// The sudoers and PAM directories the routes live in.
pub struct RouteFiles {
    pub sudoers: SudoersDir,
    pub pam_dir: PathBuf,
}

impl RouteFiles {
    /// Makes the system route exactly `routes`. Idempotent.
    pub fn install(&self, routes: &[Route]) -> Result<(), GrantError> {
        self.check_pam_dir()?;
        for r in routes {
            self.write_pam(&r.service, &render_pam(r))?;
        }
        match render_sudoers(routes) {
            Some(text) => self
                .sudoers
                .install_named(SUDOERS_NAME, SUDOERS_MARKER, &text)?,
            None => {
                self.sudoers.remove_named(SUDOERS_NAME, SUDOERS_MARKER)?;
            }
        }
        let keep: Vec<&str> = routes.iter().map(|r| r.service.as_str()).collect();
        for service in self.pam_services()? {
            if !keep.contains(&service.as_str()) {
                self.remove_pam(&service)?;
            }
        }
        Ok(())
    }

    /// Removes every route (purge).
    pub fn remove_all(&self) -> Result<(), GrantError> {
        self.sudoers.remove_named(SUDOERS_NAME, SUDOERS_MARKER)?;
        for service in self.pam_services()? {
            self.remove_pam(&service)?;
        }
        Ok(())
    }

    /// What differs on the system from `routes`: one line per file, empty when intact.
    pub fn damage(&self, routes: &[Route]) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |path: PathBuf, status: Result<DropInStatus, GrantError>| match status {
            Ok(DropInStatus::Intact) => {}
            Ok(DropInStatus::Missing) => out.push(format!("{} is missing", path.display())),
            Ok(DropInStatus::Tampered(why)) => out.push(format!("{}: {why}", path.display())),
            Err(e) => out.push(e.to_string()),
        };
        if let Some(text) = render_sudoers(routes) {
            check(
                self.sudoers_path(),
                self.sudoers.status_named(SUDOERS_NAME, &text),
            );
        }
        for r in routes {
            let path = self.pam_path(&r.service);
            let status = file_status(&path, &render_pam(r), 0o644);
            check(path, status);
        }
        out
    }

    fn sudoers_path(&self) -> PathBuf {
        self.sudoers.dir().join(SUDOERS_NAME)
    }

    fn pam_path(&self, service: &str) -> PathBuf {
        self.pam_dir.join(service)
    }

    /// Like the sudoers directory: a directory of root's that nobody else may write.
    fn check_pam_dir(&self) -> Result<(), GrantError> {
        let meta =
            fs::symlink_metadata(&self.pam_dir).map_err(|e| GrantError::io(&self.pam_dir, e))?;
        let unsafe_dir = |why: &str| GrantError::UnsafeDir {
            path: self.pam_dir.clone(),
            why: why.into(),
        };
        if !meta.file_type().is_dir() {
            return Err(unsafe_dir("not a directory (or a symlink)"));
        }
        if meta.uid() != 0 {
            return Err(unsafe_dir("not owned by root"));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir("writable by group or others"));
        }
        Ok(())
    }

    /// The services of the PAM files jitd wrote (carrying a route marker).
    fn pam_services(&self) -> Result<Vec<String>, GrantError> {
        let rd = fs::read_dir(&self.pam_dir).map_err(|e| GrantError::io(&self.pam_dir, e))?;
        let mut out: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(SERVICE_PREFIX))
            .filter(|n| {
                let path = self.pam_path(n);
                fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
                    && carries(&path, &pam_marker(n))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Writes one PAM file: temp file (`O_EXCL|O_NOFOLLOW`), root 0644, synced, renamed over
    /// the name, directory synced. A file at the name that jitd did not write is left alone.
    fn write_pam(&self, service: &str, text: &str) -> Result<(), GrantError> {
        let path = self.pam_path(service);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() && carries(&path, &pam_marker(service)) => {
                if file_status(&path, text, 0o644)? == DropInStatus::Intact {
                    return Ok(());
                }
            }
            Ok(_) => return Err(GrantError::Foreign { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(GrantError::io(&path, e)),
        }
        let temp = self.pam_dir.join(format!(".{service}.jitd.tmp"));
        let result = write_new(&temp, text).and_then(|()| {
            fs::rename(&temp, &path).map_err(|e| GrantError::io(&path, e))?;
            sync_dir(&self.pam_dir)
        });
        if result.is_err() {
            let _ = remove_if_ours_temp(&temp);
        }
        result
    }

    fn remove_pam(&self, service: &str) -> Result<(), GrantError> {
        let path = self.pam_path(service);
        if carries(&path, &pam_marker(service)) {
            fs::remove_file(&path).map_err(|e| GrantError::io(&path, e))?;
            sync_dir(&self.pam_dir)?;
        }
        Ok(())
    }
}

fn write_new(temp: &Path, text: &str) -> Result<(), GrantError> {
    let _ = remove_if_ours_temp(temp);
    let io = |e| GrantError::io(temp, e);
    let mut file = create_exclusive(temp).map_err(io)?;
    std::os::unix::fs::fchown(&file, Some(0), Some(0)).map_err(io)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{PrivilegeName, SudoCommand};

    fn route(service: &str, alias: &str, cmds: &[&str]) -> Route {
        Route {
            service: service.into(),
            alias: alias.into(),
            commands: cmds
                .iter()
                .map(|c| SudoCommand::parse(c).unwrap())
                .collect(),
            privileges: vec![PrivilegeName::parse(&service[5..]).unwrap()],
        }
    }

    #[test]
    fn the_sudoers_text_routes_exact_commands_to_their_service() {
        let text = render_sudoers(&[
            route(
                "jitd-db",
                "JITD_ROUTE_1",
                &["/usr/bin/systemctl restart db"],
            ),
            route("jitd-id", "JITD_ROUTE_2", &["/usr/bin/id"]),
        ])
        .unwrap();
        assert!(text.starts_with(SUDOERS_MARKER));
        assert!(text.contains(
            "Cmnd_Alias JITD_ROUTE_1 = /usr/bin/systemctl restart db\n\
             Defaults!JITD_ROUTE_1 pam_service=jitd-db, pam_login_service=jitd-db\n"
        ));
        // No arguments means none, as in the grant's drop-in.
        assert!(text.contains("Cmnd_Alias JITD_ROUTE_2 = /usr/bin/id \"\"\n"));
        assert_eq!(render_sudoers(&[]), None);
        let pam = render_pam(&route("jitd-db", "A", &["/usr/bin/true"]));
        assert!(pam.starts_with("# jitd route jitd-db: managed by jitd"));
        assert!(pam.ends_with("@include sudo\n"));
    }
}
