//! The round trip the issue asks for: a pipeline inferred from sample files is a config weir
//! accepts, and weir's own processing core (weir-process) finds zero invalid rows in the very
//! files it was inferred from — for the seeds' samples (`samples/seeds/`, whose inferred
//! configs are checked in beside them), a Latin-1 file, a `;`-delimited file with decimal
//! commas, `%d/%m/%Y` dates, a header with spaces and mixed case, and gzip'ed NDJSON.

use std::io::Write;
use std::path::{Path, PathBuf};

use weir_core::config::{ColumnType, FormatKind};
use weir_core::Config;
use weir_infer::{infer, render, Inference, Options};
use weir_process::Plan;

fn seeds() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/seeds")
}

/// Infers, renders the weir.toml, checks it as `weir check` does (config and schema), and
/// processes each file with it: every row must be valid. Returns the inference, the config
/// text and the results (NDJSON) of the first file.
fn round_trip(files: &[PathBuf], options: &Options) -> (Inference, String, Vec<serde_json::Value>) {
    let inference = infer(files, options).unwrap();
    let source = render::source(&inference.files, inference.format.kind);
    let text = render::config_toml(&inference, &source);
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(config.validate().is_empty(), "{:?}\n{text}", config.validate());
    assert_eq!(config.pipelines.len(), 1, "only the inferred pipeline");
    let pipeline = &config.pipelines[0];
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            pipeline.source.matches(&format!("raw/{name}")),
            "raw/{name} is not taken by {:?}",
            pipeline.source
        );
    }
    let plan = Plan::compile(pipeline).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut first_rows = None;
    for file in files {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let summary =
            weir_process::process(&plan, std::fs::File::open(file).unwrap(), &mut out, &mut err, None)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", file.display()));
        assert_eq!(summary.invalid_rows, 0, "{}: {}\n{text}", file.display(), String::from_utf8_lossy(&err));
        assert!(summary.total_rows > 0, "{}", file.display());
        if first_rows.is_none() {
            let rows =
                String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            first_rows = Some(rows);
        }
    }
    (inference, text, first_rows.unwrap_or_default())
}

fn column<'a>(inf: &'a Inference, name: &str) -> &'a weir_infer::Column {
    inf.columns.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no column {name}: {inf:#?}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Each seed sample against its checked-in config (`WEIR_BLESS=1` rewrites them).
#[test]
fn the_seed_samples_round_trip_and_match_their_checked_in_configs() {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(seeds())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".weir.toml"))
        .collect();
    samples.sort();
    assert_eq!(samples.len(), 6, "{samples:?}");
    for sample in &samples {
        let (inference, text, _) = round_trip(std::slice::from_ref(sample), &Options::default());
        let name = sample.file_name().unwrap().to_string_lossy().into_owned();
        let config_path = seeds().join(format!("{name}.weir.toml"));
        if std::env::var_os("WEIR_BLESS").is_some() {
            std::fs::write(&config_path, &text).unwrap();
        }
        let checked_in = std::fs::read_to_string(&config_path)
            .unwrap_or_else(|e| panic!("{}: {e} (WEIR_BLESS=1 writes it)", config_path.display()));
        assert_eq!(
            checked_in,
            text,
            "{} is not what inference gives now (WEIR_BLESS=1 rewrites it)",
            config_path.display()
        );
        assert!(text.contains(&format!("# {} rows: 0 empty", inference.rows)), "{text}");
    }
    // What the seeds hold, typed.
    let one = |name: &str| infer(&[seeds().join(name)], &Options::default()).unwrap();
    let products = one("000_sample.csv");
    assert_eq!(column(&products, "id").ty, ColumnType::Integer);
    assert_eq!(
        (column(&products, "price").ty, column(&products, "price").scale),
        (ColumnType::Decimal, Some(2))
    );
    let events = one("000_sample.json");
    assert_eq!(events.format.kind, FormatKind::Json);
    assert_eq!(column(&events, "timestamp").ty, ColumnType::Datetime);
    assert!(column(&events, "user_id").required);
    let (amount, product) = (column(&events, "amount"), column(&events, "product"));
    assert!(!amount.required && amount.nullable && amount.empty == 1 && !product.required);
    let customers = one("001_sample-data.csv");
    assert_eq!(column(&customers, "email").ty, ColumnType::Email);
    assert_eq!(column(&customers, "date").format.as_deref(), Some("%Y-%m-%d"));
    let sales = one("002_sample_sales.csv");
    assert_eq!(column(&sales, "customer_name").example.as_deref(), Some("สมชาย ใจดี"));
    let payload = one("004_payload.json");
    assert_eq!((payload.rows, payload.columns[0].name.as_str()), (1, "data"));
}

