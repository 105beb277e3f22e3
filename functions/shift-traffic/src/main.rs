//! shift-traffic: takes hosts out of their target groups and puts them back.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_steps(cutover_aws::queue::StepFunction::ShiftTraffic)
}
