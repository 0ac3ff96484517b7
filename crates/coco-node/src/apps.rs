//! Apps that ship with the node.

pub mod logging;
