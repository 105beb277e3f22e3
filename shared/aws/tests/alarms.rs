//! CloudWatch alarms against the emulator: the first alarm in ALARM, in the order given, and
//! alarms that do not exist.

mod support;

use cutover_aws::alarms::CloudWatchAlarms;
use cutover_aws::cloudwatch;
use cutover_aws::cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use cutover_engine::Alarms;
use support::unique;

/// A metric alarm named `name`, set to `state`.
async fn alarm(client: &cloudwatch::Client, name: &str, state: StateValue) {
    client
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("Cutover/Tests")
        .metric_name("Errors")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    client
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("set by the test")
        .send()
        .await
        .expect("SetAlarmState");
}

#[tokio::test]
async fn the_first_alarm_in_alarm_in_the_order_given_is_found() {
    let config = support::sdk_config().await;
    let client = cloudwatch::Client::new(&config);
    let quiet = unique("quiet");
    let loud = unique("loud");
    let louder = unique("louder");
    alarm(&client, &quiet, StateValue::Ok).await;
    alarm(&client, &loud, StateValue::Alarm).await;
    alarm(&client, &louder, StateValue::Alarm).await;
    let alarms = CloudWatchAlarms::new(&config);

    assert_eq!(
        alarms
            .first_in_alarm(&[quiet.clone(), louder.clone(), loud.clone()])
            .await
            .unwrap(),
        Some(louder.clone())
    );
    assert_eq!(
        alarms
            .first_in_alarm(&[loud.clone(), louder.clone()])
            .await
            .unwrap(),
        Some(loud.clone())
    );
    assert_eq!(
        alarms
            .first_in_alarm(std::slice::from_ref(&quiet))
            .await
            .unwrap(),
        None
    );
    assert_eq!(alarms.first_in_alarm(&[]).await.unwrap(), None);

    // Back to OK: no longer found.
    client
        .set_alarm_state()
        .alarm_name(&louder)
        .state_value(StateValue::Ok)
        .state_reason("recovered")
        .send()
        .await
        .unwrap();
    assert_eq!(
        alarms
            .first_in_alarm(&[quiet.clone(), louder.clone(), loud.clone()])
            .await
            .unwrap(),
        Some(loud)
    );
}

#[tokio::test]
async fn an_alarm_that_does_not_exist_is_a_permanent_error_naming_it() {
    let config = support::sdk_config().await;
    let client = cloudwatch::Client::new(&config);
    let quiet = unique("quiet");
    let loud = unique("loud");
    let missing = unique("missing");
    alarm(&client, &quiet, StateValue::Ok).await;
    alarm(&client, &loud, StateValue::Alarm).await;
    let alarms = CloudWatchAlarms::new(&config);

    let err = alarms
        .first_in_alarm(&[quiet.clone(), missing.clone()])
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert!(
        err.message.contains(&format!("'{missing}'")),
        "{}",
        err.message
    );
    assert!(!err.message.contains(&quiet), "{}", err.message);

    // An alarm in ALARM is the better reason to stop.
    assert_eq!(
        alarms
            .first_in_alarm(&[missing.clone(), loud.clone()])
            .await
            .unwrap(),
        Some(loud)
    );
}

#[tokio::test]
async fn more_than_a_hundred_names_are_read_in_batches() {
    let config = support::sdk_config().await;
    let client = cloudwatch::Client::new(&config);
    let names: Vec<String> = (0..105).map(|i| unique(&format!("many{i}"))).collect();
    for name in &names[..104] {
        alarm(&client, name, StateValue::Ok).await;
    }
    alarm(&client, &names[104], StateValue::Alarm).await;
    let alarms = CloudWatchAlarms::new(&config);
    assert_eq!(
        alarms.first_in_alarm(&names).await.unwrap(),
        Some(names[104].clone())
    );
}
