//! `sealroom login`, `logout`, `whoami`, `token`, `password`: signing in and API tokens.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::api::{self, Conn, Credential, Table};

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    conn: Conn,
    /// The username (asked for on the terminal when absent).
    #[arg(long, short)]
    username: Option<String>,
    /// Read the password from stdin (one line) instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
    /// Store an existing API token read from stdin instead of signing in with a password.
    #[arg(long, conflicts_with_all = ["username", "password_stdin"])]
    with_token: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(flatten)]
    conn: Conn,
    /// Read the current and the new password from stdin (one line each).
    #[arg(long)]
    stdin: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token for scripts and CI (printed once).
    Create {
        /// A label ("laptop CLI").
        #[arg(long)]
        name: String,
        /// Days until it expires (1-366); default: until revoked.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Your live API tokens.
    List,
    /// Revoke an API token.
    Revoke {
        /// The token's ID.
        id: String,
    },
}

pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let (client, mut creds) = args.conn.anonymous()?;
    let (credential, me) = if args.with_token {
        let token = api::read_secret("API token: ", true)?;
        let authed = client.with_token(token.trim());
        let me = authed.me()?;
        (
            Credential {
                token: token.trim().to_string(),
                token_id: None,
                username: Some(me.user.username.clone()),
                expires_at: None,
            },
            me.user,
        )
    } else {
        let username = match args.username {
            Some(u) => u,
            None => api::prompt_line("Username: ")?,
        };
        let password = api::read_secret("Password: ", args.password_stdin)?;
        let session = client.login(&username, &password)?;
        let user = match session.user.clone() {
            Some(u) => u,
            None => client.with_token(&session.token).me()?.user,
        };
        (
            Credential {
                token: session.token.clone(),
                token_id: Some(session.id.clone()),
                username: Some(user.username.clone()),
                expires_at: session.expires_at.map(|t| t.to_rfc3339()),
            },
            user,
        )
    };
    let server = client.server().to_string();
    let expires_at = credential.expires_at.clone();
    creds.servers.insert(server.clone(), credential);
    creds.default_server = Some(server.clone());
    let path = creds.save()?;
    args.conn.emit(
        &json!({
            "server": server,
            "user": me,
            "expires_at": expires_at,
            "credentials": path,
        }),
        || {
            println!(
                "signed in to {server} as {}{}",
                me.username,
                expires_at
                    .as_deref()
                    .map(|e| format!(" (session until {e})"))
                    .unwrap_or_default()
            );
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let (client, mut creds) = args.conn.anonymous()?;
    let server = client.server().to_string();
    let Some(stored) = creds.servers.remove(&server) else {
        return Err(api::NotSignedIn { server }.into());
    };
    // Revoke on the server first; forget locally even when the token was already dead.
    let revoked = match client.with_token(&stored.token).logout() {
        Ok(()) => true,
        Err(e) if e.status() == Some(401) => false,
        Err(e) => return Err(e.into()),
    };
    if creds.default_server.as_deref() == Some(server.as_str()) {
        creds.default_server = None;
    }
    creds.save()?;
    args.conn
        .emit(&json!({"server": server, "revoked": revoked}), || {
            println!("signed out of {server}");
        })?;
    Ok(ExitCode::SUCCESS)
}

pub fn whoami(args: WhoamiArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let me = client.me()?;
    args.conn.emit(&me, || {
        api::fields(&[
            ("server", client.server().to_string()),
            ("user", me.user.username.clone()),
            ("name", me.user.display_name.clone()),
            ("id", me.user.id.to_string()),
            (
                "organization",
                format!("{} ({})", me.organization.name, me.organization.id),
            ),
            ("admin", me.user.is_admin.to_string()),
        ]);
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn password(args: PasswordArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let current = api::read_secret("Current password: ", args.stdin)?;
    let new = api::read_secret("New password: ", args.stdin)?;
    if !args.stdin && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let again = api::read_secret("New password again: ", false)?;
        if *again != *new {
            return Err(api::Usage("the new passwords differ".into()).into());
        }
    }
    client.change_password(&current, &new)?;
    args.conn
        .emit(&json!({"changed": true}), || println!("password changed"))?;
    Ok(ExitCode::SUCCESS)
}

pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        TokenCommand::Create { name, days } => {
            let t = client.create_token(&name, days)?;
            args.conn.emit(&t, || {
                eprintln!(
                    "API token {} ({name}){}; it is shown only now:",
                    t.id,
                    t.expires_at
                        .map(|e| format!(", expires {}", e.to_rfc3339()))
                        .unwrap_or_default()
                );
                println!("{}", t.token);
            })?;
        }
        TokenCommand::List => {
            let tokens = client.list_tokens()?;
            args.conn.emit(&tokens, || {
                let mut t = Table::new(&["ID", "NAME", "CREATED", "EXPIRES"]);
                for k in &tokens {
                    t.row(vec![
                        k.id.clone(),
                        k.name.clone(),
                        k.created_at.to_rfc3339(),
                        api::ts(k.expires_at),
                    ]);
                }
                t.print();
            })?;
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id)?;
            args.conn
                .emit(&json!({"revoked": id}), || println!("revoked token {id}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