#[test]
fn a_latin1_semicolon_file_with_decimal_commas() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Kunde;Stadt;Betrag;Gewicht\n");
    for i in 0..30 {
        let city = ["München", "Köln", "Düsseldorf"][i % 3];
        text.push_str(&format!("Kunde {i};{city};{},{:02};{},5\n", 10 + i, i, i));
    }
    let (latin1, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(!unmappable);
    let file = write(dir.path(), "kunden.csv", &latin1);
    let (inf, toml, rows) = round_trip(&[file], &Options::default());
    assert_eq!(
        (inf.format.delimiter, inf.format.encoding.as_str(), inf.format.decimal_separator),
        (';', "latin-1", ',')
    );
    assert!(toml.contains("encoding = \"latin-1\"") && toml.contains("decimal_separator = \",\""), "{toml}");
    let betrag = column(&inf, "betrag");
    assert_eq!((betrag.ty, betrag.scale), (ColumnType::Decimal, Some(2)));
    assert_eq!(column(&inf, "gewicht").ty, ColumnType::Decimal);
    let stadt = column(&inf, "stadt");
    assert_eq!(stadt.ty, ColumnType::Enum);
    assert_eq!(stadt.values, ["Düsseldorf", "Köln", "München"]);
    assert_eq!(rows[0]["stadt"], "München");
    assert_eq!(rows[1]["betrag"].as_f64(), Some(11.01));
}

#[test]
fn day_first_dates_and_a_header_with_spaces_and_mixed_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Customer Name,E-Mail Address,Signup Date,Last Login,Active,Plan,Zip\n");
    for i in 0..40 {
        let day = 1 + i % 28;
        let plan = ["free", "pro", "team"][i % 3];
        let login = if i % 5 == 0 { String::new() } else { format!("{day:02}/03/2024 10:{:02}", i % 60) };
        text.push_str(&format!(
            "Customer {i},c{i}@example.com,{day:02}/{:02}/2024,{login},{},{plan},0{}\n",
            1 + i % 12,
            if i % 2 == 0 { "yes" } else { "no" },
            1000 + i
        ));
    }
    let file = write(dir.path(), "customers_2024-03.csv", text.as_bytes());
    let (inf, toml, rows) = round_trip(&[file], &Options { max_rows: None, ..Options::default() });
    let signup = column(&inf, "signup_date");
    assert_eq!((signup.ty, signup.format.as_deref()), (ColumnType::Date, Some("%d/%m/%Y")));
    assert_eq!(signup.header, "Signup Date");
    let login = column(&inf, "last_login");
    assert_eq!((login.ty, login.format.as_deref()), (ColumnType::Datetime, Some("%d/%m/%Y %H:%M")));
    assert!(login.nullable && !login.required && login.empty == 8);
    assert_eq!(column(&inf, "e-mail_address").ty, ColumnType::Email);
    assert_eq!(column(&inf, "active").ty, ColumnType::Boolean);
    assert_eq!(column(&inf, "plan").ty, ColumnType::Enum);
    assert_eq!(column(&inf, "zip").ty, ColumnType::String, "leading zeros are kept");
    assert!(toml.contains("# 40 rows: 8 empty, 32 distinct"), "{toml}");
    assert!(toml.contains("(header \"Customer Name\")"), "{toml}");
    assert!(toml.contains("prefix = \"raw/customers_\""), "{toml}");
    assert_eq!(rows[0]["customer_name"], "Customer 0");
    assert_eq!(rows[0]["zip"], "01000");
    let table = render::table(&inf);
    assert!(table.contains("signup_date") && table.contains("date (%d/%m/%Y)"), "{table}");
    let json = serde_json::to_value(&inf).unwrap();
    assert_eq!(json["columns"][2]["format"], "%d/%m/%Y");
}

