//! Properties of the notification message and its retry policy.

use super::*;
use proptest::prelude::*;

fn create(policy: RetryPolicy, now: Millis) -> MessageCommand {
    let spec = MessageSpec {
        id: message_id("evt_1", ChannelKind::Email, "a@example.com"),
        event_id: "evt_1".into(),
        event_type: "order.paid".into(),
        channel: ChannelKind::Email,
        recipient: "a@example.com".into(),
        user: Some("u1".into()),
        content: Content {
            subject: "s".into(),
            body: "b".into(),
        },
        policy,
    };
    MessageCommand::Create { spec, now }
}

fn run(state: &mut MessageState, cmd: &MessageCommand) -> Result<Vec<MessageEvent>, Rejection> {
    let evs = decide(state, cmd)?;
    for e in &evs {
        apply(state, e);
    }
    Ok(evs)
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (1u64..10_000, 1u64..10_000_000, 1u32..=MAX_ATTEMPTS).prop_map(|(i, m, a)| RetryPolicy {
        initial_ms: i,
        max_ms: m,
        max_attempts: a,
    })
}

#[derive(Debug, Clone)]
enum Step {
    Attempt { ok: bool, permanent: bool },
    Replay,
    Create,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<bool>(), proptest::bool::weighted(0.1))
            .prop_map(|(ok, permanent)| Step::Attempt { ok, permanent }),
        1 => Just(Step::Replay),
        1 => Just(Step::Create),
    ]
}

#[test]
fn message_ids_are_deterministic_and_distinct_per_channel_and_recipient() {
    let a = message_id("evt_1", ChannelKind::Email, "a@example.com");
    assert_eq!(a, message_id("evt_1", ChannelKind::Email, "a@example.com"));
    assert_ne!(a, message_id("evt_1", ChannelKind::Sms, "a@example.com"));
    assert_ne!(a, message_id("evt_1", ChannelKind::Email, "b@example.com"));
    assert_ne!(a, message_id("evt_2", ChannelKind::Email, "a@example.com"));
}

#[test]
fn a_second_create_decides_nothing() {
    let mut s = MessageState::default();
    assert_eq!(
        run(&mut s, &create(RetryPolicy::default(), 5))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(run(&mut s, &create(RetryPolicy::default(), 9)), Ok(vec![]));
    assert_eq!(s.created_at, 5);
}

#[test]
fn a_permanent_failure_dead_letters_at_once_and_a_replay_revives_it() {
    let mut s = MessageState::default();
    run(&mut s, &create(RetryPolicy::default(), 0)).unwrap();
    let fail = MessageCommand::RecordAttempt {
        now: 1,
        ok: false,
        permanent: true,
        detail: "550 no such user".into(),
    };
    run(&mut s, &fail).unwrap();
    assert_eq!(s.status, MessageStatus::Dead);
    assert_eq!(next_due(&s), None);
    run(&mut s, &MessageCommand::Replay { now: 7 }).unwrap();
    assert_eq!(next_due(&s), Some(7));
    assert_eq!(s.attempts_in_round(), 0);
}

proptest! {
    /// Backoff doubles until the cap and never exceeds it.
    #[test]
    fn backoff_grows_and_is_capped(p in policy(), n in 1u32..64) {
        let b = p.backoff_ms(n);
        prop_assert!(b <= p.max_ms.max(1));
        prop_assert!(b >= p.backoff_ms(n.saturating_sub(1).max(1)));
        if n > 1 && p.backoff_ms(n - 1) < p.max_ms / 2 {
            prop_assert_eq!(b, p.backoff_ms(n - 1) * 2);
        }
    }

    /// Whatever happens: a message is sent at most once (no attempt after `Sent`), a round
    /// never exceeds `max_attempts`, exhausting them dead-letters it, the retry is due
    /// after the attempt, attempts stay bounded, and replaying the events rebuilds the state.
    #[test]
    fn a_message_sends_once_retries_within_its_policy_and_replays_to_the_same_state(
        p in policy(),
        steps in proptest::collection::vec(step(), 0..120),
    ) {
        let mut s = MessageState::default();
        let mut log = vec![];
        log.extend(run(&mut s, &create(p, 0)).unwrap());
        let mut now = 0u64;
        for st in &steps {
            now += 1;
            let before = s.clone();
            let cmd = match st {
                Step::Attempt { ok, permanent } => MessageCommand::RecordAttempt {
                    now, ok: *ok, permanent: *permanent, detail: "x".repeat(300),
                },
                Step::Replay => MessageCommand::Replay { now },
                Step::Create => create(p, now),
            };
            match run(&mut s, &cmd) {
                Ok(evs) => {
                    if before.status == MessageStatus::Sent {
                        prop_assert!(evs.is_empty(), "a sent message took {evs:?}");
                    }
                    if let (Step::Attempt { ok: false, permanent }, MessageStatus::Pending) = (st, before.status) {
                        let n = before.attempts_in_round() + 1;
                        if *permanent || n >= p.max_attempts {
                            prop_assert_eq!(s.status, MessageStatus::Dead);
                        } else {
                            prop_assert_eq!(s.status, MessageStatus::Pending);
                            prop_assert!(s.due_at > now);
                        }
                    }
                    log.extend(evs);
                }
                Err(r) => prop_assert_eq!(s.clone(), before, "a rejection {:?} changed the state", r),
            }
            prop_assert!(s.attempts_in_round() <= p.max_attempts);
            prop_assert!(s.attempts.len() <= 2 * MAX_ATTEMPTS as usize);
            prop_assert!(s.attempts.iter().all(|a| a.detail.len() <= MAX_DETAIL));
        }
        let mut rebuilt = MessageState::default();
        for e in &log {
            apply(&mut rebuilt, e);
        }
        prop_assert_eq!(rebuilt, s);
    }
}
