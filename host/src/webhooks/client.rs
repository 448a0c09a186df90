//! One delivery attempt over HTTP: the signed request (API.md §7.3), no redirects, one
//! timeout for the whole exchange, and the SSRF guard at connect time — names are
//! resolved by a resolver that refuses loopback, private and link-local addresses, so a
//! name that resolves differently later is caught on every attempt.

use super::model::{Delivery, Webhook};
use super::rules;
use super::sign;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most of a response body the delivery log keeps.
const EXCERPT_BYTES: usize = 1024;

/// A resolved address that the guard refused.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to a loopback, private or link-local address")]
struct BlockedAddress(String);

/// Resolves with the system resolver, keeping only public addresses.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !rules::is_private(a.ip()))
                .collect();
            if public.is_empty() && !addrs.is_empty() {
                return Err(
                    Box::new(BlockedAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub(super) status_code: Option<u16>,
    /// None on success (a 2xx).
    pub(super) error: Option<String>,
    pub(super) duration: Duration,
    pub(super) excerpt: Option<String>,
    /// The receiver's `Retry-After` on a 429 or 503.
    pub(super) retry_after: Option<Duration>,
}

impl Outcome {
    pub(super) fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// Sends attempts; one per gateway (connections are pooled per host).
#[derive(Clone)]
pub(super) struct Sender {
    client: reqwest::Client,
    allow_http: bool,
    allow_private: bool,
    user_agent: Arc<str>,
}

impl Sender {
    pub(super) fn new(timeout: Duration, allow_http: bool, allow_private: bool) -> Sender {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(32)
            .https_only(!allow_http);
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Sender {
            client: builder.build().expect("a TLS backend is compiled in"),
            allow_http,
            allow_private,
            user_agent: format!("wa-gateway/{}", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    /// Sends `delivery`'s envelope to `webhook` as attempt `n`, signed with the keys that
    /// sign now.
    pub(super) async fn attempt(&self, webhook: &Webhook, delivery: &Delivery, n: u32) -> Outcome {
        let started = Instant::now();
        let fail = |error: &str| Outcome {
            status_code: None,
            error: Some(error.to_owned()),
            duration: started.elapsed(),
            excerpt: None,
            retry_after: None,
        };
        // Literal addresses never reach the resolver: checked here, on every attempt.
        if rules::check_url(&webhook.url, self.allow_http, self.allow_private).is_err() {
            return fail("blocked_address");
        }
        let now = crate::clock::now_ms();
        let timestamp = now / 1000;
        let body = delivery.envelope.clone().into_bytes();
        let signature = sign::signature(
            webhook.signing_keys(now).map(|k| k.key.as_str()),
            &delivery.event_id,
            timestamp,
            &body,
        );
        let mut req = self
            .client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("user-agent", &*self.user_agent)
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("x-wa-event", &delivery.event)
            .header("x-wa-delivery", &delivery.id)
            .header("x-wa-attempt", n.to_string());
        for (name, value) in &webhook.custom_headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let mut resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return fail(classify(&e)),
        };
        let status = resp.status();
        let retry_after = if matches!(status.as_u16(), 429 | 503) {
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        } else {
            None
        };
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        let error = if status.is_success() {
            None
        } else if status.is_redirection() {
            Some("redirect".to_owned())
        } else {
            Some(format!("http_{}", status.as_u16()))
        };
        Outcome {
            status_code: Some(status.as_u16()),
            error,
            duration: started.elapsed(),
            excerpt: (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned()),
            retry_after,
        }
    }
}

/// The delivery log's name for a failed exchange.
fn classify(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<BlockedAddress>().is_some() {
            return "blocked_address";
        }
        let text = s.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return "tls";
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timeout"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "connect"
    }
}
