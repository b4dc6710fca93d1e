//! Benchmarks of the core's hot functions (filled in with the routing table).
#![allow(missing_docs)]

fn main() {}
