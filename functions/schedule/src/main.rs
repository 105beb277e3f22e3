//! schedule: the watchdog, run every minute: alarms, and deployments whose next step is overdue.
fn main() -> Result<(), cutover_aws::function::Error> {
    cutover_aws::function::main_schedule()
}
