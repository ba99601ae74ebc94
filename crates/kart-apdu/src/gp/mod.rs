//! GlobalPlatform secure channels SCP02 and SCP03 (host side).
