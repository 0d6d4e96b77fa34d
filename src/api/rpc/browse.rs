//! Restoring and browsing: `Restore` queues a restore and answers with its operation id;
//! `ListSnapshotFiles` lists one folder of a snapshot; `PathAutocomplete` lists a folder
//! of this machine; `GetDownloadURL` signs a link to a file or folder of a finished
//! restore, and [`download`] serves such a link (`GET /download/<token>/<path>`): a file
//! as it is, a folder as a tar stream. The token is the credential of a download link:
//! HMAC-SHA256 over (operation id, path, expiry) under a key kept in
//! `<data dir>/download-secret`. Nothing here restores or deletes anything, and only
//! `ListSnapshotFiles` runs restic on a request thread (read-only, without a lock, with
//! a time limit, at most [`MAX_LISTINGS`] at once; see ARCHITECTURE.md).

use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::App;
use crate::api::connect::{ApiError, Code};
use crate::api::server::{Body, ChunkWriter, Request, Response};
use crate::orchestrator::scheduler::SYSTEM_PLAN;
use crate::orchestrator::tasks::restore::{self, RestoreJob, RestoreTarget, TargetError};
use crate::proto::json::{is_default, opt_int64};
use crate::proto::{self, Op, OpSelector, OperationIdResponse, OperationStatus};
use crate::restic::{self, LsEntry, ResticError, StopHandle};

use super::{encode, orchestrator_error};

/// Listings running at once; more get `503 unavailable` (each is a restic process that
/// reads the repository's index into memory).
pub const MAX_LISTINGS: usize = 2;
/// A listing that takes longer is stopped (`504 deadline_exceeded`).
const LISTING_TIMEOUT: Duration = Duration::from_secs(60);
/// PathAutocomplete answers at most this many names.
const MAX_COMPLETIONS: usize = 1000;
/// How long a download link works.
const LINK_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The download key's file in the data dir, and its length in bytes.
const SECRET_FILE: &str = "download-secret";
const SECRET_LEN: usize = 64;
/// Files up to this size are sent with a `Content-Length` from memory; larger ones are
/// streamed in chunks (the connection layer has no sized stream).
const WHOLE_FILE_MAX: u64 = 4 * 1024 * 1024;
/// Bytes per chunk of a streamed download.
const CHUNK: usize = 64 * 1024;

static LISTINGS: AtomicUsize = AtomicUsize::new(0);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn check_snapshot_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid(
            "snapshotId: give the id of a snapshot (ListSnapshots lists them)",
        ));
    }
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(format!(
            "snapshotId: {id:?} is not a snapshot id (1 to 64 hex digits)"
        )));
    }
    Ok(())
}

fn repo_by_id<'a>(
    config: &'a crate::config::Config,
    repo_id: &str,
) -> Result<&'a crate::config::Repo, ApiError> {
    config.repo(repo_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no repo with id {repo_id:?}; the repos are listed in the config's \"repos\""
        ))
    })
}

// ---------------------------------------------------------------------------------------
// Restore

/// `Restore`: `{repoId, planId, snapshotId, path, target}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RestoreRequest {
    #[serde(alias = "repo_id")]
    repo_id: String,
    #[serde(alias = "plan_id")]
    plan_id: String,
    #[serde(alias = "snapshot_id")]
    snapshot_id: String,
    path: String,
    target: String,
}

pub fn restore(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: RestoreRequest = proto::decode(body)?;
    if req.repo_id.is_empty() {
        return Err(ApiError::invalid(
            "repoId: give the id of the repo that holds the snapshot",
        ));
    }
    let config = app.config.get();
    let repo = repo_by_id(&config, &req.repo_id)?;
    if !req.plan_id.is_empty() && config.plan(&req.plan_id).is_none() {
        return Err(ApiError::not_found(format!(
            "no plan with id {:?}",
            req.plan_id
        )));
    }
    check_snapshot_id(&req.snapshot_id)?;
    let path =
        restic::snapshot_path(&req.path).map_err(|e| ApiError::invalid(format!("path: {e}")))?;
    let target = if req.target.is_empty() {
        RestoreTarget::FreshUnder(app.data_dir.join("restores"))
    } else {
        let target = PathBuf::from(&req.target);
        restore::check_target(&target).map_err(|e| match e {
            TargetError::NotAbsolute(_) => ApiError::invalid(format!("target: {e}")),
            _ => ApiError::new(Code::FailedPrecondition, e.to_string()),
        })?;
        RestoreTarget::Folder(target)
    };
    let indexed = find_indexed_snapshot(app, &repo.id, &req.snapshot_id)?;
    let plan_id = if !req.plan_id.is_empty() {
        req.plan_id
    } else if !indexed.plan_id.is_empty() && config.plan(&indexed.plan_id).is_some() {
        indexed.plan_id
    } else {
        SYSTEM_PLAN.to_string()
    };
    let operation_id = app
        .orchestrator
        .queue_restore(RestoreJob {
            repo_id: repo.id.clone(),
            plan_id,
            snapshot_id: indexed.snapshot_id,
            path,
            target,
            flow_id: indexed.flow_id,
        })
        .map_err(orchestrator_error)?;
    encode(&OperationIdResponse { operation_id })
}

