//! `sealroom notifications ...`, `sealroom chat ...`, `sealroom search`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use sealroom_types::{NotificationId, ProjectId};
use serde_json::json;

use super::api::{self, parse, Conn, Table};

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: Option<NotificationsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Your notifications of the last 48 hours (the default).
    List,
    /// Mark a notification read.
    Read {
        /// Its ID.
        #[arg(value_parser = parse::<NotificationId>)]
        id: NotificationId,
    },
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: ChatCommand,
}

#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// A project's chat messages.
    List {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
    },
    /// Post a message to a project's chat.
    Post {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// The text.
        text: String,
    },
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    conn: Conn,
    /// Words to look for in projects, artifacts, versions and run configurations.
    query: String,
    /// At most this many hits.
    #[arg(long)]
    limit: Option<u32>,
}

pub fn notifications(args: NotificationsArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command.unwrap_or(NotificationsCommand::List) {
        NotificationsCommand::List => {
            let list = client.notifications()?;
            let items = &list.items;
            args.conn.emit(items, || {
                let mut t = Table::new(&["ID", "AT", "KIND", "READ", "RUN", "MESSAGE"]);
                for n in items {
                    t.row(vec![
                        n.id.to_string(),
                        n.created_at.to_rfc3339(),
                        n.kind.to_string(),
                        n.read.to_string(),
                        api::opt(n.run_id),
                        n.message.clone(),
                    ]);
                }
                t.print();
                eprintln!("{} unread", list.unread);
            })?;
        }
        NotificationsCommand::Read { id } => {
            client.mark_notification_read(id)?;
            args.conn
                .emit(&json!({"read": id}), || println!("marked {id} read"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn chat(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        ChatCommand::List { project } => {
            let items = client.chat(project)?;
            args.conn.emit(&items, || {
                for m in &items {
                    let body: String = m
                        .body
                        .chars()
                        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
                        .collect();
                    let who = if m.author_name.is_empty() {
                        m.author.to_string()
                    } else {
                        m.author_name.chars().filter(|c| !c.is_control()).collect()
                    };
                    println!("{} {who}: {body}", m.created_at.to_rfc3339());
                }
            })?;
        }
        ChatCommand::Post { project, text } => {
            let m = client.post_chat(project, &text)?;
            args.conn.emit(&m, || println!("posted {}", m.id))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let hits = client.search(&args.query, args.limit)?;
    args.conn.emit(&hits, || {
        let mut t = Table::new(&["KIND", "ID", "PROJECT", "TITLE"]);
        for h in &hits {
            t.row(vec![
                h.kind.to_string(),
                h.id.clone(),
                h.project_id.to_string(),
                h.title.clone(),
            ]);
        }
        t.print();
    })?;
    Ok(ExitCode::SUCCESS)
}
