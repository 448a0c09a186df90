//! The hub without sockets: fan-out by organization and filter, resume and gaps, the
//! stream cap, slow clients, a lagging feed, credentials and stream URLs.

use super::*;
use crate::auth::Permission;
use crate::events::filter::EventFilter;
use crate::storage::Database;
use serde_json::{Value, json};

struct Fixture {
    rt: Realtime,
    keys: Arc<ApiKeyStore>,
    _dir: tempfile::TempDir,
    _shutdown: watch::Sender<bool>,
}

fn fixture(config: RealtimeConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("rt.redb")).unwrap();
    let keys = Arc::new(ApiKeyStore::load(db).unwrap());
    let (shutdown, rx) = watch::channel(false);
    Fixture {
        rt: Realtime::new(config, keys.clone(), None, rx),
        keys,
        _dir: dir,
        _shutdown: shutdown,
    }
}

fn user() -> Principal {
    Principal::User("u1".into())
}

fn filter(events: &[&str], session: Option<&str>) -> StreamFilter {
    let names: Vec<String> = events.iter().map(|s| s.to_string()).collect();
    StreamFilter {
        events: EventFilter::parse(&names, &[]).unwrap(),
        session: session.map(str::to_owned),
    }
}

fn ticket(rt: &Realtime, org: &str, f: StreamFilter, after: Option<&str>) -> String {
    rt.mint(org, user(), None, f, after.map(str::to_owned))
        .unwrap()
        .0
}

fn publish(rt: &Realtime, org: &str, session: &str, event: &str, n: u32) -> String {
    let e = EventEnvelope::new(event, session, org, json!({"n": n}));
    let id = e.id.clone();
    rt.0.publish(&e, Instant::now());
    id
}

/// Every frame the subscription has now: replayed, then queued.
fn drain(sub: &mut Subscription) -> Vec<Value> {
    let mut out: Vec<Value> = sub
        .replay
        .drain(..)
        .map(|t| serde_json::from_str(&t).unwrap())
        .collect();
    while let Ok(t) = sub.frames.try_recv() {
        out.push(serde_json::from_str(&t).unwrap());
    }
    out
}

fn ns(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| f["payload"]["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_platform_stream_sees_every_organization_and_resumes_across_them() {
    let f = fixture(RealtimeConfig::default());
    let platform = |after: Option<&str>| {
        f.rt.mint(
            Audience::Platform,
            user(),
            None,
            filter(&["message"], None),
            after.map(str::to_owned),
        )
        .unwrap()
        .0
    };
    let mut monitor = f.rt.open(&platform(None)).unwrap();
    let mut org_a =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), None))
            .unwrap();
    let first = publish(&f.rt, "org_a", "s1", "message", 1);
    publish(&f.rt, "org_b", "s2", "message", 2);
    publish(&f.rt, "org_c", "s3", "presence.update", 3);
    let frames = drain(&mut monitor);
    assert_eq!(ns(&frames), [1, 2]);
    assert_eq!(frames[1]["organization"], "org_b");
    assert_eq!(
        ns(&drain(&mut org_a)),
        [1],
        "an organization sees only its own"
    );
    // No organization id names the platform's stream.
    assert_eq!(f.rt.open_streams("*"), 0);
    let mut resumed = f.rt.open(&platform(Some(&first))).unwrap();
    assert_eq!(ns(&drain(&mut resumed)), [2]);
}

#[test]
fn live_events_reach_only_the_streams_they_match() {
    let f = fixture(RealtimeConfig::default());
    let mut all =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), None))
            .unwrap();
    let mut messages_s1 =
        f.rt.open(&ticket(
            &f.rt,
            "org_a",
            filter(&["message.received"], Some("s1")),
            None,
        ))
        .unwrap();
    let mut other_org =
        f.rt.open(&ticket(&f.rt, "org_b", filter(&["*"], None), None))
            .unwrap();

    publish(&f.rt, "org_a", "s1", "message", 1);
    publish(&f.rt, "org_a", "s2", "message", 2);
    publish(&f.rt, "org_a", "s1", "presence.update", 3);
    publish(&f.rt, "org_a", "s1", "history.sync", 4);
    publish(&f.rt, "org_b", "s9", "message", 5);

    let frames = drain(&mut all);
    assert_eq!(ns(&frames), [1, 2, 3], "internal events are never sent");
    let first = &frames[0];
    assert_eq!(first["schema"], "v1");
    assert_eq!(first["event"], "message");
    assert_eq!(first["session"], "s1");
    assert_eq!(first["organization"], "org_a");
    assert!(first["id"].as_str().unwrap().starts_with("evt_"));
    assert!(first["timestamp"].is_u64());
    assert_eq!(ns(&drain(&mut messages_s1)), [1]);
    assert_eq!(ns(&drain(&mut other_org)), [5]);
}

