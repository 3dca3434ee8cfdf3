//! The pictures on this function's page (`pictures/*.svg`) are its own messages as rendered
//! now: an approval answered from Slack (the message the buttons were on, replaced), and what
//! someone who is not an approver sees. `UPDATE_PICTURES=1` redraws them after a change.

use std::path::Path;

use pipeline_approvals::reply;
use shared::approval::ApprovalRef;
use standins::picture;

const APP: &str = "pipeline-approvals";

#[test]
fn the_pictures_are_the_messages_as_rendered_now() {
    let approval = ApprovalRef {
        pipeline: "prod-api".into(),
        stage: "Approve".into(),
        action: "ProductionGate".into(),
        execution: "3f2a0c1e-7b4d-4c55-9a7e-2d1f6b8e9a01".into(),
    };
    let answered = reply::answered(&approval, true, "U012AB3CD", 1_795_171_287).to_payload();
    let refused = reply::only_you(
        "Only the approvers of prod-api can answer this approval (APPROVERS). Nothing was sent to CodePipeline.",
    )
    .to_payload();
    picture::assert_current(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pictures"),
        &[
            ("approved.svg", picture::draw(APP, &[answered])),
            ("not-an-approver.svg", picture::draw(APP, &[refused])),
        ],
        "cargo test -p pipeline-approvals --test pictures",
    );
}
