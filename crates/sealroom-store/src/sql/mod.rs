//! The SQL implementation of [`crate::MetadataStore`] for SQLite and PostgreSQL, through sqlx's
//! `Any` driver: one set of queries (`$n` placeholders, `RETURNING`, partial indexes and
//! `ON CONFLICT` exist in both), with engine-specific SQL only for search.

mod accounts;
mod artifacts;
mod audit_log;
pub(crate) mod broker;
mod comms;
mod projects;
mod rows;
mod runs;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::{MetadataStore, Result, StoreError};

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded; the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// How to reach the database.
#[derive(Clone)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST:PORT/DB[?options=...]`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        let shown = match self.url.split_once('@') {
            Some((scheme_user, host)) => {
                let scheme = scheme_user.split("://").next().unwrap_or("");
                format!("{scheme}://***@{host}")
            }
            None => self.url.clone(),
        };
        f.debug_struct("StoreConfig")
            .field("url", &shown)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl StoreConfig {
    /// The default: `<data-dir>/sealroom.db`.
    pub fn sqlite_in_data_dir(data_dir: &Path) -> Self {
        StoreConfig {
            url: format!("sqlite://{}", data_dir.join("sealroom.db").display()),
            max_connections: 8,
        }
    }

    /// A database URL (`sqlite://...` or `postgres://...`).
    pub fn from_url(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            max_connections: 8,
        }
    }

    /// The engine the URL names.
    pub fn backend(&self) -> Result<Backend> {
        if self.url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(
                "database URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }
}

/// Opens (creating an SQLite file if needed) and migrates the store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn MetadataStore>> {
    Ok(Arc::new(SqlStore::connect(config).await?))
}

/// The SQL metadata store.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: write transactions take this lock first, so they queue here
    /// instead of failing with SQLITE_BUSY. PostgreSQL needs none.
    write_lock: Option<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "broker",
        include_str!("../../migrations/sqlite/0002_broker.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "broker",
        include_str!("../../migrations/postgres/0002_broker.sql"),
    ),
];

/// The migrator for one engine (migrations are compiled in).
pub(crate) fn migrator(backend: Backend) -> Migrator {
    let list = match backend {
        Backend::Sqlite => SQLITE_MIGRATIONS,
        Backend::Postgres => POSTGRES_MIGRATIONS,
    };
    Migrator {
        migrations: Cow::Owned(
            list.iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

impl SqlStore {
    /// Connects and applies pending migrations.
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = config.backend()?;
        let mut url = config.url.clone();
        let mut opts = AnyPoolOptions::new().max_connections(config.max_connections.max(1));
        if backend == Backend::Sqlite {
            // Create the file if missing.
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            opts = opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        let store = SqlStore {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| tokio::sync::Mutex::new(())),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations (a no-op when the schema is current; [`Self::connect`] calls
    /// it). On PostgreSQL concurrent callers serialize on an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool (for tests and tools that inspect the database directly).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction (serialized on SQLite).
    pub(crate) async fn write(&self) -> Result<WriteTx<'_>> {
        let guard = match &self.write_lock {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    pub(crate) async fn fetch_all(&self, q: Q<'_>) -> Result<Vec<AnyRow>> {
        Ok(q.fetch_all(&self.pool).await?)
    }

    pub(crate) async fn fetch_optional(&self, q: Q<'_>) -> Result<Option<AnyRow>> {
        Ok(q.fetch_optional(&self.pool).await?)
    }
}

impl MetadataStore for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }
}

/// A query being built.
pub(crate) type Q<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// A write transaction; the transaction is declared first so it is dropped (rolled back)
/// before the SQLite write lock is released.
pub(crate) struct WriteTx<'a> {
    pub tx: Transaction<'static, Any>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> Result<()> {
        let WriteTx { tx, _guard } = self;
        tx.commit().await?;
        Ok(())
    }

    pub async fn exec(&mut self, q: Q<'_>) -> Result<u64> {
        Ok(q.execute(&mut *self.tx).await?.rows_affected())
    }

    pub async fn one(&mut self, q: Q<'_>) -> Result<AnyRow> {
        Ok(q.fetch_one(&mut *self.tx).await?)
    }

    pub async fn opt(&mut self, q: Q<'_>) -> Result<Option<AnyRow>> {
        Ok(q.fetch_optional(&mut *self.tx).await?)
    }

    pub async fn all(&mut self, q: Q<'_>) -> Result<Vec<AnyRow>> {
        Ok(q.fetch_all(&mut *self.tx).await?)
    }
}

/// Whether `e` is a unique-constraint violation of one index: PostgreSQL reports the index
/// (constraint) name, SQLite the constrained columns (`table.a, table.b`) or, for expression
/// indexes, `index 'name'`. Each entry of `names` is compared exactly with these.
pub(crate) fn is_unique_violation(e: &StoreError, names: &[&str]) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = e else {
        return false;
    };
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return false;
    }
    let constraint = db.constraint().unwrap_or("");
    let msg = db.message();
    let sqlite_detail = msg.strip_prefix("UNIQUE constraint failed: ").unwrap_or("");
    names.iter().any(|n| {
        constraint == *n
            || sqlite_detail == *n
            || sqlite_detail
                .strip_prefix("index '")
                .and_then(|d| d.strip_suffix('\''))
                == Some(*n)
    })
}

/// Whether `e` is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db))
        if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

/// Clamps a page size to 1..=1000.
pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, 1000))
}
