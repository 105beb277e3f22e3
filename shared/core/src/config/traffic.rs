//! What a Lambda or ECS configuration means for traffic: the weight of the new version at each
//! step, and how long after the start each step comes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{MAX_TRAFFIC_ROUTING_MINUTES, TrafficRoutingConfig, TrafficRoutingType};

/// One step: from `after` since the first shift, the new version gets `percent` of traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStep {
    #[serde(with = "minutes")]
    pub after: Duration,
    pub percent: u8,
}

/// The steps of a traffic shift, ending at 100%.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSchedule(pub Vec<TrafficStep>);

impl TrafficSchedule {
    /// The schedule of a routing configuration, or why CodeDeploy would refuse it.
    pub fn new(routing: &TrafficRoutingConfig) -> Result<Self, String> {
        let minute = Duration::from_secs(60);
        let step = |minutes: u32, percent: u8| TrafficStep {
            after: minute * minutes,
            percent,
        };
        let steps = match routing.kind {
            TrafficRoutingType::AllAtOnce => vec![step(0, 100)],
            TrafficRoutingType::TimeBasedCanary => {
                let c = routing.time_based_canary.ok_or(
                    "TimeBasedCanary needs timeBasedCanary {canaryPercentage, canaryInterval}",
                )?;
                let percent = percentage(c.canary_percentage, "canaryPercentage")?;
                let interval = interval(c.canary_interval, "canaryInterval")?;
                vec![step(0, percent), step(interval, 100)]
            }
            TrafficRoutingType::TimeBasedLinear => {
                let l = routing.time_based_linear.ok_or(
                    "TimeBasedLinear needs timeBasedLinear {linearPercentage, linearInterval}",
                )?;
                let percent = percentage(l.linear_percentage, "linearPercentage")?;
                let interval = interval(l.linear_interval, "linearInterval")?;
                let count = 100u32.div_ceil(u32::from(percent));
                let last = (count - 1).saturating_mul(interval);
                if last > MAX_TRAFFIC_ROUTING_MINUTES {
                    return Err(format!(
                        "{percent}% every {interval} minutes takes {last} minutes to reach 100%; the most allowed is {MAX_TRAFFIC_ROUTING_MINUTES}"
                    ));
                }
                (0..count)
                    .map(|i| step(i * interval, (u32::from(percent) * (i + 1)).min(100) as u8))
                    .collect()
            }
        };
        Ok(TrafficSchedule(steps))
    }

    /// How long the whole shift takes, from the first step to the last.
    pub fn duration(&self) -> Duration {
        self.0.last().map_or(Duration::ZERO, |s| s.after)
    }
}

fn percentage(value: i64, field: &str) -> Result<u8, String> {
    if (1..=99).contains(&value) {
        Ok(value as u8)
    } else {
        Err(format!("{field} is {value}; it must be between 1 and 99"))
    }
}

fn interval(value: i64, field: &str) -> Result<u32, String> {
    if (1..=i64::from(MAX_TRAFFIC_ROUTING_MINUTES)).contains(&value) {
        Ok(value as u32)
    } else {
        Err(format!(
            "{field} is {value} minutes; it must be between 1 and {MAX_TRAFFIC_ROUTING_MINUTES}"
        ))
    }
}

mod minutes {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs() / 60)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)? * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::super::predefined;
    use super::*;

    fn schedule(name: &str) -> Vec<(u64, u8)> {
        let config = predefined(name).unwrap();
        TrafficSchedule::new(&config.traffic_routing_config.unwrap())
            .unwrap()
            .0
            .iter()
            .map(|s| (s.after.as_secs() / 60, s.percent))
            .collect()
    }

    #[test]
    fn canaries_shift_ten_percent_then_the_rest() {
        assert_eq!(
            schedule("CodeDeployDefault.LambdaCanary10Percent5Minutes"),
            [(0, 10), (5, 100)]
        );
        assert_eq!(
            schedule("CodeDeployDefault.LambdaCanary10Percent30Minutes"),
            [(0, 10), (30, 100)]
        );
        assert_eq!(
            schedule("CodeDeployDefault.ECSCanary10Percent15Minutes"),
            [(0, 10), (15, 100)]
        );
    }

    #[test]
    fn linear_shifts_ten_percent_every_interval() {
        let steps = schedule("CodeDeployDefault.LambdaLinear10PercentEvery3Minutes");
        assert_eq!(steps.len(), 10);
        assert_eq!(steps[0], (0, 10));
        assert_eq!(steps[4], (12, 50));
        assert_eq!(steps[9], (27, 100));
        let ecs = schedule("CodeDeployDefault.ECSLinear10PercentEvery1Minutes");
        assert_eq!(ecs.last(), Some(&(9, 100)));
    }

    #[test]
    fn uneven_linear_percentages_end_at_exactly_one_hundred() {
        let routing = TrafficRoutingConfig {
            kind: TrafficRoutingType::TimeBasedLinear,
            time_based_canary: None,
            time_based_linear: Some(super::super::TimeBasedLinear {
                linear_percentage: 30,
                linear_interval: 2,
            }),
        };
        let s = TrafficSchedule::new(&routing).unwrap();
        let percents: Vec<u8> = s.0.iter().map(|s| s.percent).collect();
        assert_eq!(percents, [30, 60, 90, 100]);
        assert_eq!(s.duration(), Duration::from_secs(6 * 60));
    }

    #[test]
    fn all_at_once_is_a_single_step() {
        assert_eq!(schedule("CodeDeployDefault.LambdaAllAtOnce"), [(0, 100)]);
        assert_eq!(schedule("CodeDeployDefault.ECSAllAtOnce"), [(0, 100)]);
    }
}
