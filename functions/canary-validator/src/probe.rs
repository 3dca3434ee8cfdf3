//! HTTP checks: a series of requests against the new version, judged one by one and then
//! by the share that passed.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;
use shared::Deadline;
use shared::text::{human_duration, truncate_plain};

use crate::checks::{BODY_CAP, BodyExpectation, HttpCheck};
use crate::outcome::{CheckFinding, Evidence, OUT_OF_TIME};

pub struct ProbeRequest<'a> {
    pub method: reqwest::Method,
    pub url: &'a reqwest::Url,
    pub headers: HeaderMap,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum ProbeResponse {
    Answered {
        status: u16,
        latency: Duration,
        /// At most [`BODY_CAP`] bytes.
        body: Vec<u8>,
        truncated: bool,
        location: Option<String>,
    },
    NoAnswer {
        latency: Duration,
        error: String,
    },
}

/// The port to the service under test; [`HttpProbe`] is the real one.
pub trait Probe {
    fn send(&self, request: ProbeRequest<'_>) -> impl Future<Output = ProbeResponse> + Send;
}

pub struct HttpProbe {
    client: reqwest::Client,
}

impl HttpProbe {
    pub fn new() -> Result<Self, String> {
        // The process's TLS set-up, so the roots are not read again for the probe.
        let client = shared::http::builder()
            .map_err(|e| e.to_string())?
            // A redirect is an answer to judge, not an instruction: following it could
            // check the production listener instead of the test one.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("canary-validator/", env!("CARGO_PKG_VERSION")))
            // Every probe should see the new version as a fresh client would; a reused
            // keep-alive connection could stick to one task behind the load balancer.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))?;
        Ok(Self { client })
    }
}

/// The error and its causes, without the URL (which may carry a token).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

impl Probe for HttpProbe {
    async fn send(&self, request: ProbeRequest<'_>) -> ProbeResponse {
        let started = Instant::now();
        let call = self
            .client
            .request(request.method, request.url.clone())
            .headers(request.headers)
            .send();
        let exchange = async {
            let mut response = call.await.map_err(describe)?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                let room = BODY_CAP - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, String>((status, location, body, truncated))
        };
        // One timeout over the whole exchange: a server that sends headers and then
        // trickles the body must not outlast it either.
        match tokio::time::timeout(request.timeout, exchange).await {
            Ok(Ok((status, location, body, truncated))) => ProbeResponse::Answered {
                status,
                latency: started.elapsed(),
                body,
                truncated,
                location,
            },
            Ok(Err(error)) => ProbeResponse::NoAnswer {
                latency: started.elapsed(),
                error,
            },
            Err(_) => ProbeResponse::NoAnswer {
                latency: started.elapsed(),
                error: format!(
                    "no complete answer within {}",
                    human_duration(request.timeout)
                ),
            },
        }
    }
}

/// Why one answer does not pass, or `None` when it does.
pub fn judge_answer(check: &HttpCheck, response: &ProbeResponse) -> Option<String> {
    let (status, latency, body, truncated, location) = match response {
        ProbeResponse::NoAnswer { error, .. } => return Some(error.clone()),
        ProbeResponse::Answered {
            status,
            latency,
            body,
            truncated,
            location,
        } => (*status, *latency, body, *truncated, location),
    };
    if !check.expect_status.contains(&status) {
        let expected = check
            .expect_status
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        let redirect = match location {
            Some(to) if (300..400).contains(&status) => {
                // The query may carry a session or a token; where it points is enough.
                let to = to.split(['?', '#']).next().unwrap_or_default();
                format!(" (redirect to {} not followed)", truncate_plain(to, 80))
            }
            _ => String::new(),
        };
        return Some(format!("HTTP {status}{redirect}, expected {expected}"));
    }
    if let Some(max) = check.max_latency
        && latency > max
    {
        return Some(format!(
            "took {}, over the {} limit",
            human_duration(latency),
            human_duration(max)
        ));
    }
    for expectation in &check.body {
        match expectation {
            BodyExpectation::Contains(text) => {
                if !contains(body, text.as_bytes()) {
                    let within = if truncated {
                        format!(" (within the first {} KiB read)", BODY_CAP / 1024)
                    } else {
                        String::new()
                    };
                    return Some(format!("body does not contain {text:?}{within}"));
                }
            }
            BodyExpectation::JsonEquals { pointer, value } => {
                if truncated {
                    return Some(format!(
                        "body is larger than {} KiB, so its JSON was not evaluated",
                        BODY_CAP / 1024
                    ));
                }
                let Ok(json) = serde_json::from_slice::<Value>(body) else {
                    return Some("body is not JSON".into());
                };
                match json.pointer(pointer) {
                    Some(found) if found == value => {}
                    Some(found) => {
                        return Some(format!(
                            "{pointer} is {}, expected {}",
                            truncate_plain(&found.to_string(), 80),
                            truncate_plain(&value.to_string(), 80)
                        ));
                    }
                    None => return Some(format!("{pointer} is missing from the body")),
                }
            }
        }
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn percentile_50(latencies: &mut [Duration]) -> Option<Duration> {
    latencies.sort();
    latencies
        .get(latencies.len().saturating_sub(1) / 2)
        .copied()
}

/// Runs the attempts and judges the series. `headers` are already resolved.
pub async fn run_http<P: Probe>(
    probe: &P,
    check: &HttpCheck,
    headers: HeaderMap,
    deadline: &Deadline,
) -> CheckFinding {
    let needed = check.needed();
    let allowed_failures = check.attempts - needed;
    let mut passed = 0u32;
    let mut failures: Vec<(u32, String)> = Vec::new();
    let mut latencies = Vec::new();
    let mut statuses: Vec<(String, u32)> = Vec::new();
    let mut made = 0u32;
    let mut stopped = None;
    for attempt in 1..=check.attempts {
        if attempt > 1 && deadline.sleep(check.interval).await.is_err() {
            stopped = Some(format!(
                "ran out of time after {made} of {} attempts",
                check.attempts
            ));
            break;
        }
        let timeout = check.timeout.min(deadline.remaining());
        let mut response = probe
            .send(ProbeRequest {
                method: check.method.clone(),
                url: &check.url,
                headers: headers.clone(),
                timeout,
            })
            .await;
        if let ProbeResponse::NoAnswer { latency, error } = &mut response
            && timeout < check.timeout
            && *latency >= timeout
        {
            // Cut off by the deadline, not by the check's own timeout: say so in the words
            // the guard around the check would use had it noticed first.
            *error = OUT_OF_TIME.to_owned();
        }
        made += 1;
        let label = match &response {
            ProbeResponse::Answered {
                status, latency, ..
            } => {
                latencies.push(*latency);
                status.to_string()
            }
            ProbeResponse::NoAnswer { .. } => "no answer".to_owned(),
        };
        match statuses.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => statuses.push((label, 1)),
        }
        match judge_answer(check, &response) {
            None => passed += 1,
            Some(why) => failures.push((attempt, why)),
        }
        if failures.len() as u32 > allowed_failures {
            if attempt < check.attempts {
                stopped = Some(format!(
                    "stopped after {attempt} of {} attempts: {needed} passes can no longer be reached",
                    check.attempts
                ));
            }
            break;
        }
    }
    let p50 = percentile_50(&mut latencies.clone());
    let max = latencies.iter().max().copied();
    let mut evidence = vec![format!(
        "{passed}/{made} passed (needed {needed}/{})",
        check.attempts
    )];
    if let (Some(p50), Some(max)) = (p50, max) {
        evidence.push(format!(
            "p50 {} · max {}",
            human_duration(p50),
            human_duration(max)
        ));
    }
    evidence.push(
        statuses
            .iter()
            .map(|(l, n)| format!("{l}×{n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let ok = passed >= needed;
    let mut reasons: Vec<String> = Vec::new();
    if !ok {
        // The distinct reasons, first occurrence each: ten identical 500s are one reason.
        let mut seen: Vec<&str> = Vec::new();
        for (attempt, why) in &failures {
            if !seen.contains(&why.as_str()) {
                seen.push(why);
                reasons.push(format!("attempt {attempt}: {why}"));
            }
            if reasons.len() == 3 {
                break;
            }
        }
        if let Some(s) = stopped {
            reasons.push(s);
        }
    }
    CheckFinding {
        passed: ok,
        evidence: Evidence(evidence),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{CheckKind, parse_book};
    use std::sync::Mutex;

    fn check(extra: Value) -> HttpCheck {
        let mut spec = serde_json::json!({"type": "http", "url": "https://test.internal/health", "interval": "1ms"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let book = parse_book(&serde_json::json!([spec]).to_string()).unwrap();
        match &book.default[0].kind {
            CheckKind::Http(h) => h.clone(),
            CheckKind::Alarms(_) => unreachable!(),
        }
    }

    fn ok(status: u16, ms: u64, body: &str) -> ProbeResponse {
        ProbeResponse::Answered {
            status,
            latency: Duration::from_millis(ms),
            body: body.as_bytes().to_vec(),
            truncated: false,
            location: None,
        }
    }

    /// Answers from a script, in order.
    struct Scripted(Mutex<Vec<ProbeResponse>>);

    impl Probe for Scripted {
        async fn send(&self, _: ProbeRequest<'_>) -> ProbeResponse {
            let mut left = self.0.lock().unwrap();
            left.remove(0)
        }
    }

    fn budget() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[test]
    fn an_answer_must_match_status_latency_and_body() {
        let c = check(
            serde_json::json!({"expect_status": [200, 204], "max_latency": "500ms",
            "json_pointer": "/status", "json_equals": "UP"}),
        );
        assert_eq!(judge_answer(&c, &ok(200, 10, r#"{"status":"UP"}"#)), None);
        assert_eq!(
            judge_answer(&c, &ok(503, 10, "")).unwrap(),
            "HTTP 503, expected 200 or 204"
        );
        assert!(
            judge_answer(&c, &ok(200, 900, r#"{"status":"UP"}"#))
                .unwrap()
                .contains("over the 500 ms limit")
        );
        assert_eq!(
            judge_answer(&c, &ok(200, 10, r#"{"status":"DOWN"}"#)).unwrap(),
            r#"/status is "DOWN", expected "UP""#
        );
        assert_eq!(
            judge_answer(&c, &ok(200, 10, "<html>")).unwrap(),
            "body is not JSON"
        );
    }

    #[test]
    fn a_redirect_is_judged_not_followed() {
        let c = check(serde_json::json!({}));
        let redirect = ProbeResponse::Answered {
            status: 302,
            latency: Duration::from_millis(3),
            body: Vec::new(),
            truncated: false,
            location: Some("https://login.example.com/?state=s3cret".into()),
        };
        assert_eq!(
            judge_answer(&c, &redirect).unwrap(),
            "HTTP 302 (redirect to https://login.example.com/ not followed), expected 200"
        );
    }

    #[tokio::test]
    async fn the_series_passes_on_the_success_ratio_and_reports_latencies() {
        let c = check(serde_json::json!({"attempts": 4, "min_success_ratio": 0.75}));
        let probe = Scripted(Mutex::new(vec![
            ok(200, 10, ""),
            ok(500, 20, ""),
            ok(200, 30, ""),
            ok(200, 40, ""),
        ]));
        let j = run_http(&probe, &c, HeaderMap::new(), &budget()).await;
        assert!(j.passed, "{j:?}");
        assert_eq!(
            j.evidence.0,
            vec![
                "3/4 passed (needed 3/4)",
                "p50 20 ms · max 40 ms",
                "200×3, 500×1"
            ]
        );
    }

    #[tokio::test]
    async fn the_series_stops_once_the_ratio_is_out_of_reach() {
        let c = check(serde_json::json!({"attempts": 10, "min_success_ratio": 0.9}));
        let probe = Scripted(Mutex::new(vec![ok(500, 1, ""), ok(500, 1, "")]));
        let j = run_http(&probe, &c, HeaderMap::new(), &budget()).await;
        assert!(!j.passed);
        assert_eq!(
            j.reasons,
            vec![
                "attempt 1: HTTP 500, expected 200".to_owned(),
                "stopped after 2 of 10 attempts: 9 passes can no longer be reached".to_owned(),
            ]
        );
    }
}
