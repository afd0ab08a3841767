//! Unit tests of the anomaly detector (filled in below).
