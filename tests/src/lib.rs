//! End-to-end harness (see README).
