//! SNS subscriptions from `[[notify.subscriptions]]`, against a moto server this test starts, read
//! back with the AWS CLI: a dry run changes nothing; `weir setup aws` twice makes each email
//! address, phone number and webhook one SNS subscription with its filter policy; a
//! subscription dropped from the config is removed, and one weir did not make is left alone. A
//! message weir publishes reaches, through moto's HTTP delivery to a listener on loopback, the
//! webhook whose filter it matches and not the one whose filter it does not. Embedded, `weir
//! check` refuses an `sms` subscription.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{aws_cli, ok, start_moto, until, weir_on_moto, Proc, AWS_ENV};
use serde_json::{json, Value};

const ALERTS_ARN: &str = "arn:aws:sns:us-east-1:123456789012:weir-alerts";
const SUCCESS_ARN: &str = "arn:aws:sns:us-east-1:123456789012:weir-success";

/// The example AWS config with these subscriptions, readable by its owner only (a webhook's URL
/// counts as a secret).
fn config_with(dir: &Path, subscriptions: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let example = std::fs::read_to_string(common::repo().join("deploy/aws/weir.toml")).expect("example");
    let config = dir.join("aws.toml");
    std::fs::write(&config, format!("{example}\n{subscriptions}")).expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    config
}

/// The subscriptions of a topic: (protocol, endpoint, ARN).
fn subscriptions(endpoint: &str, topic_arn: &str) -> Vec<(String, String, String)> {
    let out = aws_cli(endpoint, &["sns", "list-subscriptions-by-topic", "--topic-arn", topic_arn]);
    let mut subs: Vec<(String, String, String)> = out["Subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().expect(name).to_string();
            (field("Protocol"), field("Endpoint"), field("SubscriptionArn"))
        })
        .collect();
    subs.sort();
    subs
}

fn attributes(endpoint: &str, arn: &str) -> Value {
    aws_cli(endpoint, &["sns", "get-subscription-attributes", "--subscription-arn", arn])["Attributes"]
        .clone()
}

fn filter_policy(endpoint: &str, arn: &str) -> Value {
    let attrs = attributes(endpoint, arn);
    serde_json::from_str(attrs["FilterPolicy"].as_str().unwrap_or_else(|| panic!("no FilterPolicy: {attrs}")))
        .expect("FilterPolicy is JSON")
}

const SUBSCRIPTIONS: &str = r#"
[[notify.subscriptions]]
topic = "alerts"
type = "email"
to = ["ops@example.com", "oncall@example.com"]
filter = { status = ["rejected", "failed"], pipeline = ["sales"] }

[[notify.subscriptions]]
topic = "alerts"
type = "sms"
to = ["+14155550100"]
filter = { status = ["failed"] }

[[notify.subscriptions]]
topic = "success"
type = "webhook"
url = "https://hooks.example.com/services/T000/B000/token123"
filter = { pipeline = ["sales"] }

[[notify.subscriptions]]
topic = "success"
type = "log"
"#;

