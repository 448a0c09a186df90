//! The routing table: built from the host's own routes and every plugin's manifest, it
//! maps a method and path to one handler, with path parameters decoded.
//!
//! Matching uses `matchit` (static segments beat parameters; a parameter with a
//! `:verb` suffix beats a bare one), with parameters renamed by position so two routes
//! may name the same position differently (`{lid}` here, `{jid}` there).

mod template;

pub use template::{RouteTemplate, TemplateError};

use std::collections::HashMap;
use std::sync::Arc;

/// A route's HTTP method. HEAD and OPTIONS are not routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Who declared a route, for conflict messages.
pub trait RouteOwner {
    fn owner_name(&self) -> String;
}

/// A routing failure, mapped to 404/405 by the envelope layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: Vec<Method>,
    },
    #[error("path parameter '{0}' is not valid percent-encoded UTF-8")]
    BadEncoding(String),
}

/// A route could not be added.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteConflict {
    #[error("{method} {path} is declared by both {first} and {second}")]
    Duplicate {
        method: &'static str,
        path: String,
        first: String,
        second: String,
    },
    #[error("{path} ({owner}) overlaps {other_path} ({other}) ambiguously: {reason}")]
    Ambiguous {
        path: String,
        owner: String,
        other_path: String,
        other: String,
        reason: String,
    },
    #[error("{owner}: {error}")]
    Template { owner: String, error: TemplateError },
}

struct PathEntry<T> {
    /// The normalised template, for conflict messages.
    shape: String,
    methods: Vec<(Method, Arc<RouteTemplate>, T)>,
}

/// An immutable routing table over handlers of type `T`.
pub struct RouteTable<T> {
    router: matchit::Router<usize>,
    paths: Vec<PathEntry<T>>,
}

/// A matched route: the handler, its template and decoded parameters.
#[derive(Debug)]
pub struct Matched<'a, T> {
    pub target: &'a T,
    pub template: &'a Arc<RouteTemplate>,
    pub params: Vec<(String, String)>,
}

/// Collects routes, then builds a [`RouteTable`].
pub struct RouteTableBuilder<T> {
    entries: Vec<(Method, RouteTemplate, T, String)>,
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        RouteTableBuilder {
            entries: Vec::new(),
        }
    }
}

impl<T> RouteTableBuilder<T> {
    pub fn add(
        &mut self,
        method: Method,
        path: &str,
        target: T,
        owner: &str,
    ) -> Result<(), RouteConflict> {
        let template = RouteTemplate::parse(path).map_err(|error| RouteConflict::Template {
            owner: owner.to_owned(),
            error,
        })?;
        self.entries
            .push((method, template, target, owner.to_owned()));
        Ok(())
    }

    pub fn build(self) -> Result<RouteTable<T>, RouteConflict> {
        let mut by_shape: HashMap<String, usize> = HashMap::new();
        let mut paths: Vec<PathEntry<T>> = Vec::new();
        let mut owners: Vec<Vec<String>> = Vec::new();
        let mut router = matchit::Router::new();
        for (method, template, target, owner) in self.entries {
            let shape = template.matchit_pattern();
            let idx = match by_shape.get(&shape) {
                Some(&i) => i,
                None => {
                    let i = paths.len();
                    router.insert(shape.clone(), i).map_err(|e| {
                        let (other_path, other) = conflicting(&e, &paths, &owners);
                        RouteConflict::Ambiguous {
                            path: template.as_str().to_owned(),
                            owner: owner.clone(),
                            other_path,
                            other,
                            reason: e.to_string(),
                        }
                    })?;
                    by_shape.insert(shape.clone(), i);
                    paths.push(PathEntry {
                        shape,
                        methods: Vec::new(),
                    });
                    owners.push(Vec::new());
                    i
                }
            };
            if let Some(pos) = paths[idx].methods.iter().position(|(m, _, _)| *m == method) {
                return Err(RouteConflict::Duplicate {
                    method: method.as_str(),
                    path: template.as_str().to_owned(),
                    first: owners[idx][pos].clone(),
                    second: owner,
                });
            }
            paths[idx]
                .methods
                .push((method, Arc::new(template), target));
            owners[idx].push(owner);
        }
        Ok(RouteTable { router, paths })
    }
}

/// A custom-method name (`start`, `leave`), as opposed to the device part of a JID
/// (`14155550123:12@s.whatsapp.net`).
fn looks_like_verb(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Names the already-registered route a matchit insert error points at.
fn conflicting<T>(
    e: &matchit::InsertError,
    paths: &[PathEntry<T>],
    owners: &[Vec<String>],
) -> (String, String) {
    if let matchit::InsertError::Conflict { with } = e {
        if let Some(i) = paths.iter().position(|p| &p.shape == with) {
            let tpl = paths[i]
                .methods
                .first()
                .map(|(_, t, _)| t.as_str().to_owned())
                .unwrap_or_default();
            return (tpl, owners[i].join(", "));
        }
        return (with.clone(), "another route".into());
    }
    ("(unknown)".into(), "another route".into())
}

impl<T> RouteTable<T> {
    pub fn empty() -> Self {
        RouteTable {
            router: matchit::Router::new(),
            paths: Vec::new(),
        }
    }

    /// Finds the route for `method` and the raw (still percent-encoded) `path`.
    pub fn find(&self, method: &str, path: &str) -> Result<Matched<'_, T>, RouteError> {
        let m = self
            .router
            .at(path)
            .map_err(|_| RouteError::NotFound(path.to_owned()))?;
        let entry = &self.paths[*m.value];
        // `/sessions/X:explode` must not fall back to `/sessions/{session}` with the value
        // `X:explode`: an unknown custom method is an unknown route.
        if let Some((_, verb)) = path
            .rsplit('/')
            .next()
            .and_then(|last| last.rsplit_once(':'))
            && looks_like_verb(verb)
            && entry
                .shape
                .rsplit('/')
                .next()
                .is_some_and(|s| s.starts_with('{') && s.ends_with('}'))
        {
            return Err(RouteError::NotFound(path.to_owned()));
        }
        let method_found = Method::parse(method)
            .and_then(|wanted| entry.methods.iter().find(|(m, _, _)| *m == wanted));
        let Some((_, template, target)) = method_found else {
            let mut allow: Vec<Method> = entry.methods.iter().map(|(m, _, _)| *m).collect();
            allow.sort();
            return Err(RouteError::MethodNotAllowed {
                method: method.to_owned(),
                path: path.to_owned(),
                allow,
            });
        };
        let mut params = Vec::with_capacity(template.params().len());
        // The matcher's parameters are positional and in path order, as are the template's.
        for (name, (_, raw)) in template.params().iter().zip(m.params.iter()) {
            let decoded = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| RouteError::BadEncoding(name.clone()))?;
            params.push((name.clone(), decoded.into_owned()));
        }
        Ok(Matched {
            target,
            template,
            params,
        })
    }

    /// Every route: method, template and handler.
    pub fn routes(&self) -> impl Iterator<Item = (Method, &Arc<RouteTemplate>, &T)> {
        self.paths
            .iter()
            .flat_map(|p| p.methods.iter().map(|(m, t, v)| (*m, t, v)))
    }
}

#[cfg(test)]
mod tests;
