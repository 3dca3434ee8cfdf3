//! The message: verdict, image, for an image index each platform's verdict and what was not
//! judged, counts before and after waivers, the worst findings, waivers applied / expired /
//! ending soon, promotion, and a link to the image.

use shared::console;
use shared::notifier::{Attributes, Notification, Tone};
use shared::slack::{Block, Button, Message, Mrkdwn};

use crate::policy::{Evaluation, Finding, counts_line};
use crate::registry::Promotion;
use crate::verdict::{Judged, Verdict};

pub struct RegistryLocation<'a> {
    pub region: &'a str,
    pub account: &'a str,
}

fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", hex.chars().take(12).collect::<String>())
}

fn image_label(repository: &str, image: Option<&Judged>, fallback: &str) -> String {
    match image {
        Some(i) => {
            let tag = i.tags.first().map(|t| format!(":{t}")).unwrap_or_default();
            format!("{}{tag}@{}", i.repository, short_digest(&i.digest))
        }
        None => format!("{repository} ({fallback})"),
    }
}

fn finding_line(f: &Finding) -> Mrkdwn {
    let mut m = Mrkdwn::new().code(f.severity.name()).plain(" ");
    m = match &f.url {
        Some(u) => m.link(u, &f.id),
        None => m.bold(&f.id),
    };
    if let Some(p) = &f.package {
        m = m.plain(" in ").plain(p);
        if let Some(v) = &f.version {
            m = m.plain(" ").plain(v);
        }
    }
    if let Some(fix) = &f.fixed_in {
        m = m.plain(" → fixed in ").plain(fix);
    }
    if f.exploit_available == Some(true) {
        m = m.plain(" · exploit available");
    }
    m
}

/// Which `POLICY` rule blocked a finding, when one did.
fn blocked_by<'e>(e: &'e Evaluation, f: &Finding) -> Option<&'e str> {
    e.breaches
        .iter()
        .find(|b| {
            b.findings
                .iter()
                .any(|x| x.id == f.id && x.package == f.package)
        })
        .map(|b| b.rule.as_str())
}

