//! kart-sim: reference simulator of the kart national-ID applet.

pub mod vpcd;
