//! Command line and environment, in two stages: [`parse_args`] reads the raw flags, and
//! [`Settings::resolve`] turns them into what footrest runs with (flag, else
//! `BACKREST_*` variable, else the default). Pure: the environment comes in as a lookup
//! function, so every rule here is unit-tested.

use std::path::PathBuf;
use std::time::Duration;

use crate::api::server::Limits;

pub const USAGE: &str = "\
footrest: runs restic backups on schedules and speaks Backrest's HTTP API

Usage:
  footrest [serve] [OPTIONS]       run the server; with no config file, writes a
                                   starter config first (auth off)
  footrest check-config [OPTIONS]  validate the config: exit 0 if good, 2 if not
  footrest init-config [OPTIONS] [--user NAME]
                                   write a starter config with auth on and one user
                                   (default admin); prints the new password once;
                                   never overwrites a config
  footrest hash-password           read a password on stdin, print a passwordBcrypt
  footrest help | --help | -h      this text
  footrest --version | -V

Options (a flag beats its variable, which beats the default):
  --config PATH        config file [BACKREST_CONFIG;
                       default $XDG_CONFIG_HOME/footrest/config.json]
  --data-dir PATH      operation log, logs, keys, restores [BACKREST_DATA;
                       default $XDG_DATA_HOME/footrest]
  --bind ADDR          HOST:PORT, or a bare port for all interfaces
                       [BACKREST_PORT; default 127.0.0.1:9898]
  --restic PATH        restic binary [BACKREST_RESTIC_COMMAND;
                       default restic on PATH]
  --log-level LEVEL    error, warn, info or debug (adds a line per request)
                       [FOOTREST_LOG; default info]; logs go to stderr
  --threads N          request threads (default 16)
  --max-streams N      open GetLogs/GetOperationEvents streams (default 64)
  --read-timeout SECS  cut off a client that stops sending mid-request (default 30)
  --max-body BYTES     largest request body (default 1048576)
  --user NAME          init-config's user (default admin)

XDG_* unset: ~/.config/footrest/config.json and ~/.local/share/footrest. The Debian
package's service uses /etc/footrest/config.json and /var/lib/footrest.
Signals: SIGTERM or SIGINT stops (restic gets 30 s), SIGHUP reloads the config.
Under systemd (Type=notify): READY, STOPPING and WATCHDOG go to NOTIFY_SOCKET.
";

/// What the user asked footrest to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    CheckConfig,
    InitConfig,
    HashPassword,
    Help,
    Version,
}

/// Flags as given, before defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub command: Option<Command>,
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub restic: Option<PathBuf>,
    pub log_level: Option<String>,
    pub threads: Option<usize>,
    pub max_streams: Option<usize>,
    pub read_timeout_secs: Option<u64>,
    pub max_body: Option<usize>,
    pub user: Option<String>,
}

/// Reads the command line (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value; see footrest --help"))
        };
        match flag.as_str() {
            "-h" | "--help" | "help" => out.command = Some(Command::Help),
            "-V" | "--version" => out.command = Some(Command::Version),
            "--config" => out.config = Some(value("--config")?.into()),
            "--data-dir" => out.data_dir = Some(value("--data-dir")?.into()),
            "--bind" => out.bind = Some(value("--bind")?),
            "--restic" => out.restic = Some(value("--restic")?.into()),
            "--log-level" => out.log_level = Some(value("--log-level")?),
            "--threads" => out.threads = Some(number("--threads", &value("--threads")?)?),
            "--max-streams" => {
                out.max_streams = Some(number("--max-streams", &value("--max-streams")?)?)
            }
            "--read-timeout" => {
                out.read_timeout_secs = Some(number("--read-timeout", &value("--read-timeout")?)?)
            }
            "--max-body" => out.max_body = Some(number("--max-body", &value("--max-body")?)?),
            "--user" => out.user = Some(value("--user")?),
            "serve" | "check-config" | "init-config" | "hash-password" if out.command.is_none() => {
                out.command = Some(match flag.as_str() {
                    "serve" => Command::Serve,
                    "check-config" => Command::CheckConfig,
                    "init-config" => Command::InitConfig,
                    _ => Command::HashPassword,
                })
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see footrest --help for the commands and options"
                ));
            }
        }
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} takes a whole number, not {text:?}"))
}

/// What footrest runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub command: Command,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub bind: String,
    pub restic: Option<PathBuf>,
    pub log_level: Option<String>,
    pub limits: Limits,
    /// The user `init-config` creates.
    pub user: String,
    /// Streams open at once; each has a thread of its own while it is open.
    pub max_streams: usize,
}

