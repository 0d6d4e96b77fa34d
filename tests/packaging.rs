//! What a Debian or Raspberry Pi OS user installs: the `.deb` that `cargo deb` builds
//! (inspected with `dpkg-deb`), the systemd unit and its unprivileged drop-in (checked
//! by `systemd-analyze verify` and `security`), and `footrest init-config`, which the
//! package's postinst runs to write the first config (run here for real, then the
//! password it printed logs in to the real server). Last, the package is installed
//! with dpkg in a fresh minimal Debian made by debootstrap (about a minute and 300 MB
//! in a temp dir), run there with the unit's environment, booted with systemd
//! (systemd-nspawn) to drive footrest.service as root and as the unprivileged
//! variant, and purged.
//!
//! The .deb is built from the binary this test run already built (`--no-build`, the
//! test profile's binary, stripped by cargo-deb), so building it costs seconds, not a
//! release build. scripts/ensure-deps installs cargo-deb, systemd-analyze,
//! debootstrap and systemd-nspawn.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::json;

const UNIT: &str = include_str!("../packaging/footrest.service");
const DROP_IN: &str = include_str!("../packaging/unprivileged.conf");

/// Run at boot inside the installed system: prints `STEP KEY=value` lines of what
/// systemd and footrest did, for the test to read.
const SELFTEST: &str = r#"exec > /root/selftest.out.tmp 2>&1
PW=$(cat /root/pw)
call() { curl -s -o /dev/null -w '%{http_code}' -X POST "localhost:9898/v1.Backrest/$1" \
  -H 'Content-Type: application/json' -d "$2" -u "admin:$PW"; }
for i in $(seq 60); do systemctl is-active -q footrest && break; sleep 1; done
systemctl show footrest -p ActiveState -p SubState -p StatusText -p WatchdogUSec -p NRestarts | sed 's/^/boot /'
echo "login $(call GetOperations '{}')"
systemctl reload footrest; echo "reload rc=$?"
for i in $(seq 30); do journalctl -u footrest | grep -q 'SIGHUP: reloading' && break; sleep 1; done
echo "reload journal=$(journalctl -u footrest | grep -c 'SIGHUP: reloading')"
systemctl stop footrest
systemctl show footrest -p Result | sed 's/^/stop /'
mkdir -p /etc/systemd/system/footrest.service.d
ln -s /usr/share/footrest/unprivileged.conf /etc/systemd/system/footrest.service.d/
printf '[Service]\nWatchdogSec=2s\n' > /etc/systemd/system/footrest.service.d/zz-watchdog.conf
systemctl daemon-reload
systemctl start footrest
t0=$(systemctl show -p WatchdogTimestampMonotonic --value footrest)
for i in $(seq 30); do
  t=$(systemctl show -p WatchdogTimestampMonotonic --value footrest)
  [ "$t" != "$t0" ] && [ "$t" != 0 ] && echo "unprivileged watchdog pinged" && break
  sleep 1