struct IndexedSnapshot {
    snapshot_id: String,
    plan_id: String,
    flow_id: i64,
}

/// The snapshot an id (or unique prefix) names, from the snapshot index in the
/// operation log (no request thread runs restic for a restore).
fn find_indexed_snapshot(app: &App, repo_id: &str, id: &str) -> Result<IndexedSnapshot, ApiError> {
    let selector = OpSelector {
        repo_id: Some(repo_id.to_string()),
        ..Default::default()
    };
    let prefix = id.to_ascii_lowercase();
    let mut found: Vec<IndexedSnapshot> = Vec::new();
    for op in app.oplog.query(&selector, None)? {
        let Op::IndexSnapshot(ix) = &op.op else {
            continue;
        };
        let Some(snap) = ix.snapshot.as_ref().filter(|_| !ix.forgot) else {
            continue;
        };
        if snap.id.starts_with(&prefix) && !found.iter().any(|f| f.snapshot_id == snap.id) {
            found.push(IndexedSnapshot {
                snapshot_id: snap.id.clone(),
                plan_id: op.plan_id.clone(),
                flow_id: op.flow_id,
            });
        }
    }
    match found.len() {
        0 => Err(ApiError::not_found(format!(
            "no snapshot {id} in repo {repo_id:?}; ListSnapshots lists them (a snapshot made \
             elsewhere appears after DoRepoTask TASK_INDEX_SNAPSHOTS)"
        ))),
        1 => Ok(found.remove(0)),
        n => Err(ApiError::invalid(format!(
            "snapshotId: {id} is the start of {n} snapshot ids; give more of it"
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// ListSnapshotFiles

/// `ListSnapshotFiles`: `{repoId (or repoGuid), snapshotId, path}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ListSnapshotFilesRequest {
    #[serde(alias = "repo_id")]
    repo_id: String,
    #[serde(alias = "repo_guid")]
    repo_guid: String,
    #[serde(alias = "snapshot_id")]
    snapshot_id: String,
    path: String,
}

/// One entry of a listing (Backrest's `LsEntry`).
#[derive(Debug, Default, PartialEq, Serialize)]
struct LsEntryJson {
    #[serde(skip_serializing_if = "is_default")]
    name: String,
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    kind: String,
    #[serde(skip_serializing_if = "is_default")]
    path: String,
    #[serde(with = "proto::json::int64", skip_serializing_if = "is_default")]
    uid: i64,
    #[serde(with = "proto::json::int64", skip_serializing_if = "is_default")]
    gid: i64,
    #[serde(with = "proto::json::int64", skip_serializing_if = "is_default")]
    size: i64,
    #[serde(with = "proto::json::int64", skip_serializing_if = "is_default")]
    mode: i64,
    #[serde(skip_serializing_if = "is_default")]
    mtime: String,
    #[serde(skip_serializing_if = "is_default")]
    atime: String,
    #[serde(skip_serializing_if = "is_default")]
    ctime: String,
}

impl From<LsEntry> for LsEntryJson {
    fn from(e: LsEntry) -> Self {
        LsEntryJson {
            name: e.name,
            kind: e.kind,
            path: e.path,
            uid: e.uid,
            gid: e.gid,
            size: e.size,
            mode: e.mode,
            mtime: e.mtime,
            atime: e.atime,
            ctime: e.ctime,
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct ListSnapshotFilesResponse {
    #[serde(skip_serializing_if = "is_default")]
    path: String,
    #[serde(skip_serializing_if = "is_default")]
    entries: Vec<LsEntryJson>,
}

/// A place among the [`MAX_LISTINGS`] listings that may run at once; given back on drop.
struct ListingSlot;

impl ListingSlot {
    fn take() -> Option<ListingSlot> {
        LISTINGS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_LISTINGS).then_some(n + 1)
            })
            .ok()
            .map(|_| ListingSlot)
    }
}

impl Drop for ListingSlot {
    fn drop(&mut self) {
        LISTINGS.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn list_snapshot_files(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: ListSnapshotFilesRequest = proto::decode(body)?;
    let config = app.config.get();
    let repo = if !req.repo_id.is_empty() {
        repo_by_id(&config, &req.repo_id)?
    } else if !req.repo_guid.is_empty() {
        config
            .repos
            .iter()
            .find(|r| !r.guid.is_empty() && r.guid.eq_ignore_ascii_case(&req.repo_guid))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no repo with guid {:?} in the config",
                    req.repo_guid
                ))
            })?
    } else {
        return Err(ApiError::invalid(
            "repoId: give the id (or repoGuid, the guid) of the repo that holds the snapshot",
        ));
    };
    check_snapshot_id(&req.snapshot_id)?;
    let path =
        restic::snapshot_path(&req.path).map_err(|e| ApiError::invalid(format!("path: {e}")))?;
    let Some(_slot) = ListingSlot::take() else {
        return Err(ApiError::new(
            Code::Unavailable,
            format!(
                "busy listing: {MAX_LISTINGS} snapshot listings are already running; try again \
                 in a moment"
            ),
        ));
    };
    let listing = restore::list_files(
        app.orchestrator.shared(),
        repo,
        &req.snapshot_id,
        &path,
        LISTING_TIMEOUT,
        &StopHandle::new(),
    )
    .map_err(listing_error)?;
    encode(&ListSnapshotFilesResponse {
        path: listing.path,
        entries: listing.entries.into_iter().map(LsEntryJson::from).collect(),
    })
}

fn listing_error(e: ResticError) -> ApiError {
    let code = match &e {
        ResticError::NoSuchSnapshot { .. } | ResticError::PathNotInSnapshot { .. } => {
            Code::NotFound
        }
        ResticError::NotADirectory { .. } | ResticError::InvalidArgs { .. } => {
            Code::InvalidArgument
        }
        ResticError::TooManyEntries { .. } => Code::ResourceExhausted,
        ResticError::TimedOut { .. } => Code::DeadlineExceeded,
        _ => Code::Unknown,
    };
    ApiError::new(code, e.to_string())
}

// ---------------------------------------------------------------------------------------
// PathAutocomplete

/// `PathAutocomplete`: `{"value": "/home/"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ValueRequest {
    value: String,
}

#[derive(Debug, Default, Serialize)]
struct ValuesResponse {
    #[serde(skip_serializing_if = "is_default")]
    values: Vec<String>,
}

pub fn path_autocomplete(_app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: ValueRequest = proto::decode(body)?;
    let values = folder_names(&req.value, MAX_COMPLETIONS)?;
    encode(&ValuesResponse { values })
}

/// The names in a folder of this machine (files, folders, links alike; hidden ones too),
/// sorted by name, the first `cap` of them. Only `cap` names are held at a time, however
/// large the folder.
fn folder_names(dir: &str, cap: usize) -> Result<Vec<String>, ApiError> {
    if !dir.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "value: {dir:?} is not an absolute path; give a folder such as /home/"
        )));
    }
    let entries = fs::read_dir(dir).map_err(|e| {
        let code = match e.kind() {
            io::ErrorKind::NotFound => Code::NotFound,
            io::ErrorKind::PermissionDenied => Code::PermissionDenied,
            io::ErrorKind::NotADirectory => Code::FailedPrecondition,
            _ => Code::Unknown,
        };
        let what = match code {
            Code::NotFound => "there is no such folder on this machine".to_string(),
            Code::FailedPrecondition => "it is not a folder".to_string(),
            _ => e.to_string(),
        };
        ApiError::new(code, format!("cannot list {dir}: {what}"))
    })?;
    // A max-heap of the smallest `cap` names seen so far.
    let mut smallest: BinaryHeap<String> = BinaryHeap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if smallest.len() < cap {
            smallest.push(name);
        } else if smallest.peek().is_some_and(|largest| name < *largest) {
            smallest.pop();
            smallest.push(name);
        }
    }
    Ok(smallest.into_sorted_vec())
}

