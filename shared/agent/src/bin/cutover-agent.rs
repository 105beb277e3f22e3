//! The `cutover-agent` binary that SSM Run Command calls on a host. It is not built yet: it says
//! so and exits non-zero, so that nothing mistakes it for a working agent.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "cutover-agent {}: installing revisions and running hooks is not available in this build yet",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
