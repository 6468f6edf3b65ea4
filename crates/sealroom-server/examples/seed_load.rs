//! Seeds a data directory for the API load benchmark (`scripts/bench-api`): two organizations,
//! an AO user `bench-ao` (password `bench password 1`) and 1,000 projects (or `--projects N`)
//! between them, written straight into the metadata store.
//!
//! The projects' key records are placeholders (no RSA-4096 key generation, which would take
//! minutes for 2,000 keys): the benchmark reads project lists and pages only.
//!
//! Usage: `seed_load DATA_DIR [--projects N]`; prints one project ID for the page benchmark.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark seeder: failing loudly is right

use std::path::PathBuf;

use sealroom_store::{AccountStore, NewProject, NewProjectKey, NewUser, ProjectStore};
use sealroom_types::{Name, ProjectId, Role, Technology};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: seed_load DATA_DIR [--projects N]"),
    );
    let mut n = 1000usize;
    while let Some(a) = args.next() {
        if a == "--projects" {
            n = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--projects N");
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        sealroom_store::SqlStore::connect(&sealroom_store::StoreConfig::sqlite_in_data_dir(&dir))
            .await
            .unwrap();
    let ao_org = store
        .create_org(&Name::parse("Bench Model Co").unwrap())
        .await
        .unwrap();
    let ds_org = store
        .create_org(&Name::parse("Bench Hospital").unwrap())
        .await
        .unwrap();
    let hash = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"bench-salt-bytes").unwrap();
        argon2::Argon2::default()
            .hash_password(b"bench password 1", &salt)
            .unwrap()
            .to_string()
    };
    let ao = store
        .create_user(NewUser {
            org_id: ao_org.id,
            username: "bench-ao".into(),
            display_name: "Bench AO".into(),
            is_admin: false,
            password_hash: hash,
        })
        .await
        .unwrap();
    let mut first = None;
    for i in 0..n {
        let name = Name::parse(&format!("Bench project {i:05}")).unwrap();
        let keys = Role::ALL
            .iter()
            .map(|r| NewProjectKey {
                role: *r,
                public_der: vec![0x30; 550],
                file_name: format!("{}-bench-{}.der", name.file_stem(), r.short()),
                encrypted_private: vec![0; 64],
                provider: "file".into(),
                key_ref: "bench".into(),
            })
            .collect();
        let p = store
            .create_project(NewProject {
                id: ProjectId::new(),
                name,
                description: format!("Load benchmark project number {i}"),
                technology: Technology::Simulated,
                members: vec![
                    (ao_org.id, Role::AlgorithmOwner),
                    (ds_org.id, Role::DataSteward),
                ],
                keys,
                created_by: ao.id,
            })
            .await
            .unwrap();
        first.get_or_insert(p.id);
    }
    println!("{}", first.unwrap());
}