#[test]
fn resume_replays_newer_events_in_order_then_live_ones() {
    let f = fixture(RealtimeConfig::default());
    // org_a used realtime before (a stream that has since closed); org_b never did.
    drop(
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), None))
            .unwrap(),
    );
    let first = publish(&f.rt, "org_a", "s1", "message", 1);
    publish(&f.rt, "org_a", "s1", "message", 2);
    publish(&f.rt, "org_a", "s1", "presence.update", 3);
    publish(&f.rt, "org_a", "s1", "message", 4);
    publish(&f.rt, "org_b", "s9", "message", 99);

    let t = ticket(&f.rt, "org_a", filter(&["message"], None), Some(&first));
    let mut sub = f.rt.open(&t).unwrap();
    publish(&f.rt, "org_a", "s1", "message", 5);
    assert_eq!(ns(&drain(&mut sub)), [2, 4, 5]);

    // Resuming after the newest event replays nothing.
    let newest = publish(&f.rt, "org_a", "s1", "message", 6);
    let mut sub =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), Some(&newest)))
            .unwrap();
    assert!(drain(&mut sub).is_empty());
}

#[test]
fn an_after_outside_the_buffer_starts_with_a_gap() {
    let f = fixture(RealtimeConfig {
        buffer_events: 2,
        ..RealtimeConfig::default()
    });
    let gone = publish(&f.rt, "org_a", "s1", "message", 1);
    publish(&f.rt, "org_a", "s1", "message", 2);
    publish(&f.rt, "org_a", "s1", "message", 3);
    // Another organization's event id is unknown here too.
    let foreign = publish(&f.rt, "org_b", "s9", "message", 9);
    for after in [
        gone.as_str(),
        foreign.as_str(),
        "evt_01J9ZX8K2QHV0M3T6R7P4N5W8C",
    ] {
        let mut sub =
            f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), Some(after)))
                .unwrap();
        publish(&f.rt, "org_a", "s1", "message", 4);
        let frames = drain(&mut sub);
        assert_eq!(frames.len(), 2, "{frames:?}");
        let gap = &frames[0];
        assert_eq!(gap["event"], "stream.gap");
        assert_eq!(gap["payload"], json!({"after": after}));
        assert_eq!(gap["session"], Value::Null);
        assert_eq!(gap["organization"], "org_a");
        assert!(gap["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(frames[1]["payload"]["n"], 4);
    }
}

#[test]
fn the_stream_cap_refuses_and_keeps_the_ticket() {
    let f = fixture(RealtimeConfig {
        max_streams_per_org: 1,
        ..RealtimeConfig::default()
    });
    let first =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), None))
            .unwrap();
    let t = ticket(&f.rt, "org_a", filter(&["*"], None), None);
    assert!(matches!(
        f.rt.open(&t),
        Err(RealtimeError::TooManyStreams { max: 1 })
    ));
    // Other organizations have their own cap.
    let _b =
        f.rt.open(&ticket(&f.rt, "org_b", filter(&["*"], None), None))
            .unwrap();
    assert_eq!(f.rt.open_streams("org_a"), 1);
    drop(first);
    assert_eq!(f.rt.open_streams("org_a"), 0);
    // The refused ticket was not used up; once used, it is gone.
    let _second = f.rt.open(&t).unwrap();
    assert!(matches!(f.rt.open(&t), Err(RealtimeError::BadTicket)));
}

#[test]
fn a_client_too_far_behind_is_kicked() {
    let f = fixture(RealtimeConfig {
        max_unsent_frames: 3,
        ..RealtimeConfig::default()
    });
    let sub =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), None))
            .unwrap();
    for n in 0..3 {
        publish(&f.rt, "org_a", "s1", "message", n);
    }
    assert_eq!(*sub.kick.borrow(), None);
    assert_eq!(f.rt.open_streams("org_a"), 1);
    publish(&f.rt, "org_a", "s1", "message", 3);
    assert_eq!(*sub.kick.borrow(), Some(Kick::TooSlow));
    assert_eq!(f.rt.open_streams("org_a"), 0, "its slot is free at once");
}

