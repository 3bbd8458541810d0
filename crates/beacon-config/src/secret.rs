use std::fmt;

/// A secret value: its `Debug` and `Display` never show it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A URL with its password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://") else {
            return "***".to_owned();
        };
        let rest = &s[scheme_end + 3..];
        let host_part_end = rest.find('/').unwrap_or(rest.len());
        match rest[..host_part_end].rfind('@') {
            Some(at) => {
                let creds = &rest[..at];
                let user = creds.split(':').next().unwrap_or("");
                format!("{}://{}:***@{}", &s[..scheme_end], user, &rest[at + 1..])
            }
            None => s.clone(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
