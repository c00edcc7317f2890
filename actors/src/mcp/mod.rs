//! The Model Context Protocol as the actors speak it: JSON-RPC messages in, JSON-RPC answers out.
//! Transport concerns (HTTP status codes, headers, SSE framing) are the front's; this module only
//! knows methods, sessions, tools, resources and prompts.

pub mod completion;
pub mod context;
pub mod dispatch;
#[cfg(feature = "conformance")]
pub mod fixtures;
pub mod jsonrpc;
pub mod prompts;
pub mod protocol;
pub mod resources;
pub mod tools;
