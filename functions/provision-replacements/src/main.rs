//! provision-replacements: provisions blue/green replacements; releases the old or discards the new.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_steps(cutover_aws::queue::StepFunction::ProvisionReplacements)
}
