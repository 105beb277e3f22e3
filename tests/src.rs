//! End-to-end tests of cutover: they run the real binaries, never the handlers directly.
//!
//! This library finds the binaries that `cargo build --workspace` put next to the test
//! executables and the repository's own files (examples, fixtures), and runs the function
//! binaries the way AWS Lambda does, against the AWS emulator: [`lambda::Function`] serves a
//! function the Lambda Runtime API, [`events::EventSource`] feeds it from an SQS queue, and
//! [`emulator::Emulator`] reaches the emulator. [`url::FunctionUrl`] puts a function URL in
//! front of a function, [`serve::Serve`] runs `cutover serve` for the tests of the API and of
//! the operator commands, and [`awscli::Clients`] points the aws CLI and boto3 at an endpoint.

pub mod awscli;
pub mod cloud;
pub mod emulator;
pub mod events;
pub mod functions;
pub mod lambda;
pub mod serve;
pub mod url;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository root")
        .to_path_buf()
}

/// A workspace binary, built by `cargo build --workspace` (which `scripts/test` runs first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows where it runs from");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace), as scripts/test does",
        path.display()
    );
    path
}

/// Runs the `cutover` binary with `args` and returns what it printed and its exit status.
pub fn cutover(args: &[&str]) -> Output {
    Command::new(binary("cutover"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the cutover binary runs")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Copies the directory tree `from` to `to` (created), keeping file modes, so that a test can
/// change a copy of an example revision without touching the repository.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("a readable directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        }
    }
}

/// The sample web app, `examples/webapp`.
pub fn webapp() -> PathBuf {
    repo_root().join("examples/webapp")
}

/// A copy of the web app whose ValidateService always fails.
pub fn failing_webapp() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&webapp(), dir.path());
    std::fs::write(
        dir.path().join("scripts/validate.sh"),
        "#!/bin/sh\necho 'the health check failed' >&2\nexit 3\n",
    )
    .unwrap();
    dir
}

/// A copy of the web app whose ApplicationStart takes `seconds` longer.
pub fn slow_webapp(seconds: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&webapp(), dir.path());
    let path = dir.path().join("scripts/start.sh");
    let script = std::fs::read_to_string(&path).unwrap();
    let (shebang, rest) = script.split_once('\n').unwrap();
    std::fs::write(&path, format!("{shebang}\nsleep {seconds}\n{rest}")).unwrap();
    dir
}
