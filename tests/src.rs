//! End-to-end tests of cutover: they run the real binaries, never the handlers directly.
