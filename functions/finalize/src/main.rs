//! finalize: delivers events, publishes notifications, starts rollbacks and ends deployments.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_steps(cutover_aws::queue::StepFunction::Finalize)
}
