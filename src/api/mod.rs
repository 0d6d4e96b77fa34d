//! The HTTP face: the connection layer, the Connect protocol, authentication and the
//! RPC handlers. [`Api`] is the one [`server::Handler`]: it routes a request to its RPC
//! after the transport and authentication rules of CONTRACT §1 and §2. Nothing below
//! `api` knows about HTTP.

pub mod auth;
pub mod connect;
pub mod rpc;
pub mod server;

use std::sync::Arc;

use crate::App;
use connect::{ApiError, Service};
use server::{Request, Response};

/// Routes requests to RPCs.
pub struct Api {
    app: Arc<App>,
}

impl Api {
    pub fn new(app: Arc<App>) -> Api {
        Api { app }
    }

    fn route(&self, req: &Request) -> Response {
        let Some((service, method)) = connect::parse_path(&req.path) else {
            return ApiError::not_found(format!("no such path: {}", req.path)).response();
        };
        let streaming = match connect::check_transport(req) {
            Ok(streaming) => streaming,
            Err(response) => return response,
        };
        let Some(handler) = rpc::find(service, method) else {
            return ApiError::not_found(format!("no such method: {method}")).response();
        };
        if service == Service::Backrest
            && let Err(e) = self
                .app
                .auth
                .check(req.header("authorization"), req.peer.ip())
        {
            return e.response();
        }
        if streaming {
            return ApiError::invalid(format!(
                "{method} is a unary RPC: send it with Content-Type: application/json"
            ))
            .response();
        }
        match handler(&self.app, &req.body) {
            Ok(body) => connect::ok_json(body),
            Err(e) => {
                debug!("{} {}: {e}", req.method, req.path);
                e.response()
            }
        }
    }
}

impl server::Handler for Api {
    fn handle(&self, req: Request) -> Response {
        let response = self.route(&req);
        debug!(
            "{} {} {} from {}",
            req.method, req.path, response.status, req.peer
        );
        response
    }
}
