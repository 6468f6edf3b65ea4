//! Making a project: its per-role RSA-4096 KEK pairs through the key provider, then the project,
//! its members and keys in one store transaction (nothing is stored if any step fails).

use sealroom_broker::{KeyLabel, SealedPrivateKey};
use sealroom_store::{NewProject, NewProjectKey};
use sealroom_types::{Name, OrgId, Project, ProjectId, Role, Technology, UserId};

use crate::error::{ApiResult, Failure};
use crate::ControlState;

/// The key provider's label for a project role's KEK (binds the sealed private key to it).
pub fn kek_label(project: ProjectId, role: Role) -> ApiResult<KeyLabel> {
    KeyLabel::for_project_role(&project.to_string(), role.short()).map_err(Failure::from)
}

/// The stored private half of a project role's KEK.
pub fn sealed_private(record: &sealroom_store::ProjectKeyRecord) -> SealedPrivateKey {
    SealedPrivateKey::from_bytes(record.encrypted_private.clone())
}

/// `<project-name>-<random>-ao.der` / `-ds.der`.
fn kek_file_name(name: &Name, role: Role) -> String {
    let mut r = [0u8; 4];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut r[..]);
    format!(
        "{}-{}-{}.der",
        name.file_stem(),
        hex::encode(r),
        role.short()
    )
}

/// Creates a project with fresh KEK pairs for both roles.
pub async fn create_project(
    state: &ControlState,
    name: Name,
    description: String,
    technology: Technology,
    members: Vec<(OrgId, Role)>,
    created_by: UserId,
) -> ApiResult<Project> {
    let id = ProjectId::new();
    let provider = state.keys();
    let mut keys = Vec::new();
    for role in Role::ALL {
        let label = kek_label(id, *role)?;
        let p = provider.clone();
        let kek = tokio::task::spawn_blocking(move || p.generate_kek(&label)).await??;
        keys.push(NewProjectKey {
            role: *role,
            public_der: kek.public_der,
            file_name: kek_file_name(&name, *role),
            encrypted_private: kek.sealed_private.as_bytes().to_vec(),
            provider: provider.kind().name().to_string(),
            key_ref: kek.key_ref,
        });
    }
    Ok(state
        .store()
        .create_project(NewProject {
            id,
            name,
            description,
            technology,
            members,
            keys,
            created_by,
        })
        .await?)
}
