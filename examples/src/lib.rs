//! kart integrator examples
