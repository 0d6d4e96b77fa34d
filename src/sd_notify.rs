//! systemd's service notifications (the `sd_notify` protocol, spoken by hand): `READY=1`
//! once footrest serves, `STOPPING=1` when shutdown begins, and `WATCHDOG=1` keep-alives
//! every half `WATCHDOG_USEC` while systemd asks for them. Each is one datagram to the
//! Unix socket named by `$NOTIFY_SOCKET`: a path, or `@name` in the abstract namespace.
//!
//! It owns reading `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (and taking them
//! out of the environment, so restic and hook commands do not inherit them) and sending.
//! It must not decide when footrest is ready or stopping (`main` says so), and a failed
//! notification is logged, never fatal: outside systemd footrest runs the same, silently.
//! The watchdog proves that the process is alive and scheduled; it does not judge a long
//! backup, which may rightly run for hours.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The variables systemd sets for a `Type=notify` service with `WatchdogSec=`.
const VARIABLES: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Where notifications go, and how often the watchdog wants a keep-alive. Cheap to clone.
#[derive(Clone, Default)]
pub struct Systemd {
    socket: Option<Arc<Socket>>,
    watchdog: Option<Duration>,
}

struct Socket {
    name: String,
    addr: SocketAddr,
    sock: UnixDatagram,
    /// Set after the first failed send: later failures go to the debug log only.
    failed: AtomicBool,
}

impl Systemd {
    /// Reads the variables from the environment and removes them from it. A malformed
    /// `NOTIFY_SOCKET` is logged and notifications are off.
    ///
    /// # Safety
    ///
    /// Changes the process environment: call it while the process has one thread, before
    /// anything else reads the environment concurrently.
    pub unsafe fn take_from_env() -> Systemd {
        let values: Vec<Option<String>> = VARIABLES
            .iter()
            .map(|name| std::env::var(name).ok())
            .collect();
        for name in VARIABLES {
            // SAFETY: the caller guarantees that no other thread runs yet.
            unsafe { std::env::remove_var(name) };
        }
        let get = |name: &str| {
            VARIABLES
                .iter()
                .position(|v| *v == name)
                .and_then(|i| values[i].clone())
        };
        match Systemd::from_vars(&get, std::process::id()) {
            Ok(systemd) => systemd,
            Err(e) => {
                warn!("{e}; systemd will not hear that footrest is ready");
                Systemd::default()
            }
        }
    }

    /// Reads the variables through `get`; `pid` is this process's id (`WATCHDOG_PID`
    /// names the process the watchdog is meant for).
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>, pid: u32) -> Result<Systemd, String> {
        let Some(name) = get("NOTIFY_SOCKET").filter(|n| !n.is_empty()) else {
            return Ok(Systemd::default());
        };
        let addr = socket_addr(&name)?;
        let sock = UnixDatagram::unbound()
            .map_err(|e| format!("cannot create a socket for NOTIFY_SOCKET {name:?}: {e}"))?;
        Ok(Systemd {
            socket: Some(Arc::new(Socket {
                name,
                addr,
                sock,
                failed: AtomicBool::new(false),
            })),
            watchdog: watchdog_interval(get, pid),
        })
    }

    /// True when systemd listens for notifications.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often `WATCHDOG=1` is sent, if the watchdog is on.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// footrest serves: `READY=1`, with a status line `systemctl status` shows.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: ending the running task");
    }

    /// Sends `WATCHDOG=1` every interval from a thread of its own, for as long as the
    /// process lives. Does nothing when the watchdog is off.
    pub fn spawn_watchdog(&self) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                loop {
                    me.send("WATCHDOG=1");
                    std::thread::sleep(interval);
                }
            });
        if let Err(e) = spawned {
            warn!("cannot start the systemd watchdog thread: {e}; systemd may restart footrest");
        }
    }

    fn send(&self, message: &str) {
        let Some(socket) = &self.socket else {
            return;
        };
        match socket.sock.send_to_addr(message.as_bytes(), &socket.addr) {
            Ok(_) => {}
            Err(e) if socket.failed.swap(true, Ordering::Relaxed) => {
                debug!("systemd notification to {:?} failed: {e}", socket.name);
            }
            Err(e) => warn!(
                "cannot notify systemd through NOTIFY_SOCKET {:?}: {e} (later failures are logged at debug)",
                socket.name
            ),
        }
    }
}