// ---------------------------------------------------------------------------------------
// GetDownloadURL and the download route

/// `GetDownloadURL`: `{opId, filePath}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GetDownloadUrlRequest {
    #[serde(alias = "op_id", with = "opt_int64")]
    op_id: Option<i64>,
    #[serde(alias = "file_path")]
    file_path: String,
}

#[derive(Debug, Default, Serialize)]
struct ValueResponse {
    value: String,
}

pub fn get_download_url(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: GetDownloadUrlRequest = proto::decode(body)?;
    let Some(op_id) = req.op_id.filter(|id| *id > 0) else {
        return Err(ApiError::invalid(
            "opId: give the id of a finished restore operation",
        ));
    };
    let rel =
        relative_path(&req.file_path).map_err(|e| ApiError::invalid(format!("filePath: {e}")))?;
    let target = restore_target(app, op_id).map_err(DownloadError::into_api)?;
    let full = target.join(&rel);
    if fs::symlink_metadata(&full).is_err() {
        return Err(ApiError::not_found(format!(
            "restore {op_id} has nothing at {:?} (its files are in {})",
            req.file_path,
            target.display()
        )));
    }
    let key = download_key(&app.data_dir).map_err(ApiError::internal)?;
    let token = sign_token(&key, op_id, &rel, now_secs() + LINK_LIFETIME.as_secs());
    encode(&ValueResponse {
        value: format!("/download/{token}/{}", percent_encode_path(&rel)),
    })
}

