//! What `cutover local deploy` shows a person: live progress on stderr while a deployment runs
//! ([`Progress`]), and a table of hosts and their lifecycle events when it ends
//! ([`summary_table`]).
//!
//! The summary has a row per host and a column per lifecycle event. A table wider than 160
//! columns (13 events when the group uses a load balancer, or long host names) is reshaped; the
//! first of these that fits is printed, and the last one when none does:
//!
//! 1. the same table turned on its side, an event per row and a host per column, which suits
//!    the handful of hosts of a local fleet;
//! 2. a compact table: short event names (`AppStop`, `BeforeAllow`) and short status words
//!    (`ok`, `FAIL`), with a legend under it;
//! 3. the compact table without durations.
//!
//! Without a terminal, progress is one line per change that matters, so a log reads as a
//! timeline of the deployment.
//!
//! Both work on a [`DeploymentView`]: the core's own `Deployment`, which `cutover local` drives,
//! and what CodeDeploy's API answers (`deploymentInfo` and the `instanceTarget`s), which the
//! operator commands follow.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::time::Duration;

use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::machine::{Deployment, Phase};
use cutover_core::model::{
    DeploymentInfo, DeploymentOverview, DeploymentStatus, ErrorInformation, LifecycleEvent,
    LifecycleEventStatus, RollbackInfo, TargetLabel, TargetStatus,
};
use cutover_core::{DeploymentId, TargetId, Timestamp};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Outcome;

/// The widest table printed as it is.
const MAX_WIDTH: usize = 160;
/// How many of a failed event's last log lines the summary shows.
const LOG_LINES: usize = 10;
/// Failed hosts whose diagnostics the summary shows; any others are only named, because a
/// thousand copies of the same script error bury the first one.
const FAILED_HOSTS_SHOWN: usize = 20;
/// Hosts named on the live "in progress" line before it only counts the rest.
const RUNNING_SHOWN: usize = 6;
/// Between table columns.
const GAP: &str = "  ";

// ---------------------------------------------------------------------------------------------
// What is shown of a deployment

/// What the summary and the progress show of a deployment, whoever holds it.
pub trait DeploymentView {
    fn deployment_id(&self) -> &DeploymentId;
    fn status(&self) -> DeploymentStatus;
    /// Changes whenever anything else here changes: progress skips a version it has seen.
    fn version(&self) -> u64;
    /// The deployment this one waits behind, and the group that runs one at a time, when it
    /// is queued and that is known.
    fn queued_behind(&self) -> Option<(&DeploymentId, &str)>;
    fn create_time(&self) -> Timestamp;
    fn start_time(&self) -> Option<Timestamp>;
    fn complete_time(&self) -> Option<Timestamp>;
    fn error_information(&self) -> Option<&ErrorInformation>;
    fn rollback_info(&self) -> Option<&RollbackInfo>;
    fn target_count(&self) -> usize;
    /// The `i`th target, `i` below [`DeploymentView::target_count`].
    fn target(&self, i: usize) -> TargetView<'_>;
    /// Where a Lambda deployment's alias sends its traffic, once that is known.
    fn traffic(&self) -> Option<TrafficView<'_>> {
        None
    }

    /// Whether the targets are Lambda aliases rather than hosts.
    fn deploys_aliases(&self) -> bool {
        false
    }

    fn is_finished(&self) -> bool {
        self.status().is_final()
    }
}

/// What is shown of one target: its id, status and lifecycle events.
#[derive(Clone, Copy, Debug)]
pub struct TargetView<'a> {
    pub target_id: &'a TargetId,
    pub status: TargetStatus,
    pub lifecycle_events: &'a [LifecycleEvent],
    /// Blue or Green, for the hosts of a blue/green deployment.
    pub label: Option<TargetLabel>,
}

impl TargetView<'_> {
    /// The target's id, with its label when it has one: `host-1 (Blue)`.
    fn name(&self) -> String {
        match self.label {
            Some(label) => format!("{} ({label})", self.target_id),
            None => self.target_id.to_string(),
        }
    }
}

/// What `n` targets are called: hosts, or a Lambda deployment's aliases.
fn targets_word(aliases: bool, n: usize) -> &'static str {
    match (aliases, n) {
        (false, 1) => "host",
        (false, _) => "hosts",
        (true, 1) => "alias",
        (true, _) => "aliases",
    }
}

/// How a Lambda deployment's alias splits its traffic between the two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficView<'a> {
    pub target: &'a TargetId,
    pub current_version: &'a str,
    pub target_version: &'a str,
    /// The target version's share, in percent.
    pub percent: u8,
}

impl DeploymentView for Deployment {
    fn deployment_id(&self) -> &DeploymentId {
        &self.deployment_id
    }

    fn status(&self) -> DeploymentStatus {
        self.phase.status()
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn queued_behind(&self) -> Option<(&DeploymentId, &str)> {
        match &self.phase {
            Phase::Queued { behind } => Some((behind, &self.group.deployment_group_name)),
            _ => None,
        }
    }

    fn create_time(&self) -> Timestamp {
        self.create_time
    }

    fn start_time(&self) -> Option<Timestamp> {
        self.start_time
    }

    fn complete_time(&self) -> Option<Timestamp> {
        self.complete_time
    }

    fn error_information(&self) -> Option<&ErrorInformation> {
        self.error_information.as_ref()
    }

    fn rollback_info(&self) -> Option<&RollbackInfo> {
        self.rollback_info.as_ref()
    }

    fn target_count(&self) -> usize {
        self.targets.len()
    }

    fn target(&self, i: usize) -> TargetView<'_> {
        let t = &self.targets[i];
        TargetView {
            target_id: &t.target_id,
            status: t.status,
            lifecycle_events: &t.lifecycle_events,
            label: t.instance_label,
        }
    }

    fn is_finished(&self) -> bool {
        self.phase.is_finished()
    }

    fn deploys_aliases(&self) -> bool {
        self.group.compute_platform == cutover_core::model::ComputePlatform::Lambda
    }

