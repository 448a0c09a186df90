//! Route templates: `/sessions/{session}/contacts/{lid}`, `/sessions/{session}:start`.

use std::fmt;
use std::sync::Arc;

/// A template that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route '{path}': {reason}")]
pub struct TemplateError {
    pub path: String,
    pub reason: String,
}

/// A validated route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    /// Shared: it labels every request's metrics.
    raw: Arc<str>,
    params: Vec<String>,
    pattern: String,
}

const MAX_TEMPLATE_LEN: usize = 512;

/// The positional name a parameter gets inside the matcher.
pub(super) fn positional(i: usize) -> String {
    format!("p{i}")
}

fn valid_static(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

fn valid_param_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl RouteTemplate {
    pub fn parse(path: &str) -> Result<RouteTemplate, TemplateError> {
        let err = |reason: &str| TemplateError {
            path: path.chars().take(MAX_TEMPLATE_LEN).collect(),
            reason: reason.to_owned(),
        };
        if path.len() > MAX_TEMPLATE_LEN {
            return Err(err("longer than 512 bytes"));
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(err("must start with '/'"));
        };
        if rest.is_empty() {
            return Err(err("must have at least one segment"));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let mut params: Vec<String> = Vec::new();
        let mut pattern = String::with_capacity(path.len());
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            // A colon custom method may end the last segment only.
            let (body, verb) = match seg.split_once(':') {
                Some((b, v)) if last => {
                    if !valid_static(v) {
                        return Err(err("custom method after ':' must be [A-Za-z0-9-_.~]+"));
                    }
                    (b, Some(v))
                }
                Some(_) => return Err(err("':' is only allowed in the last segment")),
                None => (*seg, None),
            };
            pattern.push('/');
            if let Some(name) = body.strip_prefix('{') {
                let Some(name) = name.strip_suffix('}') else {
                    return Err(err("a parameter segment must be exactly '{name}'"));
                };
                if !valid_param_name(name) {
                    return Err(err("parameter names are [A-Za-z_][A-Za-z0-9_]*"));
                }
                if params.iter().any(|p| p == name) {
                    return Err(err("parameter names must be unique"));
                }
                pattern.push('{');
                pattern.push_str(&positional(params.len()));
                pattern.push('}');
                params.push(name.to_owned());
            } else if body.is_empty() && verb.is_some() && i == 0 {
                return Err(err("a custom method needs a segment before ':'"));
            } else if !valid_static(body) {
                return Err(err(
                    "static segments are [A-Za-z0-9-_.~]+; no empty segments or trailing '/'",
                ));
            } else {
                pattern.push_str(body);
            }
            if let Some(v) = verb {
                pattern.push(':');
                pattern.push_str(v);
            }
        }
        Ok(RouteTemplate {
            raw: Arc::from(path),
            params,
            pattern,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The template's text, shared (for labels kept per request).
    pub fn shared(&self) -> Arc<str> {
        self.raw.clone()
    }

    /// Parameter names in path order.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.params.iter().any(|p| p == name)
    }

    pub(super) fn matchit_pattern(&self) -> String {
        self.pattern.clone()
    }
}

impl fmt::Display for RouteTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}
