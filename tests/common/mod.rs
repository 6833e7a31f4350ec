//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod crash;
pub mod datadriven;
pub mod mem_cluster;
pub mod network;
