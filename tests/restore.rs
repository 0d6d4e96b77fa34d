//! Restoring and browsing with the real binary and real restic: a folder restored byte
//! for byte, refusals (a target with data in it, `..`, unknown snapshots), listing a
//! snapshot's folders, completing local paths, and downloading restored files and
//! folders through signed links (tampered links, other paths and escaping links
//! refused).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[derive(Debug, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Everything below `root`, by path relative to it; links are not followed.
fn walk(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(p) = pending.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let node = if meta.file_type().is_symlink() {
                Node::Link(std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                pending.push(path.clone());
                Node::Dir
            } else {
                Node::File(std::fs::read(&path).unwrap())
            };
            out.insert(rel, node);
        }
    }
    out
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    data
}

/// A source tree with nested folders, binary data (one file above the 4 MiB that are
/// sent from memory), odd names, a link inside the tree and one leading out of it.
fn source_tree(sandbox: &Sandbox) -> PathBuf {
    let src = sandbox.path("src");
    let photos = src.join("photos");
    std::fs::create_dir_all(photos.join("2025/trip")).unwrap();
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/readme.txt"), "read me\n").unwrap();
    std::fs::write(src.join("top.txt"), "top\n").unwrap();
    std::fs::write(photos.join("big.bin"), random_bytes(5 * 1024 * 1024 + 17)).unwrap();
    std::fs::write(photos.join("2025/a b é.jpg"), random_bytes(70_000)).unwrap();
    std::fs::write(photos.join("2025/trip/[1]*.txt"), "glob\n").unwrap();
    std::fs::create_dir(photos.join("empty")).unwrap();
    std::os::unix::fs::symlink("2025/a b é.jpg", photos.join("inside-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", photos.join("escape")).unwrap();
    src
}

struct Setup {
    sandbox: Sandbox,
    fr: Footrest,
    src: PathBuf,
    snapshot: String,
    backup_flow: String,
    repo_guid: String,
}

/// footrest with auth on, one plan over the source tree, and one finished backup.
fn setup(plan_extra: Value) -> Setup {
    let sandbox = Sandbox::new();
    let src = source_tree(&sandbox);
    let mut plan = json!({"id": "docs", "repo": "local", "paths": [src]});
    if let (Some(p), Some(extra)) = (plan.as_object_mut(), plan_extra.as_object()) {
        p.extend(extra.clone());
    }
    sandbox.write_config(&sandbox.config(json!([plan]), auth_users(&[("admin", CHANGEME_HASH)])));
    let fr = Footrest::start(&sandbox).with_credentials("admin", "changeme");
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let backup = fr
        .operations(json!({"planId": "docs"}))
        .into_iter()
        .find(|o| o.get("operationBackup").is_some())
        .unwrap();
    let snapshot = backup["snapshotId"].as_str().unwrap().to_string();
    let backup_flow = backup["flowId"].as_str().unwrap().to_string();
    let repo_guid = backup["repoGuid"].as_str().unwrap().to_string();
    // The snapshot index is written after the call has its answer.
    fr.wait_for_op("the snapshot's index", |o| {
        o["operationIndexSnapshot"]["snapshot"]["id"] == snapshot.as_str()
    });
    Setup {
        sandbox,
        fr,
        src,
        snapshot,
        backup_flow,
        repo_guid,
    }
}

fn restore_op(fr: &Footrest, body: Value) -> Value {
    let r = fr.rpc("Restore", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["operationId"].as_str().unwrap().to_string();
    let op = fr.wait_ended(&id);
    assert_eq!(op["status"], "STATUS_SUCCESS", "{op}");
    op
}

fn get(fr: &Footrest, url: &str) -> HttpResponse {
    // No credentials: the link's token is the credential.
    fr.request("GET", url, &[], b"")
}

fn download_url(fr: &Footrest, op_id: &str, file_path: &str) -> String {
    let r = fr.rpc(
        "GetDownloadURL",
        &json!({"opId": op_id, "filePath": file_path}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["value"].as_str().unwrap().to_string();
    assert!(url.starts_with("/download/"), "{url}");
    url
}

#[test]
fn restore_one_folder_then_browse_and_download_it() {
    let s = setup(json!({}));
    let fr = &s.fr;
    let src_path = s.src.to_str().unwrap();
    let photos_path = format!("{src_path}/photos");

    // A fresh target under the data dir, named after the operation.
    let op = restore_op(
        fr,
        json!({"repoId": "local", "planId": "docs", "snapshotId": &s.snapshot[..12],
               "path": format!("{photos_path}/"), "target": ""}),
    );
    let op_id = op["id"].as_str().unwrap().to_string();
    let restore = &op["operationRestore"];
    let target = s.sandbox.data_dir().join("restores").join(&op_id);
    assert_eq!(restore["target"], target.to_str().unwrap());
    assert_eq!(restore["path"], photos_path.as_str());
    assert_eq!(op["snapshotId"], s.snapshot.as_str());
    assert_eq!(op["planId"], "docs");
    // Recorded in the flow of the backup that made the snapshot.
    assert_eq!(op["flowId"], s.backup_flow.as_str());
    // The restored folder keeps its snapshot path below the target, byte for byte.
    let restored = target.join(&photos_path[1..]);
    let want = walk(&s.src.join("photos"));
    assert_eq!(walk(&restored), want);
    assert!(!target.join(&src_path[1..]).join("top.txt").exists());
    // restic 0.14 prints no restore progress: lastStatus is what was restored.
    let files = want.values().filter(|n| matches!(n, Node::File(_))).count();
    let bytes: usize = want
        .values()
        .map(|n| match n {
            Node::File(b) => b.len(),
            _ => 0,
        })
        .sum();
    let status = &restore["lastStatus"];
    assert_eq!(status["messageType"], "summary", "{status}");
    assert_eq!(status["filesRestored"], files.to_string().as_str());
    assert_eq!(status["totalFiles"], files.to_string().as_str());
    assert_eq!(status["bytesRestored"], bytes.to_string().as_str());
    assert_eq!(status["totalBytes"], bytes.to_string().as_str());
    assert_eq!(status["percentDone"], 1.0);
    assert!(status["secondsElapsed"].as_f64().unwrap() > 0.0);

    // A given empty folder works too, and so does the whole snapshot.
    let empty = s.sandbox.path("into-empty");
    std::fs::create_dir(&empty).unwrap();
    restore_op(
        fr,
        json!({"repoId": "local", "planId": "docs", "snapshotId": s.snapshot,
               "path": "", "target": empty}),
    );
    assert_eq!(walk(&empty.join(&src_path[1..])), walk(&s.src));

    // ListSnapshotFiles: one level, sorted by name; int64 as strings.
    let list = |body: Value| fr.rpc("ListSnapshotFiles", &body);
    let r = list(json!({"repoId": "local", "snapshotId": s.snapshot, "path": "/"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["path"], "/");
    let top = src_path.split('/').nth(1).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["entries"][0]["name"], top);
    assert_eq!(v["entries"][0]["type"], "dir");
    let r = list(
        json!({"repoGuid": s.repo_guid, "snapshotId": &s.snapshot[..8],
                        "path": photos_path}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["path"], photos_path.as_str());
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2025", "big.bin", "empty", "escape", "inside-link"]);
    let big = &v["entries"][1];
    assert_eq!(big["type"], "file");
    assert_eq!(big["path"], format!("{photos_path}/big.bin").as_str());
    assert_eq!(big["size"], (5 * 1024 * 1024 + 17).to_string().as_str());
    assert_eq!(big["mode"], "420");
    for t in ["mtime", "atime", "ctime"] {
        let time = big[t].as_str().unwrap();
        assert!(
            time.len() >= 20 && &time[4..5] == "-" && &time[10..11] == "T",
            "{time}"
        );
    }
    assert_eq!(v["entries"][3]["type"], "symlink");
    let r = list(json!({"repoId": "local", "snapshotId": s.snapshot,
                        "path": format!("{photos_path}/2025/trip")}));
    assert_eq!(r.json()["entries"][0]["name"], "[1]*.txt");

    // PathAutocomplete: the names in a local folder, sorted.
    let r = fr.rpc(
        "PathAutocomplete",
        &json!({"value": format!("{src_path}/")}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"values": ["docs", "photos", "top.txt"]}));
    let r = fr.rpc(
        "PathAutocomplete",
        &json!({"value": format!("{src_path}/nope/")}),
    );
    let msg = r.assert_error(404, "not_found");
    assert!(msg.contains("no such folder"), "{msg}");

    // GetDownloadURL, then the file: small ones with a Content-Length, big ones streamed.
    let rel = format!("{}/photos", &src_path[1..]);
    let url = download_url(fr, &op_id, &format!("/{rel}/2025/a b é.jpg"));
    let r = get(fr, &url);
    assert_eq!(r.status, 200, "{}", r.text());
    let Some(Node::File(jpg)) = want.get("2025/a b é.jpg") else {
        panic!("no jpg in the source")
    };
    assert_eq!(&r.body, jpg);
    assert_eq!(r.header("content-length"), Some("70000"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"a b _.jpg\"; filename*=UTF-8''a%20b%20%C3%A9.jpg")
    );
    let r = get(fr, &download_url(fr, &op_id, &format!("{rel}/big.bin")));
    assert_eq!(r.status, 200);
    assert_eq!(Some(&Node::File(r.body.clone())), want.get("big.bin"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    // A link inside the restore is served as what it points to.
    let r = get(fr, &download_url(fr, &op_id, &format!("{rel}/inside-link")));
    assert_eq!(&r.body, jpg);

    // A folder comes as a tar stream named after it.
    let r = get(fr, &download_url(fr, &op_id, &format!("{rel}/2025")));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"2025.tar\"")
    );
    let mut archive = tar::Archive::new(&r.body[..]);
    let mut in_tar = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        in_tar.insert(name.trim_end_matches('/').to_string(), data);
    }
    let mut names: Vec<&str> = in_tar.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        ["2025", "2025/a b é.jpg", "2025/trip", "2025/trip/[1]*.txt"]
    );
    assert_eq!(&in_tar["2025/a b é.jpg"], jpg);
    assert_eq!(in_tar["2025/trip/[1]*.txt"], b"glob\n");
    // The whole restore, with its links stored as links.
    let r = get(fr, &download_url(fr, &op_id, ""));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains(&format!("filename=\"restore-{op_id}.tar\""))
    );
    let mut archive = tar::Archive::new(&r.body[..]);
    let escape = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().ends_with("photos/escape"))
        .expect("the escaping link is in the archive");
    assert_eq!(escape.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(
        escape.link_name().unwrap().unwrap(),
        Path::new("/etc/hostname")
    );

    // Refusals of the download route.
    let url = download_url(fr, &op_id, &format!("{rel}/big.bin"));
    let (prefix, path) = url["/download/".len()..].split_once('/').unwrap();
    // A tampered token: 401, and no Basic prompt.
    let dot = prefix.find('.').unwrap();
    let mut tampered: Vec<char> = prefix.chars().collect();
    tampered[dot + 5] = if tampered[dot + 5] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let r = get(fr, &format!("/download/{tampered}/{path}"));
    let msg = r.assert_error(401, "unauthenticated");
    assert!(msg.contains("not valid"), "{msg}");
    assert_eq!(r.header("www-authenticate"), None);
    let r = get(fr, &format!("/download/garbage/{path}"));
    r.assert_error(401, "unauthenticated");
    // A valid token for another path.
    let r = get(
        fr,
        &format!("/download/{prefix}/{rel}/2025/a%20b%20%C3%A9.jpg"),
    );
    r.assert_error(403, "permission_denied");
    // Traversal in the URL.
    for bad in [
        format!("/download/{prefix}/{path}/../../../../etc/passwd"),
        format!("/download/{prefix}/../../etc/passwd"),
        format!("/download/{prefix}/%2e%2e/%2e%2e/etc/passwd"),
        format!("/download/{prefix}//etc/passwd"),
        format!("/download/{prefix}/{rel}%2F..%2F..%2Fetc"),
    ] {
        let r = get(fr, &bad);
        r.assert_error(400, "invalid_argument");
    }
    // A restored link that leads out of the restore.
    let r = get(fr, &download_url(fr, &op_id, &format!("{rel}/escape")));
    let msg = r.assert_error(403, "permission_denied");
    assert!(msg.contains("outside"), "{msg}");
    // Other methods.
    let r = fr.request("POST", &url, &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // The key lives in the data dir, private to footrest's user.
    let meta = std::fs::metadata(s.sandbox.data_dir().join("download-secret")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // GetDownloadURL refusals.
    let r = fr.rpc(
        "GetDownloadURL",
        &json!({"opId": op_id, "filePath": format!("{rel}/../../..")}),
    );
    assert!(
        r.assert_error(400, "invalid_argument")
            .starts_with("filePath:")
    );
    let r = fr.rpc(
        "GetDownloadURL",
        &json!({"opId": op_id, "filePath": format!("{rel}/nope")}),
    );
    r.assert_error(404, "not_found");
    let r = fr.rpc(
        "GetDownloadURL",
        &json!({"opId": s.backup_flow, "filePath": ""}),
    );
    let msg = r.assert_error(400, "failed_precondition");
    assert!(msg.contains("not a restore"), "{msg}");
    let r = fr.rpc("GetDownloadURL", &json!({"opId": "999999", "filePath": ""}));
    r.assert_error(404, "not_found");
    // And it needs credentials, unlike the link itself.
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetDownloadURL",
        &[("Content-Type".into(), "application/json".into())],
        format!("{{\"opId\":\"{op_id}\"}}").as_bytes(),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn restore_and_listing_refusals() {
    let s = setup(json!({}));
    let fr = &s.fr;
    let src_path = s.src.to_str().unwrap();
    let restore = |body: Value| fr.rpc("Restore", &body);
    let base = |path: &str, target: &Path| {
        json!({"repoId": "local", "planId": "docs", "snapshotId": s.snapshot,
               "path": path, "target": target})
    };

    // A target with data in it is never restored over.
    let full = s.sandbox.path("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let msg = restore(base(src_path, &full)).assert_error(400, "failed_precondition");
    assert!(msg.contains("exists and is not empty"), "{msg}");
    let file = full.join("keep.txt");
    let msg = restore(base(src_path, &file)).assert_error(400, "failed_precondition");
    assert!(msg.contains("not a folder"), "{msg}");
    let msg =
        restore(base(src_path, Path::new("relative/dir"))).assert_error(400, "invalid_argument");
    assert!(msg.starts_with("target:"), "{msg}");
    // A path that steps out of the snapshot.
    let fresh = s.sandbox.path("fresh");
    let msg = restore(base(&format!("{src_path}/../../etc"), &fresh))
        .assert_error(400, "invalid_argument");
    assert!(msg.starts_with("path:") && msg.contains(".."), "{msg}");
    // Unknown snapshot, repo and plan; a snapshot id that is not one.
    let mut body = base(src_path, &fresh);
    body["snapshotId"] = json!("0123abcd");
    let msg = restore(body.clone()).assert_error(404, "not_found");
    assert!(msg.contains("no snapshot 0123abcd"), "{msg}");
    body["snapshotId"] = json!("latest");
    restore(body).assert_error(400, "invalid_argument");
    let mut body = base(src_path, &fresh);
    body["repoId"] = json!("nope");
    restore(body).assert_error(404, "not_found");
    let mut body = base(src_path, &fresh);
    body["planId"] = json!("nope");
    restore(body).assert_error(404, "not_found");
    // Nothing was queued and nothing written.
    assert!(
        fr.operations(json!({}))
            .iter()
            .all(|o| o.get("operationRestore").is_none())
    );
    assert_eq!(
        std::fs::read_to_string(full.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!fresh.exists());

    // ListSnapshotFiles refusals.
    let list = |body: Value| fr.rpc("ListSnapshotFiles", &body);
    let msg = list(json!({"repoId": "local", "snapshotId": "0123abcd", "path": "/"}))
        .assert_error(404, "not_found");
    assert!(msg.contains("0123abcd"), "{msg}");
    let msg = list(json!({"repoId": "local", "snapshotId": s.snapshot,
                          "path": format!("{src_path}/nope")}))
    .assert_error(404, "not_found");
    assert!(msg.contains("has nothing at"), "{msg}");
    let msg = list(json!({"repoId": "local", "snapshotId": s.snapshot,
                          "path": format!("{src_path}/top.txt")}))
    .assert_error(400, "invalid_argument");
    assert!(msg.contains("is a file, not a folder"), "{msg}");
    list(json!({"repoId": "local", "snapshotId": s.snapshot, "path": "/a/../.."}))
        .assert_error(400, "invalid_argument");
    list(json!({"snapshotId": s.snapshot})).assert_error(400, "invalid_argument");
    list(json!({"repoGuid": "ffff", "snapshotId": s.snapshot})).assert_error(404, "not_found");
    // PathAutocomplete refusals.
    fr.rpc("PathAutocomplete", &json!({"value": "relative/"}))
        .assert_error(400, "invalid_argument");
    fr.rpc(
        "PathAutocomplete",
        &json!({"value": format!("{src_path}/top.txt")}),
    )
    .assert_error(400, "failed_precondition");
}

/// The target is checked again when the restore starts: a file written into it while
/// the restore waited in the queue stops it before restic runs.
#[test]
fn a_target_filled_while_queued_is_not_restored_over() {
    let sandbox_fifo = tempfile::tempdir().unwrap();
    let fifo = sandbox_fifo.path().join("go");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let s = setup(json!({}));
    let fr = &s.fr;
    // A second plan whose backup holds the worker until the test lets it go.
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(s.sandbox.config_path()).unwrap()).unwrap();
    config["plans"].as_array_mut().unwrap().push(json!({
        "id": "held", "repo": "local", "paths": [s.src],
        "hooks": [{"conditions": ["CONDITION_SNAPSHOT_START"],
                   "actionCommand": {"command": format!("read line < {}", fifo.display())}}]
    }));
    s.sandbox.write_config(&config);
    fr.signal(libc::SIGHUP);
    wait_until("the new plan", Duration::from_secs(30), || {
        fr.rpc("GetConfig", &json!({})).json()["plans"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    });
    let addr = fr.addr;
    let creds = basic("admin", "changeme");
    let held = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/v1.Backrest/Backup",
            &[
                ("Content-Type".into(), "application/json".into()),
                ("Authorization".into(), creds),
            ],
            br#"{"value":"held"}"#,
        )
    });
    fr.wait_for_op("the held backup to run", |o| {
        o["planId"] == "held" && o["status"] == "STATUS_INPROGRESS"
    });
    let target = s.sandbox.path("later-full");
    let r = fr.rpc(
        "Restore",
        &json!({"repoId": "local", "snapshotId": s.snapshot, "path": "", "target": target}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["operationId"].as_str().unwrap().to_string();
    let pending = fr.op_by_id(&id);
    assert_eq!(pending["status"], "STATUS_PENDING");
    assert_eq!(
        pending["operationRestore"]["target"],
        target.to_str().unwrap()
    );
    // No planId: the snapshot's plan.
    assert_eq!(pending["planId"], "docs");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("new.txt"), "written meanwhile").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    assert_eq!(held.join().unwrap().status, 200);
    let op = fr.wait_ended(&id);
    assert_eq!(op["status"], "STATUS_ERROR", "{op}");
    assert!(
        op["displayMessage"]
            .as_str()
            .unwrap()
            .contains("exists and is not empty"),
        "{op}"
    );
    assert_eq!(
        walk(&target),
        BTreeMap::from([(
            "new.txt".to_string(),
            Node::File(b"written meanwhile".to_vec())
        )])
    );
}
