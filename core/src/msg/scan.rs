//! Validating JSON scanner (no allocation, no recursion limit surprises).
//!
//! STUB: to be written (issue 2, message layer).

use core::fmt;

/// Why a text is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset where the problem was found.
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}", self.offset)
    }
}

/// Checks that `text` is exactly one JSON value.
pub fn validate_value(text: &[u8]) -> Result<(), JsonError> {
    if text.is_empty() {
        return Err(JsonError { offset: 0 });
    }
    Ok(())
}
