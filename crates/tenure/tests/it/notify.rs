//! Notifications reach real receivers: a webhook endpoint checking every delivery with the
//! Standard Webhooks reference library, and an SMTP server (aiosmtpd) delivering into a
//! Maildir. A pending request tells its approvers, a review its reviewers (and reminds them);
//! a delivery the receiver refuses is retried under the same `webhook-id`; one that never gets
//! through is dead-lettered where `tenure jobs` shows it.

use crate::support::*;
use tenure_engine::access::AccessRequest;
use tenure_engine::worker::WorkerConfig;
use tenure_model::{Principal, RequestKind};
use tenure_testkit::receivers::{LocalSmtp, LocalWebhook};

const CHANNELS: &str = r#"
[notifications.hook]
type = "webhook"
url = "${TENURE_WEBHOOK_URL}"
secret = "${TENURE_WEBHOOK_SECRET}"

[notifications.mail]
type = "email"
url = "${TENURE_SMTP_URL}"
from = "tenure <tenure@example.com>"
address = "{external_id|lower}@example.com"
on = ["review.assigned", "review.reminder", "approval.pending"]

[notifications.nowhere]
type = "webhook"
url = "${TENURE_DOWN_URL}"
secret = "${TENURE_WEBHOOK_SECRET}"
on = ["approval.pending"]
"#;

#[test]
fn approvers_and_reviewers_are_told_by_signed_webhook_and_email_and_a_dead_delivery_shows() {
    let w = World::new();
    hr(&w);
    let hook = LocalWebhook::start(w.tmp.path(), 1).unwrap();
    let smtp = LocalSmtp::start(w.tmp.path()).unwrap();
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let next = w.tmp.path().join("notifying-policy");
    copy_dir(&quickstart_policy(), &next);
    let manifest = next.join("tenure.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text + CHANNELS).unwrap();
    w.ok(&["policy", "deploy", next.to_str().unwrap()]);

    let env = [
        ("TENURE_WEBHOOK_URL", hook.url()),
        ("TENURE_WEBHOOK_SECRET", hook.secret.clone()),
        ("TENURE_SMTP_URL", smtp.url()),
        ("TENURE_DOWN_URL", format!("http://{down}/")),
    ];
    let config = WorkerConfig { max_attempts: 3, ..WorkerConfig::default() };
    let c = Clocked::with(&w, time::OffsetDateTime::now_utc(), env, config);
    let e = &c.engine;

    // Barbara asks for production admin: the directory's owner (Grace) and security (Margaret,
    // Shafi) may approve; each is told.
    let r = e
        .request(
            &Principal::local("hr:E1005".parse().unwrap(), []),
            &AccessRequest {
                beneficiary: "hr:E1005".into(),
                entitlement: "corp-directory/prod-admin".into(),
                kind: RequestKind::Access,
                intent: "on-call rota".into(),
                duration: None,
            },
        )
        .unwrap();
    c.run();
    let first = hook.deliveries();
    assert!(!first.is_empty(), "nothing was delivered");
    assert_eq!(first[0].status, 503, "the receiver refuses the first delivery: {first:?}");
    // The refused one comes again after its backoff, under the same id.
    c.clock.advance(time::Duration::minutes(10));
    c.run();
    let got = hook.deliveries();
    for d in &got {
        assert!(d.valid, "a delivery failed the reference library's check: {d:?}");
    }
    let retried = got.iter().filter(|d| d.id == first[0].id).map(|d| d.status).collect::<Vec<_>>();
    assert_eq!(retried, [503, 204], "{got:?}");
    let approval = |who: &str| {
        got.iter()
            .find(|d| d.body["type"] == "approval.pending" && d.body["to"]["reference"] == who)
            .unwrap_or_else(|| panic!("no approval notice for {who}: {got:?}"))
    };
    for who in ["hr:E1001", "hr:E1011", "hr:E1025"] {
        let d = approval(who);
        assert_eq!(d.body["data"]["request"], r.id);
        assert_eq!(d.id, format!("request:{}:{who}", r.id));
    }
    assert!(
        !got.iter().any(|d| d.body["to"]["reference"] == "hr:E1005"),
        "the requester is not asked to approve their own request"
    );
    let mails = smtp.messages();
    let mail = |to: &str| {
        mails.iter().find(|m| m.to.contains(to)).unwrap_or_else(|| panic!("no mail to {to}: {mails:?}")).clone()
    };
    let m = mail("e1011@example.com");
    assert!(m.subject.contains("corp-directory/prod-admin"), "{m:?}");
    assert!(m.body.contains(&format!("tenure requests approve {}", r.id)), "{m:?}");
    assert_eq!(m.message_id, format!("<request-{}-hr-E1011@tenure>", r.id));

    // A channel whose receiver is never there: retried, then dead, and shown as such.
    for _ in 0..3 {
        c.clock.advance(time::Duration::minutes(10));
        c.run();
    }
    let dead = w.ok(&["--output", "json", "jobs", "status", "--state", "dead", "--kind", "notify"]);
    let dead: serde_json::Value = serde_json::from_str(&dead).unwrap();
    let rows = dead.as_array().or_else(|| dead["jobs"].as_array()).cloned().unwrap_or_default();
    assert!(
        rows.iter().any(|j| j["kind"] == "notify" && j["system"] == "nowhere"),
        "no dead notify job for `nowhere`: {dead}"
    );

    // The request approved, a review of privileged access tells each first-stage reviewer once.
    e.answer(&"hr:E1001".parse().unwrap(), r.id, true, "on the rota").unwrap();
    e.answer(&"hr:E1011".parse().unwrap(), r.id, true, "checked").unwrap();
    c.run();
    let review = e.start_review(&Principal::operator("test"), "privileged-access").unwrap();
    c.run();
    let got = hook.deliveries();
    let assigned: Vec<_> = got.iter().filter(|d| d.body["type"] == "review.assigned").collect();
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    assert_eq!(assigned[0].body["to"]["reference"], "hr:E1002", "Barbara's manager reviews");
    assert_eq!(assigned[0].body["data"]["campaign"], review.id);
    assert!(mail_to(&smtp, "e1002@example.com").iter().any(|m| m.subject.contains("privileged-access")));

    // A week before its deadline, the reviewer who has not decided is reminded, once.
    c.clock.advance(time::Duration::days(7) + time::Duration::minutes(1));
    e.tick().unwrap();
    e.tick().unwrap();
    c.run();
    let reminders: Vec<_> =
        hook.deliveries().into_iter().filter(|d| d.body["type"] == "review.reminder" && d.status == 204).collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].body["to"]["reference"], "hr:E1002");
    assert!(mail_to(&smtp, "e1002@example.com").iter().any(|m| m.subject.starts_with("Reminder:")));
}

fn mail_to(smtp: &LocalSmtp, to: &str) -> Vec<tenure_testkit::receivers::Mail> {
    smtp.messages().into_iter().filter(|m| m.to.contains(to)).collect()
}
