//! `{ file = ... }` secrets read through `weir_ports::Secrets` with real files: the value is the
//! file's content without its trailing newline, a rewrite (a rotation) is picked up once the
//! refresh interval has passed and not before, and a file others can read or a missing one is
//! refused with a sentence that never holds the value.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use weir_core::secret::{FileRef, SecretValue};
use weir_core::Config;

fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test]
async fn a_rotated_file_is_read_again_after_the_refresh_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smtp_password");
    write_private(&path, "first-value\n");
    let refresh = Duration::from_secs(1);
    let secrets = weir_backends::local_secrets(refresh);
    let value = SecretValue::File(FileRef { file: path.clone() });
    // The value is cached at some moment after `asked_first`, so the rewrite cannot show
    // before `asked_first + refresh` (the check holds however slow this machine is).
    let asked_first = Instant::now();
    assert_eq!(secrets.get(&value).await.unwrap(), "first-value");

    write_private(&path, "second-value\r\n");
    loop {
        let asked = asked_first.elapsed();
        let now = secrets.get(&value).await.unwrap();
        if asked < refresh {
            assert_eq!(now, "first-value", "read again {asked:?} after the first read, before the interval");
        }
        if now == "second-value" {
            break;
        }
        assert_eq!(now, "first-value");
        assert!(asked_first.elapsed() < Duration::from_secs(20), "the rotated value was never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(SecretValue::from("inline").inline(), Some("inline"));
    assert_eq!(secrets.get(&SecretValue::from("inline")).await.unwrap(), "inline");
}

#[tokio::test]
async fn unreadable_files_are_problems_at_their_config_path_without_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::write(&open, "hunter2-open\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.path().join("missing");
    let toml = format!(
        "[[notify.subscriptions]]\ntopic = \"alerts\"\ntype = \"webhook\"\nurl = {{ file = \"{}\" }}\n\
         [server]\napi_token = {{ file = \"{}\" }}\n",
        open.display(),
        missing.display()
    );
    let config = Config::from_toml(&toml).unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    assert!(config.secrets().is_empty(), "references are no secrets");
    let problems = weir_backends::local_secrets(Duration::from_secs(300)).check(&config).await;
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("server.api_token: cannot read file "), "{lines:?}");
    assert!(lines[0].contains("No such file"), "{lines:?}");
    assert!(lines[1].starts_with("notify.subscriptions[0].url: cannot read file "), "{lines:?}");
    assert!(
        lines[1].contains("readable by others (mode 644)") && lines[1].contains("private to weir's user")
    );
    assert!(!lines.concat().contains("hunter2"), "{lines:?}");
    // Secrets Manager is not reached by a process without it, and says so.
    let manager = Config::from_toml(
        "[[notify.subscriptions]]\ntopic = \"alerts\"\ntype = \"webhook\"\nurl = { secret = \"arn:x\" }\n",
    )
    .unwrap();
    let problems = weir_backends::local_secrets(Duration::from_secs(300)).check(&manager).await;
    assert!(problems[0].message.contains("does not reach"), "{problems:?}");
}