/// `/run/systemd/notify` or `@name` (the abstract namespace).
fn socket_addr(name: &str) -> Result<SocketAddr, String> {
    let made = match name.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None if name.starts_with('/') => SocketAddr::from_pathname(name),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is neither an absolute path nor an @abstract name",
        )),
    };
    made.map_err(|e| format!("NOTIFY_SOCKET {name:?} is not a usable socket address: {e}"))
}

/// Half of `WATCHDOG_USEC`, when it is a positive number and `WATCHDOG_PID` (if set)
/// names this process.
fn watchdog_interval(get: &dyn Fn(&str) -> Option<String>, pid: u32) -> Option<Duration> {
    let usec: u64 = get("WATCHDOG_USEC")?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(for_pid) = get("WATCHDOG_PID").filter(|p| !p.is_empty()) {
        if for_pid.trim().parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(list: &[(&str, &str)], pid: u32) -> Result<Systemd, String> {
        let map: HashMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Systemd::from_vars(&|k| map.get(k).cloned(), pid)
    }

    #[test]
    fn off_without_a_socket() {
        let s = vars(&[("WATCHDOG_USEC", "1000000")], 7).unwrap();
        assert!(!s.enabled());
        assert_eq!(s.watchdog_interval(), None);
        s.ready("nobody listens");
        let s = vars(&[("NOTIFY_SOCKET", "")], 7).unwrap();
        assert!(!s.enabled());
    }

    #[test]
    fn socket_names() {
        assert!(vars(&[("NOTIFY_SOCKET", "/run/systemd/notify")], 7).is_ok());
        assert!(vars(&[("NOTIFY_SOCKET", "@/org/freedesktop/systemd1/notify")], 7).is_ok());
        let e = vars(&[("NOTIFY_SOCKET", "relative/path")], 7)
            .err()
            .unwrap();
        assert!(e.contains("NOTIFY_SOCKET \"relative/path\""), "{e}");
        let long = format!("/{}", "x".repeat(200));
        assert!(vars(&[("NOTIFY_SOCKET", &long)], 7).is_err());
    }

    #[test]
    fn watchdog_is_half_the_timeout_and_only_for_this_process() {
        let sock = ("NOTIFY_SOCKET", "/run/systemd/notify");
        let s = vars(&[sock, ("WATCHDOG_USEC", "60000000")], 7).unwrap();
        assert_eq!(s.watchdog_interval(), Some(Duration::from_secs(30)));
        let s = vars(
            &[sock, ("WATCHDOG_USEC", "60000000"), ("WATCHDOG_PID", "7")],
            7,
        )
        .unwrap();
        assert_eq!(s.watchdog_interval(), Some(Duration::from_secs(30)));
        let s = vars(
            &[sock, ("WATCHDOG_USEC", "60000000"), ("WATCHDOG_PID", "8")],
            7,
        )
        .unwrap();
        assert_eq!(s.watchdog_interval(), None);
        for bad in ["0", "", "soon", "-5"] {
            let s = vars(&[sock, ("WATCHDOG_USEC", bad)], 7).unwrap();
            assert_eq!(s.watchdog_interval(), None, "{bad:?}");
        }
    }

    #[test]
    fn messages_reach_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let s = vars(&[("NOTIFY_SOCKET", path.to_str().unwrap())], 7).unwrap();
        s.ready("listening on http://127.0.0.1:9898");
        s.stopping();
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"READY=1\nSTATUS=listening on http://127.0.0.1:9898"
        );
        let n = listener.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"STOPPING=1\n"));
        // A socket that went away is logged, not fatal.
        drop(listener);
        s.stopping();
        s.stopping();
    }
}
