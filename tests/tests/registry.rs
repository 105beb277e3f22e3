//! The state table keeps the registry's contract: applications, groups, configurations,
//! revisions and tags in DynamoDB (the emulator's), as the api function uses them.

use cutover_tests::cloud::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_table_keeps_the_registrys_contract() {
    let stack = Stack::start(&[]).await;
    cutover_api::contract::check(&stack.store).await;
}
