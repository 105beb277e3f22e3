//! run-hooks: sends the lifecycle events to hosts through SSM and polls their outcome.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_steps(cutover_aws::queue::StepFunction::RunHooks)
}
