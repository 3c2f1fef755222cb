//! The Lambda handler's cold start reads the config's secret settings from Secrets Manager (a
//! moto server), as `weir worker` does: the sales pipeline's PostgreSQL sink has its URL only as
//! `{ secret = ARN, key = "url" }`, and a batch's rows land in a real PostgreSQL the test starts.
//! A secret that does not exist, and a `{ file = ... }` (no private file on Lambda), fail the
//! cold start with the setting's path and the reason; no message holds the database password.

mod lambda;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda::Aws;
use weir_core::config::PostgresSinkConfig;
use weir_core::secret::{FileRef, ManagerRef, SecretValue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cold_start_reads_the_database_url_from_secrets_manager() {
    let env = Aws::start().await;
    let pg = weir_postgres::testing::TestServer::start();
    let secret_string = serde_json::json!({ "url": pg.url() }).to_string();
    let created: serde_json::Value = serde_json::from_str(&env.aws_cli(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "weir/warehouse",
        "--secret-string",
        &secret_string,
    ]))
    .expect("create-secret's JSON");
    let arn = created["ARN"].as_str().expect("the secret's ARN").to_string();

    let with_url = |url: SecretValue| {
        let mut config = Aws::bundled_config();
        config.pipelines[0].sinks.postgres =
            Some(PostgresSinkConfig { url: Some(url), table: Some("sales".into()), ..Default::default() });
        config
    };
    let config = with_url(SecretValue::Manager(ManagerRef { secret: arn.clone(), key: Some("url".into()) }));
    // The table, made with the URL itself (as `weir setup postgres` would).
    let columns = weir_process::Plan::compile(&config.pipelines[0]).expect("plan").table_columns();
    let direct =
        PostgresSinkConfig { url: Some(pg.url().into()), table: Some("sales".into()), ..Default::default() };
    weir_postgres::PostgresWarehouse::new("sales", &direct, &columns)
        .expect("sink")
        .setup()
        .await
        .expect("table");
    env.ensure(&config).await;
    let handler = env.handler(&config).await.expect("the cold start reads the secret");

    env.upload(&[("sales.csv", "raw/sales.csv", "STANDARD")]);
    let aws = config.aws.clone().expect("an [aws] section");
    let records = env.receive(&aws.queue, |r| lambda::object_events(r) >= 1).await;
    let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records })).expect("event");
    let answer = serde_json::to_value(handler.handle(event).await).expect("JSON");
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    // The sample's 8 rows, loaded through the URL read from Secrets Manager.
    assert_eq!(pg.psql("SELECT count(*) FROM sales WHERE weir_source_key = 'raw/sales.csv'"), "8");

    // A secret that does not exist: the cold start fails, naming the setting and the secret.
    let missing = format!("{arn}-gone");
    let gone =
        with_url(SecretValue::Manager(ManagerRef { secret: missing.clone(), key: Some("url".into()) }));
    let e = format!("{:#}", env.handler(&gone).await.err().expect("a missing secret fails the cold start"));
    assert!(
        e.contains(&format!(
            "pipeline[0].sinks.postgres.url: cannot read secret {missing} key \"url\": the secret {missing} does not exist"
        )),
        "{e}"
    );
    // A key the secret does not have.
    let no_key = with_url(SecretValue::Manager(ManagerRef { secret: arn.clone(), key: Some("pass".into()) }));
    let e = format!("{:#}", env.handler(&no_key).await.err().expect("a missing key fails the cold start"));
    assert!(e.contains(&format!("the secret {arn} has no key \"pass\"")), "{e}");
    assert!(!e.contains(pg.password()), "{e}");
    // A file: Lambda has no file private to the function, and says what to do instead.
    let file = with_url(SecretValue::File(FileRef { file: "/var/task/db_url".into() }));
    let e = format!("{:#}", env.handler(&file).await.err().expect("a file secret fails the cold start"));
    assert!(
        e.contains("pipeline[0].sinks.postgres.url: cannot read file /var/task/db_url")
            && e.contains("weir-lambda reads no secret files")
            && e.contains("{ secret = \"arn:...\" }"),
        "{e}"
    );
}