/// Streams open at once by default: a dashboard tab holds one, a log view another.
pub const DEFAULT_MAX_STREAMS: usize = 64;

impl Settings {
    /// Flag, else environment variable, else default.
    pub fn resolve(args: Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let home = var("HOME");
        let xdg = |name: &str, fallback: &str| -> Result<PathBuf, String> {
            match (var(name), &home) {
                (Some(dir), _) => Ok(PathBuf::from(dir)),
                (None, Some(home)) => Ok(PathBuf::from(home).join(fallback)),
                (None, None) => Err(format!(
                    "neither {name} nor HOME is set; give the path with a flag (see footrest --help)"
                )),
            }
        };
        let config_path = match args
            .config
            .or_else(|| var("BACKREST_CONFIG").map(PathBuf::from))
        {
            Some(p) => p,
            None => xdg("XDG_CONFIG_HOME", ".config")?.join("footrest/config.json"),
        };
        let data_dir = match args
            .data_dir
            .or_else(|| var("BACKREST_DATA").map(PathBuf::from))
        {
            Some(p) => p,
            None => xdg("XDG_DATA_HOME", ".local/share")?.join("footrest"),
        };
        let bind = bind_address(
            &args
                .bind
                .or_else(|| var("BACKREST_PORT"))
                .unwrap_or_else(|| "127.0.0.1:9898".into()),
        )?;
        let mut limits = Limits::default();
        if let Some(n) = args.threads {
            if n == 0 {
                return Err("--threads must be at least 1".into());
            }
            limits.threads = n;
        }
        if let Some(secs) = args.read_timeout_secs {
            if secs == 0 {
                return Err("--read-timeout must be at least 1 second".into());
            }
            limits.read_timeout = Duration::from_secs(secs);
        }
        if let Some(bytes) = args.max_body {
            limits.max_body = bytes;
        }
        let command = args.command.unwrap_or(Command::Serve);
        if args.user.is_some() && command != Command::InitConfig {
            return Err("--user is only for init-config; see footrest --help".into());
        }
        Ok(Settings {
            command,
            config_path,
            data_dir,
            bind,
            restic: args
                .restic
                .or_else(|| var("BACKREST_RESTIC_COMMAND").map(PathBuf::from)),
            log_level: args.log_level.or_else(|| var("FOOTREST_LOG")),
            limits,
            user: args.user.unwrap_or_else(|| "admin".into()),
            max_streams: args.max_streams.unwrap_or(DEFAULT_MAX_STREAMS),
        })
    }
}

