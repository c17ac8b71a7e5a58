//! `curator config check`: what a loaded config cannot show by itself, before a server depends
//! on it. Loading already refuses unknown keys and bad values; this looks outside the file:
//! providers that cannot start, catalog files that cannot be read, a database that cannot be
//! opened or is newer than this curator, an address that cannot be bound.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Config, CredentialSource, ProviderKind};
use crate::catalog::file::CatalogFile;

/// One thing found wrong, at the config file's line where it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line:column`, the file alone, or the environment variable the value came from.
    pub location: String,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {severity}: {}", self.location, self.message)
    }
}

/// Every problem of the config, in the order of the file.
pub async fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let from_env = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let at = |pointer: &str, var: Option<&str>| match var.filter(|v| from_env(v)) {
        Some(var) => format!("`{var}`"),
        None => config.position(pointer).unwrap_or_else(|| "defaults".into()),
    };
    let mut push = |location: String, severity: Severity, message: String| {
        problems.push(Problem { location, severity, message })
    };
    let mut error = |location: String, message: String| push(location, Severity::Error, message);

    if let Err(message) = check_database(&config.database).await {
        error(at("/database", Some("CURATOR_DATABASE_URL")), message);
    }
    if let Err(message) = check_listen(&config.listen) {
        error(at("/listen", Some("CURATOR_LISTEN")), message);
    }
    for (i, file) in config.catalog.iter().enumerate() {
        if let Err(e) = CatalogFile::read(file) {
            for problem in &e.problems {
                let message = format!("catalog: {}: {}", problem.location, problem.message);
                error(at(&format!("/catalog/{i}"), None), message);
            }
        }
    }
    for (i, provider) in config.providers.iter().enumerate().filter(|(_, p)| p.enabled) {
        let name = &provider.name;
        let result = match provider.kind {
            ProviderKind::Plugin => {
                check_command(provider.command.as_deref().unwrap_or_default()).map(|_| ())
            }
            ProviderKind::Directory => match &provider.path {
                Some(path) if path.is_dir() => Ok(()),
                Some(path) if path.exists() => {
                    Err(format!("`{}` is not a directory", path.display()))
                }
                Some(path) => Err(format!("the folder `{}` does not exist", path.display())),
                None => Ok(()),
            },
            ProviderKind::Anilist | ProviderKind::Openlibrary => Ok(()),
        };
        for (key, source) in &provider.credentials {
            let missing = match source {
                CredentialSource::Env(var)
                    if std::env::var_os(var).is_none_or(|v| v.is_empty()) =>
                {
                    Some(format!("the variable `{var}` is not set"))
                }
                CredentialSource::File(path) => std::fs::read_to_string(path)
                    .err()
                    .map(|e| format!("cannot read `{}`: {e}", path.display())),
                CredentialSource::Env(_) => None,
            };
            if let Some(reason) = missing {
                error(
                    at(&format!("/providers/{i}/credentials/{key}"), None),
                    format!("provider `{name}` cannot start: credential `{key}`: {reason}"),
                );
            }
        }
        if let Err(message) = result {
            let key = match provider.kind {
                ProviderKind::Plugin => "command",
                _ => "path",
            };
            error(
                at(&format!("/providers/{i}/{key}"), None),
                format!("provider `{name}` cannot start: {message}"),
            );
        }
    }
    let jobs = &config.jobs_dir;
    if jobs.exists() && !jobs.is_dir() {
        error(
            at("/jobsDir", Some("CURATOR_JOBS_DIR")),
            format!("the jobs directory `{}` is not a directory", jobs.display()),
        );
    } else if !jobs.exists() {
        push(
            at("/jobsDir", Some("CURATOR_JOBS_DIR")),
            Severity::Warning,
            format!(
                "the jobs directory `{}` does not exist: the server starts with no jobs",
                jobs.display()
            ),
        );
    }
    problems
}

/// The database opens as a curator database this release can upgrade, or can be created: an
/// SQLite file or its folder, a PostgreSQL server that answers.
async fn check_database(url: &str) -> Result<(), String> {
    if url.starts_with("postgres") {
        return crate::store::backup::inspect_postgres(url).await.map(|_| ());
    }
    let Some(path) = crate::store::backup::sqlite_path(url) else {
        return Ok(());
    };
    if path.exists() {
        crate::store::backup::inspect(&path).await?;
        // The server writes the file, and its log and index beside it.
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
            _ => PathBuf::from("."),
        };
        for (what, place) in [("the database", &path), ("its folder", &folder)] {
            if !writable(place) {
                return Err(format!(
                    "{what} `{}` is not writable by this user: curator writes the database \
                     and its `-wal` and `-shm` files beside it",
                    place.display()
                ));
            }
        }
        return Ok(());
    }
    // A new database is created on first use, with its folder: the nearest existing folder
    // must be writable.
    let mut folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    while !folder.as_os_str().is_empty() && !folder.exists() {
        folder = folder.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    let folder = if folder.as_os_str().is_empty() { PathBuf::from(".") } else { folder };
    if !folder.is_dir() {
        return Err(format!(
            "cannot create the database `{}`: `{}` is not a directory",
            path.display(),
            folder.display()
        ));
    }
    if !writable(&folder) {
        return Err(format!(
            "cannot create the database `{}`: `{}` is not writable",
            path.display(),
            folder.display()
        ));
    }
    Ok(())
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: access only reads the NUL-terminated path it is given.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

fn check_listen(listen: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs as _;
    match listen.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(_)) => Ok(()),
        _ => Err(format!("`listen`: `{listen}` is not an address like `127.0.0.1:8080`")),
    }
}

/// Finds a plugin's program the way the plugin host starts it: a name with a `/` is a path
/// (relative to the working directory), any other name is looked up on `PATH`.
pub fn check_command(command: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let path = PathBuf::from(command);
        return match std::fs::metadata(&path) {
            Err(_) => Err(format!("the command `{command}` does not exist")),
            Ok(_) if !executable(&path) => {
                Err(format!("the command `{command}` is not an executable file"))
            }
            Ok(_) => Ok(path),
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .map(|dir| dir.join(command))
        .find(|candidate| executable(candidate))
        .ok_or_else(|| format!("the command `{command}` is not found on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_found_on_path_or_by_its_path() {
        assert!(check_command("sh").is_ok());
        assert_eq!(
            check_command("curator-no-such-plugin").unwrap_err(),
            "the command `curator-no-such-plugin` is not found on PATH"
        );
        assert_eq!(
            check_command("./no/such/plugin").unwrap_err(),
            "the command `./no/such/plugin` does not exist"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugin");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        let text = file.display().to_string();
        assert_eq!(
            check_command(&text).unwrap_err(),
            format!("the command `{text}` is not an executable file")
        );
    }

    #[test]
    fn listen_must_be_an_address() {
        assert!(check_listen("127.0.0.1:0").is_ok());
        assert!(check_listen("8080").unwrap_err().contains("`8080` is not an address"));
    }
}
