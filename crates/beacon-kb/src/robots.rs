//! A small robots.txt reader (RFC 9309): the group for Beacon's user agent (else `*`), its
//! `Allow`/`Disallow` rules with `*` and `$`, the longest match deciding (a tie allows), and
//! `Crawl-delay`.

/// A group of a robots.txt: its user agents, its `(allow, pattern)` rules, its crawl delay.
type Group = (Vec<String>, Vec<(bool, String)>, Option<f64>);

/// The rules of one robots.txt for one user agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    /// `(allow, pattern)` of the matching group(s).
    rules: Vec<(bool, String)>,
    /// The group's `Crawl-delay`, in seconds.
    pub crawl_delay: Option<f64>,
}

impl Robots {
    /// Everything allowed (no robots.txt).
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// The rules in `text` for the crawler named `agent` (its product token, e.g. `beacon`):
    /// the groups naming it, or else the `*` groups.
    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut groups: Vec<Group> = Vec::new();
        let mut open = false; // the last group still takes user-agent lines
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some((key, value)) = line.split_once(':') else { continue };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            match key.as_str() {
                "user-agent" => {
                    if !open {
                        groups.push((Vec::new(), Vec::new(), None));
                        open = true;
                    }
                    if let Some(g) = groups.last_mut() {
                        g.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    open = false;
                    if let Some(g) = groups.last_mut()
                        && !value.is_empty()
                    {
                        g.1.push((key == "allow", value.to_owned()));
                    }
                }
                "crawl-delay" => {
                    open = false;
                    if let Some(g) = groups.last_mut() {
                        g.2 = value.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0);
                    }
                }
                _ => {}
            }
        }
        let named = |g: &&Group| g.0.iter().any(|ua| ua != "*" && !ua.is_empty() && agent.contains(ua.as_str()));
        let mut chosen: Vec<_> = groups.iter().filter(named).collect();
        if chosen.is_empty() {
            chosen = groups.iter().filter(|g| g.0.iter().any(|ua| ua == "*")).collect();
        }
        Robots {
            rules: chosen.iter().flat_map(|g| g.1.iter().cloned()).collect(),
            crawl_delay: chosen.iter().find_map(|g| g.2),
        }
    }

    /// Whether `path` (with its query, e.g. `/docs/a?x=1`) may be fetched.
    pub fn allowed(&self, path: &str) -> bool {
        if path == "/robots.txt" {
            return true;
        }
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let len = pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, *allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// Whether `pattern` (`*` any run, a final `$` the end) matches the start of `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            at = part.len();
            continue;
        }
        // The last part of an anchored pattern must end the path.
        if anchored && i == parts.len() - 1 {
            return path.len() >= at + part.len() && path.ends_with(part);
        }
        match path[at..].find(part) {
            Some(n) => at += n + part.len(),
            None => return false,
        }
    }
    !anchored || at == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: &str = "\
# comments are ignored
User-agent: *
Disallow: /private/
Disallow: /*.pdf$
Allow: /private/public-page

User-agent: OtherBot
User-agent: beacon
Disallow: /beacon-only-secret
Crawl-delay: 2
";

    #[test]
    fn the_named_group_wins_over_the_star_group() {
        let r = Robots::parse(TXT, "beacon/0.1.0");
        assert!(!r.allowed("/beacon-only-secret/page"));
        assert!(r.allowed("/private/x"), "the * group does not apply to a named agent");
        assert_eq!(r.crawl_delay, Some(2.0));
    }

    #[test]
    fn longest_match_decides_and_wildcards_work() {
        let r = Robots::parse(TXT, "somebot");
        assert!(!r.allowed("/private/notes"));
        assert!(r.allowed("/private/public-page"), "the longer allow wins");
        assert!(!r.allowed("/docs/manual.pdf"));
        assert!(r.allowed("/docs/manual.pdf?download=1"), "`$` anchors the end");
        assert!(r.allowed("/docs/"));
        assert!(r.allowed("/robots.txt"));
        assert_eq!(r.crawl_delay, None);
    }

    #[test]
    fn empty_or_missing_rules_allow_everything() {
        assert!(Robots::parse("User-agent: *\nDisallow:\n", "beacon").allowed("/a"));
        assert!(Robots::allow_all().allowed("/a"));
        assert!(!Robots::parse("User-agent: *\nDisallow: /\n", "beacon").allowed("/a"));
        // A tie between allow and disallow allows.
        assert!(Robots::parse("User-agent: *\nDisallow: /a\nAllow: /a\n", "beacon").allowed("/a"));
        assert!(matches("/a*b$", "/axxb") && !matches("/a*b$", "/axxbc") && matches("/a*b", "/axxbc"));
    }
}
