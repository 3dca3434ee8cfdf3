//! The LogTail port over CloudWatch Logs, so that a migration is reported with the last
//! lines its container wrote.

use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
use shared::{Deadline, Error};

use super::{LogTail, bounded};

/// How many empty GetLogEvents pages are followed back before the stream counts as empty.
const EMPTY_PAGES_FOLLOWED: usize = 3;

pub struct CloudWatchLogs {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl CloudWatchLogs {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudwatchlogs::Client::new(sdk),
        }
    }
}

impl LogTail for CloudWatchLogs {
    async fn tail(
        &self,
        group: &str,
        stream: &str,
        lines: u32,
        deadline: &Deadline,
    ) -> Result<Option<Vec<String>>, Error> {
        if lines == 0 {
            return Ok(Some(Vec::new()));
        }
        bounded(deadline, "reading the log tail", async {
            // Without startFromHead, GetLogEvents returns the newest events, oldest first:
            // the tail. A page can come back empty while older events exist (CloudWatch Logs
            // API reference, GetLogEvents); a few pages back are enough to find the end.
            let mut token: Option<String> = None;
            for _ in 0..EMPTY_PAGES_FOLLOWED {
                let result = self
                    .client
                    .get_log_events()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .limit(i32::try_from(lines).unwrap_or(i32::MAX))
                    .start_from_head(false)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                let out = match result {
                    Ok(out) => out,
                    Err(e)
                        if matches!(
                            e.as_service_error(),
                            Some(GetLogEventsError::ResourceNotFoundException(_))
                        ) =>
                    {
                        return Ok(None);
                    }
                    Err(e) => return Err(Error::from_sdk("CloudWatch Logs", "GetLogEvents", e)),
                };
                if !out.events().is_empty() {
                    return Ok(Some(
                        out.events()
                            .iter()
                            .map(|e| e.message().unwrap_or_default().trim_end().to_owned())
                            .collect(),
                    ));
                }
                match out.next_backward_token {
                    Some(back) if token.as_deref() != Some(back.as_str()) => token = Some(back),
                    _ => break,
                }
            }
            Ok(Some(Vec::new()))
        })
        .await
    }
}