/// Why a download was refused; each becomes a JSON error with its status.
#[derive(Debug, PartialEq, Eq)]
enum DownloadError {
    /// 401: the token is malformed, forged or expired.
    Token(String),
    /// 400: a malformed or escaping path.
    BadPath(String),
    /// 403: a valid token, but not for this path, or a path leading outside the restore.
    Forbidden(String),
    /// 404: no such restore, or no such file in it.
    NotFound(String),
    /// 400: the operation is not a finished restore.
    NotReady(String),
    /// 500: the server could not read what it should serve.
    Internal(String),
}

impl DownloadError {
    fn into_api(self) -> ApiError {
        match self {
            DownloadError::Token(m) => ApiError::new(Code::Unauthenticated, m),
            DownloadError::BadPath(m) => ApiError::invalid(m),
            DownloadError::Forbidden(m) => ApiError::new(Code::PermissionDenied, m),
            DownloadError::NotFound(m) => ApiError::not_found(m),
            DownloadError::NotReady(m) => ApiError::new(Code::FailedPrecondition, m),
            DownloadError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// The target folder of a finished (SUCCESS) restore.
fn restore_target(app: &App, op_id: i64) -> Result<PathBuf, DownloadError> {
    let op = app
        .oplog
        .get(op_id)
        .map_err(|e| DownloadError::Internal(e.to_string()))?
        .ok_or_else(|| DownloadError::NotFound(format!("no operation with id {op_id}")))?;
    let Op::Restore(r) = &op.op else {
        return Err(DownloadError::NotReady(format!(
            "operation {op_id} is not a restore; only restored files can be downloaded"
        )));
    };
    if op.status != OperationStatus::Success {
        return Err(DownloadError::NotReady(format!(
            "restore {op_id} has not finished successfully ({}); its files can be downloaded \
             once it has",
            op.status.name()
        )));
    }
    if r.target.is_empty() {
        return Err(DownloadError::NotFound(format!(
            "restore {op_id} names no target folder"
        )));
    }
    Ok(PathBuf::from(&r.target))
}

/// `GET /download/<token>/<path>` (`rest` is what follows `/download/`). No Basic or
/// Bearer credentials: the token is the credential.
pub fn download(app: &App, req: &Request, rest: &str) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(
            405,
            "unimplemented",
            &format!(
                "{} is not allowed here; download links are fetched with GET",
                req.method
            ),
        )
        .with_header("Allow", "GET, HEAD");
    }
    match serve_download(app, rest, now_secs()) {
        Ok(response) => response,
        Err(e) => {
            debug!("download refused: {e:?}");
            let mut response = e.into_api().response();
            // The token is the credential here: a Basic prompt would not help.
            response
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case("www-authenticate"));
            response
        }
    }
}