#[test]
fn setup_makes_each_subscription_once_with_its_filter_policy_and_removes_what_the_config_dropped() {
    let (_moto, endpoint) = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with(dir.path(), SUBSCRIPTIONS);

    // A dry run on an empty account lists the subscriptions it would make, and makes nothing.
    let text = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws", "--dry-run"]));
    for line in [
        "would create  subscription  weir-alerts email ops@example.com  (filter pipeline=sales, status=rejected|failed)",
        "would create  subscription  weir-alerts email oncall@example.com",
        "would create  subscription  weir-alerts sms +14155550100  (filter status=failed)",
        "would create  subscription  weir-success https https://hooks.example.com/…  (filter pipeline=sales, raw message delivery)",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(!text.contains("token123"), "the webhook's token is printed:\n{text}");
    assert!(text.contains("nothing changed"), "{text}");
    let topics = aws_cli(&endpoint, &["sns", "list-topics"]);
    assert_eq!(topics["Topics"].as_array().map_or(0, Vec::len), 0, "{topics}");

    // Someone subscribed an address by hand: weir leaves it alone throughout.
    let first = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(first.contains("created  subscription  weir-alerts email ops@example.com"), "{first}");
    aws_cli(
        &endpoint,
        &[
            "sns",
            "subscribe",
            "--topic-arn",
            ALERTS_ARN,
            "--protocol",
            "email",
            "--notification-endpoint",
            "by-hand@example.com",
        ],
    );
    let second = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(
        second.contains("\n0 created, ") && !second.lines().any(|l| l.starts_with("updated")),
        "the second run changes nothing:\n{second}"
    );
    assert!(second.contains("exists   subscription  weir-alerts sms +14155550100"), "{second}");
    assert!(!second.contains("by-hand"), "{second}");

    let alerts = subscriptions(&endpoint, ALERTS_ARN);
    let endpoints: Vec<(&str, &str)> = alerts.iter().map(|(p, e, _)| (p.as_str(), e.as_str())).collect();
    assert_eq!(
        endpoints,
        [
            ("email", "by-hand@example.com"),
            ("email", "oncall@example.com"),
            ("email", "ops@example.com"),
            ("sms", "+14155550100")
        ],
        "each subscription once"
    );
    for (protocol, address, arn) in &alerts {
        match (protocol.as_str(), address.as_str()) {
            ("email", "by-hand@example.com") => {}
            ("email", _) => assert_eq!(
                filter_policy(&endpoint, arn),
                json!({"pipeline": ["sales"], "status": ["rejected", "failed"]}),
                "{address}"
            ),
            _ => assert_eq!(filter_policy(&endpoint, arn), json!({"status": ["failed"]})),
        }
    }
    let success = subscriptions(&endpoint, SUCCESS_ARN);
    assert_eq!(success.len(), 1, "{success:?}");
    let (protocol, url, arn) = &success[0];
    assert_eq!(
        (protocol.as_str(), url.as_str()),
        ("https", "https://hooks.example.com/services/T000/B000/token123")
    );
    assert_eq!(filter_policy(&endpoint, arn), json!({"pipeline": ["sales"]}));
    assert_eq!(attributes(&endpoint, arn)["RawMessageDelivery"], "true");
    // The topic carries the marks of the subscriptions weir made, and no endpoint.
    let tags = aws_cli(&endpoint, &["sns", "list-tags-for-resource", "--resource-arn", ALERTS_ARN]);
    let marks: Vec<&str> = tags["Tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["Key"].as_str().filter(|k| k.starts_with("weir:subscription:")))
        .collect();
    assert_eq!(marks.len(), 3, "{tags}");
    assert!(!tags.to_string().contains("example.com"), "{tags}");

    // One address and the SMS subscription dropped, a filter changed: a dry run says so and
    // changes nothing; then setup does it.
    let changed = SUBSCRIPTIONS
        .replace(r#"to = ["ops@example.com", "oncall@example.com"]"#, r#"to = ["ops@example.com"]"#)
        .replace(r#"filter = { pipeline = ["sales"] }"#, r#"filter = { pipeline = ["sales", "images"] }"#)
        .replace(
            "type = \"sms\"\nto = [\"+14155550100\"]\nfilter = { status = [\"failed\"] }",
            "type = \"log\"",
        );
    assert!(!changed.contains("sms") && !changed.contains("oncall"), "{changed}");
    let config = config_with(dir.path(), &changed);
    let plan = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws", "--dry-run"]));
    assert!(plan.contains("would remove  subscription  weir-alerts email oncall@example.com"), "{plan}");
    assert!(plan.contains("would remove  subscription  weir-alerts sms +14155550100"), "{plan}");
    assert!(
        plan.contains("would update  subscription  weir-success https https://hooks.example.com/…"),
        "{plan}"
    );
    assert_eq!(subscriptions(&endpoint, ALERTS_ARN), alerts, "the dry run changed nothing");
    assert_eq!(filter_policy(&endpoint, arn), json!({"pipeline": ["sales"]}), "the dry run changed nothing");

    let third = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(third.contains("removed  subscription  weir-alerts email oncall@example.com"), "{third}");
    assert!(third.contains("2 removed"), "{third}");
    let endpoints: Vec<String> =
        subscriptions(&endpoint, ALERTS_ARN).into_iter().map(|(_, e, _)| e).collect();
    assert_eq!(endpoints, ["by-hand@example.com", "ops@example.com"]);
    assert_eq!(filter_policy(&endpoint, arn), json!({"pipeline": ["sales", "images"]}));
    let fourth = ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    assert!(
        fourth.contains("\n0 created, ")
            && !fourth.lines().any(|l| l.starts_with("updated") || l.starts_with("removed")),
        "{fourth}"
    );
}

#[test]
fn embedded_check_refuses_sms_saying_it_needs_sns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("weir.toml");
    let text = common::default_config()
        + "\n[[notify.subscriptions]]\ntopic = \"alerts\"\ntype = \"sms\"\nto = [\"+14155550100\"]\n";
    std::fs::write(&config, text).expect("config");
    let out = common::weir().arg("--config").arg(&config).arg("check").output().expect("weir check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "notify.subscriptions[2] (alerts Sms): sms needs SNS, the AWS backend (an [aws] section)"
        ),
        "{stdout}"
    );
}

/// Requests received by [`listen`]: (path, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A tiny HTTP server on loopback that answers every POST with 200 and keeps what it got (at
/// most 100 requests of at most 1 MiB each; it stops with the test).
fn listen() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let received: Received = Arc::default();
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length.min(1 << 20)];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            keep.lock().expect("lock").push((path, String::from_utf8_lossy(&body).into_owned()));
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, received)
}

