//! Shell-style name patterns for configuration: `*` any run of characters, `?` one
//! character, everything else literal. Enough for pipeline and repository names, and no
//! regex engine for operators to trip over.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, name: &str) -> bool {
        let pattern: Vec<char> = self.0.chars().collect();
        let text: Vec<char> = name.chars().collect();
        // Iterative matcher with one backtrack point: linear in practice, no recursion
        // for a hostile pattern to blow up.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if p < pattern.len() && pattern[p] == '*' {
                star = Some((p, t));
                p += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Glob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(Glob::new("prod-*").matches("prod-api"));
        assert!(Glob::new("prod-*").matches("prod-"));
        assert!(!Glob::new("prod-*").matches("staging-api"));
        assert!(Glob::new("*-api").matches("prod-api"));
        assert!(Glob::new("p?od-*-api").matches("prod-eu-api"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("team/*").matches("team/app/worker"));
        assert!(!Glob::new("exact").matches("exactly"));
        assert!(Glob::new("a*b*c").matches("aXXbYYc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYY"));
    }

    #[test]
    fn hostile_patterns_finish_quickly() {
        let pattern = Glob::new("*a".repeat(50) + "b");
        assert!(!pattern.matches(&"a".repeat(5000)));
    }
}