pub fn render(
    verdict: &Verdict,
    repository: &str,
    subject_ref: &str,
    registry: &RegistryLocation,
    promotion: Option<&(String, Promotion)>,
) -> Notification {
    let (icon, word) = match verdict {
        Verdict::Pass { .. } => ("✅", "PASS"),
        Verdict::Fail { .. } => ("⛔", "FAIL"),
        Verdict::Pending { .. } => ("⏳", "PENDING"),
    };
    let image = match verdict {
        Verdict::Pass { image, .. } => Some(image),
        Verdict::Fail { image, .. } => image.as_ref(),
        Verdict::Pending { .. } => None,
    };
    let label = image_label(repository, image, subject_ref);
    let title = format!("{icon} Image scan {word}: {label}");
    let mut message =
        Message::new(Mrkdwn::from_untrusted(&title)).block(Block::Header(title.clone()));

    let evaluation: Option<&Evaluation> = match verdict {
        Verdict::Pass { evaluation, .. } => Some(evaluation),
        Verdict::Fail { evaluation, .. } => evaluation.as_ref(),
        Verdict::Pending { .. } => None,
    };
    match verdict {
        Verdict::Fail { reasons, .. } => {
            let mut m = Mrkdwn::new().bold("Blocked because");
            for r in reasons {
                m = m.newline().plain("• ").plain(r);
            }
            message = message.block(Block::section(m));
        }
        Verdict::Pending { reason } => {
            message = message.block(Block::section(
                Mrkdwn::new().plain("Not decided yet: ").plain(reason),
            ));
        }
        Verdict::Pass { evaluation, .. } if !evaluation.warnings.is_empty() => {
            let mut m = Mrkdwn::new().plain(
                "Within policy, with warnings: these rules are in warn mode and would have blocked",
            );
            for w in &evaluation.warnings {
                m = m
                    .newline()
                    .plain("• ")
                    .plain(&crate::verdict::breach_line(w));
            }
            message = message.block(Block::section(m));
        }
        Verdict::Pass { .. } => {
            message = message.block(Block::section(
                Mrkdwn::new().plain("Within policy: no threshold exceeded."),
            ));
        }
    }
    if let Some(i) = image.filter(|i| !i.platforms.is_empty() || !i.skipped.is_empty()) {
        let mut m = Mrkdwn::new().bold(&format!(
            "Image index: {} platform image(s) judged, the verdict is the worst",
            i.platforms.len()
        ));
        for p in &i.platforms {
            m = m
                .newline()
                .plain("• ")
                .code(&p.platform)
                .plain(&format!(" {} ({}): ", p.verdict, short_digest(&p.digest)))
                .plain(&p.summary);
        }
        for s in &i.skipped {
            m = m.newline().plain("• not judged: ").plain(s);
        }
        message = message.block(Block::section(m));
    }
    if let Some(e) = evaluation {
        let before = counts_line(&e.before);
        let after = counts_line(&e.after);
        message = message.block(Block::fields(vec![
            Mrkdwn::new().bold("Findings").newline().plain(&before),
            Mrkdwn::new().bold("After waivers").newline().plain(&after),
        ]));
        if !e.counted.is_empty() {
            let mut m =
                Mrkdwn::new().bold(&format!("Worst findings ({} counted)", e.counted.len()));
            for f in e.counted.iter().take(10) {
                m = m.newline().append(&finding_line(f));
                if let Some(rule) = blocked_by(e, f) {
                    m = m.plain(" — blocked by rule ").code(rule);
                }
            }
            message = message.block(Block::section(m));
        }
        let mut waivers = Vec::new();
        for (f, w) in &e.waived {
            waivers.push(
                Mrkdwn::new()
                    .plain("Waived ")
                    .bold(&f.id)
                    .plain(&format!(" until {}: ", w.expires))
                    .plain(&w.reason),
            );
        }
        for (f, w) in &e.expired {
            waivers.push(
                Mrkdwn::new()
                    .plain("⚠️ Waiver for ")
                    .bold(&f.id)
                    .plain(&format!(" expired on {}: it counts again", w.expires)),
            );
        }
        for w in &e.expiring_soon {
            waivers.push(
                Mrkdwn::new()
                    .plain("⏰ Waiver for ")
                    .bold(&w.id)
                    .plain(&format!(" ends on {}", w.expires)),
            );
        }
        if !e.suppressed.is_empty() {
            let ids: Vec<&str> = e.suppressed.iter().take(5).map(|f| f.id.as_str()).collect();
            waivers.push(Mrkdwn::new().plain(&format!(
                "{} finding(s) suppressed in Inspector, not counted: {}{}",
                e.suppressed.len(),
                ids.join(", "),
                if e.suppressed.len() > ids.len() {
                    ", …"
                } else {
                    ""
                }
            )));
        }
        if e.closed > 0 {
            waivers.push(Mrkdwn::new().plain(&format!(
                "{} finding(s) closed in Inspector, not counted",
                e.closed
            )));
        }
        let mut allowed: Vec<(&str, usize)> = Vec::new();
        for (_, rule) in &e.allowed {
            match allowed.iter_mut().find(|(r, _)| r == rule) {
                Some((_, n)) => *n += 1,
                None => allowed.push((rule, 1)),
            }
        }
        if e.by_thresholds > 0 {
            waivers.push(Mrkdwn::new().plain(&format!(
                "{} finding(s) no POLICY rule decided were judged by the MAX_* thresholds",
                e.by_thresholds
            )));
        }
        for (rule, n) in allowed {
            waivers.push(
                Mrkdwn::new()
                    .plain(&format!("{n} finding(s) allowed by rule "))
                    .code(rule),
            );
        }
        if !e.warnings.is_empty() && matches!(verdict, Verdict::Fail { .. }) {
            for w in &e.warnings {
                waivers.push(
                    Mrkdwn::new()
                        .plain("⚠️ Warn rule would also block: ")
                        .plain(&crate::verdict::breach_line(w)),
                );
            }
        }
        if !e.unused_waivers.is_empty() {
            // One line: a long waiver list is mostly other images' business.
            let ids: Vec<&str> = e
                .unused_waivers
                .iter()
                .take(5)
                .map(|w| w.id.as_str())
                .collect();
            waivers.push(Mrkdwn::new().plain(&format!(
                "Waivers that matched no finding of this image (stale, or a typo in the id): {}{}",
                ids.join(", "),
                if e.unused_waivers.len() > ids.len() {
                    format!(" and {} more", e.unused_waivers.len() - ids.len())
                } else {
                    String::new()
                }
            )));
        }
        if !e.ignored_unfixed.is_empty() {
            waivers.push(Mrkdwn::new().plain(&format!(
                "{} finding(s) without a fix ignored (IGNORE_UNFIXED)",
                e.ignored_unfixed.len()
            )));
        }
        if !waivers.is_empty() {
            let mut m = Mrkdwn::new();
            for (i, w) in waivers.into_iter().enumerate() {
                if i > 0 {
                    m = m.newline();
                }
                m = m.append(&w);
            }
            message = message.block(Block::section(m));
        }
    }
    if let Some((tag, p)) = promotion {
        let line = match p {
            Promotion::Tagged => format!("Tagged {tag} on this digest."),
            Promotion::AlreadyTagged => format!("Already tagged {tag}."),
            Promotion::TagTaken(why) => format!(
                "Could not tag {tag}: the tag is immutable and names another image ({why})."
            ),
            Promotion::NotAllowed(why) => format!(
                "Could not tag {tag}: the function's role may not tag this repository (ecr:BatchGetImage, ecr:PutImage; ScanGateRepositoryPattern): {why}."
            ),
            Promotion::Unavailable(why) => format!(
                "Could not tag {tag}: ECR was throttling or unavailable; the next scan or run of this image will try again ({why})."
            ),
            Promotion::Failed(why) => format!("Could not tag {tag}: {why}."),
        };
        message = message.block(Block::Context(vec![Mrkdwn::from_untrusted(&line)]));
    }
    if let Some(i) = image {
        let url = console::ecr_image(registry.region, registry.account, &i.repository, &i.digest);
        message = message.block(Block::Buttons(vec![Button {
            label: "Open image in ECR".into(),
            url,
        }]));
    }
    let tone = match (verdict, promotion.map(|(_, p)| p)) {
        // The tag a deployment waits for was not written: someone fixes IAM or the tag.
        (
            Verdict::Pass { .. },
            Some(Promotion::NotAllowed(_) | Promotion::TagTaken(_) | Promotion::Failed(_)),
        ) => Tone::Failure,
        (Verdict::Pass { .. }, _) => Tone::Success,
        (Verdict::Fail { .. }, _) => Tone::Failure,
        (Verdict::Pending { .. }, _) => Tone::Info,
    };
    Notification::new(format!("[{word}] image scan {label}"), message).tagged(
        Attributes::new(crate::app::FUNCTION, tone)
            .outcome(word)
            .about("repository", repository),
    )
}
/// A failure that is not about findings (the gate could not judge, or could not answer):
/// shown as a FAIL without an image, with the reason.
pub fn render_failure(
    reason: String,
    repository: &str,
    subject: &str,
    registry: &RegistryLocation,
) -> Notification {
    let verdict = Verdict::Fail {
        image: None,
        reasons: vec![reason],
        evaluation: None,
    };
    render(&verdict, repository, subject, registry, None)
}
