//! Lifecycle event names and the order in which each kind of deployment runs them.
//!
//! The names and orders are CodeDeploy's: revisions written for CodeDeploy name these events
//! in their AppSpec `hooks`, and users read them back in `lifecycleEvents`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::ComputePlatform;

/// One step of a target's deployment, in CodeDeploy's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LifecycleEventName {
    BeforeBlockTraffic,
    BlockTraffic,
    AfterBlockTraffic,
    ApplicationStop,
    DownloadBundle,
    BeforeInstall,
    Install,
    AfterInstall,
    AllowTestTraffic,
    AfterAllowTestTraffic,
    ApplicationStart,
    ValidateService,
    BeforeAllowTraffic,
    AllowTraffic,
    AfterAllowTraffic,
}

use LifecycleEventName::*;

impl LifecycleEventName {
    /// Every event, in no particular flow's order.
    pub const ALL: [LifecycleEventName; 15] = [
        BeforeBlockTraffic,
        BlockTraffic,
        AfterBlockTraffic,
        ApplicationStop,
        DownloadBundle,
        BeforeInstall,
        Install,
        AfterInstall,
        AllowTestTraffic,
        AfterAllowTestTraffic,
        ApplicationStart,
        ValidateService,
        BeforeAllowTraffic,
        AllowTraffic,
        AfterAllowTraffic,
    ];

    /// The events that a Server AppSpec may attach scripts to.
    pub const SERVER_HOOKS: [LifecycleEventName; 9] = [
        BeforeBlockTraffic,
        AfterBlockTraffic,
        ApplicationStop,
        BeforeInstall,
        AfterInstall,
        ApplicationStart,
        ValidateService,
        BeforeAllowTraffic,
        AfterAllowTraffic,
    ];

    /// The events that a Lambda AppSpec may attach hook functions to.
    pub const LAMBDA_HOOKS: [LifecycleEventName; 2] = [BeforeAllowTraffic, AfterAllowTraffic];

    /// The events that an ECS AppSpec may attach hook functions to.
    pub const ECS_HOOKS: [LifecycleEventName; 5] = [
        BeforeInstall,
        AfterInstall,
        AfterAllowTestTraffic,
        BeforeAllowTraffic,
        AfterAllowTraffic,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            BeforeBlockTraffic => "BeforeBlockTraffic",
            BlockTraffic => "BlockTraffic",
            AfterBlockTraffic => "AfterBlockTraffic",
            ApplicationStop => "ApplicationStop",
            DownloadBundle => "DownloadBundle",
            BeforeInstall => "BeforeInstall",
            Install => "Install",
            AfterInstall => "AfterInstall",
            AllowTestTraffic => "AllowTestTraffic",
            AfterAllowTestTraffic => "AfterAllowTestTraffic",
            ApplicationStart => "ApplicationStart",
            ValidateService => "ValidateService",
            BeforeAllowTraffic => "BeforeAllowTraffic",
            AllowTraffic => "AllowTraffic",
            AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// The events a hook (script or function) may be attached to on this platform.
    pub fn hookable(platform: ComputePlatform) -> &'static [LifecycleEventName] {
        match platform {
            ComputePlatform::Server => &Self::SERVER_HOOKS,
            ComputePlatform::Lambda => &Self::LAMBDA_HOOKS,
            ComputePlatform::Ecs => &Self::ECS_HOOKS,
        }
    }

    /// True for the events that cutover itself performs and that take no hooks
    /// (CodeDeploy marks them with a star in its lifecycle diagrams).
    pub const fn is_system_event(self) -> bool {
        matches!(
            self,
            BlockTraffic | DownloadBundle | Install | AllowTestTraffic | AllowTraffic
        )
    }

    /// The events whose failures `ignoreApplicationStopFailures` lets a deployment ignore.
    pub const fn is_ignorable_stop_event(self) -> bool {
        matches!(
            self,
            ApplicationStop | BeforeBlockTraffic | AfterBlockTraffic
        )
    }

    /// The events that run the scripts of the group's last successful revision, because the new
    /// revision is not installed yet when they run.
    pub const fn runs_previous_revision(self) -> bool {
        matches!(
            self,
            ApplicationStop | BeforeBlockTraffic | AfterBlockTraffic
        )
    }

