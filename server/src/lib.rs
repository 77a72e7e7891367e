//! rtbus server.