#[test]
fn a_lagging_feed_tells_every_stream_and_empties_the_buffers() {
    let f = fixture(RealtimeConfig::default());
    let before = publish(&f.rt, "org_a", "s1", "message", 1);
    let mut a =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), None))
            .unwrap();
    let mut b =
        f.rt.open(&ticket(&f.rt, "org_b", filter(&["message"], None), None))
            .unwrap();
    let seen = publish(&f.rt, "org_a", "s1", "message", 2);
    f.rt.0.lost(7);
    let frames = drain(&mut a);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["event"], "stream.gap");
    assert_eq!(frames[1]["payload"]["after"], seen.as_str());
    let frames = drain(&mut b);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["event"], "stream.gap");
    assert_eq!(frames[0]["payload"]["after"], Value::Null);
    assert_eq!(frames[0]["organization"], "org_b");
    // A resume from before the hole cannot skip over it.
    let mut late =
        f.rt.open(&ticket(&f.rt, "org_a", filter(&["*"], None), Some(&before)))
            .unwrap();
    assert_eq!(drain(&mut late)[0]["event"], "stream.gap");
}

#[test]
fn streams_hold_only_while_their_credential_does() {
    let f = fixture(RealtimeConfig::default());
    let key = f
        .keys
        .create("org_a", "rt", &[Permission::Read], "test")
        .unwrap();
    let by_key = |rt: &Realtime| {
        rt.mint(
            "org_a",
            Principal::ApiKey(key.key.id.clone()),
            None,
            filter(&["*"], None),
            None,
        )
        .unwrap()
        .0
    };
    let sub = f.rt.open(&by_key(&f.rt)).unwrap();
    assert!(sub.credential_holds());
    let unused = by_key(&f.rt);
    assert!(f.keys.revoke(&key.key.id, Some("org_a")).unwrap());
    assert!(!sub.credential_holds());
    // A ticket minted before the revocation opens nothing after it.
    assert!(matches!(f.rt.open(&unused), Err(RealtimeError::BadTicket)));

    let now = crate::clock::now_ms();
    let (live, _) =
        f.rt.mint(
            "org_a",
            user(),
            Some(now + 60_000),
            filter(&["*"], None),
            None,
        )
        .unwrap();
    assert!(f.rt.open(&live).unwrap().credential_holds());
    let (expired, _) =
        f.rt.mint("org_a", user(), Some(now - 1), filter(&["*"], None), None)
            .unwrap();
    assert!(matches!(f.rt.open(&expired), Err(RealtimeError::BadTicket)));
}

#[test]
fn stream_urls_follow_the_public_url_or_the_listener() {
    let (_tx, rx) = watch::channel(false);
    let dir = tempfile::tempdir().unwrap();
    let keys =
        Arc::new(ApiKeyStore::load(Database::open(&dir.path().join("k.redb")).unwrap()).unwrap());
    let public = |url: &str| {
        Realtime::new(
            RealtimeConfig::default(),
            keys.clone(),
            Some(url.to_owned()),
            rx.clone(),
        )
    };
    assert_eq!(
        public("https://wa.example.com/").stream_url("rtt_x", Some("ignored:1")),
        "wss://wa.example.com/api/v1/realtime?ticket=rtt_x"
    );
    assert_eq!(
        public("http://10.0.0.5:8080/gw").stream_url("rtt_x", None),
        "ws://10.0.0.5:8080/gw/api/v1/realtime?ticket=rtt_x"
    );
    let listener = Realtime::new(RealtimeConfig::default(), keys.clone(), None, rx.clone());
    listener.set_listen_addr("127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        listener.stream_url("rtt_x", Some("proxy.example:443")),
        "ws://127.0.0.1:8080/api/v1/realtime?ticket=rtt_x"
    );
    let everywhere = Realtime::new(RealtimeConfig::default(), keys, None, rx);
    everywhere.set_listen_addr("0.0.0.0:8080".parse().unwrap());
    assert_eq!(
        everywhere.stream_url("rtt_x", Some("gw.internal:8080")),
        "ws://gw.internal:8080/api/v1/realtime?ticket=rtt_x"
    );
    assert_eq!(
        everywhere.stream_url("rtt_x", Some("bad host/../")),
        "ws://localhost:8080/api/v1/realtime?ticket=rtt_x"
    );
}

#[test]
fn organizations_that_never_used_realtime_keep_no_buffer() {
    let f = fixture(RealtimeConfig::default());
    let id = publish(&f.rt, "org_quiet", "s1", "message", 1);
    assert!(
        f.rt.0
            .orgs
            .lock()
            .unwrap()
            .get(&Audience::from("org_quiet"))
            .is_none()
    );
    // Its first ticket cannot resume from before it: a gap, then live events.
    let mut sub =
        f.rt.open(&ticket(&f.rt, "org_quiet", filter(&["*"], None), Some(&id)))
            .unwrap();
    publish(&f.rt, "org_quiet", "s1", "message", 2);
    let frames = drain(&mut sub);
    assert_eq!(frames[0]["event"], "stream.gap");
    assert_eq!(ns(&frames[1..]), [2]);
}