/// A bind address: `host:port`, `[v6]:port`, or a bare port (`9898` or `:9898`), which
/// listens on all interfaces as Backrest does.
pub fn bind_address(text: &str) -> Result<String, String> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        return match port_only.parse::<u16>() {
            Ok(port) => Ok(format!("0.0.0.0:{port}")),
            Err(_) => Err(format!(
                "bind address {text:?}: the port must be 0 to 65535"
            )),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(text.into()),
        _ => Err(format!(
            "bind address {text:?} is not HOST:PORT or a port number (e.g. 127.0.0.1:9898 or 9898)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    fn resolve(list: &[&str], env: &[(&str, &str)]) -> Result<Settings, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(args(list)?, &|k| env.get(k).cloned())
    }

    #[test]
    fn commands_and_flags() {
        let a = args(&["check-config", "--config", "/c.json", "--bind=1.2.3.4:5"]).unwrap();
        assert_eq!(a.command, Some(Command::CheckConfig));
        assert_eq!(a.config, Some(PathBuf::from("/c.json")));
        assert_eq!(a.bind.as_deref(), Some("1.2.3.4:5"));
        assert_eq!(args(&["--help"]).unwrap().command, Some(Command::Help));
        assert!(
            args(&["--config"])
                .unwrap_err()
                .contains("--config needs a value")
        );
        assert!(
            args(&["--frobnicate"])
                .unwrap_err()
                .contains("unknown argument")
        );
        assert!(
            args(&["--threads", "x"])
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn flags_beat_variables_beat_defaults() {
        let s = resolve(&[], &[("HOME", "/home/u")]).unwrap();
        assert_eq!(s.command, Command::Serve);
        assert_eq!(
            s.config_path,
            PathBuf::from("/home/u/.config/footrest/config.json")
        );
        assert_eq!(s.data_dir, PathBuf::from("/home/u/.local/share/footrest"));
        assert_eq!(s.bind, "127.0.0.1:9898");

        let env = [
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/xc"),
            ("XDG_DATA_HOME", "/xd"),
        ];
        let s = resolve(&[], &env).unwrap();
        assert_eq!(s.config_path, PathBuf::from("/xc/footrest/config.json"));
        assert_eq!(s.data_dir, PathBuf::from("/xd/footrest"));

        let env = [
            ("HOME", "/home/u"),
            ("BACKREST_CONFIG", "/etc/b.json"),
            ("BACKREST_DATA", "/var/b"),
            ("BACKREST_PORT", "9900"),
            ("BACKREST_RESTIC_COMMAND", "/opt/restic"),
        ];
        let s = resolve(&[], &env).unwrap();
        assert_eq!(s.config_path, PathBuf::from("/etc/b.json"));
        assert_eq!(s.data_dir, PathBuf::from("/var/b"));
        assert_eq!(s.bind, "0.0.0.0:9900");
        assert_eq!(s.restic, Some(PathBuf::from("/opt/restic")));

        let s = resolve(&["--config", "/f.json", "--bind", "127.0.0.1:0"], &env).unwrap();
        assert_eq!(s.config_path, PathBuf::from("/f.json"));
        assert_eq!(s.bind, "127.0.0.1:0");
    }

    #[test]
    fn no_home_and_no_paths_is_a_clear_error() {
        let e = resolve(&[], &[]).unwrap_err();
        assert!(e.contains("HOME"), "{e}");
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(bind_address("9898").unwrap(), "0.0.0.0:9898");
        assert_eq!(bind_address(":9898").unwrap(), "0.0.0.0:9898");
        assert_eq!(bind_address("[::1]:9898").unwrap(), "[::1]:9898");
        assert_eq!(bind_address("localhost:80").unwrap(), "localhost:80");
        assert!(bind_address("99999").is_err());
        assert!(bind_address("host").is_err());
        assert!(bind_address("host:port").is_err());
    }

    #[test]
    fn init_config_and_its_user() {
        let s = resolve(&["init-config", "--user", "pi"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.command, Command::InitConfig);
        assert_eq!(s.user, "pi");
        let s = resolve(&["init-config"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.user, "admin");
        let e = resolve(&["serve", "--user", "pi"], &[("HOME", "/h")]).unwrap_err();
        assert!(e.contains("only for init-config"), "{e}");
    }

    /// Every flag and subcommand `parse_args` matches on (read from this file's source,
    /// so a new one cannot be left out) is in the help text, which stays short.
    #[test]
    fn help_lists_every_flag_and_command_the_parser_accepts() {
        let source = include_str!("settings.rs");
        let start = source.find("pub fn parse_args").unwrap();
        let end = start + source[start..].find("\nfn number").unwrap();
        let body = &source[start..end];
        let mut words = Vec::new();
        for piece in body.split('"').skip(1).step_by(2) {
            let is_word = !piece.trim_start_matches('-').is_empty()
                && piece
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_uppercase());
            if is_word {
                words.push(piece);
            }
        }
        for expected in ["--config", "--user", "init-config", "hash-password", "-V"] {
            assert!(
                words.contains(&expected),
                "{expected} not found in parse_args"
            );
        }
        for word in &words {
            let listed = USAGE
                .split(|c: char| c.is_whitespace() || c == '|' || c == '[' || c == ']')
                .any(|w| w == *word);
            assert!(
                listed,
                "{word} is accepted but missing from footrest --help"
            );
            assert!(
                parse_args([word.to_string(), "1".into()]).is_ok()
                    || parse_args([word.to_string()]).is_ok(),
                "{word} is not accepted"
            );
        }
        for var in [
            "BACKREST_CONFIG",
            "BACKREST_DATA",
            "BACKREST_PORT",
            "BACKREST_RESTIC_COMMAND",
            "FOOTREST_LOG",
            "/etc/footrest/config.json",
            "/var/lib/footrest",
        ] {
            assert!(USAGE.contains(var), "{var} is not in the help");
        }
        assert!(USAGE.lines().count() <= 45, "the help text grew long");
        for line in USAGE.lines() {
            assert!(
                line.chars().count() <= 84,
                "too wide for a terminal: {line}"
            );
        }
    }

    #[test]
    fn limits_from_flags() {
        let s = resolve(
            &["--threads", "4", "--read-timeout", "2", "--max-body", "10"],
            &[("HOME", "/h")],
        )
        .unwrap();
        assert_eq!(s.limits.threads, 4);
        assert_eq!(s.limits.read_timeout, Duration::from_secs(2));
        assert_eq!(s.limits.max_body, 10);
        assert_eq!(s.max_streams, DEFAULT_MAX_STREAMS);
        assert!(resolve(&["--threads", "0"], &[("HOME", "/h")]).is_err());
        let s = resolve(&["--max-streams", "3"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.max_streams, 3);
    }
}
