//! Artifacts, versions and the built-in storage (`docs/api/artifacts.md`).

use std::io::Write;

use sealroom_types::{
    AlgorithmType, Artifact, ArtifactId, ArtifactKind, BlobRef, ProjectId, Timestamp, UserId,
    VersionDetail, VersionId, VersionTag,
};
use serde::{Deserialize, Serialize};

use crate::{encode, Call, Client, Download, ProgressFn, Result, Upload};

/// A new artifact.
#[derive(Debug, Clone, Serialize)]
pub struct NewArtifact<'a> {
    /// What it is (its owner role creates it).
    pub kind: ArtifactKind,
    /// Name, unique per project and kind.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// For algorithms: training or validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm_type: Option<AlgorithmType>,
}

/// A version given as JSON: validation criteria or a dataset behind a signed URL.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum NewJsonVersion<'a> {
    /// Validation criteria (a Cerberus-style schema document).
    ValidationCriteria {
        /// The uploader's tag.
        tag: &'a str,
        /// The uploader's description.
        description: &'a str,
        /// The criteria.
        criteria: serde_json::Value,
    },
    /// A dataset: the signed URL of the sealed data.
    Dataset {
        /// The uploader's tag.
        tag: &'a str,
        /// The uploader's description.
        description: &'a str,
        /// The signed URL.
        url: &'a str,
        /// The data-specification version it follows.
        #[serde(skip_serializing_if = "Option::is_none")]
        data_specification_version: Option<VersionId>,
        /// The attestation-report version that goes with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        attestation_report_version: Option<VersionId>,
    },
}

/// The query of a file version upload (data specification, attestation report, algorithm
/// package).
#[derive(Debug, Clone, Default)]
pub struct FileVersion<'a> {
    /// The uploader's tag.
    pub tag: &'a str,
    /// The uploader's description.
    pub description: &'a str,
    /// The file's name.
    pub file_name: &'a str,
    /// For attestation reports: the data-specification version attested to.
    pub data_specification_version: Option<VersionId>,
}

/// An artifact version as the server shows it to the caller.
///
/// Like [`sealroom_types::ArtifactVersion`], except that the per-kind `detail` is kept as JSON:
/// the server leaves out what the caller may not see (a dataset's URL for anyone but its owner,
/// the criteria text for non-members) and adds what it computes (a dataset URL's `status`).
/// [`VersionView::typed_detail`] gives the typed detail when it is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    /// Its ID.
    pub id: VersionId,
    /// The artifact.
    pub artifact_id: ArtifactId,
    /// The project.
    pub project_id: ProjectId,
    /// System version: 1, 2, ... per artifact.
    pub version: i64,
    /// The uploader's tag.
    pub tag: VersionTag,
    /// The uploader's description.
    #[serde(default)]
    pub description: String,
    /// Who uploaded it.
    pub uploaded_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// The stored file, for kinds that have one.
    #[serde(default)]
    pub blob: Option<BlobRef>,
    /// The per-kind part (`{"kind": ..., ...}`).
    pub detail: serde_json::Value,
}

impl VersionView {
    /// The artifact kind, from the detail's tag.
    pub fn kind(&self) -> Option<ArtifactKind> {
        self.detail.get("kind")?.as_str()?.parse().ok()
    }

    /// The typed detail, when the server sent all of it.
    pub fn typed_detail(&self) -> Option<VersionDetail> {
        serde_json::from_value(self.detail.clone()).ok()
    }
}

/// A stored object (`PUT .../storage/{path}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Its key in the blob store.
    pub key: String,
    /// Its path within the caller's storage.
    #[serde(default)]
    pub path: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// One object of a project's storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageEntry {
    /// The path under the project's storage.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// A signed URL of a storage prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUrl {
    /// The URL (give it to a dataset version).
    pub url: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// `list` (list and read a directory) or `read` (read one object).
    #[serde(default)]
    pub permission: Option<String>,
}

/// Encodes a storage path segment by segment (`/` kept), refusing empty, `.` and `..` segments.
pub(crate) fn storage_path(path: &str) -> Result<String> {
    let path = path.trim_start_matches('/');
    let mut out = Vec::new();
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(crate::ClientError::Config(format!(
                "storage path {path:?} has an empty, '.' or '..' segment"
            )));
        }
        out.push(encode(seg));
    }
    Ok(out.join("/"))
}

impl Client {
    /// `POST /api/v1/projects/{project_id}/artifacts` (the kind's owner role).
    pub fn create_artifact(
        &self,
        project_id: ProjectId,
        artifact: &NewArtifact<'_>,
    ) -> Result<Artifact> {
        self.json(Call::post(format!("/api/v1/projects/{project_id}/artifacts")).json(artifact)?)
    }

