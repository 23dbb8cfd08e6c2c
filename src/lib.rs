//! Root package of the workspace: owns end-to-end tests (`tests/`) and benches (`benches/`).
