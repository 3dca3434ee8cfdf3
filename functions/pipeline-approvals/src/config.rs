//! The approvals function's configuration, read once at init.

use shared::config::{ConfigError, Document, Environment, SHARED_VARIABLES, Var, Vars};
use shared::secrets::SecretRef;
use shared::slack::SlackApi;

use crate::approvers::Approvers;

/// The function's variables: what the loader reads and its page documents.
pub const VARIABLES: &[Var] = &[
    Var::required(
        "SLACK_SIGNING_SECRET",
        "`ssm:/ops/slack/signing-secret`",
        "The Slack app's signing secret (Basic Information, App Credentials), literal or `ssm:`/`secretsmanager:` reference, kept for `CONFIG_TTL`. The only key the public endpoint has: a request it did not sign is refused.",
    ),
    Var::required(
        "APPROVERS",
        "`{\"prod-*\": [\"U012AB3CD\", \"S0614TZR7\"], \"*\": [\"U09ZYX8WV\"]}`",
        "Who may approve which pipelines: pipeline-name globs to Slack user ids (`U…`, `W…`) and user-group ids (`S…`), inline JSON or an `ssm:`/`secretsmanager:` reference. The first glob that matches, in the order written, decides (`\"*\"` last); a pipeline no glob matches cannot be approved from Slack.",
    ),
    Var::optional(
        "SLACK_BOT_TOKEN",
        "unset (user ids only)",
        "`ssm:/ops/slack/bot-token`",
        "A bot token: with `usergroups:read` it reads the members of the user groups `APPROVERS` names (kept for `CONFIG_TTL`; required when it names one); with `chat:write`, and the bot in the channel, it also says who answered in the message's thread.",
    ),
    Var::defaulted(
        "SLACK_API_URL",
        "https://slack.com/api",
        "`https://slack-gov.com/api`",
        "Where the Slack Web API is (GovSlack has its own).",
    ),
];

#[derive(Debug, Clone)]
pub struct Config {
    pub signing_secret: SecretRef,
    pub approvers: Document<Approvers>,
    pub bot_token: Option<SecretRef>,
    pub api: SlackApi,
}

impl Config {
    pub fn from_env<E: Environment + ?Sized>(env: &E) -> Result<Self, ConfigError> {
        let lists = [SHARED_VARIABLES, VARIABLES];
        let vars = Vars::declared(env, &lists);
        let signing_secret = vars.secret("SLACK_SIGNING_SECRET")?.ok_or_else(|| {
            ConfigError::malformed(
                "SLACK_SIGNING_SECRET",
                "the Slack app's signing secret or a reference to it",
                "missing: without it no request can be trusted",
            )
        })?;
        let approvers = vars
            .document("APPROVERS", Approvers::EXPECTED, Approvers::parse)?
            .ok_or_else(|| {
                ConfigError::malformed(
                    "APPROVERS",
                    Approvers::EXPECTED,
                    "missing: nobody could approve",
                )
            })?;
        let bot_token = vars.secret("SLACK_BOT_TOKEN")?;
        if let Document::Inline(a) = &approvers
            && a.names_groups()
            && bot_token.is_none()
        {
            return Err(ConfigError::malformed(
                "SLACK_BOT_TOKEN",
                "a bot token with usergroups:read",
                "APPROVERS names a user group, and its members cannot be read without one",
            ));
        }
        let api = vars.optional("SLACK_API_URL")?.unwrap_or_default();
        let api = SlackApi::new(&api).map_err(|_| {
            ConfigError::malformed("SLACK_API_URL", "an https URL", "not an https URL")
        })?;
        Ok(Self {
            signing_secret,
            approvers,
            bot_token,
            api,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_and_the_approvers_are_required_and_a_group_needs_the_bot_token() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            Config::from_env(&none).unwrap_err().variable,
            "SLACK_SIGNING_SECRET"
        );
        let no_approvers = [("SLACK_SIGNING_SECRET", "ssm:/ops/slack/signing-secret")];
        assert_eq!(
            Config::from_env(&no_approvers).unwrap_err().variable,
            "APPROVERS"
        );
        let group = [
            ("SLACK_SIGNING_SECRET", "ssm:/ops/slack/signing-secret"),
            ("APPROVERS", r#"{"prod-*": ["S0614TZR7"]}"#),
        ];
        assert_eq!(
            Config::from_env(&group).unwrap_err().variable,
            "SLACK_BOT_TOKEN"
        );
        let stored = [
            ("SLACK_SIGNING_SECRET", "ssm:/ops/slack/signing-secret"),
            ("APPROVERS", "ssm:/ops/approvers"),
        ];
        assert!(
            Config::from_env(&stored).is_ok(),
            "a stored list is read on first use"
        );
        let bad = [
            ("SLACK_SIGNING_SECRET", "s3cr3t"),
            ("APPROVERS", r#"{"prod-*": ["@ada"]}"#),
        ];
        let err = Config::from_env(&bad).unwrap_err();
        assert_eq!(err.variable, "APPROVERS");
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