    /// `GET /api/v1/projects/{project_id}/artifacts?kind=` (members, admin).
    pub fn list_artifacts(
        &self,
        project_id: ProjectId,
        kind: Option<ArtifactKind>,
    ) -> Result<Vec<Artifact>> {
        self.list(
            Call::get(format!("/api/v1/projects/{project_id}/artifacts")).query_opt("kind", kind),
        )
    }

    /// `GET /api/v1/artifacts/{artifact_id}`.
    pub fn artifact(&self, artifact_id: ArtifactId) -> Result<Artifact> {
        self.json(Call::get(format!("/api/v1/artifacts/{artifact_id}")))
    }

    /// `POST /api/v1/artifacts/{artifact_id}/versions`: a validation-criteria or dataset version.
    pub fn add_json_version(
        &self,
        artifact_id: ArtifactId,
        version: &NewJsonVersion<'_>,
    ) -> Result<VersionView> {
        self.json(Call::post(format!("/api/v1/artifacts/{artifact_id}/versions")).json(version)?)
    }

    /// `POST /api/v1/artifacts/{artifact_id}/versions/upload?...`: a file version (document or
    /// algorithm package tar), streamed from `upload`.
    pub fn upload_version(
        &self,
        artifact_id: ArtifactId,
        meta: &FileVersion<'_>,
        upload: Upload<'_>,
    ) -> Result<VersionView> {
        self.json(
            Call::post(format!("/api/v1/artifacts/{artifact_id}/versions/upload"))
                .query("tag", meta.tag)
                .query("description", meta.description)
                .query("file_name", meta.file_name)
                .query_opt(
                    "data_specification_version",
                    meta.data_specification_version,
                )
                .stream(upload, "application/octet-stream"),
        )
    }

    /// `GET /api/v1/artifacts/{artifact_id}/versions`.
    pub fn list_versions(&self, artifact_id: ArtifactId) -> Result<Vec<VersionView>> {
        self.list(Call::get(format!(
            "/api/v1/artifacts/{artifact_id}/versions"
        )))
    }

    /// `GET /api/v1/versions/{version_id}`.
    pub fn version(&self, version_id: VersionId) -> Result<VersionView> {
        self.json(Call::get(format!("/api/v1/versions/{version_id}")))
    }

    /// `GET /api/v1/versions/{version_id}/content`: the stored file, streamed into `out`.
    pub fn download_version(
        &self,
        version_id: VersionId,
        out: &mut dyn Write,
        progress: ProgressFn<'_>,
    ) -> Result<Download> {
        self.download(
            Call::get(format!("/api/v1/versions/{version_id}/content")),
            out,
            progress,
        )
    }

    /// `POST /api/v1/versions/{version_id}/accept` (DS): accepts validation criteria.
    pub fn accept_version(&self, version_id: VersionId) -> Result<serde_json::Value> {
        self.value(Call::post(format!("/api/v1/versions/{version_id}/accept")))
    }

    /// `POST /api/v1/versions/{version_id}/certify` (DS): certifies a dataset holds no
    /// unencrypted protected data.
    pub fn certify_version(&self, version_id: VersionId) -> Result<serde_json::Value> {
        self.value(Call::post(format!("/api/v1/versions/{version_id}/certify")))
    }

    /// `PUT /api/v1/projects/{project_id}/storage/{path}` (DS): stores one sealed file.
    pub fn put_storage(
        &self,
        project_id: ProjectId,
        path: &str,
        upload: Upload<'_>,
    ) -> Result<StoredObject> {
        let path = storage_path(path)?;
        self.json(
            Call::put(format!("/api/v1/projects/{project_id}/storage/{path}"))
                .stream(upload, "application/octet-stream"),
        )
    }

    /// `GET /api/v1/projects/{project_id}/storage` (DS).
    pub fn list_storage(&self, project_id: ProjectId) -> Result<Vec<StorageEntry>> {
        self.list(Call::get(format!("/api/v1/projects/{project_id}/storage")))
    }

    /// `POST /api/v1/projects/{project_id}/storage/sign` (DS): a read/list URL of a prefix.
    pub fn sign_storage(
        &self,
        project_id: ProjectId,
        prefix: &str,
        expires_in_hours: u32,
    ) -> Result<SignedUrl> {
        #[derive(Serialize)]
        struct Body<'a> {
            prefix: &'a str,
            expires_in_hours: u32,
        }
        self.json(
            Call::post(format!("/api/v1/projects/{project_id}/storage/sign")).json(&Body {
                prefix,
                expires_in_hours,
            })?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_paths() {
        assert_eq!(
            storage_path("/data set/part 1.sealed").unwrap(),
            "data%20set/part%201.sealed"
        );
        for bad in ["a//b", "a/../b", "./a", "", "a/"] {
            assert!(storage_path(bad).is_err(), "{bad}");
        }
    }
}
