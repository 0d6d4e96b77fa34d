//! What footrest may read of a local repository's layout without running restic: the
//! names of the files in `snapshots/`, which are the snapshots' full ids. restic 0.14
//! prints only an 8-character id after a backup; for a local repository the full id is
//! found here at no cost, where asking restic would open the repository again (a key
//! derivation that takes about half a second on a small machine). Read-only: footrest
//! never writes into a repository itself.

use std::path::PathBuf;

use super::Repo;

/// The folder of a local repository (`/path` or `local:/path`), `None` for any other
/// backend.
pub fn local_path(repo: &Repo) -> Option<PathBuf> {
    let uri = repo.uri.strip_prefix("local:").unwrap_or(&repo.uri);
    uri.starts_with('/').then(|| PathBuf::from(uri))
}

/// The full id of the one snapshot whose id starts with `prefix`, read from a local
/// repository's `snapshots/` folder. `None` when the repository is not local, the folder
/// cannot be read, or the prefix does not match exactly one snapshot.
pub fn full_snapshot_id(repo: &Repo, prefix: &str) -> Option<String> {
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let dir = local_path(repo)?.join("snapshots");
    let mut found = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 64 && name.starts_with(prefix) {
            if found.is_some() {
                return None;
            }
            found = Some(name.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(uri: &str) -> Repo {
        Repo {
            uri: uri.into(),
            password: String::new(),
            env: vec![],
            flags: vec![],
            io_nice: None,
            cpu_nice: None,
        }
    }

    #[test]
    fn only_local_repositories_have_a_path() {
        assert_eq!(local_path(&repo("/srv/r")), Some(PathBuf::from("/srv/r")));
        assert_eq!(
            local_path(&repo("local:/srv/r")),
            Some(PathBuf::from("/srv/r"))
        );
        assert_eq!(local_path(&repo("rest:http://x/r")), None);
        assert_eq!(local_path(&repo("sftp:host:/r")), None);
        assert_eq!(local_path(&repo("relative/r")), None);
    }

    #[test]
    fn a_unique_prefix_gives_the_full_id() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snapshots");
        std::fs::create_dir(&snaps).unwrap();
        let a = format!("abcd1234{}", "0".repeat(56));
        let b = format!("abcd9999{}", "1".repeat(56));
        std::fs::write(snaps.join(&a), "").unwrap();
        std::fs::write(snaps.join(&b), "").unwrap();
        let r = repo(dir.path().to_str().unwrap());
        assert_eq!(full_snapshot_id(&r, "abcd1234"), Some(a));
        assert_eq!(full_snapshot_id(&r, "abcd"), None, "ambiguous");
        assert_eq!(full_snapshot_id(&r, "ffff"), None);
        assert_eq!(full_snapshot_id(&r, "../x"), None);
        assert_eq!(full_snapshot_id(&r, ""), None);
        assert_eq!(full_snapshot_id(&repo("rest:http://x/"), "abcd1234"), None);
    }
}