fn serve_download(app: &App, rest: &str, now: u64) -> Result<Response, DownloadError> {
    let (token, raw_path) = rest.split_once('/').unwrap_or((rest, ""));
    let key = download_key(&app.data_dir).map_err(DownloadError::Internal)?;
    let claim = verify_token(&key, token, now)?;
    let rel = url_path(raw_path)?;
    if rel != claim.path {
        return Err(DownloadError::Forbidden(
            "this download link is for another path; ask for a link to this one with \
             GetDownloadURL"
                .into(),
        ));
    }
    let target = restore_target(app, claim.op_id)?;
    let file = resolve_inside(&target, &rel)?;
    let meta = fs::metadata(&file)
        .map_err(|e| DownloadError::NotFound(format!("cannot read {}: {e}", file.display())))?;
    let name = match Path::new(&rel).file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => format!("restore-{}", claim.op_id),
    };
    if meta.is_dir() {
        Ok(tar_response(file, name))
    } else if meta.is_file() {
        file_response(&file, &name, meta.len())
    } else {
        Err(DownloadError::NotFound(format!(
            "{rel} in restore {} is neither a file nor a folder",
            claim.op_id
        )))
    }
}

/// `target/rel`, with every link resolved, as long as it stays inside `target`.
fn resolve_inside(target: &Path, rel: &str) -> Result<PathBuf, DownloadError> {
    let root = target.canonicalize().map_err(|e| {
        DownloadError::NotFound(format!(
            "the restore's folder {} cannot be read: {e}",
            target.display()
        ))
    })?;
    let full = root.join(rel).canonicalize().map_err(|e| {
        DownloadError::NotFound(if e.kind() == io::ErrorKind::NotFound {
            format!("there is no {rel} in the restore (or it is a broken link)")
        } else {
            format!("cannot read {rel} in the restore: {e}")
        })
    })?;
    if !full.starts_with(&root) {
        return Err(DownloadError::Forbidden(format!(
            "{rel} is a link that leads outside the restored files; it is not served"
        )));
    }
    Ok(full)
}

fn disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{plain}\"; filename*=UTF-8''{}",
        percent_encode(name.as_bytes())
    )
}

fn file_response(path: &Path, name: &str, len: u64) -> Result<Response, DownloadError> {
    let mut file = File::open(path)
        .map_err(|e| DownloadError::NotFound(format!("cannot open {}: {e}", path.display())))?;
    let body = if len <= WHOLE_FILE_MAX {
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| DownloadError::Internal(format!("reading {}: {e}", path.display())))?;
        Body::Bytes(bytes)
    } else {
        Body::Stream(Box::new(move |out: &mut dyn ChunkWriter| {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                out.write_chunk(&buf[..n])?;
            }
        }))
    };
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("Content-Disposition".into(), disposition(name)),
        ],
        body,
    })
}

/// A folder as a tar stream named `<name>.tar`, its entries below `<name>/`. Links are
/// stored as links, never followed.
fn tar_response(dir: PathBuf, name: String) -> Response {
    let archive = format!("{name}.tar");
    Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/x-tar".into()),
            ("Content-Disposition".into(), disposition(&archive)),
        ],
        body: Body::Stream(Box::new(move |out: &mut dyn ChunkWriter| {
            let mut builder = tar::Builder::new(ChunkedWriter::new(out));
            builder.follow_symlinks(false);
            builder.append_dir_all(&name, &dir)?;
            builder.into_inner()?.flush()
        })),
    }
}

/// Buffers writes into chunks of [`CHUNK`] bytes for a streamed response.
struct ChunkedWriter<'a> {
    out: &'a mut dyn ChunkWriter,
    buf: Vec<u8>,
}

