//! kart-sim
