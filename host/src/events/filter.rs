//! Which events a subscriber wants — a webhook's `events` or a realtime ticket's — by the
//! rules of API.md §7.1 (catalog names, names plugins may emit, `*`, `prefix.*`, two
//! aliases), and optionally one session. Parsed once, so matching an event is a few string
//! comparisons.

/// The events the host and the engines publish (API.md §7.5) that clients may subscribe to.
/// `history.sync` is internal: plugins receive it, clients never do.
pub const CATALOG: &[&str] = &[
    "session.status",
    "auth.qr",
    "contacts.upsert",
    "lid.mapping",
    "blocklist.update",
    "chats.upsert",
    "chats.update",
    "chats.delete",
    "groups.upsert",
    "groups.update",
    "group.participants",
    "group.join_request",
    "message",
    "message.status",
    "message.reaction",
    "message.edit",
    "message.revoke",
    "poll.vote",
    "presence.update",
    "webhook.test",
    "webhook.disabled",
];

/// Names a filter may list at most (API.md §7.1).
pub const MAX_NAMES: usize = 64;

/// Events that never leave the gateway.
pub fn is_internal(event: &str) -> bool {
    event == "history.sync"
}

/// The canonical name of a subscription alias (API.md, "Decisions"): events are always
/// published under the canonical name.
fn canonical(name: &str) -> &str {
    match name {
        "message.received" => "message",
        "session.connected" => "session.status",
        other => other,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    All,
    Exact(String),
    /// `prefix.*`, kept as `prefix.`: matches names below the prefix, not the prefix itself.
    Below(String),
}

impl Pattern {
    fn matches(&self, event: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(name) => name == event,
            Pattern::Below(dotted) => event.starts_with(dotted.as_str()),
        }
    }
}

/// A parsed `events` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    patterns: Vec<Pattern>,
}

impl EventFilter {
    /// `["*"]`, the default.
    pub fn all() -> Self {
        EventFilter {
            patterns: vec![Pattern::All],
        }
    }

    /// Reads an `events` list: 1 to 64 names, each `*`, a catalog name, a name a plugin
    /// may emit (`emitted`: the plugins' grants, exact names or `prefix.*`), an alias, or
    /// `prefix.*` over any of those. The error says which name is not known.
    pub fn parse(names: &[String], emitted: &[String]) -> Result<Self, String> {
        if names.is_empty() || names.len() > MAX_NAMES {
            return Err(format!("events must list 1 to {MAX_NAMES} event names"));
        }
        let emitted: Vec<Pattern> = emitted.iter().map(|e| pattern_of(e)).collect();
        let known = |name: &str| {
            !is_internal(name)
                && (CATALOG.contains(&name) || emitted.iter().any(|p| p.matches(name)))
        };
        // A family exists when some known name, or some name a plugin may emit, is below it.
        let family = |dotted: &str| {
            CATALOG.iter().any(|c| c.starts_with(dotted))
                || emitted.iter().any(|p| match p {
                    Pattern::All => false,
                    Pattern::Exact(n) | Pattern::Below(n) => n.starts_with(dotted),
                })
        };
        let mut patterns = Vec::with_capacity(names.len());
        for name in names {
            let pattern = match pattern_of(canonical(name)) {
                Pattern::All => Pattern::All,
                Pattern::Exact(n) if known(&n) => Pattern::Exact(n),
                Pattern::Below(dotted) if dotted.len() > 1 && family(&dotted) => {
                    Pattern::Below(dotted)
                }
                _ => {
                    return Err(format!(
                        "events: {name:?} is not an event this gateway publishes (see the event catalog), `*` or `prefix.*`"
                    ));
                }
            };
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Ok(EventFilter { patterns })
    }

    /// A list [`EventFilter::parse`] accepted before (a stored webhook's), read again
    /// without the checks.
    pub fn of_checked(names: &[String]) -> Self {
        EventFilter {
            patterns: names.iter().map(|n| pattern_of(canonical(n))).collect(),
        }
    }

    /// Whether a published event (by its canonical name) is wanted. Internal events never are.
    pub fn matches(&self, event: &str) -> bool {
        !is_internal(event) && self.patterns.iter().any(|p| p.matches(event))
    }
}

fn pattern_of(name: &str) -> Pattern {
    if name == "*" {
        Pattern::All
    } else if let Some(prefix) = name.strip_suffix('*').filter(|p| p.ends_with('.')) {
        Pattern::Below(prefix.to_owned())
    } else {
        Pattern::Exact(name.to_owned())
    }
}

/// A stream's whole filter: event names and, optionally, one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFilter {
    pub events: EventFilter,
    pub session: Option<String>,
}

impl StreamFilter {
    pub fn matches(&self, event: &str, session: &str) -> bool {
        self.session.as_deref().is_none_or(|s| s == session) && self.events.matches(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn parse(list: &[&str]) -> Result<EventFilter, String> {
        EventFilter::parse(&names(list), &names(&["chats.*", "notes.created"]))
    }

    #[test]
    fn names_aliases_wildcards_and_families_match() {
        let f = parse(&["message.received", "session.connected"]).unwrap();
        assert!(f.matches("message") && f.matches("session.status"));
        assert!(!f.matches("message.status") && !f.matches("auth.qr"));

        let f = parse(&["message.*"]).unwrap();
        assert!(f.matches("message.status") && f.matches("message.reaction"));
        // The family is what is below the prefix, not the prefix itself.
        assert!(!f.matches("message") && !f.matches("messages.x"));

        let f = parse(&["*"]).unwrap();
        assert!(f.matches("message") && f.matches("anything.else"));
        assert_eq!(f, EventFilter::all());

        // Names plugins may emit, exact or below a granted prefix.
        let f = parse(&["chats.archived", "notes.created", "notes.*"]).unwrap();
        assert!(f.matches("chats.archived") && f.matches("notes.created"));
        assert!(!f.matches("chats.update"));
    }

    #[test]
    fn internal_events_never_match() {
        assert!(!EventFilter::all().matches("history.sync"));
        assert!(!parse(&["history.*"]).is_ok_and(|f| f.matches("history.sync")));
    }

    #[test]
    fn unknown_empty_and_oversized_lists_are_refused() {
        for bad in [
            &[][..],
            &["nope"],
            &["history.sync"],
            &["message", "messages"],
            &[".*"],
            &["*.*"],
            &["nope.*"],
            &["message*"],
            &[""],
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("events"), "{bad:?}: {err}");
        }
        let many: Vec<&str> = std::iter::repeat_n("message", MAX_NAMES + 1).collect();
        assert!(parse(&many).is_err());
        let most: Vec<&str> = std::iter::repeat_n("message", MAX_NAMES).collect();
        assert!(parse(&most).is_ok());
    }

    #[test]
    fn a_session_filter_excludes_other_sessions() {
        let f = StreamFilter {
            events: EventFilter::all(),
            session: Some("s1".into()),
        };
        assert!(f.matches("message", "s1"));
        assert!(!f.matches("message", "s2"));
        let any = StreamFilter {
            events: parse(&["message"]).unwrap(),
            session: None,
        };
        assert!(any.matches("message", "s2"));
        assert!(!any.matches("presence.update", "s2"));
    }
}
