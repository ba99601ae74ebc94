//! kart-pcsc
