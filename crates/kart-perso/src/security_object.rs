//! security_object