impl<'a> ChunkedWriter<'a> {
    fn new(out: &'a mut dyn ChunkWriter) -> Self {
        ChunkedWriter {
            out,
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for ChunkedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_chunk(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// A path relative to a restore's target, as GetDownloadURL takes it: `/` separated, a
/// leading `/` ignored (Backrest joins it onto the target), no `..`; `""` is the whole
/// target.
fn relative_path(path: &str) -> Result<String, String> {
    if path.contains('\0') {
        return Err(format!("{path:?} contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "{path:?} has a `..` component; give a path inside the restore's folder"
                ));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The path part of a download URL, percent-decoded and checked: no `.` or `..`
/// component, no empty one (`//` would make an absolute path), nothing that decodes to
/// `/` or NUL inside a component. One trailing `/` is allowed.
fn url_path(raw: &str) -> Result<String, DownloadError> {
    let bad = |why: &str| DownloadError::BadPath(format!("download path {raw:?} {why}"));
    let raw_trimmed = raw.strip_suffix('/').unwrap_or(raw);
    if raw_trimmed.is_empty() {
        return Ok(String::new());
    }
    let mut parts = Vec::new();
    for part in raw_trimmed.split('/') {
        let bytes = percent_decode(part).ok_or_else(|| bad("has a malformed %-escape"))?;
        let text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8"))?;
        match text.as_str() {
            "" => return Err(bad("has an empty or absolute component")),
            "." | ".." => return Err(bad("has a `.` or `..` component")),
            t if t.contains('/') || t.contains('\0') => {
                return Err(bad("has an escaped `/` or NUL in a name"));
            }
            _ => parts.push(text),
        }
    }
    let joined = parts.join("/");
    // Belt and braces: the joined path must be plain names only.
    if Path::new(&joined)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(bad("is not a plain relative path"));
    }
    Ok(joined)
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Each component percent-encoded, joined with `/`.
fn percent_encode_path(rel: &str) -> String {
    rel.split('/')
        .map(|p| percent_encode(p.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Tokens

/// What a valid download token grants.
#[derive(Debug, PartialEq, Eq)]
struct Claim {
    op_id: i64,
    /// Relative to the restore's target (`relative_path` form).
    path: String,
    /// Unix seconds.
    expires: u64,
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; the key file holds SECRET_LEN bytes.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(b"footrest download v1\n");
    mac.update(payload);
    mac
}

/// `base64url(op:expires:path)` `.` `base64url(HMAC-SHA256)`.
fn sign_token(key: &[u8], op_id: i64, path: &str, expires: u64) -> String {
    let payload = format!("{op_id}:{expires}:{path}");
    let tag = mac(key, payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a token's signature (in constant time), then its expiry against `now`.
fn verify_token(key: &[u8], token: &str, now: u64) -> Result<Claim, DownloadError> {
    let invalid = || {
        DownloadError::Token(
            "this download link is not valid; ask for a new one with GetDownloadURL".into(),
        )
    };
    let (payload_b64, tag_b64) = token.split_once('.').ok_or_else(invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| invalid())?;
    let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| invalid())?;
    mac(key, &payload)
        .verify_slice(&tag)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(payload).map_err(|_| invalid())?;
    let mut fields = text.splitn(3, ':');
    let op_id = fields.next().and_then(|f| f.parse::<i64>().ok());
    let expires = fields.next().and_then(|f| f.parse::<u64>().ok());
    let (Some(op_id), Some(expires), Some(path)) = (op_id, expires, fields.next()) else {
        return Err(invalid());
    };
    if now >= expires {
        return Err(DownloadError::Token(
            "this download link has expired (links work for 24 hours); ask for a new one \
             with GetDownloadURL"
                .into(),
        ));
    }
    Ok(Claim {
        op_id,
        path: path.to_string(),
        expires,
    })
}

/// The key download links are signed with: `<data dir>/download-secret`, made on first
/// use from the system's random source (mode 0600) and kept, so links survive restarts.
/// The file is written in full under a temporary name and linked into place, so two
/// first uses at once agree on one key and no reader sees half a key.
fn download_key(data_dir: &Path) -> Result<Vec<u8>, String> {
    let path = data_dir.join(SECRET_FILE);
    match fs::read(&path) {
        Ok(key) => return checked_key(&path, key),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let mut key = vec![0u8; SECRET_LEN];
    File::open("/dev/urandom")
        .and_then(|mut r| r.read_exact(&mut key))
        .map_err(|e| format!("cannot read random bytes for the download key: {e}"))?;
    let temp = data_dir.join(format!(
        ".{SECRET_FILE}.{}.{}",
        std::process::id(),
        URL_SAFE_NO_PAD.encode(&key[..6])
    ));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        match fs::hard_link(&temp, &path) {
            Ok(()) => Ok(()),
            // Someone else made it first: theirs is the key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    };
    let written = write();
    let _ = fs::remove_file(&temp);
    written.map_err(|e| format!("cannot create the download key {}: {e}", path.display()))?;
    let key = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    checked_key(&path, key)
}

fn checked_key(path: &Path, key: Vec<u8>) -> Result<Vec<u8>, String> {
    if key.len() < 32 {
        return Err(format!(
            "the download key {} is shorter than 32 bytes; delete it and footrest makes a \
             new one (links already given out stop working)",
            path.display()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &[u8] = &[7u8; 64];
    const NOW: u64 = 1_764_000_000;

    #[test]
    fn tokens_round_trip_and_expire() {
        let token = sign_token(KEY, 42, "home/me/a b.txt", NOW + 86_400);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
            "{token}"
        );
        assert_eq!(
            verify_token(KEY, &token, NOW),
            Ok(Claim {
                op_id: 42,
                path: "home/me/a b.txt".into(),
                expires: NOW + 86_400
            })
        );
        assert_eq!(verify_token(KEY, &token, NOW + 86_399).unwrap().op_id, 42);
        let expired = verify_token(KEY, &token, NOW + 86_400).unwrap_err();
        assert!(matches!(&expired, DownloadError::Token(m) if m.contains("expired")));
        assert_eq!(expired.into_api().code, Code::Unauthenticated);
        // A path with `:` in it survives (the path is the last field).
        let t = sign_token(KEY, 1, "a:b:c", NOW + 1);
        assert_eq!(verify_token(KEY, &t, NOW).unwrap().path, "a:b:c");
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let token = sign_token(KEY, 42, "docs", NOW + 100);
        let (payload, tag) = token.split_once('.').unwrap();
        let not_valid = |t: &str| {
            matches!(verify_token(KEY, t, NOW),
                Err(DownloadError::Token(m)) if m.contains("not valid"))
        };
        // Another operation or path under the same signature.
        let forged = URL_SAFE_NO_PAD.encode(format!("43:{}:docs", NOW + 100));
        assert!(not_valid(&format!("{forged}.{tag}")));
        let longer = URL_SAFE_NO_PAD.encode(format!("42:{}:docs", NOW + 10_000_000));
        assert!(not_valid(&format!("{longer}.{tag}")));
        // A flipped bit in the tag, a truncated tag, garbage, another key.
        let mut bad_tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        bad_tag[0] ^= 1;
        assert!(not_valid(&format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(&bad_tag)
        )));
        assert!(not_valid(&format!("{payload}.{}", &tag[..10])));
        assert!(not_valid(payload));
        assert!(not_valid(""));
        assert!(not_valid("!!!.???"));
        assert!(verify_token(&[8u8; 64], &token, NOW).is_err());
        // A correctly signed payload that is not op:expires:path.
        let odd = b"hello";
        let tag = mac(KEY, odd).finalize().into_bytes();
        let t = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(odd),
            URL_SAFE_NO_PAD.encode(tag)
        );
        assert!(not_valid(&t));
    }

    #[test]
    fn request_paths_stay_inside_the_restore() {
        assert_eq!(relative_path("").as_deref(), Ok(""));
        assert_eq!(relative_path("/").as_deref(), Ok(""));
        assert_eq!(
            relative_path("/home/me/./a b//c/").as_deref(),
            Ok("home/me/a b/c")
        );
        assert!(relative_path("home/../../etc").is_err());
        assert!(relative_path("..").is_err());
        assert!(relative_path("a\0b").is_err());
    }

    #[test]
    fn url_paths_are_decoded_and_checked() {
        assert_eq!(url_path(""), Ok(String::new()));
        assert_eq!(url_path("/"), Ok(String::new()));
        assert_eq!(url_path("a/b%20c/%C3%A9.txt"), Ok("a/b c/é.txt".into()));
        assert_eq!(url_path("dir/"), Ok("dir".into()));
        for bad in [
            "../etc/passwd",
            "a/../../etc",
            "a/%2e%2e/b",
            "%2E%2E",
            "a//b",
            "/etc/passwd",
            "a/%2Fetc",
            "a/%00",
            "a/%zz",
            "a/%4",
            "a/%FF",
            "./a",
        ] {
            assert!(
                matches!(url_path(bad), Err(DownloadError::BadPath(_))),
                "{bad:?}: {:?}",
                url_path(bad)
            );
        }
        let rel = "home/me/a b/ü+%.txt";
        assert_eq!(url_path(&percent_encode_path(rel)), Ok(rel.to_string()));
        assert_eq!(percent_encode_path(rel), "home/me/a%20b/%C3%BC%2B%25.txt");
    }

    #[test]
    fn links_may_not_lead_outside_the_restore() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("restore");
        fs::create_dir_all(target.join("sub")).unwrap();
        fs::write(target.join("sub/f.txt"), "x").unwrap();
        fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), target.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/f.txt", target.join("in")).unwrap();
        std::os::unix::fs::symlink("..", target.join("sub/up")).unwrap();
        let root = target.canonicalize().unwrap();
        assert_eq!(
            resolve_inside(&target, "sub/f.txt"),
            Ok(root.join("sub/f.txt"))
        );
        assert_eq!(resolve_inside(&target, "in"), Ok(root.join("sub/f.txt")));
        assert_eq!(resolve_inside(&target, "sub/up"), Ok(root.clone()));
        assert_eq!(resolve_inside(&target, ""), Ok(root.clone()));
        assert!(matches!(
            resolve_inside(&target, "out"),
            Err(DownloadError::Forbidden(_))
        ));
        assert!(matches!(
            resolve_inside(&target, "sub/up/../secret"),
            Err(DownloadError::Forbidden(_))
        ));
        assert!(matches!(
            resolve_inside(&target, "missing"),
            Err(DownloadError::NotFound(_))
        ));
    }

    #[test]
    fn the_key_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = download_key(dir.path()).unwrap();
        assert_eq!(first.len(), SECRET_LEN);
        let path = dir.path().join(SECRET_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(download_key(dir.path()).unwrap(), first);
        // Only the key file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [SECRET_FILE]);
        // Many first uses at once agree on one key.
        let dir2 = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| download_key(dir2.path()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
        fs::write(&path, b"short").unwrap();
        assert!(
            download_key(dir.path())
                .unwrap_err()
                .contains("shorter than 32 bytes")
        );
    }

    #[test]
    fn autocomplete_lists_names_sorted_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", ".hidden", "c-dir", "Z"] {
            if name.ends_with("dir") {
                fs::create_dir(dir.path().join(name)).unwrap();
            } else {
                fs::write(dir.path().join(name), "").unwrap();
            }
        }
        let d = format!("{}/", dir.path().display());
        assert_eq!(
            folder_names(&d, 100).unwrap(),
            [".hidden", "Z", "a", "b", "c-dir"]
        );
        assert_eq!(folder_names(&d, 2).unwrap(), [".hidden", "Z"]);
        let missing = folder_names(&format!("{d}nope/"), 10).unwrap_err();
        assert_eq!(missing.code, Code::NotFound);
        assert_eq!(
            missing.message,
            format!("cannot list {d}nope/: there is no such folder on this machine")
        );
        assert_eq!(
            folder_names(&format!("{d}b"), 10).unwrap_err().code,
            Code::FailedPrecondition
        );
        assert_eq!(
            folder_names("home/", 10).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    #[test]
    fn listing_slots_are_bounded_and_given_back() {
        let a = ListingSlot::take().unwrap();
        let b = ListingSlot::take().unwrap();
        assert!(ListingSlot::take().is_none());
        drop(a);
        let c = ListingSlot::take().unwrap();
        drop((b, c));
        assert!(ListingSlot::take().is_some());
    }

    #[test]
    fn content_disposition_is_safe() {
        assert_eq!(
            disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        assert_eq!(
            disposition("é\"\r\n.tar"),
            "attachment; filename=\"____.tar\"; filename*=UTF-8''%C3%A9%22%0D%0A.tar"
        );
    }

    #[test]
    fn chunked_writer_sends_full_chunks() {
        struct Sink(Vec<usize>);
        impl ChunkWriter for Sink {
            fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
                self.0.push(data.len());
                Ok(())
            }
        }
        let mut sink = Sink(Vec::new());
        let mut w = ChunkedWriter::new(&mut sink);
        w.write_all(&vec![1u8; CHUNK * 2 + 10]).unwrap();
        w.flush().unwrap();
        w.flush().unwrap();
        assert_eq!(sink.0, [CHUNK, CHUNK, 10]);
    }
}
