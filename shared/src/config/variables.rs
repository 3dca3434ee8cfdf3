//! The one list of what a function may read from its environment: the loader takes defaults
//! from it and `make docs` writes the documentation's tables from it, so the code and the docs
//! cannot disagree.

/// One configuration variable, as a function's loader reads it and its page documents it.
/// Each function declares its list once; the loader takes defaults from it and refuses to read
/// a variable missing from it, and `make docs` writes the tables from it (`make test`
/// fails when they differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Var {
    pub name: &'static str,
    /// The value used when the variable is unset or blank, in the variable's own syntax.
    pub default: Option<&'static str>,
    /// What the tables say when there is no default: "**required**", "unset (no Slack)".
    pub unset: &'static str,
    pub example: &'static str,
    /// Markdown, one paragraph.
    pub meaning: &'static str,
}

impl Var {
    /// A variable that has a value when unset: `default`.
    pub const fn defaulted(
        name: &'static str,
        default: &'static str,
        example: &'static str,
        meaning: &'static str,
    ) -> Self {
        Self {
            name,
            default: Some(default),
            unset: "",
            example,
            meaning,
        }
    }

    /// A variable that may stay unset; `unset` says what that means.
    pub const fn optional(
        name: &'static str,
        unset: &'static str,
        example: &'static str,
        meaning: &'static str,
    ) -> Self {
        Self {
            name,
            default: None,
            unset,
            example,
            meaning,
        }
    }

    pub const fn required(
        name: &'static str,
        example: &'static str,
        meaning: &'static str,
    ) -> Self {
        Self::optional(name, "**required**", example, meaning)
    }
}

/// The variables every function reads through `shared` (notifications, the SDK, logging).
/// `REPORT_MARGIN` is declared by the functions that report ([`crate::report::REPORT_MARGIN`]).
pub const SHARED_VARIABLES: &[Var] = &[
    Var::optional(
        "SLACK_WEBHOOK_URL",
        "unset (no Slack)",
        "`ssm:/ops/slack/webhook`",
        "Slack incoming webhook. A literal URL, `ssm:/param/name` (read WithDecryption), `secretsmanager:<secret-id>`, or `secretsmanager:<secret-id>#<json-key>` for a JSON secret. Read on first use and kept for `CONFIG_TTL`; read again at once when Slack answers 403/404/410 (a rotated webhook), and the post retried once to the new URL.",
    ),
    Var::defaulted(
        "CONFIG_TTL",
        "5m",
        "`1m`",
        "How long a value read from SSM or Secrets Manager (webhooks, `CHECKS`, `WAIVERS`, routes, header secrets) is used before it is read again. A change in the store reaches warm containers within this time; new containers read it at once.",
    ),
    Var::optional(
        "SNS_TOPIC_ARN",
        "unset (no SNS)",
        "`arn:aws:sns:eu-west-1:123456789012:delivery-alerts`",
        "Topic that receives a plain-text copy of every notification.",
    ),
    Var::optional(
        "IDEMPOTENCY_TABLE",
        "duplicates are caught only within one warm container",
        "`ops-idempotency`",
        "The DynamoDB table (partition key `id`, TTL on `expires_at`) in which each side effect — a post, a publish, a task launch, a report — is claimed before it happens and marked done after, so an event delivered twice is acted on once, whichever container it lands on (docs/operating.md: \"Once across containers\", and what it does not promise). The template creates it and sets this. Unset, each container remembers only what it did itself.",
    ),
    Var::optional(
        "AWS_LAMBDA_LOG_FORMAT",
        "`Text` (SAM template sets `JSON`)",
        "`JSON`",
        "Log format. JSON lines carry the request id.",
    ),
    Var::optional(
        "AWS_LAMBDA_LOG_LEVEL",
        "`INFO`",
        "`DEBUG`",
        "Log level (`RUST_LOG` also works).",
    ),
    Var::optional(
        "AWS_ENDPOINT_URL",
        "AWS",
        "`http://127.0.0.1:5000`",
        "Standard SDK variable: send every AWS call to this endpoint (tests and the demo use it for moto).",
    ),
    Var::optional(
        "AWS_ENDPOINT_URL_<SERVICE>",
        "`AWS_ENDPOINT_URL`",
        "`AWS_ENDPOINT_URL_CODEPIPELINE=http://127.0.0.1:5001`",
        "Standard SDK variable: one service elsewhere (the recording stub).",
    ),
    Var::defaulted(
        "METRICS",
        "on",
        "`off`",
        "CloudWatch metrics as embedded metric format lines in the function's log (no API call). `off` writes none; the template's alarms then never fire.",
    ),
    Var::defaulted(
        "METRICS_NAMESPACE",
        "ContainerDeliveryOps",
        "`ContainerDeliveryOps/prod`",
        "CloudWatch namespace of the metrics. Two stacks in one account and region need different ones, or each alarms on the other's metrics.",
    ),
    Var::optional(
        "METRICS_DIMENSIONS",
        "none: function-level dimensions only",
        "`Pipeline,Repository`",
        "Extra dimensions to opt in to: `Pipeline`, `Repository`, `Application`, `Cluster`. Each distinct value is a new CloudWatch metric, billed as such; without it they are written beside the metrics, for Logs Insights.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vars;

    #[test]
    fn the_shared_defaults_are_the_ones_the_code_falls_back_on() {
        let lists = [SHARED_VARIABLES];
        let none: [(&str, &str); 0] = [];
        let vars = Vars::declared(&none, &lists);
        assert_eq!(
            vars.duration("CONFIG_TTL").unwrap(),
            Some(crate::secrets::DEFAULT_TTL)
        );
    }
}
