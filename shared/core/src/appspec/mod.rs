//! AppSpec files: parsing and validation for Server, Lambda and ECS revisions.
