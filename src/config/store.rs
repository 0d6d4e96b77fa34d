//! The config in force, shared by every thread, and how it changes: footrest writing
//! back a repo's guid, and the user editing the file ([`ConfigStore::reload`]).
//!
//! A guid write-back is made to the file as it is on disk now (so a user's edit made
//! since start-up is not lost), saved atomically, and only then put in force. A reload
//! puts the file in force only when it parses and validates; otherwise the config in
//! force stays and the caller logs the error. A guid footrest has learned is not lost
//! to an edit made meanwhile in an editor that still had the file without it.
//!
//! It does not watch the file (see [`super::watch`]) and does not act on a change: the
//! caller gets the old and new configs and decides what to restart.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::{Config, ConfigError};

pub struct ConfigStore {
    path: PathBuf,
    current: RwLock<Arc<Config>>,
    /// Serialises writers of the file and of the config in force.
    writing: Mutex<()>,
    /// Checks made beyond the config's own validation (the hooks' templates), run on
    /// every reload: their errors refuse the new file like validation errors do.
    extra_check: fn(&Config) -> Vec<String>,
}

/// What [`ConfigStore::reload`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum ReloadOutcome {
    /// The file holds the config in force already.
    Unchanged,
    /// The file's config is now in force in place of `old`.
    Changed { old: Arc<Config>, new: Arc<Config> },
}

/// What identifies a version of the config file, to tell cheaply that it changed:
/// device, inode (a save by rename gives a new one), size and modification time
/// (nanoseconds where the file system keeps them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    inode: u64,
    size: u64,
    mtime_sec: i64,
    mtime_nsec: i64,
}

impl ConfigStore {
    pub fn new(path: PathBuf, config: Config) -> ConfigStore {
        ConfigStore {
            path,
            current: RwLock::new(Arc::new(config)),
            writing: Mutex::new(()),
            extra_check: |_| Vec::new(),
        }
    }

    /// Adds checks that every reloaded config must also pass.
    pub fn with_check(mut self, check: fn(&Config) -> Vec<String>) -> ConfigStore {
        self.extra_check = check;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config in force. Cheap: callers take one per task or request and keep it.
    pub fn get(&self) -> Arc<Config> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The config file's stamp now (following a symlink), or `None` when it cannot be
    /// read (missing, no permission). Where inotify is unavailable, a caller polls this
    /// (once a minute) and calls [`reload`](Self::reload) when it differs from the last.
    pub fn file_stamp(&self) -> Option<FileStamp> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some(FileStamp {
            dev: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        })
    }