#[test]
fn a_message_reaches_the_webhook_whose_filter_it_matches_and_not_the_other() {
    let (_moto, endpoint) = start_moto();
    let (port, received) = listen();
    let dir = tempfile::tempdir().expect("tempdir");
    // moto posts to a topic's subscriptions one after the other, in the order they were made
    // (the config's): once the unfiltered last one has the message, the others have had theirs
    // or been passed over.
    let config = config_with(
        dir.path(),
        &format!(
            r#"
[[notify.subscriptions]]
topic = "success"
type = "webhook"
url = "http://127.0.0.1:{port}/images"
filter = {{ pipeline = ["images"] }}

[[notify.subscriptions]]
topic = "success"
type = "webhook"
url = "http://127.0.0.1:{port}/sales-succeeded"
filter = {{ pipeline = ["sales"], status = ["succeeded"] }}

[[notify.subscriptions]]
topic = "success"
type = "webhook"
url = "http://127.0.0.1:{port}/everything"
"#
        ),
    );
    ok(&weir_on_moto(&config, &endpoint, &["setup", "aws"]));
    let log = std::fs::File::create(dir.path().join("worker.log")).expect("log");
    let _worker = Proc::spawn(
        common::weir()
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("worker"))
            .args(["worker", "--endpoint-url", &endpoint])
            .envs(AWS_ENV)
            .stdout(Stdio::null())
            .stderr(log),
    );
    aws_cli(
        &endpoint,
        &[
            "s3api",
            "put-object",
            "--bucket",
            "example-weir-input",
            "--key",
            "raw/sales.csv",
            "--body",
            common::samples().join("sales.csv").to_str().expect("path"),
        ],
    );
    let paths = || received.lock().expect("lock").iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    until("the success message at the unfiltered webhook", Duration::from_secs(90), || {
        paths().contains(&"/everything".to_string()).then_some(())
    });
    assert_eq!(paths(), ["/sales-succeeded", "/everything"], "the images webhook is filtered out");

    // moto posts SNS's envelope (it does not honour raw delivery over HTTP); the message in it
    // is weir's JSON message with the attributes the filter matched.
    let body = received.lock().expect("lock")[0].1.clone();
    let envelope: Value = serde_json::from_str(&body).expect("JSON envelope");
    assert_eq!(envelope["Type"], "Notification", "{envelope}");
    let message: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("weir's JSON");
    assert_eq!(message["topic"], "success");
    assert_eq!(message["attributes"]["pipeline"], "sales", "{message}");
    assert_eq!(message["attributes"]["status"], "succeeded", "{message}");
}
