//! The model repository: validated models by id, kept in memory and (optionally) as JSON files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use sealroom_fhe::Model;

use super::SetupError;

/// Published models.
#[derive(Debug)]
pub struct ModelRepo {
    dir: Option<PathBuf>,
    models: RwLock<BTreeMap<String, Arc<Model>>>,
}

/// Why a model could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A model with that name exists.
    #[error("a model named {0:?} is already published")]
    Exists(String),
    /// The name cannot be an id.
    #[error("model name {0:?} must be 1 to 64 characters of a-z, 0-9, '-', '_' or '.'")]
    BadName(String),
    /// Writing the file failed.
    #[error("could not store the model: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether `name` can serve as a model id (it appears in URLs and file names).
pub fn valid_id(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl ModelRepo {
    /// Opens the repository, loading `<dir>/fhe/models/*.json` if a directory is given.
    pub fn open(data_dir: Option<PathBuf>) -> Result<Self, SetupError> {
        let dir = data_dir.map(|d| d.join("fhe").join("models"));
        let mut models = BTreeMap::new();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|source| SetupError::Repo {
                path: dir.clone(),
                source,
            })?;
            let entries = std::fs::read_dir(dir).map_err(|source| SetupError::Repo {
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(|source| SetupError::Repo {
                    path: path.clone(),
                    source,
                })?;
                let model = Model::from_json(&bytes).map_err(|e| SetupError::StoredModel {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                models.insert(model.doc().name.clone(), Arc::new(model));
            }
        }
        Ok(ModelRepo {
            dir,
            models: RwLock::new(models),
        })
    }

    /// Publishes a validated model under its name; the file is written before the model
    /// becomes visible, through a temporary file and a rename (nothing half-written).
    pub fn publish(&self, model: Model) -> Result<String, PublishError> {
        let id = model.doc().name.clone();
        if !valid_id(&id) {
            return Err(PublishError::BadName(id));
        }
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        if models.contains_key(&id) {
            return Err(PublishError::Exists(id));
        }
        if let Some(dir) = &self.dir {
            let json = serde_json::to_vec(model.doc()).map_err(std::io::Error::other)?;
            let tmp = dir.join(format!(".{id}.json.tmp"));
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, dir.join(format!("{id}.json")))?;
        }
        models.insert(id.clone(), Arc::new(model));
        Ok(id)
    }

    /// A model by id.
    pub fn get(&self, id: &str) -> Option<Arc<Model>> {
        self.models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// All models, by id.
    pub fn list(&self) -> Vec<Arc<Model>> {
        self.models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
