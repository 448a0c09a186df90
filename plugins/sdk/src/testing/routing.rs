//! Routing for the in-memory host: the gateway's rules in small — static segments beat
//! parameters, an optional `:verb` on the last segment, parameters percent-decoded.

use crate::error::{ApiError, ErrorCode};
use crate::guest::{Manifest, Route};

/// Percent-decodes one path segment or query part (`+` is a space in queries only).
fn decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default())
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::validation(format!("bad percent-encoding in {s}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::validation(format!("{s} is not UTF-8")))
}

/// `a=1&b=x%40y` → pairs, percent-decoded, `+` as space.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let d = |s: &str| decode(&s.replace('+', " ")).unwrap_or_else(|_| s.to_owned());
            (d(k), d(v))
        })
        .collect()
}

/// Decoded path parameters, by name.
pub(crate) type Params = Vec<(String, String)>;

/// Matches a path against a template; returns the decoded parameters and how many
/// segments matched statically (more wins).
fn matches(template: &str, path: &str) -> Option<(Params, usize)> {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    let mut statics = 0;
    for (i, (ts, ps)) in t.iter().zip(&p).enumerate() {
        let last = i + 1 == t.len();
        let (t_name, t_verb) = match ts.rsplit_once(':') {
            Some((n, v)) if last && !n.is_empty() => (n, Some(v)),
            _ => (*ts, None),
        };
        let segment = match t_verb {
            Some(verb) => ps.strip_suffix(&format!(":{verb}"))?,
            None => ps,
        };
        if let Some(name) = t_name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            if segment.is_empty() || (t_verb.is_none() && last && segment.contains(':')) {
                return None;
            }
            params.push((name.to_owned(), decode(segment).ok()?));
        } else if t_name == segment {
            statics += 1;
        } else {
            return None;
        }
    }
    Some((params, statics))
}

/// The route a request goes to, with its parameters; 404 or 405 as the gateway answers.
pub(crate) fn find<'a>(
    manifest: &'a Manifest,
    method: &str,
    path: &str,
) -> Result<(&'a Route, Params), ApiError> {
    let mut best: Option<(&Route, Params, usize)> = None;
    let mut allowed = Vec::new();
    for route in manifest.routes() {
        let Some((params, statics)) = matches(route.path(), path) else {
            continue;
        };
        if route.method() != method {
            allowed.push(route.method().to_owned());
            continue;
        }
        if best.as_ref().is_none_or(|(_, _, s)| statics > *s) {
            best = Some((route, params, statics));
        }
    }
    match best {
        Some((route, params, _)) => Ok((route, params)),
        None if !allowed.is_empty() => Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed on {path}"),
        )
        .with_detail("allow", allowed)),
        None => Err(ApiError::not_found(format!("no route for {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_like_the_gateway() {
        let (p, s) = matches(
            "/sessions/{session}/contacts/{lid}",
            "/sessions/S1/contacts/1%40lid",
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("session".into(), "S1".into()),
                ("lid".into(), "1@lid".into())
            ]
        );
        assert_eq!(s, 2);
        assert!(matches("/sessions/{session}:start", "/sessions/S1:start").is_some());
        assert!(matches("/sessions/{session}:start", "/sessions/S1").is_none());
        assert!(matches("/sessions/{session}", "/sessions/S1:start").is_none());
        assert!(matches("/groups:join", "/groups:join").is_some());
        let (_, s) = matches(
            "/sessions/{session}/contacts/check",
            "/sessions/S/contacts/check",
        )
        .unwrap();
        assert_eq!(s, 3);
        assert_eq!(
            query_pairs("q=a+b&jid=1%40lid&x"),
            vec![
                ("q".into(), "a b".into()),
                ("jid".into(), "1@lid".into()),
                ("x".into(), "".into())
            ]
        );
    }
}
