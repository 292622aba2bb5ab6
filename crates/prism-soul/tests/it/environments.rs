//! Environments and their secrets.
