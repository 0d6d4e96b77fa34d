//! The config in force, shared by every thread, and the one way footrest changes the
//! file: writing back a repo's guid. A change is made to the file as it is on disk now
//! (so a user's edit made since start-up is not lost), saved atomically, and only then
//! put in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::{Config, ConfigError};

pub struct ConfigStore {
    path: PathBuf,
    current: RwLock<Arc<Config>>,
    /// Serialises writers of the file.
    writing: Mutex<()>,
}

impl ConfigStore {
    pub fn new(path: PathBuf, config: Config) -> ConfigStore {
        ConfigStore {
            path,
            current: RwLock::new(Arc::new(config)),
            writing: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config in force. Cheap: callers take one per task or request and keep it.
    pub fn get(&self) -> Arc<Config> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records a repo's guid in the file and in the config in force. The file is read
    /// again first; if it no longer parses, it is left alone and only the config in
    /// force learns the guid.
    pub fn set_repo_guid(&self, repo_id: &str, guid: &str) -> Result<(), ConfigError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let on_disk = std::fs::read_to_string(&self.path)
            .map_err(|source| ConfigError::Io {
                path: self.path.clone(),
                action: "read config",
                source,
            })
            .and_then(|text| super::parse(&text).map(|(c, _)| c));
        let result = match on_disk {
            Ok(mut file) => {
                let mut changed = false;
                if let Some(repo) = file.repos.iter_mut().find(|r| r.id == repo_id)
                    && repo.guid.is_empty()
                {
                    repo.guid = guid.to_string();
                    changed = true;
                }
                if changed {
                    file.modno += 1;
                    file.save(&self.path)
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(e),
        };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**current).clone();
        if let Some(repo) = next.repos.iter_mut().find(|r| r.id == repo_id) {
            repo.guid = guid.to_string();
        }
        *current = Arc::new(next);
        result
    }
}