    /// Reads the file again and puts it in force if it is valid and differs from the
    /// config in force. An invalid or unreadable file changes nothing and gives the
    /// error (naming the file and each problem) for the caller to log; the warnings of
    /// a valid new config are logged here.
    ///
    /// A repo the file gives without a guid keeps the guid the config in force has for
    /// it, if its uri is the same: footrest may have learned the guid while the user had
    /// the file open in an editor, and restic's repository id does not change while the
    /// repository stays where it is. The file itself is not written.
    pub fn reload(&self) -> Result<ReloadOutcome, ConfigError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let (mut next, warnings) = super::load(&self.path)?;
        let errors = (self.extra_check)(&next);
        if !errors.is_empty() {
            return Err(ConfigError::Invalid {
                path: Some(self.path.clone()),
                errors,
            });
        }
        let old = self.get();
        for repo in next.repos.iter_mut().filter(|r| r.guid.is_empty()) {
            if let Some(known) = old.repo(&repo.id)
                && known.uri == repo.uri
                && !known.guid.is_empty()
            {
                repo.guid = known.guid.clone();
            }
        }
        if next == *old {
            return Ok(ReloadOutcome::Unchanged);
        }
        for w in warnings {
            warn!("{}: {w}", self.path.display());
        }
        let new = Arc::new(next);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&new);
        Ok(ReloadOutcome::Changed { old, new })
    }

    /// Records a repo's guid in the file and in the config in force. The file is read
    /// again first; if it no longer parses, it is left alone and only the config in
    /// force learns the guid. When the file held nothing but the config in force, the
    /// config in force also takes the file's new `modno`, so that the reload this write
    /// sets off finds nothing changed.
    pub fn set_repo_guid(&self, repo_id: &str, guid: &str) -> Result<(), ConfigError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let on_disk = std::fs::read_to_string(&self.path)
            .map_err(|source| ConfigError::Io {
                path: self.path.clone(),
                action: "read config",
                source,
            })
            .and_then(|text| super::parse(&text).map(|(c, _)| c));
        let mut written = None;
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
                    let saved = file.save(&self.path);
                    if saved.is_ok() {
                        written = Some(file);
                    }
                    saved
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
        if let Some(mut file) = written {
            let file_modno = std::mem::replace(&mut file.modno, next.modno);
            if file == next {
                next.modno = file_modno;
            }
        }
        *current = Arc::new(next);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const FIXTURE: &str = include_str!("../../tests/fixtures/backrest-config.json");
    const GUID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A store on a copy of the fixture in a temp dir.
    fn store() -> (tempfile::TempDir, ConfigStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, FIXTURE).unwrap();
        let (config, _) = super::super::load(&path).unwrap();
        (dir, ConfigStore::new(path, config))
    }

    /// The fixture with `from` replaced by `to`, written by rename as editors do.
    fn edit_file(store: &ConfigStore, from: &str, to: &str) {
        assert!(FIXTURE.contains(from));
        let tmp = store.path().with_extension("swp");
        fs::write(&tmp, FIXTURE.replace(from, to)).unwrap();
        fs::rename(&tmp, store.path()).unwrap();
    }

    #[test]
    fn reload_of_the_same_file_changes_nothing() {
        let (_dir, store) = store();
        let before = store.get();
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);
        assert!(Arc::ptr_eq(&before, &store.get()));
    }

    #[test]
    fn reload_puts_a_valid_edit_in_force() {
        let (_dir, store) = store();
        let before = store.get();
        edit_file(&store, "\"30 1 * * *\"", "\"45 2 * * *\"");
        let ReloadOutcome::Changed { old, new } = store.reload().unwrap() else {
            panic!("expected a change");
        };
        assert!(Arc::ptr_eq(&old, &before));
        assert!(Arc::ptr_eq(&new, &store.get()));
        let schedule = |c: &Config| c.plan("documents").unwrap().schedule.clone().unwrap().cron;
        assert_eq!(schedule(&old).as_deref(), Some("30 1 * * *"));
        assert_eq!(schedule(&new).as_deref(), Some("45 2 * * *"));
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);
    }

    #[test]
    fn an_invalid_or_missing_file_keeps_the_config_in_force() {
        let (_dir, store) = store();
        let before = store.get();
        edit_file(&store, "\"repo\": \"b2-offsite\"", "\"repo\": \"gone\"");
        let e = store.reload().unwrap_err();
        assert!(e.is_content_error());
        assert_eq!(
            e.errors(),
            ["plans[1] \"photos\": repo \"gone\" is not defined"]
        );
        assert!(Arc::ptr_eq(&before, &store.get()));

        fs::write(store.path(), "{\"version\": 6,").unwrap();
        assert!(store.reload().unwrap_err().is_content_error());
        fs::remove_file(store.path()).unwrap();
        assert!(!store.reload().unwrap_err().is_content_error());
        assert!(Arc::ptr_eq(&before, &store.get()));
    }

    #[test]
    fn a_guid_write_back_is_not_a_change() {
        let (_dir, store) = store();
        store.set_repo_guid("usb-disk", GUID).unwrap();
        let (on_disk, _) = super::super::load(store.path()).unwrap();
        assert_eq!(on_disk.repo("usb-disk").unwrap().guid, GUID);
        assert_eq!(on_disk.modno, 15);
        assert_eq!(*store.get(), on_disk);
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);
    }

    #[test]
    fn a_learned_guid_survives_an_edit_that_lacks_it_while_the_uri_stays() {
        let (_dir, store) = store();
        store.set_repo_guid("usb-disk", GUID).unwrap();
        // The user saves from an editor that still had the file without the guid.
        edit_file(&store, "\"30 1 * * *\"", "\"45 2 * * *\"");
        let ReloadOutcome::Changed { new, .. } = store.reload().unwrap() else {
            panic!("expected a change");
        };
        assert_eq!(new.repo("usb-disk").unwrap().guid, GUID);
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);

        // Moved elsewhere: it may be another repository, whose guid restic will tell.
        edit_file(&store, "/srv/backup/restic", "/mnt/other/restic");
        let ReloadOutcome::Changed { new, .. } = store.reload().unwrap() else {
            panic!("expected a change");
        };
        assert_eq!(new.repo("usb-disk").unwrap().guid, "");
    }

    #[test]
    fn a_guid_learned_while_the_file_was_invalid_is_kept_in_force() {
        let (_dir, store) = store();
        fs::write(store.path(), "not json").unwrap();
        assert!(store.set_repo_guid("usb-disk", GUID).is_err());
        assert_eq!(store.get().repo("usb-disk").unwrap().guid, GUID);
        // The user puts back a valid file: the guid stays, and the rest is unchanged.
        fs::write(store.path(), FIXTURE).unwrap();
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);
        assert_eq!(store.get().repo("usb-disk").unwrap().guid, GUID);
    }

    #[test]
    fn the_file_stamp_changes_with_the_file() {
        let (_dir, store) = store();
        let first = store.file_stamp().unwrap();
        assert_eq!(store.file_stamp(), Some(first));
        // Same size, new inode: a save by rename.
        edit_file(&store, "\"30 1 * * *\"", "\"45 2 * * *\"");
        let renamed = store.file_stamp().unwrap();
        assert_ne!(renamed, first);
        // Same inode, other size: a save in place.
        fs::write(store.path(), FIXTURE.replace("nas01", "nas1")).unwrap();
        assert_ne!(store.file_stamp().unwrap(), renamed);
        fs::remove_file(store.path()).unwrap();
        assert_eq!(store.file_stamp(), None);
    }
}
