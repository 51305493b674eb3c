//! The response-path sanitizer (in progress).
