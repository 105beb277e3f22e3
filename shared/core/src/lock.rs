//! One active deployment per deployment group.