    fn traffic(&self) -> Option<TrafficView<'_>> {
        let f = &self.lambda.as_ref()?.function;
        Some(TrafficView {
            target: &self.targets.first()?.target_id,
            current_version: &f.current_version,
            target_version: &f.target_version,
            percent: self.target_version_percent()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The summary table

/// A table of the deployment's hosts by lifecycle event, then its outcome: id, status, total
/// time, host counts, the error, the rollback, and each failed host's diagnostics.
pub fn summary_table(d: &impl DeploymentView) -> String {
    let mut out = String::new();
    if d.target_count() == 0 {
        out.push_str("No targets.\n");
    } else {
        table(d, &mut out);
    }
    out.push('\n');
    ending(d, &mut out);
    out
}

fn table(d: &impl DeploymentView, out: &mut String) {
    let events = event_columns(d);
    let full = host_rows(d, &events, Words::Full, true);
    if full.width() <= MAX_WIDTH {
        full.render(out);
        return;
    }
    let turned = event_rows(d, &events);
    if turned.width() <= MAX_WIDTH {
        turned.render(out);
        return;
    }
    let compact = host_rows(d, &events, Words::Short, true);
    if compact.width() <= MAX_WIDTH {
        compact.render(out);
    } else {
        host_rows(d, &events, Words::Short, false).render(out);
    }
    out.push_str(
        "(ok Succeeded, FAIL Failed, skip Skipped, run InProgress, - Pending, ? Unknown)\n",
    );
}

/// The events the targets have, in the order they run. Targets usually share one list; merging
/// keeps each target's own order when they do not (hosts that block traffic and hosts that do
/// not, say).
fn event_columns(d: &impl DeploymentView) -> Vec<LifecycleEventName> {
    let mut columns: Vec<LifecycleEventName> = Vec::new();
    let mut last: Vec<LifecycleEventName> = Vec::new();
    for t in targets(d) {
        if t.lifecycle_events.len() == last.len()
            && t.lifecycle_events
                .iter()
                .zip(&last)
                .all(|(e, n)| e.lifecycle_event_name == *n)
        {
            continue;
        }
        last = t
            .lifecycle_events
            .iter()
            .map(|e| e.lifecycle_event_name)
            .collect();
        let mut at = 0;
        for name in &last {
            match columns.iter().position(|c| c == name) {
                Some(i) => at = i + 1,
                None => {
                    columns.insert(at, *name);
                    at += 1;
                }
            }
        }
    }
    columns
}

/// A row per host: its id, a cell per event, its status.
fn host_rows(
    d: &impl DeploymentView,
    events: &[LifecycleEventName],
    words: Words,
    timed: bool,
) -> Grid {
    let mut rows = Vec::with_capacity(d.target_count() + 1);
    let mut header = vec![if d.deploys_aliases() { "Alias" } else { "Host" }.to_owned()];
    header.extend(events.iter().map(|e| event_title(*e, words).to_owned()));
    header.push("Status".to_owned());
    rows.push(header);
    for t in targets(d) {
        let mut row = vec![t.name()];
        row.extend(events.iter().map(|e| cell(find_event(t, *e), words, timed)));
        row.push(t.status.to_string());
        rows.push(row);
    }
    Grid { rows }
}

/// A row per event and a column per host; the last row is each host's status.
fn event_rows(d: &impl DeploymentView, events: &[LifecycleEventName]) -> Grid {
    let mut rows = Vec::with_capacity(events.len() + 2);
    let mut header = vec!["Event".to_owned()];
    header.extend(targets(d).map(|t| t.name()));
    rows.push(header);
    for e in events {
        let mut row = vec![e.as_str().to_owned()];
        row.extend(targets(d).map(|t| cell(find_event(t, *e), Words::Full, true)));
        rows.push(row);
    }
    let mut status = vec!["Status".to_owned()];
    status.extend(targets(d).map(|t| t.status.to_string()));
    rows.push(status);
    Grid { rows }
}

fn find_event<'a>(t: TargetView<'a>, name: LifecycleEventName) -> Option<&'a LifecycleEvent> {
    t.lifecycle_events
        .iter()
        .find(|e| e.lifecycle_event_name == name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Words {
    /// CodeDeploy's own words.
    Full,
    /// A few letters, for tables that would not fit otherwise.
    Short,
}

/// An event's status, with how long it took when it ran to an end.
fn cell(e: Option<&LifecycleEvent>, words: Words, timed: bool) -> String {
    let Some(e) = e else {
        return String::new();
    };
    let word = status_word(e.status, words);
    let ran = matches!(
        e.status,
        LifecycleEventStatus::Succeeded | LifecycleEventStatus::Failed
    );
    match took(e) {
        Some(time) if timed && ran => format!("{word} {}", short_duration(time)),
        _ => word.to_owned(),
    }
}

fn status_word(s: LifecycleEventStatus, words: Words) -> &'static str {
    if words == Words::Full {
        return s.as_str();
    }
    match s {
        LifecycleEventStatus::Succeeded => "ok",
        LifecycleEventStatus::Failed => "FAIL",
        LifecycleEventStatus::Skipped => "skip",
        LifecycleEventStatus::Pending => "-",
        LifecycleEventStatus::InProgress => "run",
        LifecycleEventStatus::Unknown => "?",
    }
}

fn event_title(e: LifecycleEventName, words: Words) -> &'static str {
    if words == Words::Full {
        return e.as_str();
    }
    match e {
        LifecycleEventName::BeforeBlockTraffic => "BeforeBlock",
        LifecycleEventName::BlockTraffic => "Block",
        LifecycleEventName::AfterBlockTraffic => "AfterBlock",
        LifecycleEventName::ApplicationStop => "AppStop",
        LifecycleEventName::DownloadBundle => "Download",
        LifecycleEventName::BeforeInstall => "BeforeInst",
        LifecycleEventName::Install => "Install",
        LifecycleEventName::AfterInstall => "AfterInst",
        LifecycleEventName::AllowTestTraffic => "TestTraffic",
        LifecycleEventName::AfterAllowTestTraffic => "AfterTest",
        LifecycleEventName::ApplicationStart => "AppStart",
        LifecycleEventName::ValidateService => "Validate",
        LifecycleEventName::BeforeAllowTraffic => "BeforeAllow",
        LifecycleEventName::AllowTraffic => "Allow",
        LifecycleEventName::AfterAllowTraffic => "AfterAllow",
    }
}

/// Left-aligned text columns.
struct Grid {
    rows: Vec<Vec<String>>,
}

impl Grid {
    fn column_widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = Vec::new();
        for row in &self.rows {
            if widths.len() < row.len() {
                widths.resize(row.len(), 0);
            }
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    fn width(&self) -> usize {
        let widths = self.column_widths();
        widths.iter().sum::<usize>() + GAP.len() * widths.len().saturating_sub(1)
    }

    fn render(&self, out: &mut String) {
        let widths = self.column_widths();
        let mut line = String::new();
        for row in &self.rows {
            line.clear();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str(GAP);
                }
                let _ = write!(line, "{cell:<w$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// Exit 0 only for a deployment that succeeded; otherwise the reason goes to stderr.
pub fn outcome(d: &impl DeploymentView) -> Outcome {
    if d.status() == DeploymentStatus::Succeeded {
        return Outcome::Done;
    }
    let reason = match d.error_information() {
        Some(e) => format!(": {}: {}", e.code, e.message),
        None if d.is_finished() => String::new(),
        None => " (not finished)".to_owned(),
    };
    eprintln!("deployment {} is {}{reason}", d.deployment_id(), d.status());
    Outcome::Failed
}

/// The lines under the table.
fn ending(d: &impl DeploymentView, out: &mut String) {
    let _ = write!(out, "{} {}", d.deployment_id(), d.status());
    if let Some(time) = total_time(d) {
        let _ = write!(out, " in {}", short_duration(time));
    }
    let _ = writeln!(out, "{GAP}{}", host_counts(d));
    if let Some(e) = d.error_information() {
        let _ = writeln!(out, "Error: {}: {}", e.code, e.message);
    }
    if let Some(message) = d.rollback_info().and_then(|r| r.rollback_message.as_ref()) {
        let _ = writeln!(out, "Rollback: {message}");
    }
    let failed: Vec<TargetView<'_>> = targets(d)
        .filter(|t| t.status == TargetStatus::Failed)
        .collect();
    for t in failed.iter().take(FAILED_HOSTS_SHOWN) {
        out.push('\n');
        failed_host(t, out);
    }
    if failed.len() > FAILED_HOSTS_SHOWN {
        let rest: Vec<&str> = failed[FAILED_HOSTS_SHOWN..]
            .iter()
            .map(|t| t.target_id.as_str())
            .collect();
        let _ = writeln!(
            out,
            "\n{} more failed {}: {}",
            rest.len(),
            targets_word(d.deploys_aliases(), rest.len()),
            abbreviate(&rest, 10)
        );
    }
}

/// `3 hosts: 2 Succeeded, 1 Failed`, naming only the statuses some host is in.
fn host_counts(d: &impl DeploymentView) -> String {
    let o = DeploymentOverview::count(targets(d).map(|t| t.status));
    let counts = [
        (o.succeeded, TargetStatus::Succeeded),
        (o.failed, TargetStatus::Failed),
        (o.skipped, TargetStatus::Skipped),
        (o.in_progress, TargetStatus::InProgress),
        (o.pending, TargetStatus::Pending),
        (o.ready, TargetStatus::Ready),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    let total = d.target_count();
    let aliases = d.deploys_aliases();
    if parts.is_empty() {
        return format!("no {}", targets_word(aliases, 0));
    }
    format!(
        "{total} {}: {}",
        targets_word(aliases, total),
        parts.join(", ")
    )
}

/// The event a failed host failed at, with its diagnostics and the end of its log.
fn failed_host(t: &TargetView<'_>, out: &mut String) {
    let Some(e) = t
        .lifecycle_events
        .iter()
        .find(|e| e.status == LifecycleEventStatus::Failed)
    else {
        let _ = writeln!(
            out,
            "{}: Failed, with no failed lifecycle event",
            t.target_id
        );
        return;
    };
    let _ = write!(out, "{}: {} Failed", t.target_id, e.lifecycle_event_name);
    if let Some(time) = took(e) {
        let _ = write!(out, " after {}", short_duration(time));
    }
    let Some(diag) = &e.diagnostics else {
        out.push('\n');
        return;
    };
    match &diag.script_name {
        Some(script) => {
            let _ = writeln!(out, " ({}, {script})", diag.error_code);
        }
        None => {
            let _ = writeln!(out, " ({})", diag.error_code);
        }
    }
    for line in diag.message.lines() {
        let _ = writeln!(out, "  {}", line.trim_end());
    }
    let lines: Vec<&str> = diag.log_tail.trim_end().lines().collect();
    if lines.is_empty() {
        return;
    }
    let from = lines.len().saturating_sub(LOG_LINES);
    if from > 0 {
        let _ = writeln!(
            out,
            "  | ... {from} earlier {}",
            crate::plural(from, "line")
        );
    }
    for line in &lines[from..] {
        let _ = writeln!(out, "  | {}", line.trim_end());
    }
}

// ---------------------------------------------------------------------------------------------
// The list

/// One line per deployment, in the order given: id, status, application, group, hosts that
/// succeeded of all, and a note (the rollback it is or had, or the error code).
pub fn list_table(deployments: &[DeploymentInfo]) -> String {
    let mut out = format!(
        "{:<12} {:<11} {:<16} {:<16} {:<8} NOTE\n",
        "DEPLOYMENT", "STATUS", "APPLICATION", "GROUP", "HOSTS"
    );
    for d in deployments {
        let o = &d.deployment_overview;
        let note = match &d.rollback_info {
            Some(r) => match (
                &r.rollback_triggering_deployment_id,
                &r.rollback_deployment_id,
            ) {
                (Some(of), _) => format!("rollback of {of}"),
                (None, Some(by)) => format!("rolled back by {by}"),
                _ => r.rollback_message.clone().unwrap_or_default(),
            },
            None => d
                .error_information
                .as_ref()
                .map(|e| e.code.to_string())
                .unwrap_or_default(),
        };
        let line = format!(
            "{:<12} {:<11} {:<16} {:<16} {:<8} {}",
            d.deployment_id.as_str(),
            d.status.as_str(),
            d.application_name,
            d.deployment_group_name,
            format!("{}/{}", o.succeeded, o.total()),
            note
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Progress

/// Live progress of one deployment, and of the rollback that may follow it.
///
/// Call [`Progress::observe`] after every saved change of a deployment, and
/// [`Progress::finish`] at the end. With a terminal it draws a bar of finished hosts and a line
/// of what the running hosts are doing; without one it writes a line per change: deployment
/// statuses, lifecycle events as they finish, hosts as they finish.
pub struct Progress {
    output: Output,
    watches: Vec<Watch>,
    /// The deployment the latest output was about.
    current: Option<DeploymentId>,
    finished: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("live", &matches!(self.output, Output::Bars(_)))
            .field("deployments", &self.watches.len())
            .field("current", &self.current)
            .finish()
    }
}

enum Output {
    Lines(Box<dyn Write + Send>),
    Bars(MultiProgress),
}

impl Output {
    /// A line that matters with bars too: it goes above them.
    fn note(&mut self, line: &str) {
        // Progress is a courtesy: a closed stderr must not fail the deployment.
        match self {
            Output::Lines(w) => {
                let _ = writeln!(w, "{line}");
            }
            Output::Bars(m) => {
                let _ = m.println(line);
            }
        }
    }

    /// A line that the bars already show.
    fn detail(&mut self, line: &str) {
        if let Output::Lines(w) = self {
            let _ = writeln!(w, "{line}");
        }
    }
}

impl Progress {
    /// Bars on stderr when `live` (stderr is a terminal), plain lines on stderr otherwise.
    pub fn new(live: bool) -> Self {
        if live {
            Self::with_output(Output::Bars(MultiProgress::with_draw_target(
                ProgressDrawTarget::stderr(),
            )))
        } else {
            // Whole lines in one write each, so they do not interleave with other output.
            Self::with_writer(Box::new(io::LineWriter::new(io::stderr())))
        }
    }

    /// Plain lines, to `out`.
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        Self::with_output(Output::Lines(out))
    }

    fn with_output(output: Output) -> Self {
        Progress {
            output,
            watches: Vec::new(),
            current: None,
            finished: false,
        }
    }

    /// Shows what changed in `d` since it was last observed.
    pub fn observe(&mut self, d: &impl DeploymentView) {
        let id = d.deployment_id();
        let index = match self.watches.iter().position(|w| w.id == *id) {
            Some(i) => i,
            None => {
                self.watches.push(Watch::new(id.clone()));
                self.watches.len() - 1
            }
        };
        if self.current.as_ref() != Some(id) {
            if self.current.is_some() {
                let seen_before = self.watches[index].version.is_some();
                self.output.detail("");
                self.output.note(&heading(d, seen_before));
            }
            self.current = Some(id.clone());
        }
        let Progress {
            output, watches, ..
        } = self;
        watches[index].observe(d, output);
    }

    /// Ends the display: bars still running are left as they are, and the output is flushed.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        for w in &self.watches {
            if let Some(bars) = &w.bars {
                if !bars.hosts.is_finished() {
                    bars.hosts.abandon();
                }
                bars.running.finish_and_clear();
            }
        }
        if let Output::Lines(w) = &mut self.output {
            let _ = w.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One step of a Lambda deployment's traffic: `checkout:live  10% on version 4, 90% on 3`.
fn traffic_line(t: &TrafficView<'_>) -> String {
    match t.percent {
        100 => format!(
            "{}{GAP}all traffic on version {}",
            t.target, t.target_version
        ),
        0 => format!(
            "{}{GAP}all traffic back on version {}",
            t.target, t.current_version
        ),
        p => format!(
            "{}{GAP}{p}% of traffic on version {}, {}% on version {}",
            t.target,
            t.target_version,
            100 - p,
            t.current_version
        ),
    }
}

/// The line that introduces a second deployment: the rollback, usually.
fn heading(d: &impl DeploymentView, seen_before: bool) -> String {
    let id = d.deployment_id();
    if seen_before {
        return format!("Back to {id}");
    }
    match d.rollback_info() {
        Some(RollbackInfo {
            rollback_triggering_deployment_id: Some(from),
            rollback_message,
            ..
        }) => match rollback_message {
            Some(message) => format!("Rolling back with {id}: {message}"),
            None => format!("Rolling back {from} with {id}"),
        },
        _ => format!("Deployment {id}"),
    }
}

/// What has been shown of one deployment.
struct Watch {
    id: DeploymentId,
    /// The `version` last observed: stores bump it on every change, so an equal one means
    /// nothing to do.
    version: Option<u64>,
    status: Option<DeploymentStatus>,
    hosts: Vec<HostSeen>,
    /// Hosts that can still change: those whose status is not final yet, in target order.
    unsettled: Vec<usize>,
    done: usize,
    failed: usize,
    /// What each running host is doing, by its index in `hosts`.
    running: BTreeMap<usize, LifecycleEventName>,
    host_width: usize,
    event_width: usize,
    bars: Option<Bars>,
    /// The share of traffic last shown for a Lambda deployment's target version.
    traffic: Option<u8>,
    /// Whether the targets are Lambda aliases rather than hosts.
    aliases: bool,
}

/// The last statuses shown for one host.
struct HostSeen {
    id: TargetId,
    status: TargetStatus,
    events: Vec<LifecycleEventStatus>,
}

struct Bars {
    hosts: ProgressBar,
    running: ProgressBar,
}

impl Watch {
    fn new(id: DeploymentId) -> Self {
        Watch {
            id,
            version: None,
            status: None,
            hosts: Vec::new(),
            unsettled: Vec::new(),
            done: 0,
            failed: 0,
            running: BTreeMap::new(),
            host_width: 0,
            event_width: 0,
            bars: None,
            traffic: None,
            aliases: false,
        }
    }

    fn observe(&mut self, d: &impl DeploymentView, out: &mut Output) {
        if self.version == Some(d.version()) {
            return;
        }
        self.version = Some(d.version());
        self.aliases = d.deploys_aliases();
        if let Output::Bars(multi) = out
            && self.bars.is_none()
        {
            self.bars = Some(Bars::new(multi));
        }

        let status = d.status();
        let status_changed = self.status != Some(status);
        self.status = Some(status);
        if status_changed && !status.is_final() {
            let mut line = format!("{} {status}", d.deployment_id());
            if let Some((behind, group)) = d.queued_behind() {
                let _ = write!(
                    line,
                    " behind {behind}: deployment group {group} runs one deployment at a time"
                );
            }
            out.detail(&line);
        }

        if let Some(t) = d.traffic()
            && self.traffic.unwrap_or(0) != t.percent
        {
            self.traffic = Some(t.percent);
            out.note(&traffic_line(&t));
        }

        let mut running_changed = false;
        if d.target_count() != self.hosts.len() || !self.scan(d, out, &mut running_changed) {
            // The targets were just resolved, or are not the ones seen before: match them up
            // by id and look at every one.
            self.resync(d);
            running_changed = true;
            self.scan(d, out, &mut running_changed);
        }

        if status_changed && status.is_final() {
            let mut line = format!("{} {status}", d.deployment_id());
            if let Some(time) = total_time(d) {
                let _ = write!(line, " in {}", short_duration(time));
            }
            out.note(&line);
            if let Some(e) = d.error_information() {
                out.note(&format!("  {}: {}", e.code, e.message));
            }
            // A rollback's own message was its heading; the deployment it rolls back tells
            // whether a rollback started, and as which deployment.
            if let Some(RollbackInfo {
                rollback_triggering_deployment_id: None,
                rollback_message: Some(message),
                ..
            }) = d.rollback_info()
            {
                out.note(&format!("  {message}"));
            }
        }
        self.draw(d, status_changed, running_changed);
    }

    /// Compares the unsettled hosts with what was shown of them. False, having changed
    /// nothing, when a target is not the host seen at its place.
    fn scan(
        &mut self,
        d: &impl DeploymentView,
        out: &mut Output,
        running_changed: &mut bool,
    ) -> bool {
        if self
            .unsettled
            .iter()
            .any(|&i| *d.target(i).target_id != self.hosts[i].id)
        {
            return false;
        }
        let unsettled = std::mem::take(&mut self.unsettled);
        let mut still = Vec::with_capacity(unsettled.len());
        for i in unsettled {
            if !self.host(i, d.target(i), d.target_count(), out, running_changed) {
                still.push(i);
            }
        }
        self.unsettled = still;
        true
    }

    /// Shows what changed on one host; true once the host has finished.
    fn host(
        &mut self,
        i: usize,
        t: TargetView<'_>,
        total: usize,
        out: &mut Output,
        running_changed: &mut bool,
    ) -> bool {
        let seen = &mut self.hosts[i];
        // A host runs nothing before it starts, so its events need no look until then.
        if t.status == seen.status && t.status == TargetStatus::Pending {
            return false;
        }
        if seen.events.len() != t.lifecycle_events.len() {
            seen.events
                .resize(t.lifecycle_events.len(), LifecycleEventStatus::Pending);
        }
        for (k, e) in t.lifecycle_events.iter().enumerate() {
            let before = seen.events[k];
            if before == e.status {
                continue;
            }
            seen.events[k] = e.status;
            if e.status == LifecycleEventStatus::InProgress {
                self.running.insert(i, e.lifecycle_event_name);
                *running_changed = true;
            } else if before == LifecycleEventStatus::InProgress
                && self.running.get(&i) == Some(&e.lifecycle_event_name)
            {
                self.running.remove(&i);
                *running_changed = true;
            }
            // Events skipped because the host stopped never ran: the host's line says so.
            let reported = e.status != LifecycleEventStatus::Skipped || e.end_time.is_some();
            if e.status.is_final() && !before.is_final() && reported {
                let line = event_line(&seen.id, e, self.host_width, self.event_width);
                if e.status == LifecycleEventStatus::Failed {
                    out.note(&line);
                } else {
                    out.detail(&line);
                }
            }
        }
        if t.status == seen.status {
            return false;
        }
        seen.status = t.status;
        if !t.status.is_final() {
            return false;
        }
        self.done += 1;
        if t.status == TargetStatus::Failed {
            self.failed += 1;
        }
        if self.running.remove(&i).is_some() {
            *running_changed = true;
        }
        out.detail(&format!(
            "{:<hw$}{GAP}{}  ({} of {total} {} done)",
            seen.id.as_str(),
            t.status,
            self.done,
            targets_word(self.aliases, total),
            hw = self.host_width,
        ));
        true
    }

    /// Lines the hosts up with the targets of `d`, keeping what was shown of hosts seen before.
    fn resync(&mut self, d: &impl DeploymentView) {
        let mut old: BTreeMap<TargetId, HostSeen> = std::mem::take(&mut self.hosts)
            .into_iter()
            .map(|h| (h.id.clone(), h))
            .collect();
        self.hosts = targets(d)
            .map(|t| {
                old.remove(t.target_id).unwrap_or_else(|| HostSeen {
                    id: t.target_id.clone(),
                    status: TargetStatus::Pending,
                    events: vec![LifecycleEventStatus::Pending; t.lifecycle_events.len()],
                })
            })
            .collect();
        self.unsettled = (0..self.hosts.len())
            .filter(|&i| !self.hosts[i].status.is_final())
            .collect();
        self.done = self.hosts.len() - self.unsettled.len();
        self.failed = self
            .hosts
            .iter()
            .filter(|h| h.status == TargetStatus::Failed)
            .count();
        self.running = self
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let t = d.target(i);
                h.events
                    .iter()
                    .zip(t.lifecycle_events)
                    .find(|(s, _)| **s == LifecycleEventStatus::InProgress)
                    .map(|(_, e)| (i, e.lifecycle_event_name))
            })
            .collect();
        self.host_width = self
            .hosts
            .iter()
            .map(|h| h.id.as_str().chars().count())
            .max()
            .unwrap_or(0);
        self.event_width = targets(d)
            .flat_map(|t| t.lifecycle_events)
            .map(|e| e.lifecycle_event_name.as_str().len())
            .max()
            .unwrap_or(0);
    }

    fn draw(&self, d: &impl DeploymentView, status_changed: bool, running_changed: bool) {
        let Some(bars) = &self.bars else {
            return;
        };
        let total = d.target_count() as u64;
        if bars.hosts.length() != Some(total) {
            bars.hosts.set_length(total);
        }
        bars.hosts.set_position(self.done as u64);
        if self.failed > 0 {
            bars.hosts.set_message(format!("{} failed", self.failed));
        }
        if status_changed {
            bars.hosts
                .set_prefix(format!("{} {}", d.deployment_id(), d.status()));
        }
        if running_changed {
            bars.running.set_message(self.running_line());
        }
        if status_changed && d.is_finished() {
            // The final status line above says it all, and a rollback's bars come next.
            bars.hosts.finish_and_clear();
            bars.running.finish_and_clear();
        }
    }

    /// `host-2 Install · host-3 DownloadBundle · +4 more`
    fn running_line(&self) -> String {
        let mut line = String::new();
        for (n, (&i, event)) in self.running.iter().enumerate() {
            if n == RUNNING_SHOWN {
                let _ = write!(line, " · +{} more", self.running.len() - n);
                break;
            }
            if n > 0 {
                line.push_str(" · ");
            }
            let _ = write!(line, "{} {event}", self.hosts[i].id);
        }
        line
    }
}

impl Bars {
    fn new(multi: &MultiProgress) -> Self {
        let hosts = multi.add(ProgressBar::new(0));
        hosts.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} hosts {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let running = multi.add(ProgressBar::new(0));
        running.set_style(
            ProgressStyle::with_template("  {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if !multi.is_hidden() {
            // Keeps the elapsed time moving while no host reports.
            hosts.enable_steady_tick(Duration::from_millis(250));
        }
        Bars { hosts, running }
    }
}

/// `host-1  Install  Succeeded  12ms`, with the diagnostics of a failure.
fn event_line(
    host: &TargetId,
    e: &LifecycleEvent,
    host_width: usize,
    event_width: usize,
) -> String {
    let mut line = format!(
        "{:<host_width$}{GAP}{:<event_width$}{GAP}{:<9}",
        host.as_str(),
        e.lifecycle_event_name.as_str(),
        e.status.as_str(),
    );
    if let Some(time) = took(e) {
        let _ = write!(line, "{GAP}{}", short_duration(time));
    }
    if e.status == LifecycleEventStatus::Failed
        && let Some(diag) = &e.diagnostics
    {
        let _ = write!(line, "{GAP}{}: {}", diag.error_code, diag.message.trim());
    }
    line.trim_end().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The targets, in order.
fn targets(d: &impl DeploymentView) -> impl Iterator<Item = TargetView<'_>> {
    (0..d.target_count()).map(|i| d.target(i))
}

fn took(e: &LifecycleEvent) -> Option<Duration> {
    Some(e.end_time?.since(e.start_time?))
}

/// From the start (or creation, if it never started) to the end.
fn total_time(d: &impl DeploymentView) -> Option<Duration> {
    Some(
        d.complete_time()?
            .since(d.start_time().unwrap_or(d.create_time())),
    )
}

/// At most five characters: `12ms`, `1.2s`, `42s`, `2m05s`, `17m`, `1h02m`.
fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..10_000 => format!("{}.{}s", ms / 1_000, ms % 1_000 / 100),
        10_000..60_000 => format!("{}s", ms / 1_000),
        60_000..600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1_000 % 60),
        600_000..3_600_000 => format!("{}m", ms / 60_000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// The first `n` names, then how many more.
fn abbreviate(names: &[&str], n: usize) -> String {
    if names.len() <= n {
        names.join(", ")
    } else {
        format!("{} and {} more", names[..n].join(", "), names.len() - n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use cutover_core::Timestamp;
    use cutover_core::config;
    use cutover_core::machine::{
        Command, CreateDeployment, Event, LifecycleOutcome, PreviousDeployment, advance,
    };
    use cutover_core::model::{
        AutoRollbackConfiguration, AutoRollbackEvent, DeploymentGroupInfo, DeploymentOption,
        Diagnostics, LifecycleErrorCode, LoadBalancerInfo, LocalLocation, NamedResource,
        RevisionLocation,
    };

    use super::*;

    /// Carries out one deployment: hosts finish their running events one at a time, taking
    /// [`event_time`] each, and fail where the test says.
    pub(crate) struct Sim {
        pub(crate) d: Deployment,
        pub(crate) now: Timestamp,
        failures: Vec<(TargetId, LifecycleEventName)>,
        pub(crate) rollback: Option<Deployment>,
    }

    fn group(
        config_name: &str,
        with_traffic_control: bool,
        rolls_back: bool,
    ) -> DeploymentGroupInfo {
        let mut g = DeploymentGroupInfo {
            application_name: "App".into(),
            deployment_group_id: "4f1c2d3e-0000-4000-8000-000000000001".into(),
            deployment_group_name: "Fleet".into(),
            deployment_config_name: config_name.into(),
            ..Default::default()
        };
        if with_traffic_control {
            g.deployment_style.deployment_option = DeploymentOption::WithTrafficControl;
            g.load_balancer_info = Some(LoadBalancerInfo {
                target_group_info_list: vec![NamedResource { name: "web".into() }],
                ..Default::default()
            });
        }
        if rolls_back {
            g.auto_rollback_configuration = Some(AutoRollbackConfiguration {
                enabled: true,
                events: vec![AutoRollbackEvent::DeploymentFailure],
            });
        }
        g
    }

    fn revision(name: &str) -> RevisionLocation {
        RevisionLocation::Local(LocalLocation {
            path: format!("/revisions/{name}"),
            bundle_type: None,
        })
    }

    fn hosts(n: usize) -> Vec<TargetId> {
        (1..=n)
            .map(|i| TargetId::new(format!("host-{i}")))
            .collect()
    }

    fn event_time(e: LifecycleEventName) -> Duration {
        match e {
            LifecycleEventName::Install => Duration::from_millis(1_234),
            LifecycleEventName::AfterInstall => Duration::from_millis(2_500),
            LifecycleEventName::ValidateService => Duration::from_secs(61),
            _ => Duration::from_millis(12),
        }
    }

    /// A script failure with a 12-line log.
    fn script_failure(event: LifecycleEventName) -> Diagnostics {
        let log: String = (1..=12).map(|i| format!("log line {i}\n")).collect();
        Diagnostics::new(
            LifecycleErrorCode::ScriptFailed,
            Some(format!("scripts/{event}.sh")),
            format!(
                "Script at specified location: scripts/{event}.sh run as user root failed with exit code 3"
            ),
            &log,
        )
    }

    impl Sim {
        pub(crate) fn new(config_name: &str, with_traffic_control: bool, rolls_back: bool) -> Self {
            let mut req = CreateDeployment::new(
                DeploymentId::from_entropy(42),
                group(config_name, with_traffic_control, rolls_back),
                config::predefined(config_name).expect("a predefined configuration"),
                revision("v2"),
            );
            req.previous = Some(PreviousDeployment {
                deployment_id: DeploymentId::from_entropy(7),
                revision: revision("v1"),
            });
            let now = Timestamp::from_secs(1_700_000_000);
            let d = Deployment::create(req, now).expect("a valid deployment");
            Sim::of(d, now)
        }

        pub(crate) fn of(d: Deployment, now: Timestamp) -> Self {
            Sim {
                d,
                now,
                failures: Vec::new(),
                rollback: None,
            }
        }

        fn apply(&mut self, event: Event) {
            let t = advance(&self.d, event, self.now).expect("a well-formed event");
            for c in t.commands {
                if let Command::StartRollback { rollback } = c {
                    self.rollback = Some(*rollback);
                }
            }
            self.d = t.deployment;
        }

        /// Up to the moment the hosts are handed their first events.
        pub(crate) fn start(&mut self, n: usize, mut observe: impl FnMut(&Deployment)) {
            for event in [
                Event::Created,
                Event::GroupLockAcquired {
                    last_successful: None,
                },
                Event::RevisionValidated {
                    revision: None,
                    appspec: None,
                },
                Event::TargetsResolved { targets: hosts(n) },
            ] {
                self.now = self.now + Duration::from_millis(5);
                self.apply(event);
                observe(&self.d);
            }
        }

        /// Finishes the first running event; false when none is running.
        pub(crate) fn step(&mut self) -> bool {
            let Some((host, event)) = self.d.targets.iter().find_map(|t| {
                t.lifecycle_events
                    .iter()
                    .find(|e| e.status == LifecycleEventStatus::InProgress)
                    .map(|e| (t.target_id.clone(), e.lifecycle_event_name))
            }) else {
                return false;
            };
            let start = self.now;
            self.now = self.now + event_time(event);
            let mut outcome = if self.failures.contains(&(host.clone(), event)) {
                LifecycleOutcome::failed(script_failure(event))
            } else {
                LifecycleOutcome::succeeded()
            };
            outcome.start_time = Some(start);
            outcome.end_time = Some(self.now);
            self.apply(Event::LifecycleEventFinished {
                target: host,
                event,
                outcome,
            });
            true
        }

        /// Creates, runs and finishes the deployment on `n` hosts.
        pub(crate) fn run(&mut self, n: usize, mut observe: impl FnMut(&Deployment)) {
            self.start(n, &mut observe);
            while self.step() {
                observe(&self.d);
            }
            assert!(self.d.is_finished(), "{:?}", self.d.phase);
        }

        pub(crate) fn fail(&mut self, host: &str, event: LifecycleEventName) {
            self.failures.push((TargetId::new(host), event));
        }
    }

    /// A writer the test keeps a handle to.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    pub(crate) fn plain() -> (Progress, Captured) {
        let out = Captured::default();
        (Progress::with_writer(Box::new(out.clone())), out)
    }

    fn count(text: &str, line: &str) -> usize {
        text.lines().filter(|l| *l == line).count()
    }

    /// The column at which the cell `needle` starts on the line that starts with `row`.
    fn column(table: &str, row: &str, needle: &str) -> usize {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row} in\n{table}"));
        line.match_indices(needle)
            .map(|(at, _)| at)
            .find(|&at| {
                let before = line[..at].ends_with(' ') || at == 0;
                let after =
                    line[at + needle.len()..].starts_with(' ') || at + needle.len() == line.len();
                before && after
            })
            .unwrap_or_else(|| panic!("no cell {needle} in {line}"))
    }

    #[test]
    fn durations_are_short() {
        let cases = [
            (0, "0ms"),
            (12, "12ms"),
            (999, "999ms"),
            (1_234, "1.2s"),
            (9_999, "9.9s"),
            (42_000, "42s"),
            (125_000, "2m05s"),
            (1_020_000, "17m"),
            (3_720_000, "1h02m"),
        ];
        for (ms, text) in cases {
            assert_eq!(short_duration(Duration::from_millis(ms)), text);
        }
    }

    #[test]
    fn a_successful_deployment_has_a_row_per_host() {
        let mut sim = Sim::new("CodeDeployDefault.AllAtOnce", false, false);
        sim.run(3, |_| {});
        let table = summary_table(&sim.d);
        let id = sim.d.deployment_id.to_string();
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "Host",
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService",
                "Status"
            ],
            "{table}"
        );
        for host in ["host-1", "host-2", "host-3"] {
            let row = table.lines().find(|l| l.starts_with(host)).unwrap();
            assert!(row.contains("Succeeded 12ms"), "{row}");
            assert!(row.contains("Succeeded 1.2s"), "{row}");
            assert!(row.contains("Succeeded 1m01s"), "{row}");
            assert!(row.ends_with("Succeeded"), "{row}");
            // Columns line up with their headers.
            assert_eq!(
                column(&table, host, "Succeeded 1.2s"),
                column(&table, "Host", "Install")
            );
        }
        assert!(table.contains(&format!("\n{id} Succeeded in ")), "{table}");
        assert!(table.contains("3 hosts: 3 Succeeded"), "{table}");
        assert!(!table.contains("Error:"), "{table}");
        assert!(table.lines().all(|l| l.len() <= MAX_WIDTH));
    }

    #[test]
    fn a_failed_deployment_shows_the_failed_hosts_diagnostics() {
        let mut sim = Sim::new("CodeDeployDefault.OneAtATime", false, false);
        sim.fail("host-2", LifecycleEventName::AfterInstall);
        sim.run(3, |_| {});
        assert_eq!(sim.d.status(), DeploymentStatus::Failed);
        let table = summary_table(&sim.d);

        let row = table.lines().find(|l| l.starts_with("host-2")).unwrap();
        assert!(row.contains("Failed 2.5s"), "{table}");
        assert!(row.ends_with("Failed"), "{table}");
        assert_eq!(
            column(&table, "host-2", "Failed 2.5s"),
            column(&table, "Host", "AfterInstall")
        );
        // What host-2 never reached is skipped, and host-3 never started.
        assert_eq!(
            column(&table, "host-2", "Skipped"),
            column(&table, "Host", "ApplicationStart")
        );
        let row3 = table.lines().find(|l| l.starts_with("host-3")).unwrap();
        assert!(row3.starts_with("host-3  Skipped"), "{table}");
        assert!(row3.ends_with("Skipped"), "{table}");

        let id = sim.d.deployment_id.to_string();
        assert!(table.contains(&format!("\n{id} Failed in ")), "{table}");
        assert!(
            table.contains("3 hosts: 1 Succeeded, 1 Failed, 1 Skipped"),
            "{table}"
        );
        assert!(
            table.contains("\nError: HEALTH_CONSTRAINTS: 1 of 3 targets failed (host-2)."),
            "{table}"
        );
        let diagnostics = table
            .split_once("\nhost-2: ")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("no diagnostics for host-2 in\n{table}"));
        assert!(diagnostics.starts_with(
            "AfterInstall Failed after 2.5s (ScriptFailed, scripts/AfterInstall.sh)\n  Script at specified location: scripts/AfterInstall.sh run as user root failed with exit code 3\n  | ... 2 earlier lines\n  | log line 3\n"
        ), "{table}");
        assert!(
            diagnostics.trim_end().ends_with("  | log line 12"),
            "{table}"
        );
        assert!(!table.contains("log line 2\n"), "{table}");
        assert!(
            !table.contains("host-1: "),
            "only failed hosts have diagnostics"
        );
    }

    #[test]
    fn thirteen_events_on_a_few_hosts_turn_the_table_on_its_side() {
        let mut sim = Sim::new("CodeDeployDefault.AllAtOnce", true, false);
        sim.run(3, |_| {});
        let table = summary_table(&sim.d);
        assert!(table.starts_with("Event"), "{table}");
        let header = table.lines().next().unwrap();
        assert!(header.contains("host-1"), "{table}");
        assert!(header.contains("host-3"), "{table}");
        let names: Vec<&str> = table
            .lines()
            .skip(1)
            .take(13)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(names[0], "BeforeBlockTraffic");
        assert_eq!(names[12], "AfterAllowTraffic");
        let status = table.lines().nth(14).unwrap();
        assert!(status.starts_with("Status"), "{table}");
        assert!(
            table.lines().all(|l| l.chars().count() <= MAX_WIDTH),
            "{table}"
        );
    }

    #[test]
    fn thirteen_events_on_many_hosts_abbreviate() {
        let mut sim = Sim::new("CodeDeployDefault.AllAtOnce", true, false);
        sim.fail("host-12", LifecycleEventName::Install);
        sim.run(12, |_| {});
        let table = summary_table(&sim.d);
        let header = table.lines().next().unwrap();
        assert!(header.starts_with("Host     BeforeBlock  Block"), "{table}");
        assert!(header.contains("AppStop"), "{table}");
        assert!(header.ends_with("AfterAllow  Status"), "{table}");
        assert!(table.contains("(ok Succeeded, FAIL Failed"), "{table}");
        let row = table.lines().find(|l| l.starts_with("host-12")).unwrap();
        assert_eq!(
            column(&table, "host-12", "FAIL 1.2s"),
            column(&table, "Host", "Install")
        );
        assert!(
            table.lines().all(|l| l.chars().count() <= MAX_WIDTH),
            "{table}"
        );
        assert!(row.ends_with("Failed"), "{table}");
        assert!(table.contains("\nhost-12: Install Failed"), "{table}");
    }

    #[test]
    fn plain_progress_shows_each_change_once() {
        let mut sim = Sim::new("CodeDeployDefault.OneAtATime", false, false);
        sim.fail("host-2", LifecycleEventName::AfterInstall);
        let (mut progress, out) = plain();
        sim.run(3, |d| {
            progress.observe(d);
            progress.observe(d);
            // A copy saved again without a change shows nothing new either.
            let mut again = d.clone();
            again.version += 1;
            progress.observe(&again);
        });
        progress.observe(&sim.d);
        progress.finish();
        let text = out.text();
        let id = sim.d.deployment_id.to_string();

        assert_eq!(count(&text, &format!("{id} Created")), 1, "{text}");
        assert_eq!(count(&text, &format!("{id} InProgress")), 1, "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with(&format!("{id} Failed in ")))
                .count(),
            1,
            "{text}"
        );
        assert_eq!(
            count(
                &text,
                "  HEALTH_CONSTRAINTS: 1 of 3 targets failed (host-2). Deployment configuration CodeDeployDefault.OneAtATime keeps at least 2 of 3 healthy, so the other 1 targets were not attempted."
            ),
            1,
            "{text}"
        );
        assert_eq!(
            count(&text, "host-1  Install           Succeeded  1.2s"),
            1,
            "{text}"
        );
        assert_eq!(
            count(&text, "host-1  ValidateService   Succeeded  1m01s"),
            1,
            "{text}"
        );
        assert_eq!(
            count(&text, "host-1  Succeeded  (1 of 3 hosts done)"),
            1,
            "{text}"
        );
        assert_eq!(
            count(
                &text,
                "host-2  AfterInstall      Failed     2.5s  ScriptFailed: Script at specified location: scripts/AfterInstall.sh run as user root failed with exit code 3"
            ),
            1,
            "{text}"
        );
        assert_eq!(
            count(&text, "host-2  Failed  (2 of 3 hosts done)"),
            1,
            "{text}"
        );
        assert_eq!(
            count(&text, "host-3  Skipped  (3 of 3 hosts done)"),
            1,
            "{text}"
        );
        // host-1 ran 7 events, host-2 ran 5 and skipped 2, host-3 ran none.
        let event_lines = text
            .lines()
            .filter(|l| l.starts_with("host-") && !l.ends_with("hosts done)"))
            .count();
        assert_eq!(event_lines, 12, "{text}");
        assert!(!text.contains("ApplicationStart  Skipped"), "{text}");
        // The deployment's status comes first, its end last.
        assert!(
            text.starts_with(&format!("{id} Created\n{id} InProgress\n")),
            "{text}"
        );
        let last_host = text.find("host-3  Skipped").unwrap();
        assert!(
            text.find(&format!("{id} Failed in")).unwrap() > last_host,
            "{text}"
        );
    }

    #[test]
    fn progress_follows_the_rollback_under_its_own_heading() {
        let mut sim = Sim::new("CodeDeployDefault.OneAtATime", false, true);
        sim.fail("host-1", LifecycleEventName::ValidateService);
        let (mut progress, out) = plain();
        sim.run(2, |d| progress.observe(d));
        let mut rollback = Sim::of(sim.rollback.take().expect("a rollback"), sim.now);
        rollback.run(2, |d| progress.observe(d));
        progress.finish();
        let text = out.text();

        let id = sim.d.deployment_id.to_string();
        let rid = rollback.d.deployment_id.to_string();
        assert_eq!(rollback.d.status(), DeploymentStatus::Succeeded);
        let heading = format!(
            "Rolling back with {rid}: Rolls back {id} (DEPLOYMENT_FAILURE) to the revision of {}.",
            DeploymentId::from_entropy(7)
        );
        assert_eq!(count(&text, &heading), 1, "{text}");
        let (first, second) = text.split_once(&heading).unwrap();
        assert!(
            first.contains(&format!(
                "  Automatic rollback (DEPLOYMENT_FAILURE) started as deployment {rid}."
            )),
            "{text}"
        );
        assert!(first.contains("host-1  ValidateService   Failed"), "{text}");
        assert!(!first.contains(&format!("{rid} InProgress")), "{text}");
        assert!(second.contains(&format!("{rid} InProgress")), "{text}");
        assert!(
            second.contains("host-1  Succeeded  (1 of 2 hosts done)"),
            "{text}"
        );
        assert!(
            second.contains("host-2  Succeeded  (2 of 2 hosts done)"),
            "{text}"
        );
        assert!(second.contains(&format!("{rid} Succeeded in ")), "{text}");
        assert!(!second.contains("Failed"), "{text}");
    }

    #[test]
    fn live_progress_tracks_finished_and_running_hosts() {
        let mut progress = Progress::with_output(Output::Bars(MultiProgress::with_draw_target(
            ProgressDrawTarget::hidden(),
        )));
        let mut sim = Sim::new("CodeDeployDefault.AllAtOnce", false, false);
        sim.start(8, |d| progress.observe(d));
        let id = sim.d.deployment_id.to_string();
        {
            let bars = progress.watches[0].bars.as_ref().unwrap();
            assert_eq!(bars.hosts.length(), Some(8));
            assert_eq!(bars.hosts.position(), 0);
            assert_eq!(bars.hosts.prefix(), format!("{id} InProgress"));
            assert_eq!(
                bars.running.message(),
                "host-1 ApplicationStop · host-2 ApplicationStop · host-3 ApplicationStop · host-4 ApplicationStop · host-5 ApplicationStop · host-6 ApplicationStop · +2 more"
            );
        }
        // host-1 finishes first: `step` always picks the first running event.
        for _ in 0..7 {
            sim.step();
            progress.observe(&sim.d);
        }
        {
            let bars = progress.watches[0].bars.as_ref().unwrap();
            assert_eq!(bars.hosts.position(), 1);
            assert!(
                bars.running
                    .message()
                    .starts_with("host-2 ApplicationStop · ")
            );
        }
        while sim.step() {
            progress.observe(&sim.d);
        }
        let bars = progress.watches[0].bars.as_ref().unwrap();
        assert_eq!(bars.hosts.position(), 8);
        assert_eq!(bars.hosts.prefix(), format!("{id} Succeeded"));
        assert!(bars.hosts.is_finished());
        assert_eq!(bars.running.message(), "");
        progress.finish();
    }

    #[test]
    fn many_hosts_each_event_shown_once() {
        let mut sim = Sim::new("CodeDeployDefault.AllAtOnce", false, false);
        let (mut progress, out) = plain();
        sim.run(200, |d| progress.observe(d));
        progress.finish();
        let text = out.text();
        assert_eq!(
            text.lines().filter(|l| l.contains("  Install  ")).count(),
            200
        );
        assert_eq!(
            text.lines().filter(|l| l.ends_with("hosts done)")).count(),
            200
        );
        assert_eq!(
            count(&text, "host-200  Succeeded  (200 of 200 hosts done)"),
            1
        );
        let table = summary_table(&sim.d);
        assert_eq!(
            table.lines().filter(|l| l.starts_with("host-")).count(),
            200
        );
    }
}
