//! kart end-to-end tests
