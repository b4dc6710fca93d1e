//! # nfy-tests
//!
//! The conformance suite, run against each platform profile.
//!
//! Coming in issue 4.
