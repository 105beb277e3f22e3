//! s3-trigger: an uploaded revision starts a deployment in every group that watches it.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_s3_trigger()
}
