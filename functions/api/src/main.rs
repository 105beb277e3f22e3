//! api: CodeDeploy's API behind a Lambda function URL, for the aws CLI, the SDKs and hooks.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_api()
}
