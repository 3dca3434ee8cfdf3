"""The usual Python CodePipeline -> Slack notifier, as a peer for `make bench`.

Idiomatic rather than minimal: boto3 clients built at import (as most examples do), the
execution looked up for its commit, a Block Kit message posted with urllib, and the same
text published to SNS. It does what pipeline-notifier does on the benchmark's event, not
everything pipeline-notifier does (escaping, dedupe, retries, routing, deadlines).
"""

import json
import os
import urllib.request

import boto3

codepipeline = boto3.client("codepipeline")
sns = boto3.client("sns")
WEBHOOK = os.environ["SLACK_WEBHOOK_URL"]
TOPIC = os.environ.get("SNS_TOPIC_ARN", "")


def handler(event, context):
    detail = event.get("detail", {})
    pipeline = detail.get("pipeline", "?")
    execution_id = detail.get("execution-id", "?")
    state = detail.get("state", "?")
    if state not in ("FAILED", "STOPPED", "SUPERSEDED"):
        return {"posted": False}
    execution = codepipeline.get_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id
    )["pipelineExecution"]
    revisions = execution.get("artifactRevisions", [])
    commit = revisions[0].get("revisionSummary", "") if revisions else ""
    title = f":x: Pipeline {pipeline} {state}"
    message = {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Execution*\n`{execution_id}`"},
                    {"type": "mrkdwn", "text": f"*Commit*\n{commit}"},
                ],
            },
        ],
    }
    request = urllib.request.Request(
        WEBHOOK,
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    if TOPIC:
        sns.publish(TopicArn=TOPIC, Subject=title[:100], Message=json.dumps(message))
    return {"posted": True}
