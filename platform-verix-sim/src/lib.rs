//! # nfy-verix-sim
//!
//! The Verix-style profile of nfy: local connections only, configuration
//! ignored, tighter limits.
//!
//! Coming in issue 4.
