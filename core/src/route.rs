//! The routing table (spec section 2).
//!
//! STUB: to be written (issue 2, routing).
