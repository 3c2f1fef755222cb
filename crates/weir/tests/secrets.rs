//! Secret settings read from AWS Secrets Manager (moto server) and from files, used for real:
//! the SMTP password a notification needs reaches an SMTP server on loopback (Python
//! `aiosmtpd`) that requires AUTH with exactly that password, from `weir worker` on the AWS
//! backend and from embedded `weir run`. A secret weir cannot read (missing, no such key, a
//! file others can read) is reported by `weir check` at its config path and stops the worker
//! from starting; the value never appears in the logs, however verbose.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{aws_cli, repo, samples, start_moto, tool, until, weir, Proc, AWS_ENV};

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

#[test]
fn a_worker_on_aws_sends_email_with_the_smtp_password_from_secrets_manager() {
    let (_moto, endpoint) = start_moto();
    let smtp = Smtp::start(PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let secret_string = serde_json::json!({ "username": "weir", "password": PASSWORD }).to_string();
    let created = aws_cli(
        &endpoint,
        &["secretsmanager", "create-secret", "--name", "weir/smtp", "--secret-string", &secret_string],
    );
    let arn = created["ARN"].as_str().expect("the secret's ARN").to_string();

    let example = std::fs::read_to_string(repo().join("deploy/aws/weir.toml")).unwrap();
    let config_with =
        |password: &str| format!("{example}{}", email_subscription("success", smtp.port, password));
    let config = dir.path().join("aws.toml");
    std::fs::write(&config, config_with(&format!("{{ secret = \"{arn}\", key = \"password\" }}"))).unwrap();

    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let setup = weir_aws(&config, &endpoint).args(["setup", "aws"]).output().unwrap();
    assert!(setup.status.success(), "{}", text(&setup));

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

    let mail = smtp.next_mail(Duration::from_secs(60));
    assert_eq!(mail["login"], "weir", "{mail}");
    assert!(mail["subject"].as_str().unwrap().contains("sales.csv"), "{mail}");
    worker.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("DEBUG"), "the worker's log is a debug log: {log}");
    assert!(!log.contains(PASSWORD), "the SMTP password is in the worker's log");

    // A secret that does not exist, and a key the secret does not have: `weir check` names the
    // setting and the secret, and the worker does not start.
    let missing = format!("{arn}-gone");
    std::fs::write(&config, config_with(&format!("{{ secret = \"{missing}\", key = \"password\" }}")))
        .unwrap();
    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("notify.subscriptions[0].password: cannot read secret {missing} key \"password\": the secret {missing} does not exist")),
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

    std::fs::write(&config, config_with(&format!("{{ secret = \"{arn}\", key = \"pass\" }}"))).unwrap();
    let check = weir_aws(&config, &endpoint).arg("check").output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("the secret {arn} has no key \"pass\"")), "{said}");
    assert!(!said.contains(PASSWORD), "{said}");
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