#[test]
fn several_gzipped_ndjson_files_make_one_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for day in 1..=2 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..20 {
            let extra = if day == 2 && i == 3 { ", \"coupon\": \"X1\"" } else { "" };
            writeln!(
                gz,
                "{{\"event\": \"{}\", \"user\": {{\"id\": {i}, \"country\": \"TH\"}}, \"tags\": [\"a\"], \"at\": \"2024-01-0{day}T00:00:{i:02}+07:00\"{extra}}}",
                ["view", "buy"][i % 2]
            )
            .unwrap();
        }
        files.push(write(dir.path(), &format!("events-2024010{day}.ndjson.gz"), &gz.finish().unwrap()));
    }
    let (inf, toml, rows) = round_trip(&files, &Options::default());
    assert_eq!(
        (inf.format.kind, inf.format.compression.as_str(), inf.rows),
        (FormatKind::Ndjson, "gzip", 40)
    );
    assert_eq!(column(&inf, "user.id").ty, ColumnType::Integer);
    assert_eq!(column(&inf, "tags").ty, ColumnType::String);
    assert_eq!(column(&inf, "event").ty, ColumnType::Enum);
    assert!(!column(&inf, "coupon").required && column(&inf, "coupon").empty == 39);
    assert!(toml.contains("prefix = \"raw/events-\"") && toml.contains("suffix = \".ndjson\""), "{toml}");
    assert_eq!(rows[0]["user.id"], 0);
}

#[test]
fn a_sample_reads_the_first_rows_and_a_full_pass_reads_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,score\n");
    for i in 0..1000 {
        text.push_str(&format!("{i},{i}\n"));
    }
    text.push_str("1000,1.5\n");
    let file = write(dir.path(), "scores.csv", text.as_bytes());
    let sample =
        infer(std::slice::from_ref(&file), &Options { max_rows: Some(100), ..Options::default() }).unwrap();
    assert!(sample.sampled);
    assert_eq!((sample.rows, column(&sample, "score").ty), (100, ColumnType::Integer));
    let (full, _, _) = round_trip(&[file], &Options { max_rows: None, ..Options::default() });
    assert!(!full.sampled);
    assert_eq!(
        (full.rows, column(&full, "score").ty, column(&full, "score").scale),
        (1001, ColumnType::Decimal, Some(1))
    );
    assert_eq!(column(&full, "id").distinct, 1001);
}

/// What no schema can fix is said, not hidden: rows of the wrong width, headers weir folds into
/// one name, an ambiguous day/month order; and a JSON element that is not an object is skipped.
#[test]
fn notes_say_what_no_schema_can_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "odd.csv", b"Name,name,when\na,b,01/02/2024\nc,d\n");
    let inf = infer(&[file], &Options::default()).unwrap();
    let notes = inf.notes.join("\n");
    assert!(notes.contains("1 rows have more or fewer fields than the header"), "{notes}");
    assert!(notes.contains("columns \"Name\" and \"name\" are both `name`"), "{notes}");
    assert!(notes.contains("when: every value also fits %m/%d/%Y"), "{notes}");
    let file = write(dir.path(), "mixed.json", b"[{\"a\": 1}, 7, {\"a\": 2}]");
    let inf = infer(&[file], &Options::default()).unwrap();
    assert_eq!((inf.rows, inf.skipped_rows), (2, 1));
    assert_eq!(column(&inf, "a").ty, ColumnType::Integer);
}
