//! The rules a webhook's fields follow (API.md §7.1): URL scheme and address (the SSRF
//! guard), header names, event names (the shared [`EventFilter`] rules), retry-policy
//! ranges.

use super::WebhookError;
use super::model::RetryPolicy;
use crate::events::filter::EventFilter;
use std::net::IpAddr;

/// Checks an events filter (API.md §7.1) as realtime tickets' are checked.
pub fn check_events(events: &[String], emitted: &[String]) -> Result<(), WebhookError> {
    EventFilter::parse(events, emitted)
        .map(drop)
        .map_err(|m| WebhookError::invalid("events", m))
}

/// Checks a target URL: absolute, `https` (or `http` when allowed), at most 2048
/// characters, no credentials, and no literal loopback, private or link-local address
/// unless private targets are allowed. Names are checked again when resolved.
pub fn check_url(url: &str, allow_http: bool, allow_private: bool) -> Result<(), WebhookError> {
    let bad = |m: &str| Err(WebhookError::invalid("url", m));
    if url.len() > 2048 {
        return bad("must be at most 2048 characters");
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return bad("must be an absolute URL");
    };
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return bad("must be https (http needs webhooks.allow_http)"),
        _ => return bad("must be an https URL"),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("must not carry credentials");
    }
    match parsed.host() {
        None => bad("must name a host"),
        Some(url::Host::Ipv4(ip)) if !allow_private && is_private(IpAddr::V4(ip)) => {
            bad("points to a loopback, private or link-local address")
        }
        Some(url::Host::Ipv6(ip)) if !allow_private && is_private(IpAddr::V6(ip)) => {
            bad("points to a loopback, private or link-local address")
        }
        Some(_) => Ok(()),
    }
}

/// Loopback, private, link-local, shared, unspecified, multicast or documentation
/// addresses: none is a public receiver.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // 100.64.0.0/10, carrier-grade NAT.
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Headers a webhook may not set: they would break the signature or the request.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// Checks custom headers: at most 20, valid names and values, values ≤ 1 KiB, none of
/// the reserved ones or `webhook-*`.
pub fn check_headers(headers: &[(String, String)]) -> Result<(), WebhookError> {
    if headers.len() > 20 {
        return Err(WebhookError::invalid("customHeaders", "at most 20 headers"));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return Err(WebhookError::invalid(
                "customHeaders",
                format!("{name} is set by the gateway (signatures must stay verifiable)"),
            ));
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(WebhookError::invalid(
                "customHeaders",
                format!("{name:?} is not a header name"),
            ));
        }
        if value.len() > 1024 || http::HeaderValue::from_str(value).is_err() {
            return Err(WebhookError::invalid(
                "customHeaders",
                format!("the value of {name} must be visible text of at most 1 KiB"),
            ));
        }
    }
    Ok(())
}

pub fn check_retry(p: &RetryPolicy) -> Result<(), WebhookError> {
    let field = "retryPolicy";
    if !(1..=30).contains(&p.attempts) {
        return Err(WebhookError::invalid(field, "attempts must be 1 to 30"));
    }
    if !(1..=3600).contains(&p.delay_seconds) {
        return Err(WebhookError::invalid(
            field,
            "delaySeconds must be 1 to 3600",
        ));
    }
    if !(1..=86_400).contains(&p.max_delay_seconds) {
        return Err(WebhookError::invalid(
            field,
            "maxDelaySeconds must be 1 to 86400",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn event_names_come_from_the_catalog_or_the_grants() {
        let emitted = v(&["groups.*", "group.*", "notes.*"]);
        assert!(check_events(&v(&["message", "chats.*", "*"]), &emitted).is_ok());
        assert!(check_events(&v(&["notes.created", "notes.*"]), &emitted).is_ok());
        assert!(check_events(&v(&["message.received"]), &emitted).is_ok());
        assert!(check_events(&v(&["nope"]), &emitted).is_err());
        assert!(check_events(&v(&["history.sync"]), &emitted).is_err());
        assert!(check_events(&v(&[".*"]), &emitted).is_err());
        assert!(check_events(&[], &emitted).is_err());
    }

    #[test]
    fn urls_must_be_https_and_public() {
        assert!(check_url("https://example.com/hook", false, false).is_ok());
        assert!(check_url("http://example.com/hook", false, false).is_err());
        assert!(check_url("http://example.com/hook", true, false).is_ok());
        assert!(check_url("ftp://example.com", true, true).is_err());
        assert!(check_url("/relative", true, true).is_err());
        assert!(check_url("https://user:pw@example.com", false, false).is_err());
        for private in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:192.168.1.1]/",
            "https://0.0.0.0/",
        ] {
            assert!(check_url(private, false, false).is_err(), "{private}");
            assert!(check_url(private, false, true).is_ok(), "{private}");
        }
    }

    #[test]
    fn headers_that_would_break_signatures_are_refused() {
        let h = |n: &str, val: &str| vec![(n.to_owned(), val.to_owned())];
        assert!(check_headers(&h("X-Tenant", "acme")).is_ok());
        assert!(check_headers(&h("User-Agent", "mine")).is_ok());
        assert!(check_headers(&h("Content-Type", "text/plain")).is_err());
        assert!(check_headers(&h("webhook-id", "x")).is_err());
        assert!(check_headers(&h("bad header", "x")).is_err());
        assert!(check_headers(&h("X-A", "line\nbreak")).is_err());
    }
}
