//! kart-spec: the applet specification and vendor profiles.
