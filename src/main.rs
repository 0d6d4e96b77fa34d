//! The `footrest` binary: flags and environment, start-up, and signal wiring. The logic
//! lives in the library.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use footrest::api::rpc::streams::StreamOptions;
use footrest::api::server::Server;
use footrest::api::{Api, auth};
use footrest::app::{self, App, StartError};
use footrest::logging::{self, Level};
use footrest::sd_notify::Systemd;
use footrest::settings::{self, Command, Settings};
use footrest::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long in-flight requests may take to finish once shutdown has begun: longer than
/// the 30 s restic is given to stop, so a blocked Backup call gets its answer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(40);

fn main() -> ExitCode {
    let settings = match settings::parse_args(std::env::args().skip(1))
        .and_then(|args| Settings::resolve(args, &|k| std::env::var(k).ok()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("footrest: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(level) = &settings.log_level {
        match Level::parse(level) {
            Some(l) => logging::set_level(l),
            None => {
                eprintln!("footrest: log level {level:?} is not error, warn, info or debug");
                return ExitCode::from(2);
            }
        }
    }
    match settings.command {
        Command::Help => {
            print!("{}", settings::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("footrest {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::HashPassword => hash_password(),
        Command::CheckConfig => check_config(&settings),
        Command::InitConfig => init_config(&settings),
        Command::Serve => serve(&settings),
    }
}

fn hash_password() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("footrest: cannot read the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!(
            "footrest: no password on stdin (e.g. printf '%s' 'my password' | footrest hash-password)"
        );
        return ExitCode::from(2);
    }
    match auth::hash_password(password) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("footrest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(settings: &Settings) -> ExitCode {
    match app::load_config(&settings.config_path) {
        Ok((_, warnings)) => {
            for w in warnings {
                eprintln!("footrest: warning: {}: {w}", settings.config_path.display());
            }
            println!("{}: ok", settings.config_path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("footrest: {e}");
            ExitCode::from(if e.is_content_error() { 2 } else { 1 })
        }
    }
}

/// Writes a starter config with one user and prints that user's new password: the one
/// place footrest shows a password, once, to whoever installs it.
fn init_config(settings: &Settings) -> ExitCode {
    match app::init_config(&settings.config_path, &settings.data_dir, &settings.user) {
        Ok(password) => {
            println!(
                "Wrote a starter config to {} (auth on).",
                settings.config_path.display()
            );
            println!("Log in as user {} with password: {password}", settings.user);
            println!(
                "This password is shown only now; to change it, put a new hash from \
                 footrest hash-password in the config."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("footrest: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit (at most 8192): every open
/// connection, idle ones included, holds a descriptor, and the default soft limit of
/// 1024 is the same as the connection limit.
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            let want = lim.rlim_max.min(8192);
            if lim.rlim_cur < want {
                lim.rlim_cur = want;
                let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

fn serve(settings: &Settings) -> ExitCode {
    // SAFETY: no thread has been started yet; App::start starts the first ones.
    let systemd = unsafe { Systemd::take_from_env() };
    raise_open_file_limit();
    let app = match App::start(settings) {
        Ok(app) => Arc::new(app),
        Err(StartError::Config(e)) => {
            eprintln!("footrest: {e}");
            return ExitCode::from(if e.is_content_error() { 2 } else { 1 });
        }
        Err(e) => {
            eprintln!("footrest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::bind(&settings.bind, settings.limits) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen on {}: {e}", settings.bind);
            app.orchestrator.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            app.orchestrator.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let handle = server.shutdown_handle();
    let signal_app = Arc::clone(&app);
    let signal_systemd = systemd.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                match signal {
                    SIGHUP => {
                        info!("SIGHUP: reloading the config");
                        signal_app.reload_config();
                    }
                    _ if stopping => {
                        warn!("second stop signal: exiting at once");
                        std::process::exit(1);
                    }
                    _ => {
                        stopping = true;
                        info!("stop signal received: finishing up (a second signal exits at once)");
                        signal_systemd.stopping();
                        handle.shutdown();
                        let app = Arc::clone(&signal_app);
                        // Stopping the worker can take the restic grace period; this
                        // thread stays free to see a second signal.
                        let _ = std::thread::Builder::new()
                            .name("shutdown".into())
                            .spawn(move || app.orchestrator.shutdown());
                    }
                }
            }
        });
    if let Err(e) = spawned {
        error!("cannot start the signal thread: {e}");
        app.orchestrator.shutdown();
        return ExitCode::FAILURE;
    }
    app::spawn_config_watcher(&app);
    let api = Api::new(Arc::clone(&app))
        .with_stream_options(StreamOptions::with_max_streams(settings.max_streams));
    // The socket listens already: a client connecting from now on is served.
    systemd.ready(&format!("listening on http://{}", server.local_addr()));
    systemd.spawn_watchdog();
    server.run(Arc::new(api), SHUTDOWN_GRACE);
    app.orchestrator.shutdown();
    info!("stopped");
    ExitCode::SUCCESS
}
