//! kart CLI
fn main() {}
