//! Who may approve which pipelines: `APPROVERS`, pipeline-name globs to Slack user ids
//! (`U…`, `W…` for Enterprise Grid) and user-group ids (`S…`).
//!
//! The first glob that matches a pipeline, in the order written, decides, as `SLACK_ROUTES`
//! does: `{"prod-*": [...], "*": [...]}` gives production its own approvers and everything
//! else the fallback's, and a later, broader glob never widens who may approve what an
//! earlier one matched. A pipeline no glob matches cannot be approved from Slack. A glob
//! written twice is refused: JSON readers keep only one of the two, silently.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
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
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de.deserialize_map(InOrder).map_err(|e| {
            format!(
                "not a JSON object of lists, each glob once (line {} column {})",
                e.line(),
                e.column()
            )
        })?;
        de.end()
            .map_err(|_| "text after the JSON object".to_owned())?;
        if raw.is_empty() {
            return Err("no pipeline is named: nobody could approve anything".into());
        }
        let mut rules = Vec::new();
        let mut after_everything = false;
        for (glob, ids) in raw {
            let glob = glob.trim().to_owned();
            if after_everything {
                return Err(format!(
                    "{glob:?} comes after \"*\", which matches every pipeline first: it could never decide (put \"*\" last)"
                ));
            }
            after_everything = glob == "*";
            if glob.is_empty() || glob.len() > 200 {
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

    /// Who may approve `pipeline`: the first matching glob's approvers.
    pub fn for_pipeline(&self, pipeline: &str) -> &[Principal] {
        self.rules
            .iter()
            .find(|(g, _)| g.matches(pipeline))
            .map(|(_, p)| p.as_slice())
            .unwrap_or_default()
    }

    /// Whether any rule names a user group (resolving one needs the bot token).
    pub fn names_groups(&self) -> bool {
        self.rules
            .iter()
            .flat_map(|(_, p)| p)
            .any(|p| matches!(p, Principal::Group(_)))
    }
}

/// A JSON object's entries in the order written; a key written twice is an error.
struct InOrder;

impl<'de> Visitor<'de> for InOrder {
    type Value = Vec<(String, Vec<String>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object from pipeline globs to lists of ids")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        while let Some((glob, ids)) = map.next_entry::<String, Vec<String>>()? {
            if entries.iter().any(|(g, _)| g.trim() == glob.trim()) {
                return Err(serde::de::Error::custom("a glob is written twice"));
            }
            entries.push((glob, ids));
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_glob_decides_so_a_later_one_never_widens_it() {
        let a = Approvers::parse(
            r#"{"prod-*": ["U012AB3CD", "S0614TZR7"], "*-payments": ["U0PAYTEAM1"], "*": ["U09ZYX8WV"]}"#,
        )
        .unwrap();
        let prod = [
            Principal::User("U012AB3CD".into()),
            Principal::Group("S0614TZR7".into()),
        ];
        assert_eq!(a.for_pipeline("prod-api"), prod);
        assert_eq!(
            a.for_pipeline("prod-payments"),
            prod,
            "written first, production's approvers decide"
        );
        assert_eq!(
            a.for_pipeline("dev-payments"),
            [Principal::User("U0PAYTEAM1".into())]
        );
        assert_eq!(
            a.for_pipeline("dev-api"),
            [Principal::User("U09ZYX8WV".into())]
        );
        assert!(a.names_groups());
        let only_prod = Approvers::parse(r#"{" prod-* ": ["W012AB3CD"]}"#).unwrap();
        assert!(
            only_prod.for_pipeline("dev-api").is_empty(),
            "nobody for an unnamed pipeline"
        );
        assert_eq!(
            only_prod.for_pipeline("prod-api").len(),
            1,
            "globs are trimmed"
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
            r#"{"prod-*": ["U012AB3CD"], "prod-*": ["U09ZYX8WV"]}"#,
            r#"{"prod-*": ["U012AB3CD"]} {"*": []}"#,
            r#"{"*": ["U09ZYX8WV"], "prod-*": ["U012AB3CD"]}"#,
        ] {
            assert!(Approvers::parse(bad).is_err(), "{bad}");
        }
    }
}
