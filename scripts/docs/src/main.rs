//! Prints every function's declared configuration variables as JSON: the one source the
//! README's tables are written from (`make docs`) and checked against (`make test`).

use serde_json::json;

fn main() {
    let lists = json!({
        "shared": shared::config::SHARED_VARIABLES,
        "pipeline-notifier": pipeline_notifier::config::VARIABLES,
        "ecr-scan-gate": ecr_scan_gate::config::VARIABLES,
        "canary-validator": canary_validator::config::VARIABLES,
        "migration-runner": migration_runner::config::VARIABLES,
        "pipeline-approvals": pipeline_approvals::config::VARIABLES,
    });
    println!("{lists:#}");
}
