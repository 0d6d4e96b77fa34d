//! [`App`] owns the running parts (config in force, operation log, logs, orchestrator,
//! authenticator) and starts them in order. Start-up failures are [`StartError`]s that
//! say what to fix; a config error is kept apart so `main` can exit with status 2.

use std::fmt;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::api::auth::Authenticator;
use crate::config::store::{ConfigStore, ReloadOutcome};
use crate::config::watch::ConfigWatcher;
use crate::config::{self, Config, ConfigError};
use crate::hooks;
use crate::logs::Logs;
use crate::oplog::OpLog;
use crate::orchestrator::Orchestrator;
use crate::orchestrator::clock::{Clock, SystemClock};
use crate::restic::Restic;
use crate::settings::Settings;

/// Why footrest could not start.
#[derive(Debug)]
pub enum StartError {
    /// The config file is invalid: exit status 2.
    Config(ConfigError),
    /// Anything else: what failed and what to do.
    Other(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Other(m) => f.write_str(m),
        }
    }
}

pub struct App {
    pub config: Arc<ConfigStore>,
    /// The data dir in use (operation log, logs, restic's fallback cache).
    pub data_dir: PathBuf,
    pub oplog: Arc<OpLog>,
    pub logs: Logs,
    pub auth: Authenticator,
    pub orchestrator: Orchestrator,
}

impl App {
    /// Loads (or first writes) the config, checks restic, opens the operation log and
    /// starts the worker and the scheduler on the system clock.
    pub fn start(settings: &Settings) -> Result<App, StartError> {
        App::start_with_clock(settings, Arc::new(SystemClock))
    }

    /// [`App::start`] with the scheduler on the given clock (tests run schedules fast).
    pub fn start_with_clock(settings: &Settings, clock: Arc<dyn Clock>) -> Result<App, StartError> {
        // The data dir holds the operation history and logs that name the user's files:
        // only footrest's user may read it.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.data_dir)
            .map_err(|e| {
                StartError::Other(format!(
                    "cannot create the data dir {}: {e}",
                    settings.data_dir.display()
                ))
            })?;
        let config = load_or_create_config(&settings.config_path, &settings.data_dir)?;
        // Without a usable restic footrest still serves its history and config; every
        // task that needs restic fails with this same message until restic is there.
        let (mut restic, problem) = Restic::locate_or_later(settings.restic.as_deref());
        // A service with neither HOME nor XDG_CACHE_HOME would run restic without a
        // cache, re-reading the repository's index on every run.
        restic.set_cache_fallback(Some(settings.data_dir.join("restic-cache")));
        match problem {
            None => info!(
                "using restic {} at {}",
                restic.version(),
                restic.path().display()
            ),
            Some(e) => error!(
                "{e}. footrest runs without it: backups and every other repository task \
                 fail with this message until restic is installed (no restart needed)"
            ),
        }
        let oplog_path = settings.data_dir.join("oplog.sqlite");
        let oplog =
            Arc::new(OpLog::open(&oplog_path).map_err(|e| StartError::Other(e.to_string()))?);
        let logs = Logs::open(&settings.data_dir).map_err(|e| {
            StartError::Other(format!(
                "cannot create the logs folder in {}: {e}",
                settings.data_dir.display()
            ))
        })?;
        let auth = Authenticator::new(config.auth.as_ref(), &settings.data_dir);
        if !auth.enabled() {
            warn!(
                "authentication is disabled in the config: anyone who can reach the server can use it"
            );
        }
        let store = Arc::new(
            ConfigStore::new(settings.config_path.clone(), config).with_check(hooks::check_config),
        );
        let orchestrator = Orchestrator::start(
            Arc::clone(&store),
            Arc::clone(&oplog),
            restic,
            logs.clone(),
            clock,
        )
        .map_err(|e| StartError::Other(e.to_string()))?;
        Ok(App {
            config: store,
            data_dir: settings.data_dir.clone(),
            oplog,
            logs,
            auth,
            orchestrator,
        })
    }
}

impl App {
    /// Reads the config file again (SIGHUP, or the file changed). A valid new config is
    /// put in force: users, schedules. An invalid one is refused with its errors and the
    /// config in force stays. Running tasks are not interrupted.
    pub fn reload_config(&self) {
        match self.config.reload() {
            Ok(ReloadOutcome::Changed { new, .. }) => {
                for w in new.validate().unwrap_or_default() {
                    warn!("{}: {w}", self.config.path().display());
                }
                self.auth.set_users(new.auth.as_ref());
                self.orchestrator.config_changed();
                info!("config reloaded from {}", self.config.path().display());
            }
            Ok(ReloadOutcome::Unchanged) => debug!("config file unchanged"),
            Err(e) => error!("config not reloaded; the one in force stays: {e}"),
        }
    }
}

