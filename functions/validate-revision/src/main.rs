//! validate-revision: takes the group's lock, checks the revision in S3 and finds the hosts.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_steps(cutover_aws::queue::StepFunction::ValidateRevision)
}
