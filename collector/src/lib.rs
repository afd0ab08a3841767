//! Sightline collector library (minimal crate root for the translate branch; the
//! integrator merges it with the server's lib.rs).

pub mod translate;
