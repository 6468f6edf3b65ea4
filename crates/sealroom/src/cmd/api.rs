//! What every client command shares: the server and token (`--server` / `SEALROOM_SERVER`, the
//! token from `sealroom login` or `SEALROOM_TOKEN`), the stored credentials, `--json` output and
//! aligned tables.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use sealroom_client::Client;
use sealroom_types::Role;
use serde::{Deserialize, Serialize};

/// The connection options of every client command.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The server's URL (default: the server of the last `sealroom login`).
    #[arg(long, env = "SEALROOM_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Trust only this CA certificate (PEM) for an https:// server, instead of the system's.
    #[arg(long, env = "SEALROOM_CA_CERT", global = true, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Print machine-readable JSON (one document on stdout) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// No token for the server: the user must sign in (exit code 20, like a 401).
#[derive(Debug, thiserror::Error)]
#[error("not signed in to {server}: run `sealroom login --server {server}` or set SEALROOM_TOKEN")]
pub struct NotSignedIn {
    /// The server.
    pub server: String,
}

/// A wrong command line found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A stored token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credential {
    /// The bearer token.
    pub token: String,
    /// Its ID (to revoke it).
    #[serde(default)]
    pub token_id: Option<String>,
    /// Who it belongs to.
    #[serde(default)]
    pub username: Option<String>,
    /// When it expires (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("token_id", &self.token_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `$XDG_CONFIG_HOME/sealroom/credentials.json`: one token per server URL, mode 0600.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// The server of the last login (used when no `--server` is given).
    #[serde(default)]
    pub default_server: Option<String>,
    /// Tokens by normalized server URL.
    #[serde(default)]
    pub servers: BTreeMap<String, Credential>,
}

/// Largest credentials file read.
const MAX_CREDENTIALS: u64 = 1 << 20;

impl Credentials {
    /// The file's path.
    pub fn path() -> anyhow::Result<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .context("neither XDG_CONFIG_HOME nor HOME is set: cannot store credentials")?;
                PathBuf::from(home).join(".config")
            }
        };
        Ok(base.join("sealroom").join("credentials.json"))
    }

    /// Reads the file (empty when it does not exist).
    pub fn load() -> anyhow::Result<Credentials> {
        let path = Self::path()?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if meta.len() > MAX_CREDENTIALS {
            anyhow::bail!("{} is larger than {MAX_CREDENTIALS} bytes", path.display());
        }
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a Sealroom credentials file (remove it and sign in again)",
                path.display()
            )
        })
    }

    /// Writes the file atomically with mode 0600 (its directory 0700).
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = Self::path()?;
        let dir = path
            .parent()
            .context("the credentials path has no directory")?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
        let bytes = zeroize::Zeroizing::new(serde_json::to_vec_pretty(self)?);
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        Ok(path)
    }
}

impl Conn {
    /// The normalized server URL: `--server`, else the last login's.
    pub fn server(&self, creds: &Credentials) -> anyhow::Result<String> {
        let url = match (&self.server, &creds.default_server) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => {
                return Err(
                    Usage("no server: pass --server URL or set SEALROOM_SERVER".into()).into(),
                )
            }
        };
        Ok(sealroom_client::normalize_server(&url)?)
    }

    /// A client without a token.
    pub fn anonymous(&self) -> anyhow::Result<(Client, Credentials)> {
        let creds = Credentials::load()?;
        let server = self.server(&creds)?;
        let mut b =
            Client::builder(&server).user_agent(concat!("sealroom/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &self.ca_cert {
            b = b.ca_cert(ca);
        }
        Ok((b.build()?, creds))
    }

    /// A client with the token: `SEALROOM_TOKEN`, else the one stored for the server.
    pub fn client(&self) -> anyhow::Result<Client> {
        let (client, creds) = self.anonymous()?;
        if let Some(t) = std::env::var("SEALROOM_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            return Ok(client.with_token(t.trim()));
        }
        match creds.servers.get(client.server()) {
            Some(c) => Ok(client.with_token(&c.token)),
            None => Err(NotSignedIn {
                server: client.server().to_string(),
            }
            .into()),
        }
    }

    /// Prints `value` as JSON with `--json`, else runs `human`.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce(),
    ) -> anyhow::Result<()> {
        if self.json {
            let text = serde_json::to_string(value)?;
            println!("{text}");
        } else {
            human();
        }
        Ok(())
    }
}

/// A role on the command line: `ao`, `ds`, `algorithm_owner`, `data_steward`.
pub fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "ao" | "AO" => Ok(Role::AlgorithmOwner),
        "ds" | "DS" => Ok(Role::DataSteward),
        other => other
            .parse()
            .map_err(|_| format!("unknown role {other:?}: use ao or ds")),
    }
}

/// Parses any `FromStr` type with a readable error (IDs, kinds, states).
pub fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

/// An aligned text table on stdout.
#[derive(Debug)]
pub struct Table {
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(head: &[&'static str]) -> Table {
        Table {
            head: head.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (control characters from the server are replaced).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| {
                    c.chars()
                        .map(|ch| if ch.is_control() { ' ' } else { ch })
                        .collect()
                })
                .collect(),
        );
    }

    /// The table as text: columns padded to their widest cell, two spaces apart.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(c);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    s.push_str(&format!("{c:<pad$}  "));
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(self.head.clone());
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        out
    }

    /// Prints the table.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// `key: value` lines, keys aligned.
pub fn fields(pairs: &[(&str, String)]) {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (k, v) in pairs {
        let v: String = v
            .chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect();
        println!("{:<w$} {v}", format!("{k}:"));
    }
}

/// Reads a secret: one line from stdin when `from_stdin` (or stdin is not a terminal), else a
/// prompt on the terminal with echo off.
pub fn read_secret(prompt: &str, from_stdin: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let echo_off = std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
        let mut line = zeroize::Zeroizing::new(String::new());
        let r = stdin.lock().read_line(&mut line);
        if echo_off {
            let _ = std::process::Command::new("stty")
                .arg("echo")
                .stdin(std::process::Stdio::inherit())
                .status();
            eprintln!();
        }
        r.context("cannot read from the terminal")?;
        return Ok(zeroize::Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_string(),
        ));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read from stdin")?;
    let value = line.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        return Err(Usage(format!(
            "{} expected on stdin",
            prompt.trim_end_matches([':', ' '])
        ))
        .into());
    }
    Ok(zeroize::Zeroizing::new(value))
}

/// Reads a line of text (a username) from the terminal.
pub fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Usage(format!(
            "{} is needed: give it as an option (stdin is not a terminal)",
            prompt.trim_end_matches([':', ' '])
        ))
        .into());
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// A timestamp for tables (RFC 3339, or `-`).
pub fn ts(t: Option<sealroom_types::Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
}

/// An optional value for tables.
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["ID", "NAME", "ROLE"]);
        t.row(vec!["1".into(), "Model Co".into(), "ao".into()]);
        t.row(vec!["22".into(), "Hosp\nital".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME       ROLE\n1   Model Co   ao\n22  Hosp ital  -\n"
        );
    }

    /// clap's own checks of the whole command line (duplicate names such as a `version`
    /// argument beside the propagated `--version` flag panic only when that subcommand runs).
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        crate::Cli::command().debug_assert();
    }

    #[test]
    fn roles() {
        assert_eq!(parse_role("ao").unwrap(), Role::AlgorithmOwner);
        assert_eq!(parse_role("data_steward").unwrap(), Role::DataSteward);
        assert!(parse_role("owner").is_err());
    }
}
