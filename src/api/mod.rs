//! The HTTP face: the connection layer, the Connect protocol, authentication and the
//! RPC handlers. [`Api`] is the one [`server::Handler`]: it routes a request to its RPC
//! after the transport and authentication rules of CONTRACT §1 and §2. A streaming RPC
//! (`GetLogs`, `GetOperationEvents`) must be called with `application/connect+json`;
//! it passes the same checks, and then `rpc::streams` answers it.
//! `GET /download/<token>/<path>` goes to the download of a restored file (the signed
//! token is that route's credential). `GET /metrics` (Prometheus) and `GET /` (the status
//! page) take the same credentials as the RPCs. Nothing below
//! `api` knows about HTTP.

pub mod auth;
pub mod connect;
pub mod metrics;
pub mod rpc;
pub mod server;
pub mod status_page;

use std::sync::Arc;

use crate::App;
use connect::{ApiError, Code, Service};
use rpc::streams::{StreamOptions, Streams};
use server::{Request, Response};

/// Routes requests to RPCs.
pub struct Api {
    app: Arc<App>,
    streams: Streams,
}

impl Api {
    /// An API with the default stream options.
    pub fn new(app: Arc<App>) -> Api {
        Api {
            app,
            streams: Streams::new(StreamOptions::default()),
        }
    }

    /// Sets how many streams may be open at once and how often quiet ones write.
    pub fn with_stream_options(mut self, options: StreamOptions) -> Api {
        self.streams = Streams::new(options);
        self
    }

    fn route(&self, req: &Request) -> Response {
        // Download links carry their own credential (a signed token), not Basic/Bearer.
        if let Some(rest) = req.path.strip_prefix("/download/") {
            return rpc::browse::download(&self.app, req, rest);
        }
        match req.path.as_str() {
            "/metrics" => return self.get_page(req, metrics::serve),
            "/" | "/index.html" => return self.get_page(req, status_page::serve),
            _ => {}
        }
        let Some((service, method)) = connect::parse_path(&req.path) else {
            return ApiError::not_found(format!("no such path: {}", req.path)).response();
        };
        let streaming = match connect::check_transport(req) {
            Ok(streaming) => streaming,
            Err(response) => return response,
        };
        let unary = rpc::find(service, method);
        let stream = rpc::streams::find(service, method);
        if unary.is_none() && stream.is_none() {
            return ApiError::not_found(format!("no such method: {method}")).response();
        }
        if service == Service::Backrest
            && let Err(e) = self
                .app
                .auth
                .check(req.header("authorization"), req.peer.ip())
        {
            return e.response();
        }
        if let Some(stream) = stream {
            if !streaming {
                return ApiError::invalid(format!(
                    "{method} is a server-streaming RPC: send it with Content-Type: \
                     application/connect+json, the request in one envelope (a byte 0, the \
                     JSON's length as 4 bytes big-endian, the JSON)"
                ))
                .response();
            }
            return self.streams.serve(&self.app, stream, &req.body);
        }
        if streaming {
            return ApiError::invalid(format!(
                "{method} is a unary RPC: send it with Content-Type: application/json"
            ))
            .response();
        }
        let Some(handler) = unary else {
            return ApiError::not_found(format!("no such method: {method}")).response();
        };
        match handler(&self.app, &req.body) {
            Ok(body) => connect::ok_json(body),
            // A fault of footrest's own (the operation log's disk is full, say) goes to
            // the log too: whoever reads it may not be the one who got the answer.
            Err(e) if e.code == Code::Internal => {
                error!("{} {} failed: {e}", req.method, req.path);
                e.response()
            }
            Err(e) => {
                debug!("{} {}: {e}", req.method, req.path);
                e.response()
            }
        }
    }
}

impl Api {
    /// A page read with GET (metrics, the status page), behind the API's credentials.
    fn get_page(&self, req: &Request, page: fn(&App) -> Response) -> Response {
        if req.method != "GET" {
            return Response::error(
                405,
                "unimplemented",
                &format!("{} is not allowed here; use GET", req.method),
            )
            .with_header("Allow", "GET");
        }
        if let Err(e) = self
            .app
            .auth
            .check(req.header("authorization"), req.peer.ip())
        {
            return e.response();
        }
        page(&self.app)
    }
}

impl server::Handler for Api {
    fn handle(&self, req: Request) -> Response {
        self.route(&req)
    }

    /// A download link's token is its credential: the log shows `<token>` instead.
    fn log_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        match path.strip_prefix("/download/") {
            Some(rest) => {
                let file = rest.split_once('/').map_or("", |(_, file)| file);
                format!("/download/<token>/{file}").into()
            }
            None => path.into(),
        }
    }
}