/// Watches the config file and reloads it when it changes: through inotify, or by
/// looking at the file once a minute where inotify is not available. Ends when footrest
/// stops.
pub fn spawn_config_watcher(app: &Arc<App>) {
    let app = Arc::clone(app);
    let spawned = std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let stopping = || app.orchestrator.shared().stopping();
            match ConfigWatcher::new(app.config.path()) {
                Ok(watcher) => {
                    // A long wait: this thread is not joined at shutdown, so it need not
                    // look at the stop flag often, and an idle footrest stays asleep.
                    while !stopping() {
                        match watcher.wait(Duration::from_secs(60)) {
                            Ok(true) => app.reload_config(),
                            Ok(false) => {}
                            Err(e) => {
                                warn!("watching the config file failed: {e}; changes need SIGHUP");
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    info!("cannot watch the config file with inotify ({e}); looking at it once a minute");
                    let mut stamp = app.config.file_stamp();
                    while !stopping() {
                        std::thread::sleep(Duration::from_secs(60));
                        let now = app.config.file_stamp();
                        if now != stamp {
                            stamp = now;
                            app.reload_config();
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        warn!("cannot start the config watcher: {e}; changes need SIGHUP");
    }
}

/// Loads the config; with no file at all, writes the starter config first and says
/// where.
pub fn load_or_create_config(path: &Path, data_dir: &Path) -> Result<Config, StartError> {
    if !path.exists() {
        write_starter_config(path, data_dir, None)?;
    }
    let (config, warnings) = load_config(path).map_err(StartError::Config)?;
    for w in warnings {
        warn!("{}: {w}", path.display());
    }
    Ok(config)
}

/// Reads and validates a config file, hooks' templates included; returns its warnings.
pub fn load_config(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let (config, warnings) = config::load(path)?;
    let errors = hooks::check_config(&config);
    if !errors.is_empty() {
        return Err(ConfigError::Invalid {
            path: Some(path.to_path_buf()),
            errors,
        });
    }
    Ok((config, warnings))
}

/// `footrest init-config`: writes the starter config at `path` with authentication on
/// and one user, `user`, whose new random password it returns for the caller to show
/// once (only its bcrypt hash is in the file). Creates the data dir (0700) if needed.
/// Refuses to touch an existing file, so running it twice changes nothing.
pub fn init_config(path: &Path, data_dir: &Path, user: &str) -> Result<String, StartError> {
    if path.symlink_metadata().is_ok() {
        return Err(StartError::Other(format!(
            "{} already exists; init-config never overwrites a config (edit it, or move it away first)",
            path.display()
        )));
    }
    if user.trim().is_empty() {
        return Err(StartError::Other(
            "init-config needs a user name (--user NAME)".into(),
        ));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| {
            StartError::Other(format!(
                "cannot create the data dir {}: {e}",
                data_dir.display()
            ))
        })?;
    let password = config::random_alphanumeric(24).map_err(|e| {
        StartError::Other(format!("cannot read /dev/urandom to make a password: {e}"))
    })?;
    let hash = crate::api::auth::hash_password(&password).map_err(StartError::Other)?;
    let auth = config::Auth {
        disabled: false,
        users: vec![config::User {
            name: user.to_string(),
            password_bcrypt: hash,
            ..config::User::default()
        }],
        ..config::Auth::default()
    };
    write_starter_config(path, data_dir, Some(auth))?;
    Ok(password)
}

/// Writes the starter config: its auth section is `auth`, or disabled when `None`.
fn write_starter_config(
    path: &Path,
    data_dir: &Path,
    auth: Option<config::Auth>,
) -> Result<(), StartError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        StartError::Other(format!("cannot {what} {}: {e}", p.display()))
    };
    let example = data_dir.join("example-data");
    fs::create_dir_all(&example).map_err(|e| io("create", &example, e))?;
    let readme = example.join("README.txt");
    if !readme.exists() {
        fs::write(
            &readme,
            "footrest's starter plan \"example\" backs up this folder.\n\
             Put a few files here and call Backup, or edit the config to back up what matters.\n",
        )
        .map_err(|e| io("write", &readme, e))?;
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    }
    let mut config = Config::starter(data_dir).map_err(StartError::Config)?;
    let auth_note = match auth {
        Some(auth) => {
            config.auth = Some(auth);
            "auth enabled"
        }
        None => "auth disabled",
    };
    config.save(path).map_err(StartError::Config)?;
    info!(
        "no config at {}: wrote a starter config there (repo {}, plan \"example\" backing up {}, {auth_note})",
        path.display(),
        data_dir.join("repo").display(),
        example.display()
    );
    Ok(())
}
