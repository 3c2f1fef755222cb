//! Secret settings read from AWS Secrets Manager (moto server) and from files, used for real:
//! `weir worker` on the AWS backend loads its rows into a real PostgreSQL (started by the test)
//! through the sink URL it read from Secrets Manager; embedded `weir run` logs in to an SMTP
//! server on loopback (Python `aiosmtpd`, AUTH with exactly that password) with the password it
//! read from a private file. A secret weir cannot read (missing, no such key, a file others can
//! read) is reported by `weir check` at its config path and stops the worker from starting; the
//! value never appears in the logs, however verbose. On AWS a webhook URL reference is refused
//! by `weir check`, as SNS subscribes the URL itself.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{aws_cli, repo, samples, start_moto, tool, until, weir, Proc, AWS_ENV};
use weir_postgres::testing::TestServer;

const PASSWORD: &str = "smtp-pw-7d1e9c-rotatable";

/// An SMTP server that accepts mail only after AUTH as `weir` with `argv[2]` as the password;
/// one JSON line per message (with the login it authenticated as), `AUTH-FAILED` per refusal.
const SMTP_SERVER: &str = r#"
import email, email.policy, json, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
password = sys.argv[2].encode()
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"weir" and auth_data.password == password
    if not ok:
        print("AUTH-FAILED", flush=True)
        return AuthResult(success=False)
    session.weir_login = auth_data.login.decode()
    return AuthResult(success=True)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = getattr(session, "weir_login", None)
        print(json.dumps({"login": login, "subject": m["subject"], "to": m["to"]}), flush=True)
        return "250 OK"
c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]), authenticator=authenticator,
               auth_required=True, auth_require_tls=False)
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
"#;

/// The SMTP server, killed on drop, and the lines it prints.
struct Smtp {
    _server: Proc,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Smtp {
    fn start(password: &str) -> Smtp {
        let python = tool("WEIR_TEST_PYTHON", "python");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Proc::spawn(
            Command::new(&python)
                .args(["-c", SMTP_SERVER, &port.to_string(), password])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let out = server.child().stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = lines.recv_timeout(Duration::from_secs(30)).expect("the SMTP server to start");
        assert_eq!(ready, "READY", "is aiosmtpd installed for {}?", python.display());
        Smtp { _server: server, port, lines }
    }

    /// The next accepted message; fails on an AUTH refusal or after `within`.
    fn next_mail(&self, within: Duration) -> serde_json::Value {
        let line = self.lines.recv_timeout(within).expect("an email at the SMTP server");
        assert_ne!(line, "AUTH-FAILED", "weir logged in with a wrong password");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }
}

/// An email subscription of every topic's messages to the test's SMTP server, with `password`
/// as written (a TOML value).
fn email_subscription(topic: &str, port: u16, password: &str) -> String {
    format!(
        "\n[[notify.subscriptions]]\ntopic = \"{topic}\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         security = \"none\"\nusername = \"weir\"\npassword = {password}\nfrom = \"weir <weir@example.com>\"\nto = [\"ops@example.com\"]\n"
    )
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `weir` on the AWS backend against moto, with a debug log.
fn weir_aws(config: &Path, endpoint: &str) -> Command {
    let mut c = weir();
    c.arg("--config").arg(config).envs(AWS_ENV).env("AWS_ENDPOINT_URL", endpoint).env("WEIR_LOG", "debug");
    c
}

/// deploy/aws/weir.toml with the sales pipeline loading its rows into PostgreSQL, the sink's
/// `url` as written (a TOML value).
fn aws_config_with_postgres(url: &str) -> String {
    let example = std::fs::read_to_string(repo().join("deploy/aws/weir.toml")).unwrap();
    let output = "[pipeline.output]\n";
    assert!(example.contains(output), "deploy/aws/weir.toml has no [pipeline.output]");
    example.replacen(
        output,
        &format!("[pipeline.sinks.postgres]\nurl = {url}\ntable = \"sales\"\n\n{output}"),
        1,
    )
}

#[test]
fn a_worker_on_aws_loads_rows_into_postgresql_with_the_url_from_secrets_manager() {
    let (_moto, endpoint) = start_moto();
    let pg = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret_string = serde_json::json!({ "url": pg.url(), "note": "weir's warehouse" }).to_string();
    let created = aws_cli(
        &endpoint,
        &["secretsmanager", "create-secret", "--name", "weir/warehouse", "--secret-string", &secret_string],
    );
    let arn = created["ARN"].as_str().expect("the secret's ARN").to_string();
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, aws_config_with_postgres(&format!("{{ secret = \"{arn}\", key = \"url\" }}")))
        .unwrap();

    let setup = weir_aws(&config, &endpoint).args(["setup", "aws"]).output().unwrap();
    assert!(setup.status.success(), "{}", text(&setup));
    let setup = weir_aws(&config, &endpoint).args(["setup", "postgres"]).output().unwrap();
    assert!(setup.status.success(), "{}", text(&setup));
    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    assert!(check.status.success(), "{}", text(&check));
    for said in [text(&setup), text(&check)] {
        assert!(!said.contains(pg.password()), "the database password was printed: {said}");
    }

    let log_path = dir.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker = Proc::spawn(
        weir_aws(&config, &endpoint)
            .arg("--data-dir")
            .arg(dir.path().join("w"))
            .args(["worker", "--endpoint-url", &endpoint])
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let upload = Command::new(tool("WEIR_TEST_AWS", "aws"))
        .args(["--endpoint-url", &endpoint, "s3", "cp"])
        .arg(samples().join("sales.csv"))
        .arg("s3://example-weir-input/raw/sales.csv")
        .envs(AWS_ENV)
        .output()
        .unwrap();
    assert!(upload.status.success(), "{}", text(&upload));

    // The sample's 8 rows, loaded by the worker through the URL it read from Secrets Manager.
    until("the sales rows in PostgreSQL", Duration::from_secs(90), || {
        (pg.try_psql("SELECT count(*) FROM sales").ok()?.trim() == "8").then_some(())
    });
    assert_eq!(
        pg.psql("SELECT data ->> 'customer_name' FROM sales WHERE data ->> 'order_id' = 'ORD-004'"),
        "Doe, John"
    );
    worker.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("DEBUG"), "the worker's log is a debug log: {log}");
    assert!(!log.contains(pg.password()), "the database password is in the worker's log");

    // A secret that does not exist, and a key the secret does not have: `weir check` names the
    // setting and the secret, and the worker does not start.
    let missing = format!("{arn}-gone");
    std::fs::write(
        &config,
        aws_config_with_postgres(&format!("{{ secret = \"{missing}\", key = \"url\" }}")),
    )
    .unwrap();
    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "pipeline[0].sinks.postgres.url: cannot read secret {missing} key \"url\": the secret {missing} does not exist"
        )),
        "{said}"
    );
    let worker = weir_aws(&config, &endpoint)
        .arg("--data-dir")
        .arg(dir.path().join("w"))
        .args(["worker", "--endpoint-url", &endpoint])
        .output()
        .unwrap();
    let said = text(&worker);
    assert_eq!(worker.status.code(), Some(1), "{said}");
    assert!(said.contains("has secrets weir cannot read") && said.contains(&missing), "{said}");

    std::fs::write(&config, aws_config_with_postgres(&format!("{{ secret = \"{arn}\", key = \"pass\" }}")))
        .unwrap();
    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("the secret {arn} has no key \"pass\"")), "{said}");
    assert!(!said.contains(pg.password()), "{said}");

    // On AWS a webhook is an SNS subscription of the URL itself: a reference is refused, as SMTP
    // settings are, with a sentence saying why (the secret itself is readable).
    let webhook = format!(
        "{}\n[[notify.subscriptions]]\ntopic = \"alerts\"\ntype = \"webhook\"\nurl = {{ secret = \"{arn}\", key = \"url\" }}\n",
        aws_config_with_postgres(&format!("{{ secret = \"{arn}\", key = \"url\" }}"))
    );
    std::fs::write(&config, webhook).unwrap();
    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(
        said.contains("notify.subscriptions[0] (alerts Webhook): on AWS the webhook's `url` becomes an SNS subscription")
            && said.contains("a `secret` or `file` reference cannot be used there"),
        "{said}"
    );
    assert!(!said.contains(pg.password()), "{said}");
}

