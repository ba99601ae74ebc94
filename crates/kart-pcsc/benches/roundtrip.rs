//! Placeholder; the round-trip benchmark follows.
fn main() {}
