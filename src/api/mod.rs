//! The HTTP face: the connection layer, the Connect protocol, authentication and the
//! RPC handlers. Nothing below `api` knows about HTTP.

pub mod auth;
pub mod connect;
pub mod rpc;
pub mod server;