    /// The nearest event name to `name` among `candidates`, for "did you mean" hints.
    pub fn suggest(name: &str, candidates: &[LifecycleEventName]) -> Option<LifecycleEventName> {
        let lower = name.to_ascii_lowercase();
        candidates
            .iter()
            .map(|c| {
                let cand = c.as_str().to_ascii_lowercase();
                (strsim::damerau_levenshtein(&lower, &cand), *c)
            })
            .filter(|(distance, c)| *distance <= (c.as_str().len() / 3).max(2))
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, c)| c)
    }
}

impl fmt::Display for LifecycleEventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of CodeDeploy's lifecycle events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a lifecycle event")]
pub struct UnknownLifecycleEvent(pub String);

impl FromStr for LifecycleEventName {
    type Err = UnknownLifecycleEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownLifecycleEvent(s.to_owned()))
    }
}

/// The events of a Server in-place deployment, in order. The Block and Allow events run only
/// when the group routes traffic through a load balancer (`WITH_TRAFFIC_CONTROL`).
pub fn server_in_place(with_traffic_control: bool) -> Vec<LifecycleEventName> {
    let mut events = Vec::with_capacity(13);
    if with_traffic_control {
        events.extend(BLOCK_TRAFFIC);
    }
    events.extend(SERVER_INSTALL);
    if with_traffic_control {
        events.extend(ALLOW_TRAFFIC);
    }
    events
}

/// The events that install a revision on a host, in order.
pub const SERVER_INSTALL: [LifecycleEventName; 7] = [
    ApplicationStop,
    DownloadBundle,
    BeforeInstall,
    Install,
    AfterInstall,
    ApplicationStart,
    ValidateService,
];

/// The events that take a host out of a load balancer.
pub const BLOCK_TRAFFIC: [LifecycleEventName; 3] =
    [BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic];

/// The events that put a host into a load balancer.
pub const ALLOW_TRAFFIC: [LifecycleEventName; 3] =
    [BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic];

/// The events of a replacement (green) host in a blue/green deployment, in order: the install,
/// then, when traffic is rerouted, the Allow events. The original (blue) hosts run
/// [`BLOCK_TRAFFIC`].
pub fn server_replacement() -> Vec<LifecycleEventName> {
    [SERVER_INSTALL.as_slice(), &ALLOW_TRAFFIC].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_strings_and_json() {
        for event in LifecycleEventName::ALL {
            assert_eq!(event.as_str().parse::<LifecycleEventName>(), Ok(event));
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{event}\""));
        }
        assert!("AfterInstal".parse::<LifecycleEventName>().is_err());
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        let hooks = &LifecycleEventName::SERVER_HOOKS;
        assert_eq!(
            LifecycleEventName::suggest("AfterInstal", hooks),
            Some(AfterInstall)
        );
        assert_eq!(
            LifecycleEventName::suggest("afterinstall", hooks),
            Some(AfterInstall)
        );
        assert_eq!(
            LifecycleEventName::suggest("ApplicationStrat", hooks),
            Some(ApplicationStart)
        );
        assert_eq!(
            LifecycleEventName::suggest("ValidateServices", hooks),
            Some(ValidateService)
        );
        assert_eq!(LifecycleEventName::suggest("Deploy", hooks), None);
    }

    #[test]
    fn in_place_order_matches_codedeploy() {
        let names: Vec<_> = server_in_place(false).iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService"
            ]
        );
        let with_lb = server_in_place(true);
        assert_eq!(with_lb.len(), 13);
        assert_eq!(
            with_lb[..3],
            [BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic]
        );
        assert_eq!(
            with_lb[10..],
            [BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic]
        );
    }

    #[test]
    fn system_events_take_no_hooks() {
        for platform in [
            ComputePlatform::Server,
            ComputePlatform::Lambda,
            ComputePlatform::Ecs,
        ] {
            for event in LifecycleEventName::hookable(platform) {
                assert!(!event.is_system_event(), "{event} on {platform:?}");
            }
        }
    }
}
