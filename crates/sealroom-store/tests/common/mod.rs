//! Test harness: one store per test, on SQLite (a temp dir) or PostgreSQL (a fresh schema in the
//! database named by SEALROOM_TEST_DATABASE_URL). Under CI=true a missing PostgreSQL fails.

#![allow(clippy::expect_used)] // test harness: failing to set up is a test failure

use std::sync::Arc;

use sealroom_store::{SqlStore, StoreConfig};
use sqlx::{Connection, Executor};

#[derive(Debug)]
pub struct TestDb {
    pub store: Arc<SqlStore>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqlStore::connect(&StoreConfig::sqlite_in_data_dir(dir.path()))
            .await
            .expect("open sqlite store");
        assert!(dir.path().join("sealroom.db").exists());
        TestDb {
            store: Arc::new(store),
            _dir: Some(dir),
            pg: None,
        }
    }

    /// `None` (after a loud message) when PostgreSQL is not configured outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let base = match std::env::var("SEALROOM_TEST_DATABASE_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "SEALROOM_TEST_DATABASE_URL is not set under CI=true: run scripts/setup/30-postgres.sh \
                         and source target/test-env.sh"
                    );
                }
                eprintln!(
                    "\n*** SKIPPING PostgreSQL store test: SEALROOM_TEST_DATABASE_URL is not set. \
                     Run `bash scripts/setup/30-postgres.sh && source target/test-env.sh`. ***\n"
                );
                return None;
            }
        };
        let schema = format!("t_{}", uuid_like());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to SEALROOM_TEST_DATABASE_URL");
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .expect("create test schema");
        conn.close().await.ok();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let mut cfg = StoreConfig::from_url(url);
        cfg.max_connections = 8;
        let store = SqlStore::connect(&cfg).await.expect("open postgres store");
        Some(TestDb {
            store: Arc::new(store),
            _dir: None,
            pg: Some((base, schema)),
        })
    }

    /// Drops the PostgreSQL schema (after a passing test).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((base, schema)) = self.pg {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                let _ = conn
                    .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                    .await;
                conn.close().await.ok();
            }
        }
    }
}

fn uuid_like() -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).expect("rng");
    hex::encode(b)
}

/// Runs each listed `async fn NAME(db: &TestDb)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )+
        }
    };
}
