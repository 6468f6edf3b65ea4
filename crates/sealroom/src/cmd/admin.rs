//! `sealroom orgs|users|sites ...`: the platform admin's accounts work.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use sealroom_client::NewUser;
use sealroom_types::{OrgId, User, UserId};
use serde_json::json;

use super::api::{self, parse, Conn, Table};

#[derive(Debug, Args)]
pub struct OrgsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: OrgsCommand,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an organization (admin).
    Create {
        /// Its unique name.
        name: String,
    },
    /// Every organization (admin).
    List,
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user in an organization (admin). The password is read from stdin or asked for.
    Create {
        /// The organization's ID.
        #[arg(long, value_parser = parse::<OrgId>)]
        org: OrgId,
        /// Login name (letters, digits, '.', '_', '-', '@').
        #[arg(long)]
        username: String,
        /// Name shown to people (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Make the user a platform admin.
        #[arg(long)]
        admin: bool,
        /// Read the initial password from stdin (one line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Users, optionally of one organization (admin).
    List {
        /// Only this organization's users.
        #[arg(long, value_parser = parse::<OrgId>)]
        org: Option<OrgId>,
    },
    /// Disable a user: no sign-in, its tokens stop working (admin).
    Disable {
        /// The user's ID.
        #[arg(value_parser = parse::<UserId>)]
        id: UserId,
    },
    /// Re-enable a disabled user (admin).
    Enable {
        /// The user's ID.
        #[arg(value_parser = parse::<UserId>)]
        id: UserId,
    },
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: SitesCommand,
}

#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Register a data steward's site and print its agent's token once (admin).
    Create {
        /// The DS organization's ID.
        #[arg(long, value_parser = parse::<OrgId>)]
        org: OrgId,
        /// Name shown to people.
        name: String,
    },
}

pub fn orgs(args: OrgsArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        OrgsCommand::Create { name } => {
            let org = client.create_org(&name)?;
            args.conn.emit(&org, || {
                println!("created organization {} ({})", org.name, org.id)
            })?;
        }
        OrgsCommand::List => {
            let orgs = client.list_orgs()?;
            args.conn.emit(&orgs, || {
                let mut t = Table::new(&["ID", "NAME", "CREATED"]);
                for o in &orgs {
                    t.row(vec![
                        o.id.to_string(),
                        o.name.to_string(),
                        o.created_at.to_rfc3339(),
                    ]);
                }
                t.print();
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn user_table(users: &[User]) {
    let mut t = Table::new(&["ID", "USERNAME", "NAME", "ORG", "ADMIN", "DISABLED"]);
    for u in users {
        t.row(vec![
            u.id.to_string(),
            u.username.clone(),
            u.display_name.clone(),
            u.org_id.to_string(),
            u.is_admin.to_string(),
            u.disabled.to_string(),
        ]);
    }
    t.print();
}

pub fn users(args: UsersArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        UsersCommand::Create {
            org,
            username,
            display_name,
            admin,
            password_stdin,
        } => {
            let password = api::read_secret("Initial password: ", password_stdin)?;
            let user = client.create_user(&NewUser {
                org_id: org,
                username: &username,
                display_name: display_name.as_deref(),
                password: &password,
                is_admin: admin,
            })?;
            args.conn.emit(&user, || {
                println!("created user {} ({})", user.username, user.id)
            })?;
        }
        UsersCommand::List { org } => {
            let users = client.list_users(org)?;
            args.conn.emit(&users, || user_table(&users))?;
        }
        UsersCommand::Disable { id } | UsersCommand::Enable { id } => {
            let disabled = matches!(args.command, UsersCommand::Disable { .. });
            client.set_user_disabled(id, disabled)?;
            args.conn
                .emit(&json!({"id": id, "disabled": disabled}), || {
                    println!(
                        "{} user {id}",
                        if disabled { "disabled" } else { "enabled" }
                    )
                })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn sites(args: SitesArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        SitesCommand::Create { org, name } => {
            let created = client.create_site(org, &name)?;
            args.conn.emit(&created, || {
                eprintln!(
                    "registered site {} ({}); its agent's token is shown only now:",
                    created.site.name, created.site.id
                );
                println!("{}", created.token);
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        users: super::UsersCommand,
    }

    #[test]
    fn user_ids_are_checked_when_parsing() {
        assert!(T::try_parse_from(["t", "disable", "not-an-id"]).is_err());
        let ok = T::try_parse_from(["t", "disable", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"]);
        assert!(ok.is_ok());
    }
}