done
echo "unprivileged user=$(ps -o user= -p "$(systemctl show -p MainPID --value footrest)")"
echo "unprivileged backup $(call Backup '{"value": "example"}')"
systemctl stop footrest
systemctl show footrest -p Result -p NRestarts | sed 's/^/unprivileged stop /'
journalctl -u footrest --no-pager | tail -40
mv /root/selftest.out.tmp /root/selftest.out
"#;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `init-config`'s run: its exit status and what it printed.
fn init_config(sandbox: &Sandbox, user: &str) -> Output {
    Command::new(BIN)
        .args(["init-config", "--user", user, "--config"])
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn init_config_writes_a_private_config_whose_printed_password_logs_in() {
    let sandbox = Sandbox::new();
    let out = init_config(&sandbox, "pi");
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Log in as user pi with password: "))
        .unwrap_or_else(|| panic!("no password line in:\n{stdout}"))
        .to_string();
    assert!(
        password.len() >= 20,
        "a short password: {} chars",
        password.len()
    );

    // Private, valid, auth on, only the hash in the file.
    let config_path = sandbox.config_path();
    let mode = std::fs::metadata(&config_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let data_mode = std::fs::metadata(sandbox.data_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(data_mode & 0o777, 0o700);
    let file = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        !file.contains(&password),
        "the password itself is in the file"
    );
    let config: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(config["auth"]["users"][0]["name"], "pi");
    assert_ne!(config["auth"]["disabled"], json!(true));
    let check = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // The real server takes the printed password, and only it.
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 401);
    let fr = fr.with_credentials("pi", "not the password");
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 401);
    let fr = fr.with_credentials("pi", &password);
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
    // The starter plan backs up for real.
    let r = fr.rpc("Backup", &json!({"value": "example"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !fr.stderr().contains(&password),
        "the password reached the log"
    );
    drop(fr);

    // A second run refuses and leaves the file as it is (footrest wrote the repo's
    // guid into it meanwhile).
    let before = std::fs::read(&config_path).unwrap();
    let again = init_config(&sandbox, "someone");
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert!(
        text(&again).is_empty(),
        "printed something: {}",
        text(&again)
    );
    assert_eq!(std::fs::read(&config_path).unwrap(), before);
}

/// The unit with ExecStart pointing at the binary under test (verify checks it exists).
fn unit_dir(drop_in: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let unit = UNIT.replace("ExecStart=/usr/bin/footrest", &format!("ExecStart={BIN}"));
    std::fs::write(dir.path().join("footrest.service"), unit).unwrap();
    if drop_in {
        let d = dir.path().join("footrest.service.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("unprivileged.conf"), DROP_IN).unwrap();
    }
    dir
}

fn systemd_analyze(dir: &Path, args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(dir.join("footrest.service"))
        .stdin(Stdio::null())
        .output()
        .expect("systemd-analyze (scripts/ensure-deps installs systemd)")
}

#[test]
fn the_unit_and_its_unprivileged_variant_verify_and_are_hardened() {
    for drop_in in [false, true] {
        let dir = unit_dir(drop_in);
        // No unknown key, no bad value, nothing missing: systemd says nothing at all.
        let out = systemd_analyze(dir.path(), &["verify"]);
        assert!(
            out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
            "drop-in {drop_in}: {}{}",
            text(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        // systemd's own exposure score (0 safest, 10 none): at most 3.0 as root, 2.0
        // as the footrest user.
        let threshold = if drop_in {
            "--threshold=20"
        } else {
            "--threshold=30"
        };
        let out = systemd_analyze(dir.path(), &["security", "--offline=true", threshold]);
        assert!(
            out.status.success(),
            "drop-in {drop_in}: exposure above {threshold}:\n{}",
            text(&out)
        );
    }

    let keys: Vec<(&str, &str)> = UNIT
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let has = |k: &str, v: &str| keys.contains(&(k, v));
    for (k, v) in [
        ("Type", "notify"),
        ("ExecStart", "/usr/bin/footrest serve"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("KillMode", "mixed"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "footrest"),
        ("ConfigurationDirectory", "footrest"),
        ("ReadWritePaths", "/etc/footrest"),
        ("Environment", "BACKREST_CONFIG=/etc/footrest/config.json"),
        ("Environment", "BACKREST_DATA=/var/lib/footrest"),
        ("RestartPreventExitStatus", "2"),
    ] {
        assert!(has(k, v), "the unit lacks {k}={v}");
    }
    assert!(!keys.iter().any(|(k, _)| *k == "User"), "root by default");
    let secs = |key: &str| -> u64 {
        let v = keys.iter().find(|(k, _)| *k == key).unwrap().1;
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not in seconds"))
    };
    // footrest gives restic 30 s, then unlocks; systemd must wait longer than that.
    assert!(secs("TimeoutStopSec") > 40, "TimeoutStopSec too short");
    assert!(secs("WatchdogSec") >= 10);
    // The documented ways to widen the sandbox are in the unit itself.
    assert!(
        UNIT.contains("#       ReadWritePaths="),
        "restore targets undocumented"
    );
    assert!(UNIT.contains("/usr/share/footrest/unprivileged.conf"));
    assert!(DROP_IN.contains("User=footrest"));
}

/// Builds the .deb into a temp dir with cargo-deb, from the binary already built.
fn build_deb(out_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    // The binary under test (the dev profile's, unless the tests were built with
    // another): cargo-deb packs it as it is, stripped, instead of making a release build.
    let profile_dir = Path::new(BIN).parent().unwrap().file_name().unwrap();
    let profile = match profile_dir.to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    run(Command::new(cargo)
        .args([
            "deb",
            "--no-build",
            "--profile",
            profile,
            "--fast",
            "--quiet",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--output")
        .arg(out_dir));
    let debs: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs.into_iter().next().unwrap()
}

#[test]
fn the_debian_package_holds_the_binary_unit_scripts_and_no_config() {
    let out_dir = tempfile::tempdir().unwrap();
    let deb = build_deb(out_dir.path());
    let dpkg = |args: &[&str]| text(&run(Command::new("dpkg-deb").args(args).arg(&deb)));

    // Control fields.
    let field = |name: &str| -> String {
        dpkg(&["--field"])
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} field"))
    };
    assert_eq!(field("Package"), "footrest");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    let depends: Vec<String> = field("Depends")
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap().to_string())
        .collect();
    for dep in ["restic", "adduser", "procps", "ca-certificates", "libc6"] {
        assert!(
            depends.iter().any(|d| d == dep),
            "Depends lacks {dep}: {depends:?}"
        );
    }
    assert!(dpkg(&["--info"]).contains("footrest runs restic backups"));

    // Files, their modes and owners (uid/gid 0: root).
    let contents = dpkg(&["--contents"]);
    let entry = |path: &str| -> (String, String) {
        let line = contents
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{contents}"));
        let mut f = line.split_whitespace();
        (f.next().unwrap().to_string(), f.next().unwrap().to_string())
    };
    let exe = ("-rwxr-xr-x".to_string(), "0/0".to_string());
    let doc = ("-rw-r--r--".to_string(), "0/0".to_string());
    assert_eq!(entry("usr/bin/footrest"), exe);
    assert_eq!(entry("usr/lib/systemd/system/footrest.service"), doc);
    assert_eq!(entry("usr/share/footrest/unprivileged.conf"), doc);
    assert_eq!(entry("usr/share/doc/footrest/README.md"), doc);
    assert_eq!(entry("usr/share/doc/footrest/copyright"), doc);
    // Nothing under /etc: the config is made by postinst, never shipped.
    assert!(
        !contents.lines().any(|l| l.contains(" ./etc")),
        "the package ships files in /etc:\n{contents}"
    );

    // The unit shipped is the one in packaging/, and the binary runs.
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path()));
    let shipped =
        std::fs::read_to_string(root.path().join("usr/lib/systemd/system/footrest.service"))
            .unwrap();
    assert_eq!(shipped, UNIT);
    let version = run(Command::new(root.path().join("usr/bin/footrest")).arg("--version"));
    assert_eq!(
        text(&version).trim(),
        format!("footrest {}", env!("CARGO_PKG_VERSION"))
    );

    // Maintainer scripts: present, executable, valid sh; no conffiles.
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    assert!(
        !control.path().join("conffiles").exists(),
        "conffiles: {}",
        std::fs::read_to_string(control.path().join("conffiles")).unwrap_or_default()
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|_| panic!("no {script}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{script}");
        run(Command::new("sh").arg("-n").arg(&path));
    }
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    let init = postinst
        .find("footrest init-config")
        .expect("postinst runs init-config");
    assert!(
        postinst.contains("adduser --system"),
        "postinst makes no system user"
    );
    let enable = postinst
        .find("deb-systemd-helper enable footrest.service")
        .expect("postinst enables the unit");
    let start = postinst
        .find("deb-systemd-invoke")
        .expect("postinst starts the unit");
    assert!(
        init < enable && init < start,
        "the service starts before its config exists"
    );
    assert!(!postinst.contains("#DEBHELPER#"));
    let postrm = std::fs::read_to_string(control.path().join("postrm")).unwrap();
    assert!(postrm.contains("\"purge\"") && postrm.contains("/var/lib/footrest"));
}

/// `KEY=value` of every `Environment=` line of the unit: what the service runs with.
fn unit_environment() -> Vec<(String, String)> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs a shell script in a private mount namespace, with /proc mounted in `root`
/// and chrooted there (`CHROOT` in the script). The namespace ends with the process,
/// so nothing stays mounted.
fn in_chroot(root: &Path, script: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!(
            "mount -t proc proc \"$ROOT/proc\"\nCHROOT=\"chroot $ROOT\"\n{script}"
        ))
        .env("ROOT", root);
    cmd
}

/// The package installed for real: a minimal Debian of the host's release made by
/// debootstrap, `dpkg -i` in it, the printed password logs in to the installed
/// footrest running with the unit's environment, a backup; then the system boots
/// under systemd and runs footrest.service (notify, watchdog, reload, stop, the
/// unprivileged drop-in); then `dpkg --purge`.
#[test]
fn the_package_installs_boots_under_systemd_and_its_password_logs_in() {
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(work.path());
    let root = work.path().join("root");
    let release = std::fs::read_to_string("/etc/os-release")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(str::to_string))
        .expect("VERSION_CODENAME in /etc/os-release");
    run(Command::new("debootstrap").args([
        "--variant=minbase",
        "--include=adduser,restic,procps,ca-certificates,systemd,systemd-sysv,dbus,curl",
        &release,
        root.to_str().unwrap(),
    ]));
    std::fs::copy(&deb, root.join("tmp/footrest.deb")).unwrap();

    // Install: the user, the config, the password printed once.
    let out = run(&mut in_chroot(&root, "$CHROOT dpkg -i /tmp/footrest.deb"));
    let stdout = text(&out);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Log in as user admin with password: "))
        .unwrap_or_else(|| panic!("no password printed:\n{stdout}"))
        .to_string();
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("footrest:")),
        "{passwd}"
    );
    let config = root.join("etc/footrest/config.json");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!root.join("var/lib/dpkg/info/footrest.conffiles").exists());
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains(&password)
    );

    // Run it as the unit does (its Environment= lines), on a free port.
    let env: String = unit_environment()
        .iter()
        .map(|(k, v)| format!("{k}={v} "))
        .collect();
    let mut cmd = in_chroot(
        &root,
        &format!(
            "exec $CHROOT env -i PATH=/usr/bin:/bin {env} /usr/bin/footrest serve --bind 127.0.0.1:0"
        ),
    );
    cmd.env_remove("NOTIFY_SOCKET");
    let fr = Footrest::spawn(cmd);
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 401);
    let mut fr = fr.with_credentials("admin", &password);
    let r = fr.rpc("Backup", &json!({"value": "example"}));
    assert_eq!(r.status, 200, "{}", r.text());
    fr.signal(libc::SIGTERM);
    assert_eq!(
        fr.wait_exit(std::time::Duration::from_secs(60)).code(),
        Some(0)
    );
    assert!(!fr.stderr().contains(&password));
    // The repo's guid was written back into the config the package made.
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("\"guid\"")
    );

    // Boot the system with systemd (nspawn, its own network) and let a one-shot unit
    // drive footrest.service as a user would: the unit started at boot (it was enabled
    // by the package), READY with its status, the watchdog, reload, stop; then the
    // unprivileged drop-in. What it saw lands in /root/selftest.out.
    std::fs::write(root.join("root/pw"), &password).unwrap();
    std::fs::write(root.join("root/selftest.sh"), SELFTEST).unwrap();
    std::fs::write(
        root.join("etc/systemd/system/selftest.service"),
        "[Unit]\nAfter=multi-user.target footrest.service\n\
         [Service]\nType=oneshot\nExecStart=/bin/sh /root/selftest.sh\n\
         ExecStopPost=/bin/systemctl poweroff --no-block\n\
         [Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/selftest.service",
        root.join("etc/systemd/system/multi-user.target.wants/selftest.service"),
    )
    .unwrap();
    let boot = Command::new("timeout")
        .args([
            "300",
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
        ])
        .args(["--private-network", "--boot", "--directory"])
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .expect("systemd-nspawn (scripts/ensure-deps installs systemd-container)");
    let seen = std::fs::read_to_string(root.join("root/selftest.out")).unwrap_or_else(|_| {
        panic!(
            "the booted system left no result ({}):\n{}",
            boot.status,
            String::from_utf8_lossy(&boot.stdout)
        )
    });
    for expected in [
        // Started at boot, READY=1 with its status, the watchdog armed.
        "boot ActiveState=active",
        "boot SubState=running",
        "boot StatusText=listening on http://127.0.0.1:9898",
        "boot WatchdogUSec=1min",
        "boot NRestarts=0",
        "login 200",
        // systemctl reload: SIGHUP, and footrest reloads.
        "reload rc=0",
        "reload journal=1",
        // systemctl stop: SIGTERM, a clean exit within the timeout.
        "stop Result=success",
        // The unprivileged variant runs as footrest, and can back up and write back.
        "unprivileged user=footrest",
        // With WatchdogSec=2s, systemd sees a keep-alive arrive.
        "unprivileged watchdog pinged",
        "unprivileged backup 200",
        "unprivileged stop Result=success",
        "unprivileged stop NRestarts=0",
    ] {
        assert!(
            seen.lines().any(|l| l == expected),
            "the booted system did not show {expected:?}:\n{seen}"
        );
    }

    // Purge: state goes; the starter repository holds a backup, so it stays, with
    // the config that holds its password.
    let out = run(&mut in_chroot(&root, "$CHROOT dpkg --purge footrest"));
    assert!(
        text(&out).contains("kept /var/lib/footrest/repo"),
        "{}",
        text(&out)
    );
    assert!(root.join("var/lib/footrest/repo/config").exists());
    assert!(config.exists());
    assert!(!root.join("var/lib/footrest/oplog.sqlite").exists());
    assert!(!root.join("usr/bin/footrest").exists());
}
