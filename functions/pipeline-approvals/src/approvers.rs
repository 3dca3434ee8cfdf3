//! Who may approve which pipelines: `APPROVERS`, pipeline-name globs to Slack user ids
//! (`U…`, `W…` for Enterprise Grid) and user-group ids (`S…`).
//!
//! The most specific glob that matches a pipeline decides (the one with the most characters
//! that are not wildcards; globs as specific as each other are taken together), so
//! `{"prod-*": [...], "*": [...]}` gives production its own approvers and everything else the
//! fallback's: a broad `*` never widens who may approve production. A pipeline no glob
//! matches cannot be approved from Slack.

use std::collections::BTreeMap;

use shared::glob::Glob;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvers {
    rules: Vec<(Glob, Vec<Principal>)>,
}

/// A Slack id: a letter, then 2 to 20 upper-case letters and digits.
fn is_id(text: &str, first: &[u8]) -> bool {
    (3..=21).contains(&text.len())
        && first.contains(&text.as_bytes()[0])
        && text[1..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Approvers {
    pub const EXPECTED: &'static str = r#"a JSON object from pipeline globs to Slack user and user-group ids, such as {"prod-*": ["U012AB3CD", "S0614TZR7"], "*": ["U09ZYX8WV"]}"#;

    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, Vec<String>> = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a JSON object of lists (line {} column {})",
                e.line(),
                e.column()
            )
        })?;
        if raw.is_empty() {
            return Err("no pipeline is named: nobody could approve anything".into());
        }
        let mut rules = Vec::new();
        for (glob, ids) in raw {
            if glob.trim().is_empty() || glob.len() > 200 {
                return Err("a pipeline glob is empty or longer than 200 characters".into());
            }
            if ids.is_empty() {
                return Err(format!("{glob:?} names no approver"));
            }
            let principals = ids
                .into_iter()
                .map(|id| {
                    let id = id.trim().to_owned();
                    if is_id(&id, b"UW") {
                        Ok(Principal::User(id))
                    } else if is_id(&id, b"S") {
                        Ok(Principal::Group(id))
                    } else {
                        Err(format!(
                            "{glob:?} lists something that is not a user id (U…, W…) or a user-group id (S…); names and handles change, ids do not"
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push((Glob::new(glob), principals));
        }
        Ok(Self { rules })
    }

    /// Who may approve `pipeline`: the most specific matching globs' approvers.
    pub fn for_pipeline(&self, pipeline: &str) -> Vec<&Principal> {
        let specificity = |g: &Glob| {
            g.as_str()
                .chars()
                .filter(|c| !matches!(c, '*' | '?'))
                .count()
        };
        let matching: Vec<&(Glob, Vec<Principal>)> = self
            .rules
            .iter()
            .filter(|(g, _)| g.matches(pipeline))
            .collect();
        let Some(best) = matching.iter().map(|(g, _)| specificity(g)).max() else {
            return Vec::new();
        };
        matching
            .into_iter()
            .filter(|(g, _)| specificity(g) == best)
            .flat_map(|(_, p)| p)
            .collect()
    }

    /// Whether any rule names a user group (resolving one needs the bot token).
    pub fn names_groups(&self) -> bool {
        self.rules
            .iter()
            .flat_map(|(_, p)| p)
            .any(|p| matches!(p, Principal::Group(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_glob_decides_so_a_fallback_never_widens_production() {
        let a = Approvers::parse(r#"{"prod-*": ["U012AB3CD", "S0614TZR7"], "*": ["U09ZYX8WV"]}"#)
            .unwrap();
        assert_eq!(
            a.for_pipeline("prod-api"),
            vec![
                &Principal::User("U012AB3CD".into()),
                &Principal::Group("S0614TZR7".into())
            ]
        );
        assert_eq!(
            a.for_pipeline("dev-api"),
            vec![&Principal::User("U09ZYX8WV".into())]
        );
        assert!(a.names_groups());
        let only_prod = Approvers::parse(r#"{"prod-*": ["W012AB3CD"]}"#).unwrap();
        assert!(
            only_prod.for_pipeline("dev-api").is_empty(),
            "nobody for an unnamed pipeline"
        );
    }

    #[test]
    fn names_handles_and_empty_lists_are_refused() {
        for bad in [
            r#"{"prod-*": ["@ada"]}"#,
            r#"{"prod-*": ["ada@example.com"]}"#,
            r#"{"prod-*": []}"#,
            r#"{}"#,
            r#"["U012AB3CD"]"#,
            r#"{"prod-*": ["u012ab3cd"]}"#,
        ] {
            assert!(Approvers::parse(bad).is_err(), "{bad}");
        }
    }
}
