//! kart-perso
