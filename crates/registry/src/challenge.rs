//! `WWW-Authenticate` challenges (RFC 7235), as registries send them.

/// One parsed challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic`, lower-cased.
    pub scheme: String,
    /// Parameters, names lower-cased.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses the first challenge of a header value.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.char_indices().peekable();
        let b = rest;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ' ' || *c == ',') {
                chars.next();
            }
            let Some(&(start, _)) = chars.peek() else {
                break;
            };
            let mut eq = None;
            while let Some(&(i, c)) = chars.peek() {
                if c == '=' {
                    eq = Some(i);
                    chars.next();
                    break;
                }
                if c == ',' {
                    break;
                }
                chars.next();
            }
            let Some(eq) = eq else { break };
            let name = b[start..eq].trim().to_ascii_lowercase();
            while chars.peek().is_some_and(|(_, c)| *c == ' ') {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek().is_some_and(|(_, c)| *c == '"') {
                chars.next();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
            params.push((name, value));
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("scope"), Some("repository:library/nginx:pull"));
        let b = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (b.scheme.as_str(), b.param("realm")),
            ("basic", Some("Registry Realm"))
        );
        let odd = Challenge::parse(r#"Bearer realm=http://x/token, service = "a\"b""#).unwrap();
        assert_eq!(odd.param("realm"), Some("http://x/token"));
        assert_eq!(odd.param("service"), Some("a\"b"));
        assert!(Challenge::parse("").is_none());
    }
}