#[test]
fn weir_run_reads_the_smtp_password_from_a_private_file_and_check_refuses_one_others_can_read() {
    let smtp = Smtp::start(PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    private(&data, 0o700);
    let secret = dir.path().join("smtp_password");
    std::fs::write(&secret, format!("{PASSWORD}\n")).unwrap();
    private(&secret, 0o600);
    let toml = format!(
        "{}{}",
        common::default_config().replace("[alarms]\ndefaults = true", "[alarms]\ndefaults = false"),
        email_subscription("success", smtp.port, &format!("{{ file = \"{}\" }}", secret.display()))
    );
    std::fs::write(data.join("weir.toml"), &toml).unwrap();

    let check = common::weir_in(&data).arg("check").output().unwrap();
    assert!(check.status.success(), "{}", text(&check));

    let log_path = dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut run = Proc::spawn(
        common::weir_in(&data)
            .env("WEIR_LOG", "debug")
            .arg("run")
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    until("weir run to listen", Duration::from_secs(30), || {
        data.join("endpoints.json").exists().then_some(())
    });
    let put =
        common::weir_in(&data).arg("put").arg(samples().join("sales.csv")).arg("--wait").output().unwrap();
    assert!(put.status.success(), "{}", text(&put));
    let mail = smtp.next_mail(Duration::from_secs(60));
    assert_eq!(mail["login"], "weir", "{mail}");
    run.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("DEBUG"), "the run's log is a debug log: {log}");
    assert!(!log.contains(PASSWORD), "the SMTP password is in weir run's log");

    // The same file, readable by the group and others: refused with the fix, value unshown.
    private(&secret, 0o644);
    let check = common::weir_in(&data).arg("check").output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    let setting = "notify.subscriptions[2].password";
    assert!(said.contains(setting) && said.contains("readable by others (mode 644)"), "{said}");
    assert!(said.contains(&format!("chmod 600 {}", secret.display())), "{said}");
    assert!(!said.contains(PASSWORD), "{said}");
    // And `weir run` does not start with it.
    let mut refused =
        Proc::spawn(common::weir_in(&data).arg("run").stdout(Stdio::null()).stderr(Stdio::piped()));
    let status = refused.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut refused.child().stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains(setting) && stderr.contains("readable by others"), "{stderr}");
    let _ = std::io::stdout().flush();
}
