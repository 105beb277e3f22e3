//! The `cutover` command line.

fn main() {}
